"""Gossip routing without sockets: de-duplication, verdicts, relay and penalties."""

from __future__ import annotations

import pytest

from powerverse.p2p import GossipMessage, Verdict, message_id
from powerverse.p2p.gossip import GossipRouter, SeenCache
from powerverse.p2p.messages import Gossip
from tests.p2p.conftest import FakeClock

SRC = b"s" * 32


class Net:
    def __init__(self) -> None:
        self.sent: list[tuple[Gossip, bytes | None]] = []
        self.penalties: list[tuple[bytes, float, str]] = []

    def broadcast(self, gossip: Gossip, exclude: bytes | None) -> int:
        self.sent.append((gossip, exclude))
        return 3

    def penalize(self, peer: bytes, amount: float, reason: str) -> None:
        self.penalties.append((peer, amount, reason))


def router(clock: FakeClock | None = None) -> tuple[GossipRouter, Net]:
    net = Net()
    seen = SeenCache(capacity=100, ttl=60, clock=clock or FakeClock())
    return (
        GossipRouter(seen=seen, broadcast=net.broadcast, penalize=net.penalize, reject_penalty=7),
        net,
    )


def test_message_id_covers_topic_and_payload() -> None:
    assert message_id(1, b"x") == message_id(1, b"x")
    assert message_id(1, b"x") != message_id(2, b"x")
    assert message_id(1, b"x") != message_id(1, b"y")
    assert len(message_id(0, b"")) == 32


def test_seen_cache_is_bounded_in_size_and_time() -> None:
    clock = FakeClock()
    cache = SeenCache(capacity=3, ttl=10, clock=clock)
    assert cache.add(b"1") and not cache.add(b"1")
    cache.add(b"2")
    cache.add(b"3")
    cache.add(b"4")
    assert len(cache) == 3 and b"1" not in cache
    clock.advance(10)
    assert b"4" not in cache  # expired
    assert len(cache) == 0
    assert cache.add(b"4")


async def test_accept_relays_to_others_then_delivers_once() -> None:
    r, net = router()
    got: list[GossipMessage] = []
    r.subscribe(5, lambda m: Verdict.ACCEPT, got.append)
    message = r.admit(SRC, Gossip(5, b"block"))
    assert message is not None and message.source == SRC
    assert r.admit(b"o" * 32, Gossip(5, b"block")) is None  # second copy
    assert await r.process(message) is Verdict.ACCEPT
    assert got == [message]
    assert net.sent == [(Gossip(5, b"block"), SRC)]
    assert r.stats.duplicates == 1 and r.stats.accepted == 1 and r.stats.relayed == 3


async def test_reject_penalizes_the_sender_and_does_not_relay() -> None:
    r, net = router()
    got: list[GossipMessage] = []
    r.subscribe(5, lambda m: Verdict.REJECT, got.append)
    message = r.admit(SRC, Gossip(5, b"forged"))
    assert message is not None
    assert await r.process(message) is Verdict.REJECT
    assert got == [] and net.sent == []
    assert net.penalties == [(SRC, 7, "rejected gossip on topic 5")]


async def test_ignore_and_failing_validators_drop_quietly() -> None:
    r, net = router()

    def broken(_: GossipMessage) -> Verdict:
        raise RuntimeError("bug")

    r.subscribe(1, lambda m: Verdict.IGNORE, lambda m: None)
    r.subscribe(2, broken, lambda m: None)
    r.subscribe(3, lambda m: "yes", lambda m: None)  # type: ignore[arg-type,return-value]
    for topic in (1, 2, 3):
        message = r.admit(SRC, Gossip(topic, b"x"))
        assert message is not None
        assert await r.process(message) is Verdict.IGNORE
    assert net.sent == [] and net.penalties == []


async def test_async_validators_and_subscribers() -> None:
    r, _ = router()
    got: list[bytes] = []

    async def validate(m: GossipMessage) -> Verdict:
        return Verdict.ACCEPT if m.payload.startswith(b"ok") else Verdict.REJECT

    async def deliver(m: GossipMessage) -> None:
        got.append(m.payload)

    r.subscribe(9, validate, deliver)
    for payload in (b"ok1", b"bad", b"ok2"):
        message = r.admit(SRC, Gossip(9, payload))
        assert message is not None
        await r.process(message)
    assert got == [b"ok1", b"ok2"]


def test_unsubscribed_topics_are_dropped_and_publish_marks_seen() -> None:
    r, net = router()
    assert r.admit(SRC, Gossip(4, b"x")) is None
    assert r.stats.unsubscribed == 1
    r.subscribe(4, lambda m: Verdict.ACCEPT, lambda m: None)
    mid = r.publish(4, b"mine")
    assert mid == message_id(4, b"mine")
    assert net.sent == [(Gossip(4, b"mine"), None)]
    assert r.admit(SRC, Gossip(4, b"mine")) is None  # our own message comes back: dropped


def test_topic_checks() -> None:
    r, _ = router()
    with pytest.raises(ValueError):
        r.subscribe(70000, lambda m: Verdict.ACCEPT, lambda m: None)
    with pytest.raises(ValueError):
        r.publish(-1, b"")
    r.subscribe(1, lambda m: Verdict.ACCEPT, lambda m: None)
    with pytest.raises(ValueError):
        r.subscribe(1, lambda m: Verdict.ACCEPT, lambda m: None)
    r.unsubscribe(1)
    r.subscribe(1, lambda m: Verdict.ACCEPT, lambda m: None)


def test_an_abandoned_message_can_be_admitted_again() -> None:
    r, _ = router()
    r.subscribe(2, lambda m: Verdict.ACCEPT, lambda m: None)
    message = r.admit(SRC, Gossip(2, b"vote"))
    assert message is not None
    assert r.admit(b"o" * 32, Gossip(2, b"vote")) is None
    r.abandon(message)  # e.g. SRC disconnected before its copy was validated
    again = r.admit(b"o" * 32, Gossip(2, b"vote"))
    assert again is not None and again.source == b"o" * 32
