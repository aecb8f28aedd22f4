"""Flood gossip with validation and de-duplication.

A message is identified by blake2b(topic || payload). The first copy a node sees is checked by
the topic's validator: ACCEPT relays it to every other peer and delivers it locally, IGNORE
drops it, REJECT drops it and penalizes the peer that sent it. Later copies are dropped
unseen, so each node delivers a message at most once and nothing bounces back and forth.
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from powerverse.p2p.address import short_id
from powerverse.p2p.messages import MAX_KIND, Gossip

__all__ = [
    "Deliver",
    "GossipMessage",
    "GossipRouter",
    "SeenCache",
    "Validator",
    "Verdict",
    "message_id",
]

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    """A validator's decision about a gossip message."""

    ACCEPT = "accept"
    IGNORE = "ignore"
    REJECT = "reject"


@dataclass(frozen=True)
class GossipMessage:
    """A gossip message as subscribers see it; `source` is the peer that sent us this copy."""

    topic: int
    payload: bytes
    message_id: bytes
    source: bytes


Validator = Callable[[GossipMessage], Verdict | Awaitable[Verdict]]
Deliver = Callable[[GossipMessage], Awaitable[None] | None]
Broadcast = Callable[[Gossip, bytes | None], int]
Penalize = Callable[[bytes, float, str], None]


def message_id(topic: int, payload: bytes) -> bytes:
    """The 32-byte id of a gossip message: blake2b(topic as 2 bytes || payload)."""
    return hashlib.blake2b(topic.to_bytes(2, "big") + payload, digest_size=32).digest()


def check_topic(topic: int) -> int:
    """Return topic if it is a 16-bit unsigned integer, else raise ValueError."""
    if not isinstance(topic, int) or not 0 <= topic <= MAX_KIND:
        raise ValueError(f"topic must be an integer in 0..{MAX_KIND}, got {topic!r}")
    return topic


class SeenCache:
    """Message ids seen recently: at most `capacity` of them, each kept for `ttl` seconds."""

    def __init__(self, capacity: int, ttl: float, clock: Callable[[], float]) -> None:
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, mid: object) -> bool:
        self._expire(self._clock())
        return mid in self._seen

    def add(self, mid: bytes) -> bool:
        """Record mid; True if it was not seen within the window."""
        now = self._clock()
        self._expire(now)
        if mid in self._seen:
            return False
        self._seen[mid] = now
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True

    def discard(self, mid: bytes) -> None:
        """Forget mid, so that another copy of the message is considered again."""
        self._seen.pop(mid, None)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest, added = next(iter(self._seen.items()))
            if now - added < self._ttl:
                return
            del self._seen[oldest]


@dataclass(frozen=True)
class _Subscription:
    validate: Validator
    deliver: Deliver


@dataclass
class GossipStats:
    """Counters of gossip traffic at this node."""

    published: int = 0
    received: int = 0
    duplicates: int = 0
    unsubscribed: int = 0
    accepted: int = 0
    ignored: int = 0
    rejected: int = 0
    relayed: int = 0


class GossipRouter:
    """Subscriptions, the seen-cache and the validate/relay/deliver step; sockets are injected."""

    def __init__(
        self, *, seen: SeenCache, broadcast: Broadcast, penalize: Penalize, reject_penalty: float
    ) -> None:
        self._seen = seen
        self._broadcast = broadcast
        self._penalize = penalize
        self._reject_penalty = reject_penalty
        self._subscriptions: dict[int, _Subscription] = {}
        self.stats = GossipStats()

    def subscribe(self, topic: int, validate: Validator, deliver: Deliver) -> None:
        """Handle topic with validate and deliver (one subscriber per topic)."""
        check_topic(topic)
        if topic in self._subscriptions:
            raise ValueError(f"topic {topic} already has a subscriber")
        self._subscriptions[topic] = _Subscription(validate, deliver)

    def unsubscribe(self, topic: int) -> None:
        """Stop handling topic; its messages are then dropped and not relayed."""
        self._subscriptions.pop(topic, None)

    def publish(self, topic: int, payload: bytes) -> bytes:
        """Send a message of ours to every peer (not delivered locally); return its id."""
        check_topic(topic)
        mid = message_id(topic, payload)
        self._seen.add(mid)
        self.stats.published += 1
        self._broadcast(Gossip(topic, bytes(payload)), None)
        return mid

    def admit(self, source: bytes, gossip: Gossip) -> GossipMessage | None:
        """The message to validate if this copy is the first one seen on a subscribed topic."""
        self.stats.received += 1
        mid = message_id(gossip.topic, gossip.payload)
        if not self._seen.add(mid):
            self.stats.duplicates += 1
            return None
        if gossip.topic not in self._subscriptions:
            self.stats.unsubscribed += 1
            return None
        return GossipMessage(gossip.topic, gossip.payload, mid, source)

    def abandon(self, message: GossipMessage) -> None:
        """A message admitted but never processed (its peer left, or its queue was full):
        forget it, so a copy from another peer is validated instead of dropped as seen."""
        self._seen.discard(message.message_id)

    async def process(self, message: GossipMessage) -> Verdict:
        """Validate, then relay and deliver or penalize; return the verdict."""
        sub = self._subscriptions.get(message.topic)
        if sub is None:
            return Verdict.IGNORE
        verdict = await self._validate(sub, message)
        if verdict is Verdict.ACCEPT:
            self.stats.accepted += 1
            self.stats.relayed += self._broadcast(
                Gossip(message.topic, message.payload), message.source
            )
            await self._deliver(sub, message)
        elif verdict is Verdict.REJECT:
            self.stats.rejected += 1
            self._penalize(
                message.source, self._reject_penalty, f"rejected gossip on topic {message.topic}"
            )
        else:
            self.stats.ignored += 1
        return verdict

    async def _validate(self, sub: _Subscription, message: GossipMessage) -> Verdict:
        try:
            result = sub.validate(message)
            verdict = await result if inspect.isawaitable(result) else result
        except Exception:
            log.exception(
                "gossip validator for topic %d failed; ignoring the message", message.topic
            )
            return Verdict.IGNORE
        if not isinstance(verdict, Verdict):
            log.error("gossip validator for topic %d returned %r", message.topic, verdict)
            return Verdict.IGNORE
        return verdict

    async def _deliver(self, sub: _Subscription, message: GossipMessage) -> None:
        try:
            result = sub.deliver(message)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception(
                "gossip subscriber for topic %d failed on a message from %s",
                message.topic,
                short_id(message.source),
            )
