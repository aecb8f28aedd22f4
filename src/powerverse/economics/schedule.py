"""How much of each allocation is unlocked at an instant."""

from __future__ import annotations

from dataclasses import dataclass

from powerverse.economics.allocations import (
    ALLOCATIONS,
    TokenomicsParams,
    allocation,
    installments,
)
from powerverse.economics.emission import emitted

__all__ = ["AllocationStatus", "schedule_at", "unlocked_at"]


@dataclass(frozen=True)
class AllocationStatus:
    """One allocation at an instant; `unlocked + locked == total`, amounts in wei."""

    name: str
    total: int
    unlocked: int
    locked: int


def unlocked_at(name: str, params: TokenomicsParams, t: int) -> int:
    """Wei of allocation `name` unlocked at instant `t` (block_rewards: emitted so far;
    airdrop: all of it from genesis on, since members may claim from then)."""
    if name == "block_rewards":
        return emitted(t, params.listing_time)
    if name == "airdrop":
        return allocation(name).total if t >= params.genesis_time else 0
    return sum(amount for when, amount in installments(name, params) if when <= t)


def schedule_at(params: TokenomicsParams, t: int) -> list[AllocationStatus]:
    """Every allocation's total, unlocked and locked wei at instant `t`, in table order."""
    out = []
    for a in ALLOCATIONS:
        unlocked = unlocked_at(a.name, params, t)
        out.append(AllocationStatus(a.name, a.total, unlocked, a.total - unlocked))
    return out
