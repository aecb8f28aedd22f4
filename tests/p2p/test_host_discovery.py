"""Bootnodes, peer exchange, reconnection, and clean shutdown."""

from __future__ import annotations

import asyncio
import socket

from powerverse.crypto.consensus_keys import ConsensusKey
from powerverse.p2p import Direction, Host, PeerAddress, PeerDisconnected
from tests.p2p.conftest import (
    CHAIN_ID,
    GENESIS,
    HostFactory,
    RawPeer,
    fast_config,
    wait_until,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_peer_exchange_finds_a_peer_known_only_to_a_neighbour(
    make_host: HostFactory,
) -> None:
    a = await make_host()
    b = await make_host(bootnodes=[str(a.listen_address)])
    await wait_until(lambda: b.is_connected(a.peer_id), "b to reach its bootnode a")
    c = await make_host(bootnodes=[str(b.listen_address)])  # c knows only b
    await wait_until(lambda: c.is_connected(a.peer_id), "c to learn about a and connect")
    assert a.listen_address in c.known_addresses()
    seen_by_c = c.peer(a.peer_id)
    assert seen_by_c is not None and seen_by_c.direction is Direction.OUTBOUND
    assert a.is_connected(c.peer_id)


async def test_hosts_stop_dialing_at_the_target_peer_count(make_host: HostFactory) -> None:
    hub = await make_host()
    # Spokes are content with their one bootnode session, so they never dial the late host.
    spokes = [
        await make_host(config=fast_config(target_peers=1), bootnodes=[str(hub.listen_address)])
        for _ in range(4)
    ]
    await wait_until(lambda: len(hub.peers()) == 4, "every spoke at the hub")
    late = await make_host(config=fast_config(target_peers=2), bootnodes=[str(hub.listen_address)])
    await wait_until(lambda: len(late.peers()) >= 2, "the late host to find peers")
    await wait_until(lambda: len(late.known_addresses()) >= 5, "the late host to learn addresses")
    await asyncio.sleep(0.5)  # many maintenance rounds; it must not dial beyond its target
    assert len(late.peers()) == 2
    assert all(p.direction is Direction.OUTBOUND for p in late.peers())
    assert all(len(s.peers()) <= 2 for s in spokes)


async def test_a_restarted_bootnode_is_found_again(make_host: HostFactory) -> None:
    key = ConsensusKey.generate()
    port = free_port()
    a = await make_host(key, listen_port=port)
    b = await make_host(bootnodes=[str(a.listen_address)])
    events: list[str] = []
    b.on_connect(lambda p: events.append("up"))
    b.on_disconnect(lambda p: events.append("down"))
    await wait_until(lambda: b.is_connected(key.public_key), "the first session")
    await a.stop()
    await wait_until(lambda: not b.is_connected(key.public_key), "b to notice")
    await asyncio.sleep(0.3)  # b retries against a closed port meanwhile
    restarted = await make_host(key, listen_port=port)
    await wait_until(lambda: b.is_connected(key.public_key), "b to reconnect")
    await wait_until(lambda: restarted.is_connected(b.peer_id), "the restarted node to see b")
    assert events == ["up", "down", "up"]


async def test_a_bootnode_that_starts_late_is_dialed_when_it_appears(
    make_host: HostFactory,
) -> None:
    key = ConsensusKey.generate()
    port = free_port()
    late_address = PeerAddress(peer_id=key.public_key, host="127.0.0.1", port=port)
    b = await make_host(bootnodes=[late_address])
    await asyncio.sleep(0.3)
    assert b.peers() == []
    await make_host(key, listen_port=port)
    await wait_until(lambda: b.is_connected(key.public_key), "b to reach the late bootnode")


async def test_a_peer_that_dialed_us_is_redialed_after_it_restarts(
    make_host: HostFactory,
) -> None:
    a = await make_host()
    key = ConsensusKey.generate()
    port = free_port()
    b = await make_host(key, listen_port=port, bootnodes=[str(a.listen_address)])
    await wait_until(lambda: a.is_connected(key.public_key), "b's session at a")
    await b.stop()
    await wait_until(lambda: not a.is_connected(key.public_key), "a to notice")
    await make_host(key, listen_port=port)  # now without bootnodes: a must dial it
    await wait_until(lambda: a.is_connected(key.public_key), "a to redial b")
    info = a.peer(key.public_key)
    assert info is not None and info.direction is Direction.OUTBOUND


async def test_stop_closes_everything_even_mid_handshake_and_mid_request() -> None:
    config = fast_config()
    a = Host(ConsensusKey.generate(), chain_id=CHAIN_ID, genesis_hash=GENESIS, config=config)
    b = Host(ConsensusKey.generate(), chain_id=CHAIN_ID, genesis_hash=GENESIS, config=config)
    async with a, b:
        await b.connect(a.listen_address)  # type: ignore[arg-type]
        started = asyncio.Event()

        async def never(peer: bytes, payload: bytes) -> bytes:
            started.set()
            await asyncio.Event().wait()
            return b""

        a.on_request(1, never)
        pending = asyncio.create_task(b.request(a.peer_id, 1, b"", timeout=60))
        await started.wait()
        address = a.listen_address
        assert address is not None
        silent_reader, silent_writer = await asyncio.open_connection(address.host, address.port)
        raw = await RawPeer.connect(a)
        try:
            await a.stop()
            assert a.peers() == [] and not a.running
            await wait_until(lambda: pending.done(), "the pending request to fail")
            assert isinstance(pending.exception(), PeerDisconnected)
            assert await silent_reader.read() == b""
            assert await raw.closed_by_remote() == "shutting down"
        finally:
            silent_writer.close()
            await silent_writer.wait_closed()
            await raw.close()
    assert not b.running
