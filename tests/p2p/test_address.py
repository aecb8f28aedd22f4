"""Peer address strings: pubkeyhex@host:port."""

from __future__ import annotations

import pytest

from powerverse.p2p import InvalidAddress, PeerAddress

KEY = bytes(range(32))


def test_parse_and_format_round_trip() -> None:
    address = PeerAddress.parse(f"{KEY.hex()}@127.0.0.1:30303")
    assert address == PeerAddress(peer_id=KEY, host="127.0.0.1", port=30303)
    assert str(address) == f"{KEY.hex()}@127.0.0.1:30303"
    assert PeerAddress.parse(str(address)) == address


def test_ipv6_hosts_use_brackets() -> None:
    address = PeerAddress.parse(f"{KEY.hex()}@[::1]:9000")
    assert address.host == "::1"
    assert str(address) == f"{KEY.hex()}@[::1]:9000"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "127.0.0.1:30303",
        f"{KEY.hex()}@127.0.0.1",
        f"{KEY.hex()}@127.0.0.1:",
        f"{KEY.hex()}@:30303",
        f"{KEY.hex()}@127.0.0.1:0",
        f"{KEY.hex()}@127.0.0.1:65536",
        f"{KEY.hex()}@127.0.0.1:-1",
        f"{KEY.hex()}@127.0.0.1:http",
        f"{KEY.hex()[:-2]}@127.0.0.1:30303",
        f"{KEY.hex()}00@127.0.0.1:30303",
        f"zz{KEY.hex()[2:]}@127.0.0.1:30303",
        f"{KEY.hex()}@a@b:1",
    ],
)
def test_malformed_addresses_are_refused(text: str) -> None:
    with pytest.raises(InvalidAddress):
        PeerAddress.parse(text)


def test_constructor_checks_fields() -> None:
    with pytest.raises(InvalidAddress):
        PeerAddress(peer_id=b"short", host="h", port=1)
    with pytest.raises(InvalidAddress):
        PeerAddress(peer_id=KEY, host="bad host", port=1)
    with pytest.raises(InvalidAddress):
        PeerAddress(peer_id=KEY, host="h", port=0)
