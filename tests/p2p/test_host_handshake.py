"""Hosts on real sockets: who may connect, and what a refused side learns."""

from __future__ import annotations

import asyncio
import functools
import os

import pytest

from powerverse.crypto.consensus_keys import ConsensusKey
from powerverse.p2p import (
    DialFailed,
    Direction,
    HandshakeRefused,
    Host,
    HostNotRunning,
    PeerAddress,
    RefuseCode,
)
from powerverse.p2p.connection import close_writer
from powerverse.p2p.messages import Ping, Pong
from tests.p2p.conftest import (
    CHAIN_ID,
    GENESIS,
    HostFactory,
    RawPeer,
    fast_config,
    wait_until,
)


def address(host: Host) -> PeerAddress:
    found = host.listen_address
    assert found is not None
    return found


async def test_handshake_makes_both_identities_known(make_host: HostFactory) -> None:
    a, b = await make_host(), await make_host()
    connected: list[bytes] = []
    a.on_connect(connected.append)
    assert await b.connect(str(address(a))) == a.peer_id
    await wait_until(lambda: a.is_connected(b.peer_id), "a to see b")
    seen_by_a, seen_by_b = a.peer(b.peer_id), b.peer(a.peer_id)
    assert seen_by_a is not None and seen_by_b is not None
    assert seen_by_a.direction is Direction.INBOUND
    assert seen_by_b.direction is Direction.OUTBOUND
    assert seen_by_b.address == address(a)
    assert seen_by_a.address == address(b)  # learned from b's hello: where b listens
    assert seen_by_a.remote[0] == "127.0.0.1"
    assert connected == [b.peer_id]
    assert a.handshake_failures() == [] and b.handshake_failures() == []
    assert await b.connect(address(a)) == a.peer_id  # already connected: no second session
    assert len(a.peers()) == len(b.peers()) == 1


@pytest.mark.parametrize(
    ("overrides", "code", "words"),
    [
        ({"chain_id": CHAIN_ID + 1}, RefuseCode.CHAIN_ID, "chain id mismatch"),
        ({"genesis_hash": b"\x01" * 32}, RefuseCode.GENESIS, "genesis hash mismatch"),
    ],
)
async def test_wrong_network_is_refused_with_the_reason_on_both_sides(
    make_host: HostFactory, overrides: dict[str, object], code: RefuseCode, words: str
) -> None:
    a = await make_host()
    stranger = await make_host(**overrides)
    with pytest.raises(HandshakeRefused) as info:
        await stranger.connect(address(a))
    assert info.value.code is code and info.value.by_remote
    assert words in str(info.value)
    await wait_until(lambda: len(a.handshake_failures()) == 1, "a to record the refusal")
    [failure] = a.handshake_failures()
    assert failure.code is code and not failure.by_remote and words in failure.reason
    assert failure.direction is Direction.INBOUND
    [dialer_side] = stranger.handshake_failures()
    assert dialer_side.by_remote and dialer_side.peer_id == a.peer_id
    assert a.peers() == [] and stranger.peers() == []


async def test_an_address_with_the_wrong_public_key_is_refused(make_host: HostFactory) -> None:
    a, b = await make_host(), await make_host()
    wrong = PeerAddress(peer_id=os.urandom(32), host="127.0.0.1", port=address(a).port)
    with pytest.raises(HandshakeRefused) as info:
        await b.connect(wrong)
    assert info.value.code is RefuseCode.WRONG_IDENTITY and not info.value.by_remote
    await wait_until(lambda: len(a.handshake_failures()) == 1, "a to hear why")
    assert a.handshake_failures()[0].code is RefuseCode.WRONG_IDENTITY
    assert a.handshake_failures()[0].by_remote
    assert a.peers() == [] and b.peers() == []


async def test_a_bootnode_with_the_wrong_public_key_is_never_connected(
    make_host: HostFactory,
) -> None:
    a = await make_host()
    wrong = PeerAddress(peer_id=os.urandom(32), host="127.0.0.1", port=address(a).port)
    b = await make_host(bootnodes=[str(wrong)])
    await wait_until(lambda: len(b.handshake_failures()) >= 2, "b to retry the bootnode")
    assert all(f.code is RefuseCode.WRONG_IDENTITY for f in b.handshake_failures())
    assert a.peers() == [] and b.peers() == []


async def test_self_connections_are_refused(make_host: HostFactory) -> None:
    key = ConsensusKey.generate()
    a = await make_host(key)
    with pytest.raises(HandshakeRefused) as info:
        await a.connect(address(a))
    assert info.value.code is RefuseCode.SELF
    with pytest.raises(HandshakeRefused) as info:
        await RawPeer.connect(a, key)  # someone else's process using our key
    assert info.value.code is RefuseCode.SELF and info.value.by_remote


