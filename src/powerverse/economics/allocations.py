"""The allocation table of issue 6 and each allocation's unlock installments, exact in wei.

=====================  =====  ===========  ==============================================
name                   share  PVC          unlocks
=====================  =====  ===========  ==============================================
block_rewards          20%    280,000,000  mined from listing + 30 days (`emission`)
seed                   10%    140,000,000  10 × 10%, the first at listing + 60 days, monthly
angel                  10%    140,000,000  as seed
series_a               10%    140,000,000  as seed
presale                 5%     70,000,000  40% at genesis; 6 × 10% from presale_unlock_start
airdrop                 2%     28,000,000  500 PVC per registered member, claimable at genesis
team                   15%    210,000,000  5% at listing + 60 days; 95% in 10 monthly
                                           installments from listing + 60 + 1,095 days
compliance_advisors     3%     42,000,000  48 monthly, the first at listing + 30 days
operations_advisors     5%     70,000,000  48 monthly, the first at listing + 30 days
foundation             20%    280,000,000  48 monthly, the first at listing + 60 days
=====================  =====  ===========  ==============================================

A month is 30 days. A run of n "equal" installments pays ``total // n`` wei each and adds the
remainder to the last one, so every allocation's installments add up to its total exactly.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Final

from powerverse.economics.constants import DAY, MONTH, PVC
from powerverse.economics.exceptions import ScheduleError, UnknownAllocation

__all__ = [
    "AIRDROP_CLAIM",
    "AIRDROP_MAX_CLAIMS",
    "ALLOCATIONS",
    "ALLOCATION_NAMES",
    "PRESALE_GENESIS_PART",
    "TEAM_CLIFF",
    "VESTED_NAMES",
    "Allocation",
    "Installment",
    "TokenomicsParams",
    "allocation",
    "first_may_31_on_or_after",
    "installments",
    "vesting_installments",
]

Installment = tuple[int, int]
"""(unix time, wei) of one unlock."""


@dataclass(frozen=True)
class Allocation:
    """One row of the table: its share of the supply and how it unlocks."""

    name: str
    share_percent: int
    total: int
    schedule: str

    @property
    def pvc(self) -> int:
        """The total in whole PVC."""
        return self.total // PVC


ALLOCATIONS: Final[tuple[Allocation, ...]] = (
    Allocation("block_rewards", 20, 280_000_000 * PVC, "mined from listing + 30 days"),
    Allocation("seed", 10, 140_000_000 * PVC, "10 monthly installments from listing + 60 days"),
    Allocation("angel", 10, 140_000_000 * PVC, "10 monthly installments from listing + 60 days"),
    Allocation("series_a", 10, 140_000_000 * PVC, "10 monthly installments from listing + 60 days"),
    Allocation("presale", 5, 70_000_000 * PVC, "40% at genesis, 6 monthly 10% installments"),
    Allocation("airdrop", 2, 28_000_000 * PVC, "500 PVC per registered member, from genesis"),
    Allocation("team", 15, 210_000_000 * PVC, "5% at listing + 60 days, 95% after 1,095 days more"),
    Allocation("compliance_advisors", 3, 42_000_000 * PVC, "48 monthly from listing + 30 days"),
    Allocation("operations_advisors", 5, 70_000_000 * PVC, "48 monthly from listing + 30 days"),
    Allocation("foundation", 20, 280_000_000 * PVC, "48 monthly from listing + 60 days"),
)
"""The table, in its order; the totals add up to `constants.TOTAL_SUPPLY` (tested)."""

ALLOCATION_NAMES: Final[tuple[str, ...]] = tuple(a.name for a in ALLOCATIONS)
VESTED_NAMES: Final[tuple[str, ...]] = tuple(
    n for n in ALLOCATION_NAMES if n not in ("block_rewards", "airdrop")
)
"""Allocations that unlock in installments (each held by a Vesting contract on chain)."""

AIRDROP_CLAIM: Final = 500 * PVC
AIRDROP_MAX_CLAIMS: Final = 56_000
PRESALE_GENESIS_PART: Final = 28_000_000 * PVC
"""The presale's 40% unlocked at genesis (genesis balances other than the pools come from it)."""
TEAM_CLIFF: Final = 1_095 * DAY

_BY_NAME: Final[dict[str, Allocation]] = {a.name: a for a in ALLOCATIONS}


def allocation(name: str) -> Allocation:
    """The table row called `name`."""
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(ALLOCATION_NAMES)
        raise UnknownAllocation(f"no allocation {name!r} (known: {known})") from None


def first_may_31_on_or_after(t: int) -> int:
    """00:00 UTC of the first 31 May at or after instant `t` (`t` itself if it is one)."""
    year = time.gmtime(t).tm_year
    candidate = calendar.timegm((year, 5, 31, 0, 0, 0))
    return candidate if candidate >= t else calendar.timegm((year + 1, 5, 31, 0, 0, 0))


@dataclass(frozen=True)
class TokenomicsParams:
    """When the chain started and the coin was listed; times are unix seconds.

    `presale_unlock_start` defaults to the first 31 May (00:00 UTC) on or after the listing.
    """

    listing_time: int
    genesis_time: int
    presale_unlock_start: int | None = None

    def __post_init__(self) -> None:
        for name in ("listing_time", "genesis_time", "presale_unlock_start"):
            value = getattr(self, name)
            if value is None and name == "presale_unlock_start":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ScheduleError(f"{name} must be a non-negative integer, got {value!r}")

    @property
    def presale_start(self) -> int:
        """The first presale installment after genesis (the default applied)."""
        if self.presale_unlock_start is not None:
            return self.presale_unlock_start
        return first_may_31_on_or_after(self.listing_time)


def _equal(total: int, count: int, first: int) -> list[Installment]:
    """`count` monthly installments from `first`, the remainder of `total` on the last."""
    each = total // count
    amounts = [each] * (count - 1) + [total - each * (count - 1)]
    return [(first + i * MONTH, amount) for i, amount in enumerate(amounts)]


def installments(name: str, params: TokenomicsParams) -> list[Installment]:
    """Every unlock of allocation `name` in time order; the amounts add up to its total.

    The presale's list starts with its 40% genesis part at the genesis time. `block_rewards`
    (emitted per block) and `airdrop` (claimed) have no installments: ScheduleError.
    """
    total = allocation(name).total
    listing = params.listing_time
    if name in ("seed", "angel", "series_a"):
        return _equal(total, 10, listing + 60 * DAY)
    if name == "presale":
        later = _equal(total - PRESALE_GENESIS_PART, 6, params.presale_start)
        return [(params.genesis_time, PRESALE_GENESIS_PART), *later]
    if name == "team":
        first = total * 5 // 100
        rest = _equal(total - first, 10, listing + 60 * DAY + TEAM_CLIFF)
        return [(listing + 60 * DAY, first), *rest]
    if name in ("compliance_advisors", "operations_advisors"):
        return _equal(total, 48, listing + 30 * DAY)
    if name == "foundation":
        return _equal(total, 48, listing + 60 * DAY)
    raise ScheduleError(
        f"{name} has no installments: "
        + ("it is emitted per block" if name == "block_rewards" else "it is claimed per member")
    )


def vesting_installments(name: str, params: TokenomicsParams) -> list[Installment]:
    """What allocation `name`'s Vesting contract holds: its installments after genesis.

    The presale's genesis part is paid at genesis, so its Vesting holds the other 60%.
    """
    rows = installments(name, params)
    return rows[1:] if name == "presale" else rows
