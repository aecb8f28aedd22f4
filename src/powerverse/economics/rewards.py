"""How one block reward is divided, exactly in wei (whitepaper 8.2; issue 6 "Emission").

A block's reward (:func:`~powerverse.economics.emission.block_reward`) goes 3% to the dividend
pool; of the other 97%, ``proposer_bps`` (default 20%) to the block's proposer and the rest to
the committee members whose votes are in its finality certificate, in proportion to their vote
weight. Each validator's part is then shared with its delegators: the validator's commission
first, the rest pro rata to stake. Every division rounds down and the wei left over go to a
named party (the proposer for the committee split, the validator for the delegator split), so
the parts always add up to the whole: nothing is minted or lost by rounding.

Pure functions: the chain's block finalization, ``pv_getBlockReward`` and the tests all use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from powerverse.economics.emission import split_reward
from powerverse.economics.exceptions import ScheduleError

__all__ = [
    "BPS",
    "DEFAULT_PROPOSER_BPS",
    "BlockRewardSplit",
    "ValidatorRewardSplit",
    "split_block_reward",
    "split_validator_reward",
]

BPS: Final = 10_000
DEFAULT_PROPOSER_BPS: Final = 2_000
"""The proposer's part of the validators' 97%, in basis points (governable)."""


@dataclass(frozen=True, kw_only=True)
class BlockRewardSplit:
    """One block's reward, divided. ``committee``: (validator, vote weight, wei), by address."""

    total: int
    dividend: int
    proposer: str
    proposer_amount: int  # its 20% plus the committee split's leftover wei
    committee: tuple[tuple[str, int, int], ...]

    def payouts(self) -> dict[str, int]:
        """Wei per validator account (a proposer that also voted gets both parts)."""
        out = {self.proposer: self.proposer_amount}
        for account, _, amount in self.committee:
            out[account] = out.get(account, 0) + amount
        return out


def split_block_reward(
    reward: int,
    proposer: str,
    committee: Mapping[str, int],
    *,
    proposer_bps: int = DEFAULT_PROPOSER_BPS,
) -> BlockRewardSplit:
    """Divide ``reward`` wei between the dividend pool, ``proposer`` and ``committee``
    (validator account -> vote weight in the block's certificate). With no committee weight
    (a single dev node) the proposer takes the committee's part too."""
    if reward < 0:
        raise ScheduleError(f"a reward cannot be negative ({reward})")
    if not 0 <= proposer_bps <= BPS:
        raise ScheduleError(f"proposer_bps {proposer_bps} is outside [0, {BPS}]")
    if any(w < 0 for w in committee.values()):
        raise ScheduleError("a vote weight cannot be negative")
    dividend, validators = split_reward(reward)
    proposer_amount = validators * proposer_bps // BPS
    committee_total = validators - proposer_amount
    weight = sum(committee.values())
    members = []
    paid = 0
    if weight:
        for account in sorted(committee):
            amount = committee_total * committee[account] // weight
            members.append((account, committee[account], amount))
            paid += amount
    proposer_amount += committee_total - paid
    return BlockRewardSplit(
        total=reward,
        dividend=dividend,
        proposer=proposer,
        proposer_amount=proposer_amount,
        committee=tuple(members),
    )


@dataclass(frozen=True, kw_only=True)
class ValidatorRewardSplit:
    """A validator's reward shared with its delegators. ``delegators``: (account, wei)."""

    commission: int  # the validator's commission plus the pro-rata leftover wei
    delegators: tuple[tuple[str, int], ...]


def split_validator_reward(
    amount: int, commission_bps: int, stakes: Mapping[str, int]
) -> ValidatorRewardSplit:
    """Share ``amount`` wei: ``commission_bps`` to the validator, the rest pro rata to
    ``stakes`` (delegator, the validator's own stake included -> bonded wei). With no stake the
    validator keeps everything."""
    if amount < 0:
        raise ScheduleError(f"a reward cannot be negative ({amount})")
    if not 0 <= commission_bps <= BPS:
        raise ScheduleError(f"commission {commission_bps} bps is outside [0, {BPS}]")
    if any(s < 0 for s in stakes.values()):
        raise ScheduleError("a stake cannot be negative")
    commission = amount * commission_bps // BPS
    rest = amount - commission
    total = sum(stakes.values())
    shares = []
    paid = 0
    if total:
        for account in sorted(stakes):
            part = rest * stakes[account] // total
            shares.append((account, part))
            paid += part
    return ValidatorRewardSplit(commission=commission + rest - paid, delegators=tuple(shares))
