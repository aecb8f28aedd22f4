"""Signed agent requests: every tampered field, replays, expiry, foreign agents are refused."""

from __future__ import annotations

import hashlib

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.infra.auth import (
    MAX_SKEW,
    MemoryNonceStore,
    SqliteNonceStore,
    sign_request,
    verify_request,
)
from powerverse.infra.credentials import decrypt_credentials, encrypt_credentials
from powerverse.infra.exceptions import AuthError

ALICE = Account.from_key(b"\x01" * 32)
MALLORY = Account.from_key(b"\x02" * 32)
AGENT = "0x" + "ab" * 20
NOW = 1_800_000_000
REQ = {"method": "POST", "path": "/v1/leases/3/actions", "body": b'{"action":"reboot"}'}


def signed(**over: object) -> dict[str, str]:
    args = {"chain_id": 31337, "agent": AGENT, **REQ, "timestamp": NOW, **over}
    return sign_request(ALICE, **args)  # type: ignore[arg-type]


def check(headers: dict[str, str], **over: object) -> object:
    args = {
        "chain_id": 31337, "agent": AGENT, **REQ, "nonces": MemoryNonceStore(lambda: NOW),
        "clock": lambda: NOW, **over,
    }  # fmt: skip
    return verify_request(headers, **args)  # type: ignore[arg-type]


def test_a_good_request_names_its_signer_and_public_key() -> None:
    who = check(signed())
    assert who.address == ALICE.address  # type: ignore[attr-defined]
    pub = who.public_key  # type: ignore[attr-defined]
    assert len(pub) == 64 and Account._keys.PublicKey(pub).to_checksum_address() == ALICE.address


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"method": "GET"}, "not by"),
        ({"path": "/v1/leases/4/actions"}, "not by"),
        ({"body": b'{"action":"suspend"}'}, "not by"),
        ({"chain_id": 1}, "not by"),
        ({"agent": "0x" + "cd" * 20}, "not by"),  # signed for another agent
    ],
)
def test_tampered_or_foreign_requests_are_refused(over: dict[str, object], why: str) -> None:
    with pytest.raises(AuthError, match=why):
        check(signed(), **over)


def test_replays_expiry_and_bad_headers() -> None:
    nonces = MemoryNonceStore(lambda: NOW)
    headers = signed()
    check(headers, nonces=nonces)
    with pytest.raises(AuthError, match="replayed"):
        check(headers, nonces=nonces)
    with pytest.raises(AuthError, match="expired"):
        check(signed(timestamp=NOW - MAX_SKEW - 1))
    with pytest.raises(AuthError, match="future"):
        check(signed(timestamp=NOW + MAX_SKEW + 1))
    with pytest.raises(AuthError, match="missing"):
        check({k: v for k, v in signed().items() if k != "X-PV-Nonce"})
    impostor = {**signed(), "X-PV-Address": MALLORY.address}
    with pytest.raises(AuthError, match="not by"):
        check(impostor)
    for key, value in [
        ("X-PV-Address", "alice"),
        ("X-PV-Timestamp", "yesterday"),
        ("X-PV-Nonce", "0x1234"),
        ("X-PV-Signature", "0x" + "00" * 65),
    ]:
        with pytest.raises(AuthError):
            check({**signed(), key: value})


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["X-PV-Timestamp", "X-PV-Nonce", "X-PV-Signature"]), st.data())
def test_any_flipped_header_character_is_refused(header: str, data: st.DataObject) -> None:
    headers = signed(nonce=hashlib.sha256(b"fixed").digest())
    value = headers[header]
    i = data.draw(st.integers(min_value=2, max_value=len(value) - 1))
    flipped = "0" if value[i] != "0" else "1"
    with pytest.raises(AuthError):
        check({**headers, header: value[:i] + flipped + value[i + 1 :]})


def test_sqlite_nonces_survive_a_restart(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "nonces.sqlite"
    headers = signed()
    check(headers, nonces=SqliteNonceStore(path, lambda: NOW))
    with pytest.raises(AuthError, match="replayed"):
        check(headers, nonces=SqliteNonceStore(path, lambda: NOW))  # a restarted agent


def test_credentials_open_only_with_the_renters_key() -> None:
    who = check(signed())
    box = encrypt_credentials(who.public_key, {"ssh": {"port": 2222}})  # type: ignore[attr-defined]
    assert decrypt_credentials(bytes(ALICE.key), box) == {"ssh": {"port": 2222}}
    with pytest.raises(AuthError):
        decrypt_credentials(bytes(MALLORY.key), box)
    with pytest.raises(AuthError):
        decrypt_credentials(bytes(ALICE.key), box[:-2] + ("00" if box[-2:] != "00" else "11"))
