"""Request/response over the session."""

from __future__ import annotations

import asyncio

import pytest

from powerverse.p2p import (
    Host,
    PayloadTooLarge,
    PeerDisconnected,
    PeerNotConnected,
    RemoteError,
    RequestBusy,
    RequestError,
    RequestFailed,
    RequestTimeout,
    UnknownRequestKind,
)
from tests.p2p.conftest import HostFactory, fast_config, wait_until

GET_BLOCK = 10


async def pair(make_host: HostFactory, **a_config: object) -> tuple[Host, Host]:
    a = await make_host(config=fast_config(**a_config))
    b = await make_host()
    await b.connect(a.listen_address)  # type: ignore[arg-type]
    await wait_until(lambda: a.is_connected(b.peer_id), "the session")
    return a, b


async def test_requests_are_answered_in_both_directions(make_host: HostFactory) -> None:
    a, b = await pair(make_host)
    seen: list[bytes] = []

    async def get_block(peer: bytes, payload: bytes) -> bytes:
        seen.append(peer)
        return b"block " + payload

    a.on_request(GET_BLOCK, get_block)
    b.on_request(GET_BLOCK, get_block)
    answers = await asyncio.gather(*(b.request(a.peer_id, GET_BLOCK, b"%d" % i) for i in range(20)))
    assert answers == [b"block %d" % i for i in range(20)]
    assert await a.request(b.peer_id, GET_BLOCK, b"") == b"block "
    assert seen.count(b.peer_id) == 20 and seen.count(a.peer_id) == 1
    big = bytes(1_000_000)
    a.remove_request_handler(GET_BLOCK)

    async def echo(peer: bytes, payload: bytes) -> bytes:
        return payload

    a.on_request(GET_BLOCK, echo)
    assert await b.request(a.peer_id, GET_BLOCK, big) == big


async def test_unknown_kind_is_an_error_and_the_session_survives(make_host: HostFactory) -> None:
    a, b = await pair(make_host)
    with pytest.raises(UnknownRequestKind, match="no handler for request kind 99"):
        await b.request(a.peer_id, 99, b"")

    async def ok(peer: bytes, payload: bytes) -> bytes:
        return b"ok"

    a.on_request(1, ok)
    assert await b.request(a.peer_id, 1, b"") == b"ok"
    with pytest.raises(ValueError):
        a.on_request(1, ok)


async def test_a_slow_handler_times_out_cleanly(make_host: HostFactory) -> None:
    a, b = await pair(make_host)
    release = asyncio.Event()

    async def slow(peer: bytes, payload: bytes) -> bytes:
        if payload == b"slow":
            await release.wait()
        return payload

    a.on_request(GET_BLOCK, slow)
    with pytest.raises(RequestTimeout):
        await b.request(a.peer_id, GET_BLOCK, b"slow", timeout=0.2)
    assert await b.request(a.peer_id, GET_BLOCK, b"fast") == b"fast"
    release.set()  # the late answer to the timed-out request is ignored
    assert await b.request(a.peer_id, GET_BLOCK, b"again") == b"again"
    assert b.is_connected(a.peer_id)


async def test_handler_failures_come_back_as_remote_errors(make_host: HostFactory) -> None:
    a, b = await pair(make_host)

    async def failing(peer: bytes, payload: bytes) -> bytes:
        if payload == b"missing":
            raise RequestFailed("no such block")
        raise KeyError("internal detail")

    a.on_request(GET_BLOCK, failing)
    with pytest.raises(RemoteError, match="no such block"):
        await b.request(a.peer_id, GET_BLOCK, b"missing")
    with pytest.raises(RemoteError, match="internal error") as info:
        await b.request(a.peer_id, GET_BLOCK, b"crash")
    assert "internal detail" not in str(info.value)


async def test_requests_to_absent_or_departing_peers(make_host: HostFactory) -> None:
    a, b = await pair(make_host)
    with pytest.raises(PeerNotConnected):
        await b.request(b"\x01" * 32, GET_BLOCK, b"")
    started = asyncio.Event()

    async def never(peer: bytes, payload: bytes) -> bytes:
        started.set()
        await asyncio.Event().wait()
        return b""

    a.on_request(GET_BLOCK, never)
    pending = asyncio.create_task(b.request(a.peer_id, GET_BLOCK, b"", timeout=60))
    await started.wait()
    await a.disconnect(b.peer_id, "going away")
    with pytest.raises(PeerDisconnected, match="going away"):
        await pending
    with pytest.raises(PeerNotConnected):
        await b.request(a.peer_id, GET_BLOCK, b"")


async def test_concurrent_requests_per_peer_are_bounded(make_host: HostFactory) -> None:
    a = await make_host(config=fast_config(max_inbound_requests=1))
    b = await make_host()  # sends up to 16 at once; a serves one at a time
    await b.connect(a.listen_address)  # type: ignore[arg-type]
    release = asyncio.Event()
    running = 0
    most = 0

    async def handler(peer: bytes, payload: bytes) -> bytes:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        return payload

    a.on_request(GET_BLOCK, handler)
    first = asyncio.create_task(b.request(a.peer_id, GET_BLOCK, b"first"))
    await wait_until(lambda: running == 1, "the first request to be served")
    with pytest.raises(RequestBusy):
        await b.request(a.peer_id, GET_BLOCK, b"second")
    release.set()
    assert await first == b"first"
    assert most == 1


async def test_the_requester_bounds_its_requests_in_flight(make_host: HostFactory) -> None:
    server = await make_host()
    client = await make_host(config=fast_config(max_outbound_requests=2))
    await client.connect(server.listen_address)  # type: ignore[arg-type]
    in_flight = 0
    peak = 0

    async def counting(peer: bytes, payload: bytes) -> bytes:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return payload

    server.on_request(GET_BLOCK, counting)
    results = await asyncio.gather(
        *(client.request(server.peer_id, GET_BLOCK, b"%d" % i) for i in range(8))
    )
    assert results == [b"%d" % i for i in range(8)]  # the others waited for a slot
    assert 1 <= peak <= 2


async def test_bad_request_arguments(make_host: HostFactory) -> None:
    a, b = await pair(make_host, max_frame_size=1024)
    with pytest.raises(ValueError):
        await b.request(a.peer_id, -1, b"")
    with pytest.raises(ValueError):
        a.on_request(1 << 16, lambda p, d: asyncio.sleep(0, b""))
    with pytest.raises(PayloadTooLarge):
        await a.request(b.peer_id, 1, bytes(a.config.max_frame_size * 2))
    assert issubclass(RequestTimeout, RequestError) and issubclass(RequestTimeout, TimeoutError)
