"""Misbehaving peers on real sockets: tampering, replay, oversized frames, garbage, floods."""

from __future__ import annotations

import pytest

from powerverse.crypto.consensus_keys import ConsensusKey
from powerverse.p2p import HandshakeRefused, Host, RefuseCode, Verdict
from powerverse.p2p.config import FRAME_HEADER_LEN
from powerverse.p2p.messages import Gossip, Ping, Pong
from tests.p2p.conftest import FakeClock, HostFactory, RawPeer, fast_config, wait_until


async def connected_raw(
    host: Host, raw_peers: list[RawPeer], key: ConsensusKey | None = None
) -> RawPeer:
    """A raw peer whose session the host has registered."""
    raw = await RawPeer.connect(host, key)
    raw_peers.append(raw)
    await wait_until(lambda: host.is_connected(raw.peer_id), "the raw peer's session")
    return raw


async def test_a_tampered_ciphertext_byte_closes_the_session(
    make_host: HostFactory, raw_peers: list[RawPeer]
) -> None:
    a = await make_host()
    raw = await connected_raw(a, raw_peers)
    frame = bytearray(raw.frame(Gossip(1, b"block")))
    frame[FRAME_HEADER_LEN + 5] ^= 0x80
    raw.send_raw(bytes(frame))
    reason = await raw.closed_by_remote()
    assert reason is not None and "failed authentication" in reason
    assert not a.is_connected(raw.peer_id)
    assert a.is_banned(raw.peer_id)


async def test_a_replayed_frame_closes_the_session(
    make_host: HostFactory, raw_peers: list[RawPeer]
) -> None:
    a = await make_host()
    raw = await connected_raw(a, raw_peers)
    frame = raw.send(Ping(7))
    assert await raw.expect(Pong) == Pong(7)
    raw.send_raw(frame)
    reason = await raw.closed_by_remote()
    assert reason is not None and "failed authentication" in reason
    assert not a.is_connected(raw.peer_id)


async def test_reordered_frames_close_the_session(
    make_host: HostFactory, raw_peers: list[RawPeer]
) -> None:
    a = await make_host()
    raw = await connected_raw(a, raw_peers)
    first, second = raw.frame(Ping(1)), raw.frame(Ping(2))
    raw.send_raw(second + first)
    await raw.closed_by_remote()
    assert not a.is_connected(raw.peer_id)


async def test_an_unparsable_message_bans_the_peer(
    make_host: HostFactory, raw_peers: list[RawPeer]
) -> None:
    a = await make_host()
    raw = await connected_raw(a, raw_peers)
    raw.send_raw(raw.session.cipher.seal(b"\xee not a message"))
    reason = await raw.closed_by_remote()
    assert reason is not None and "unknown message type" in reason
    assert a.is_banned(raw.peer_id)


async def test_an_oversized_frame_bans_until_the_ban_expires(
    make_host: HostFactory, raw_peers: list[RawPeer]
) -> None:
    clock = FakeClock()
    a = await make_host(config=fast_config(max_frame_size=4096, ban_duration=300), clock=clock)
    key = ConsensusKey.generate()
    raw = await connected_raw(a, raw_peers, key)
    # Only a length prefix: the host must refuse it without waiting for a body.
    raw.send_raw((10_000_000).to_bytes(4, "big"))
    reason = await raw.closed_by_remote()
    assert reason is not None and "exceeds the 4096-byte limit" in reason
    assert not a.is_connected(key.public_key)
    [ban] = a.banned()
    assert ban.peer_id == key.public_key and ban.until == clock() + 300

    with pytest.raises(HandshakeRefused) as info:
        raw_peers.append(await RawPeer.connect(a, key))
    assert info.value.code is RefuseCode.BANNED and info.value.by_remote
    assert "banned" in info.value.reason

    clock.advance(299)
    with pytest.raises(HandshakeRefused):
        raw_peers.append(await RawPeer.connect(a, key))
    clock.advance(1)
    again = await connected_raw(a, raw_peers, key)
    again.send(Ping(3))
    assert await again.expect(Pong) == Pong(3)
    assert a.banned() == []


async def test_a_banned_peer_is_not_dialed(make_host: HostFactory) -> None:
    a, b = await make_host(), await make_host()
    a.ban(b.peer_id, "testing")
    address = b.listen_address
    assert address is not None
    with pytest.raises(Exception, match="banned"):
        await a.connect(address)
    with pytest.raises(HandshakeRefused) as info:
        await b.connect(a.listen_address)  # type: ignore[arg-type]
    assert info.value.code is RefuseCode.BANNED
    a.unban(b.peer_id)
    assert await b.connect(a.listen_address) == a.peer_id  # type: ignore[arg-type]


async def test_rate_limit_drops_a_burst_and_bans_a_sustained_flood(
    make_host: HostFactory, raw_peers: list[RawPeer]
) -> None:
    clock = FakeClock()
    # The clock only moves when the test says so; periodic traffic (peer exchange) is slowed
    # so the honest peer stays far below the limit.
    config = fast_config(
        pex_interval=1000.0,
        rate_messages_per_s=10.0,
        rate_messages_burst=20.0,
        rate_limit_penalty=2.0,
        ban_threshold=-100.0,
        score_recovery_per_s=0.0,
    )
    a = await make_host(config=config, clock=clock)
    got: list[bytes] = []
    a.subscribe(1, lambda m: Verdict.ACCEPT, lambda m: got.append(m.payload))
    honest = await make_host(config=fast_config(pex_interval=1000.0))
    await honest.connect(a.listen_address)  # type: ignore[arg-type]

    flooder = await connected_raw(a, raw_peers)
    for i in range(30):
        flooder.send(Gossip(1, b"flood %d" % i))
    await wait_until(
        lambda: getattr(a.peer(flooder.peer_id), "messages_in", 0) == 30, "the flood to be read"
    )
    clock.advance(10.0)  # refill, so the ping below passes; frames are handled in order
    flooder.send(Ping(1))
    await flooder.expect(Pong)
    info = a.peer(flooder.peer_id)
    assert info is not None and info.dropped == 10
    assert info.score == -20.0  # penalized, not yet banned
    await wait_until(lambda: len(got) == 20, "the 20 admitted messages")
    assert got == [b"flood %d" % i for i in range(20)]

    for i in range(200):  # sustained: far beyond the burst
        flooder.send(Gossip(1, b"more %d" % i))
    reason = await flooder.closed_by_remote()
    assert reason is not None and "rate limit exceeded" in reason
    assert a.is_banned(flooder.peer_id)

    # The honest peer is unaffected.
    assert a.is_connected(honest.peer_id)
    honest.publish(1, b"still here")
    await wait_until(lambda: b"still here" in got, "the honest peer's message")
    honest_info = a.peer(honest.peer_id)
    assert honest_info is not None and honest_info.score == 0.0
