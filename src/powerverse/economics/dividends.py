"""Monthly dividends (whitepaper 8.2): online devices, scores, payouts and the pool's carry-over.

The rule, as the `DividendPool` contract (0x…200a) enforces it:

- Epochs are 30-day months from listing time + 30 days, each cut into slots of `slot_length`
  seconds. A device (ResourceNFT token) is **online** for an epoch when it has heartbeats in at
  least 90 % of the epoch's slots (rounded up; at most one counts per slot), sent while it was
  verified, listed by its owner and not blocked.
- At the heartbeat that makes it online, the device's performPoints at that moment go to its
  owner at that moment: an owner's **score** is the sum over its online devices; an owner
  flagged for a violation in the epoch scores 0.
- When the epoch is closed its **pool** is the pool's balance minus what earlier epochs still
  owe. Each owner's **payout** is ``pool * score // total``; the rounding dust goes back to the
  pool once every score of the epoch has been claimed. An epoch whose total score is 0 owes
  nothing: its pool is part of the next epoch's.

Pure functions over integers (wei, unix seconds); the tests and ``pv dividends verify`` use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from powerverse.economics.constants import MONTH
from powerverse.economics.exceptions import ScheduleError

__all__ = [
    "BPS",
    "DEFAULT_SLOT_LENGTH",
    "EPOCH_LENGTH",
    "MIN_SLOT_LENGTH",
    "ONLINE_BPS",
    "DeviceBeat",
    "OnlineDevice",
    "Payouts",
    "PoolLedger",
    "epoch_at",
    "epoch_end",
    "epoch_start",
    "first_epoch_start",
    "online_devices",
    "payouts",
    "required_heartbeats",
    "scores",
    "slot_of",
    "slots_per_epoch",
]

EPOCH_LENGTH: Final = MONTH
ONLINE_BPS: Final = 9_000
"""A device is online with heartbeats in this share of an epoch's slots (basis points)."""
BPS: Final = 10_000
DEFAULT_SLOT_LENGTH: Final = 3_600
MIN_SLOT_LENGTH: Final = 60


def first_epoch_start(listing_time: int) -> int:
    """The first second of epoch 0: the listing time + 30 days (when emission starts)."""
    return listing_time + EPOCH_LENGTH


def epoch_start(listing_time: int, epoch: int) -> int:
    """The first second of `epoch`."""
    if epoch < 0:
        raise ScheduleError(f"epoch {epoch} does not exist (epochs count from 0)")
    return first_epoch_start(listing_time) + epoch * EPOCH_LENGTH


def epoch_end(listing_time: int, epoch: int) -> int:
    """The first second after `epoch`."""
    return epoch_start(listing_time, epoch) + EPOCH_LENGTH


def epoch_at(listing_time: int, t: int) -> int | None:
    """The epoch under way at `t`, or None before the first."""
    start = first_epoch_start(listing_time)
    return None if t < start else (t - start) // EPOCH_LENGTH


def slots_per_epoch(slot_length: int) -> int:
    """Slots in an epoch; the slot length must divide 30 days and be at least a minute."""
    if slot_length < MIN_SLOT_LENGTH or EPOCH_LENGTH % slot_length:
        raise ScheduleError(
            f"slot length {slot_length} s must be at least {MIN_SLOT_LENGTH} s "
            f"and divide the epoch ({EPOCH_LENGTH} s)"
        )
    return EPOCH_LENGTH // slot_length


