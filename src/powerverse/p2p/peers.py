"""Peer reputation: scores that recover with time, and temporary bans by peer id.

Bans are by peer id only: every devnet node shares 127.0.0.1, so banning an IP would
ban the whole network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Ban", "BanList", "Scores"]


@dataclass(frozen=True)
class Ban:
    """A peer id refused until `until` (host clock), and why."""

    peer_id: bytes
    until: float
    reason: str


class BanList:
    """Temporary bans by peer id, expiring on the injected clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._bans: dict[bytes, Ban] = {}

    def ban(self, peer_id: bytes, duration: float, reason: str) -> Ban:
        """Ban peer_id for duration seconds (extending, never shortening, a current ban)."""
        until = self._clock() + duration
        current = self._bans.get(peer_id)
        if current is not None and current.until >= until:
            return current
        ban = Ban(peer_id=peer_id, until=until, reason=reason)
        self._bans[peer_id] = ban
        return ban

    def unban(self, peer_id: bytes) -> None:
        """Lift a ban early."""
        self._bans.pop(peer_id, None)

    def get(self, peer_id: bytes) -> Ban | None:
        """The ban in force on peer_id, if any."""
        ban = self._bans.get(peer_id)
        if ban is not None and ban.until <= self._clock():
            del self._bans[peer_id]
            return None
        return ban

    def is_banned(self, peer_id: bytes) -> bool:
        """Whether peer_id is banned now."""
        return self.get(peer_id) is not None

    def active(self) -> list[Ban]:
        """Every ban in force, soonest expiry first."""
        now = self._clock()
        for peer_id in [p for p, b in self._bans.items() if b.until <= now]:
            del self._bans[peer_id]
        return sorted(self._bans.values(), key=lambda b: b.until)


class Scores:
    """Per-peer-id scores: 0 is neutral, penalties push below, time brings them back to 0."""

    def __init__(self, clock: Callable[[], float], recovery_per_s: float) -> None:
        self._clock = clock
        self._recovery = recovery_per_s
        self._scores: dict[bytes, tuple[float, float]] = {}

    def get(self, peer_id: bytes) -> float:
        """The peer's current score."""
        entry = self._scores.get(peer_id)
        if entry is None:
            return 0.0
        score, updated = entry
        now = self._clock()
        score = min(0.0, score + max(0.0, now - updated) * self._recovery)
        if score == 0.0:
            del self._scores[peer_id]
        else:
            self._scores[peer_id] = (score, now)
        return score

    def penalize(self, peer_id: bytes, amount: float) -> float:
        """Lower the score by amount (> 0) and return the new score."""
        if amount < 0:
            raise ValueError("a penalty must not be negative")
        score = self.get(peer_id) - amount
        if score < 0:
            self._scores[peer_id] = (score, self._clock())
        return score

    def reset(self, peer_id: bytes) -> None:
        """Forget the peer's score (after a ban has dealt with it)."""
        self._scores.pop(peer_id, None)

    def prune(self) -> None:
        """Drop scores that have recovered to neutral."""
        for peer_id in list(self._scores):
            self.get(peer_id)
