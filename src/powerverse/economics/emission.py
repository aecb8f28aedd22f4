"""Block-reward emission: 140M PVC over the first 1,826-day period, halving every period.

Emission starts `EMISSION_DELAY` after the listing time. Period k (k = 0, 1, ...) emits
``A_k = FIRST_PERIOD_AMOUNT >> k`` wei evenly: ``s`` seconds into the period, ``A_k * s // PERIOD``
of it is out. `emitted` is therefore monotonic and never exceeds `EMISSION_CAP`, and the reward
of a block is the difference of two `emitted` values, so rewards summed over any sequence of
blocks equal the emission at the last block exactly (a block spanning a period boundary is paid
from both periods by construction).
"""

from __future__ import annotations

from typing import Final

from powerverse.economics.constants import EMISSION_DELAY, HALVING_PERIOD, PVC
from powerverse.economics.exceptions import ScheduleError

__all__ = [
    "DIVIDEND_SHARE_PERCENT",
    "EMISSION_CAP",
    "FIRST_PERIOD_AMOUNT",
    "PERIODS",
    "block_reward",
    "dividend_share",
    "emission_start",
    "emitted",
    "period_amount",
    "split_reward",
]

FIRST_PERIOD_AMOUNT: Final = 140_000_000 * PVC
EMISSION_CAP: Final = 280_000_000 * PVC
"""The block_rewards allocation; `emitted` stays below it for ever."""

PERIODS: Final = FIRST_PERIOD_AMOUNT.bit_length()
"""Periods with a non-zero amount; from period `PERIODS` on nothing more is emitted."""

_FULL: Final[tuple[int, ...]] = tuple(
    sum(FIRST_PERIOD_AMOUNT >> j for j in range(k)) for k in range(PERIODS + 1)
)
"""_FULL[k]: wei emitted by the end of the first k periods."""

DIVIDEND_SHARE_PERCENT: Final = 3
"""Percent of every block reward that goes to the dividend pool."""


def emission_start(listing_time: int) -> int:
    """The first second of block-reward emission for a given listing time."""
    return listing_time + EMISSION_DELAY


def period_amount(k: int) -> int:
    """Wei emitted over the whole of period `k` (0 from period `PERIODS` on)."""
    if k < 0:
        raise ScheduleError(f"period {k} does not exist (periods count from 0)")
    return FIRST_PERIOD_AMOUNT >> k


def emitted(t: int, listing_time: int) -> int:
    """Total wei emitted as block rewards by instant `t` (unix seconds)."""
    elapsed = t - emission_start(listing_time)
    if elapsed <= 0:
        return 0
    k, s = divmod(elapsed, HALVING_PERIOD)
    if k >= PERIODS:
        return _FULL[PERIODS]
    return _FULL[k] + period_amount(k) * s // HALVING_PERIOD


def block_reward(parent_ts: int, ts: int, listing_time: int) -> int:
    """Wei a block with timestamp `ts` mints on top of a parent with timestamp `parent_ts`."""
    if ts < parent_ts:
        raise ScheduleError(f"block time {ts} is before its parent's {parent_ts}")
    return emitted(ts, listing_time) - emitted(parent_ts, listing_time)


def dividend_share(reward: int) -> int:
    """The part of a block reward paid to the dividend pool: 3%, rounded down."""
    if reward < 0:
        raise ScheduleError(f"a reward cannot be negative ({reward})")
    return reward * DIVIDEND_SHARE_PERCENT // 100


def split_reward(reward: int) -> tuple[int, int]:
    """(dividend pool part, the rest) of a block reward; the two add up to `reward`."""
    dividend = dividend_share(reward)
    return dividend, reward - dividend