def required_heartbeats(slot_length: int) -> int:
    """Heartbeats (one per slot) that make a device online: 90 % of the slots, rounded up."""
    slots = slots_per_epoch(slot_length)
    return -(-slots * ONLINE_BPS // BPS)


def slot_of(listing_time: int, slot_length: int, t: int) -> tuple[int, int]:
    """(epoch, slot within it) of instant `t`."""
    epoch = epoch_at(listing_time, t)
    if epoch is None:
        raise ScheduleError(f"{t} is before the first epoch ({first_epoch_start(listing_time)})")
    slots_per_epoch(slot_length)
    return epoch, (t - epoch_start(listing_time, epoch)) // slot_length


@dataclass(frozen=True, kw_only=True)
class DeviceBeat:
    """One accepted heartbeat: the device, its slot, and its owner and points at that moment."""

    token_id: int
    slot: int
    owner: str
    points: int


@dataclass(frozen=True, kw_only=True)
class OnlineDevice:
    """A device online for the epoch and what it brought to whom (the snapshot at its
    threshold heartbeat)."""

    token_id: int
    owner: str
    points: int


def online_devices(beats: Iterable[DeviceBeat], required: int) -> tuple[OnlineDevice, ...]:
    """The devices whose distinct heartbeat slots reach `required`, in the order they did.

    `beats` in chain order; a second heartbeat in a slot counts nothing (the contract refuses it).
    """
    if required < 1:
        raise ScheduleError(f"required heartbeats must be at least 1, not {required}")
    slots: dict[int, set[int]] = {}
    online: list[OnlineDevice] = []
    for beat in beats:
        seen = slots.setdefault(beat.token_id, set())
        if beat.slot in seen:
            continue
        seen.add(beat.slot)
        if len(seen) == required:
            online.append(
                OnlineDevice(token_id=beat.token_id, owner=beat.owner, points=beat.points)
            )
    return tuple(online)


def scores(devices: Iterable[OnlineDevice], flagged: Iterable[str] = ()) -> dict[str, int]:
    """Owner -> the sum of its online devices' points; flagged owners and zero scores left out."""
    out: dict[str, int] = {}
    banned = set(flagged)
    for d in devices:
        if d.owner not in banned:
            out[d.owner] = out.get(d.owner, 0) + d.points
    return {owner: score for owner, score in out.items() if score > 0}


@dataclass(frozen=True, kw_only=True)
class Payouts:
    """One closed epoch: its pool, total score, each owner's wei, and what stays in the pool."""

    pool: int
    total_score: int
    amounts: dict[str, int]
    dust: int
    """Wei of the pool no owner receives (rounding; the whole pool when the total is 0)."""

    @property
    def carried_over(self) -> bool:
        """True when nobody scored: the whole pool goes to the next epoch."""
        return self.total_score == 0


def payouts(pool: int, owner_scores: Mapping[str, int]) -> Payouts:
    """Each owner's ``pool * score // total``; the rest is dust that stays in the pool."""
    if pool < 0 or any(s < 0 for s in owner_scores.values()):
        raise ScheduleError("a pool and scores cannot be negative")
    total = sum(owner_scores.values())
    if total == 0:
        return Payouts(pool=pool, total_score=0, amounts={}, dust=pool)
    amounts = {owner: pool * s // total for owner, s in owner_scores.items() if s > 0}
    return Payouts(pool=pool, total_score=total, amounts=amounts, dust=pool - sum(amounts.values()))


@dataclass(frozen=True)
class _Closed:
    pool: int
    scores: dict[str, int]
    total: int
    claimed: frozenset[str] = frozenset()
    claimed_amount: int = 0


@dataclass(frozen=True)
class PoolLedger:
    """The pool's accounting across epochs, as the contract keeps it (each step a new ledger).

    `balance` is what the contract holds; `reserved` what closed epochs still owe. Closing an
    epoch fixes its pool at ``balance - reserved`` and reserves it (unless nobody scored); a
    claim pays and un-reserves its amount, plus the epoch's dust with its last claim.
    """

    balance: int = 0
    reserved: int = 0
    closed: tuple[_Closed, ...] = field(default=())

    def receive(self, amount: int) -> PoolLedger:
        """Block-reward shares and donations: the balance grows."""
        if amount < 0:
            raise ScheduleError("cannot receive a negative amount")
        return replace(self, balance=self.balance + amount)

    @property
    def unassigned(self) -> int:
        """The pool of the next epoch to close, so far."""
        return self.balance - self.reserved

    def close(self, owner_scores: Mapping[str, int]) -> PoolLedger:
        """Close the next epoch with these scores (zero scores are left out)."""
        kept = {o: s for o, s in owner_scores.items() if s > 0}
        total = sum(kept.values())
        pool = self.unassigned
        epoch = _Closed(pool=pool, scores=kept, total=total)
        reserved = self.reserved + pool if total else self.reserved
        return replace(self, reserved=reserved, closed=(*self.closed, epoch))

    def payouts(self, epoch: int) -> Payouts:
        """Closed epoch `epoch`'s pool and payouts."""
        e = self._epoch(epoch)
        return payouts(e.pool, e.scores)

    def claim(self, epoch: int, owner: str) -> tuple[PoolLedger, int]:
        """`owner` claims its payout of closed `epoch` once: the new ledger and the wei paid."""
        e = self._epoch(epoch)
        if owner not in e.scores:
            raise ScheduleError(f"{owner} has nothing to claim in epoch {epoch}")
        if owner in e.claimed:
            raise ScheduleError(f"{owner} already claimed epoch {epoch}")
        amount = e.pool * e.scores[owner] // e.total
        claimed = e.claimed | {owner}
        done = replace(e, claimed=claimed, claimed_amount=e.claimed_amount + amount)
        released = amount + (e.pool - done.claimed_amount if len(claimed) == len(e.scores) else 0)
        closed = tuple(done if i == epoch else c for i, c in enumerate(self.closed))
        ledger = replace(
            self, balance=self.balance - amount, reserved=self.reserved - released, closed=closed
        )
        return ledger, amount

    def _epoch(self, epoch: int) -> _Closed:
        if not 0 <= epoch < len(self.closed):
            raise ScheduleError(f"epoch {epoch} is not closed ({len(self.closed)} closed)")
        return self.closed[epoch]
