"""Peers we know how to reach, and when each may be dialed again.

Bootnodes stay forever and are retried with capped exponential backoff, so a bootnode that
restarts is found again. Addresses learned from peer exchange or inbound peers are dropped
after too many failed dials, and the oldest are evicted when the book is full.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from powerverse.p2p.address import PeerAddress

__all__ = ["AddressBook"]


@dataclass
class _Entry:
    address: PeerAddress
    bootnode: bool
    added: float
    failures: int = 0
    next_dial: float = 0.0
    last_connected: float | None = None


class AddressBook:
    """Known peer addresses by peer id; times are on the caller's clock (`now` arguments)."""

    def __init__(
        self,
        *,
        self_id: bytes,
        capacity: int,
        backoff_initial: float,
        backoff_max: float,
        max_failures: int,
        rng: random.Random | None = None,
    ) -> None:
        self._self_id = self_id
        self._capacity = capacity
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_failures = max_failures
        self._rng = rng or random.Random()
        self._entries: dict[bytes, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add_bootnode(self, address: PeerAddress) -> None:
        """Remember a bootnode; it is never forgotten."""
        if address.peer_id != self._self_id:
            self._entries[address.peer_id] = _Entry(address=address, bootnode=True, added=0.0)

    def learn(self, address: PeerAddress, now: float) -> bool:
        """Remember an address heard from a peer; True if it is new."""
        if address.peer_id == self._self_id or address.peer_id in self._entries:
            return False
        full = sum(not e.bootnode for e in self._entries.values()) >= self._capacity
        if full and not self._evict_one():
            return False
        self._entries[address.peer_id] = _Entry(address=address, bootnode=False, added=now)
        return True

    def _evict_one(self) -> bool:
        others = [e for e in self._entries.values() if not e.bootnode]
        if not others:
            return False
        worst = max(others, key=lambda e: (e.failures, -(e.last_connected or -1.0), -e.added))
        del self._entries[worst.address.peer_id]
        return True

    def get(self, peer_id: bytes) -> PeerAddress | None:
        """The address known for peer_id."""
        entry = self._entries.get(peer_id)
        return entry.address if entry else None

    def is_bootnode(self, peer_id: bytes) -> bool:
        """Whether peer_id was given as a bootnode."""
        entry = self._entries.get(peer_id)
        return entry is not None and entry.bootnode

    def addresses(self) -> list[PeerAddress]:
        """Every known address, bootnodes first."""
        entries = sorted(self._entries.values(), key=lambda e: not e.bootnode)
        return [e.address for e in entries]

    def due(self, now: float, skip: Callable[[bytes], bool]) -> list[tuple[PeerAddress, bool]]:
        """(address, is_bootnode) of peers whose backoff has passed, bootnodes first."""
        ready = [
            e for e in self._entries.values() if e.next_dial <= now and not skip(e.address.peer_id)
        ]
        self._rng.shuffle(ready)
        ready.sort(key=lambda e: (not e.bootnode, e.failures))
        return [(e.address, e.bootnode) for e in ready]

    def dial_started(self, peer_id: bytes, now: float) -> None:
        """Hold off other dials of peer_id while one is under way."""
        entry = self._entries.get(peer_id)
        if entry is not None:
            entry.next_dial = now + self._backoff_max

    def dial_failed(self, peer_id: bytes, now: float) -> None:
        """Back off peer_id; forget a non-bootnode after too many failures."""
        entry = self._entries.get(peer_id)
        if entry is None:
            return
        entry.failures += 1
        if not entry.bootnode and entry.failures >= self._max_failures:
            del self._entries[peer_id]
            return
        entry.next_dial = now + self._backoff(entry.failures)

    def connected(self, address: PeerAddress | None, peer_id: bytes, now: float) -> None:
        """A session with peer_id is up; reset its backoff and note where it listens."""
        entry = self._entries.get(peer_id)
        if entry is None and address is not None:
            self.learn(address, now)
            entry = self._entries.get(peer_id)
        if entry is None:
            return
        if address is not None and not entry.bootnode:
            entry.address = address
        entry.failures = 0
        entry.last_connected = now

    def disconnected(self, peer_id: bytes, now: float) -> None:
        """The session with peer_id ended; it may be dialed again after a short pause."""
        entry = self._entries.get(peer_id)
        if entry is not None:
            entry.next_dial = now + self._backoff(entry.failures + 1)

    def forget(self, peer_id: bytes) -> None:
        """Drop a non-bootnode entry."""
        entry = self._entries.get(peer_id)
        if entry is not None and not entry.bootnode:
            del self._entries[peer_id]

    def _backoff(self, failures: int) -> float:
        delay = min(self._backoff_max, self._backoff_initial * 2.0 ** min(failures - 1, 30))
        return delay * self._rng.uniform(0.75, 1.0)