async def test_a_second_connection_from_the_same_peer_is_refused(
    make_host: HostFactory, raw_peers: list[RawPeer]
) -> None:
    a = await make_host()
    key = ConsensusKey.generate()
    first = await RawPeer.connect(a, key)
    raw_peers.append(first)
    await wait_until(lambda: a.is_connected(key.public_key), "first session")
    with pytest.raises(HandshakeRefused) as info:
        raw_peers.append(await RawPeer.connect(a, key))
    assert info.value.code is RefuseCode.DUPLICATE and info.value.by_remote
    first.send(Ping(42))
    assert await first.expect(Pong) == Pong(42)  # the first session is untouched
    assert len(a.peers()) == 1


def _both_connected(a: Host, b: Host) -> bool:
    return a.is_connected(b.peer_id) and b.is_connected(a.peer_id)


async def test_simultaneous_dials_leave_exactly_one_session(make_host: HostFactory) -> None:
    for _ in range(5):
        a, b = await make_host(), await make_host()
        await asyncio.gather(a.connect(address(b)), b.connect(address(a)), return_exceptions=True)
        await wait_until(functools.partial(_both_connected, a, b), "one session")
        seen_by_a, seen_by_b = a.peer(b.peer_id), b.peer(a.peer_id)
        assert seen_by_a is not None and seen_by_b is not None
        assert seen_by_a.direction is not seen_by_b.direction
        assert len(a.peers()) == len(b.peers()) == 1
        await a.stop()
        await b.stop()


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\xff\xff\xff\xff",
        b"\x00\x00\x00\x05hello",
        b"\x00\x00\x00\x00",
        bytes(range(256)) * 4,
    ],
)
async def test_garbage_to_the_listener_is_closed_and_the_host_stays_healthy(
    make_host: HostFactory, garbage: bytes
) -> None:
    a = await make_host()
    reader, writer = await asyncio.open_connection("127.0.0.1", address(a).port)
    try:
        writer.write(garbage)
        async with asyncio.timeout(30):
            while await reader.read(4096):
                pass  # a refusal may come first; then EOF
    finally:
        await close_writer(writer, 1.0)
    assert a.peers() == []
    b = await make_host()
    assert await b.connect(address(a)) == a.peer_id


async def test_a_silent_connection_is_closed_after_the_handshake_timeout(
    make_host: HostFactory,
) -> None:
    a = await make_host(config=fast_config(handshake_timeout=0.2))
    reader, writer = await asyncio.open_connection("127.0.0.1", address(a).port)
    try:
        async with asyncio.timeout(30):
            assert await reader.read(4096) == b""
    finally:
        await close_writer(writer, 1.0)
    await wait_until(lambda: len(a.handshake_failures()) == 1, "the timeout to be recorded")
    assert "did not finish" in a.handshake_failures()[0].reason


async def test_dialing_nothing_and_dialing_while_stopped(make_host: HostFactory) -> None:
    a = await make_host()
    b = await make_host()
    port = address(b).port
    await b.stop()
    with pytest.raises(DialFailed):
        await a.connect(PeerAddress(peer_id=b.peer_id, host="127.0.0.1", port=port))
    with pytest.raises(HostNotRunning):
        await b.connect(address(a))


async def test_host_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        Host(os.urandom(32), chain_id=-1, genesis_hash=GENESIS)
    with pytest.raises(ValueError):
        Host(os.urandom(32), chain_id=1, genesis_hash=b"short")
    with pytest.raises(ValueError):
        Host(os.urandom(32), chain_id=1, genesis_hash=GENESIS, advertise_host="a b")
    with pytest.raises(Exception, match="32 bytes"):
        Host(b"short seed", chain_id=1, genesis_hash=GENESIS)
    host = Host(ConsensusKey.generate(), chain_id=1, genesis_hash=GENESIS, listen_port=None)
    await host.start()
    assert host.listen_address is None and host.running
    await host.stop()
    await host.stop()
    assert not host.running


async def test_a_full_host_refuses_more_peers(make_host: HostFactory) -> None:
    a = await make_host(config=fast_config(max_peers=1, target_peers=1))
    b, c = await make_host(), await make_host()
    await b.connect(address(a))
    with pytest.raises(HandshakeRefused) as info:
        await c.connect(address(a))
    assert info.value.code is RefuseCode.TOO_MANY_PEERS and info.value.by_remote


async def test_pings_keep_sessions_alive_and_silent_peers_are_dropped(
    make_host: HostFactory, raw_peers: list[RawPeer]
) -> None:
    config = fast_config(ping_interval=0.05, idle_timeout=3.0)
    a, b = await make_host(config=config), await make_host(config=config)
    await b.connect(address(a))
    silent = await RawPeer.connect(await make_host(config=fast_config(idle_timeout=0.3)))
    raw_peers.append(silent)
    assert await silent.closed_by_remote() == "idle timeout"  # it never answers pings
    await asyncio.sleep(1.0)
    info = a.peer(b.peer_id)
    assert info is not None and info.messages_in >= 5  # pongs and pings from b
