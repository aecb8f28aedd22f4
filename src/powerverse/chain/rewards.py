"""Block rewards, credited by the chain itself (whitepaper 8.2; docs/tokenomics.md).

Emission accrues per second (``economics.emission.emitted``) in the emission pool, a plain
account at 0x…2000 whose storage slot 0 holds the instant up to which emission has been paid
out. A block pays what accrued up to the instant its :class:`RewardClaim` names, at the start
of its execution, before its transactions:

- one node building every block (``pv node --dev``, or a single validator) claims each block's
  own time and pays its coinbase;
- in a validator network a non-empty block carries the finality certificate of its parent
  (header ``parentBeaconBlockRoot`` = keccak of it, so every node that re-executes the block
  pays the same) and pays, up to the parent's time, the parent's proposer and the voters of that
  certificate in proportion to their vote weight. Empty blocks claim nothing; what accrues
  meanwhile goes to the next certified block.

Of each payment 3% goes to the dividend pool (0x…200a); the rest is divided by
:func:`~powerverse.economics.rewards.split_block_reward`. A validator's part goes into the
Staking contract through a system call (``creditRewards`` from ``SYSTEM_CALLER``), which takes
the commission for the operator and shares the rest with the delegators pro rata; without a
Staking contract (or if the call fails) it is paid to the validator's account.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from eth.abc import StateAPI
from eth.vm.message import Message
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from eth_typing import Address

from powerverse.economics.emission import emitted
from powerverse.economics.rewards import DEFAULT_PROPOSER_BPS, split_block_reward

__all__ = [
    "DIVIDEND_POOL",
    "EMISSION_POOL",
    "PAID_UNTIL_SLOT",
    "STAKING",
    "SYSTEM_CALLER",
    "Payee",
    "RewardClaim",
    "RewardPlan",
    "apply_rewards",
    "plan_rewards",
]

EMISSION_POOL: Final = (0x2000).to_bytes(20, "big")
DIVIDEND_POOL: Final = (0x200A).to_bytes(20, "big")
STAKING: Final = (0x1000).to_bytes(20, "big")
SYSTEM_CALLER: Final = bytes.fromhex("ff" * 19 + "fe")
"""The sender of the chain's own calls (the address EIP-4788 uses for its system call)."""
PAID_UNTIL_SLOT: Final = 0
"""Storage slot of the emission pool: the instant (unix s) up to which emission is paid."""
log = logging.getLogger(__name__)

SYSTEM_CALL_GAS: Final = 30_000_000
_CREDIT_REWARDS: Final = keccak(b"creditRewards(bytes32[],uint256[])")[:4]
_PROPOSER_BPS: Final = keccak(b"rewardProposerBps()")[:4]
_BPS: Final = 10_000


@dataclass(frozen=True)
class Payee:
    """A validator by consensus key (paid into Staking), or a plain account (``key`` empty)."""

    key: bytes
    account: bytes

    @property
    def label(self) -> str:
        """A stable text id (what the split sorts by, and what RPC shows)."""
        return "0x" + (self.key or self.account).hex()


@dataclass(frozen=True)
class RewardClaim:
    """Who earned the emission that accrued up to ``until``: the proposer and the committee
    (payee, vote weight)."""

    until: int
    proposer: Payee
    committee: tuple[tuple[Payee, int], ...] = ()
    proposer_bps: int = DEFAULT_PROPOSER_BPS


@dataclass(frozen=True)
class RewardPlan:
    """What one block paid: emission over (``since``, ``until``], ``total`` wei out of the
    emission pool, ``dividend`` of it to the dividend pool and ``credits`` to validators
    (proposer first, then the committee by label; one entry per payee)."""

    since: int
    until: int
    total: int
    dividend: int
    proposer: Payee
    proposer_amount: int
    committee: tuple[tuple[Payee, int, int], ...]  # (payee, vote weight, wei)

    def credits(self) -> list[tuple[Payee, int]]:
        """Wei per payee (a proposer that also voted gets both parts in one entry)."""
        out: dict[Payee, int] = {self.proposer: self.proposer_amount}
        for payee, _, amount in self.committee:
            out[payee] = out.get(payee, 0) + amount
        return [(p, a) for p, a in out.items() if a]

    def to_rlp(self) -> list[Any]:
        """The plan as nested bytes/ints (stored beside its block)."""
        return [
            self.since,
            self.until,
            self.total,
            self.dividend,
            [self.proposer.key, self.proposer.account],
            self.proposer_amount,
            [[p.key, p.account, w, a] for p, w, a in self.committee],
        ]

    @classmethod
    def from_rlp(cls, items: list[Any]) -> RewardPlan:
        """Inverse of :meth:`to_rlp` (trusted: read from this node's own store)."""
        since, until, total, dividend, proposer, proposer_amount, committee = items

        def num(b: bytes) -> int:
            return int.from_bytes(b, "big")

        return cls(
            since=num(since),
            until=num(until),
            total=num(total),
            dividend=num(dividend),
            proposer=Payee(bytes(proposer[0]), bytes(proposer[1])),
            proposer_amount=num(proposer_amount),
            committee=tuple(
                (Payee(bytes(k), bytes(a)), num(w), num(x)) for k, a, w, x in committee
            ),
        )


def plan_rewards(state: StateAPI, claim: RewardClaim, listing_time: int) -> RewardPlan | None:
    """What ``claim`` is owed in ``state``: None when nothing accrued (before emission starts,
    an empty emission pool, or a claim not past what is already paid)."""
    since = state.get_storage(Address(EMISSION_POOL), PAID_UNTIL_SLOT)
    if claim.until <= since:
        return None
    total = emitted(claim.until, listing_time) - emitted(since, listing_time)
    total = min(total, state.get_balance(Address(EMISSION_POOL)))
    if total <= 0:
        return None
    labels = {claim.proposer.label: claim.proposer}
    weights: dict[str, int] = {}
    for payee, weight in claim.committee:
        labels.setdefault(payee.label, payee)
        weights[payee.label] = weights.get(payee.label, 0) + weight
    split = split_block_reward(
        total, claim.proposer.label, weights, proposer_bps=governed_proposer_bps(state, claim)
    )
    return RewardPlan(
        since=since,
        until=claim.until,
        total=total,
        dividend=split.dividend,
        proposer=claim.proposer,
        proposer_amount=split.proposer_amount,
        committee=tuple((labels[label], w, a) for label, w, a in split.committee),
    )


def governed_proposer_bps(state: StateAPI, claim: RewardClaim) -> int:
    """The proposer's share as governance set it (``Staking.rewardProposerBps()``), read without
    leaving a trace in ``state``; ``claim.proposer_bps`` without a Staking contract."""
    code = state.get_code(Address(STAKING))
    if not code:
        return claim.proposer_bps
    snapshot = state.snapshot()
    try:
        message = Message(
            gas=100_000,
            to=Address(STAKING),
            sender=Address(SYSTEM_CALLER),
            value=0,
            data=_PROPOSER_BPS,
            code=code,
        )
        context = state.get_transaction_context_class()(gas_price=0, origin=Address(SYSTEM_CALLER))
        computation = state.computation_class.apply_message(state, message, context)
        output = bytes(computation.output)
        if computation.is_error or len(output) != 32:
            return claim.proposer_bps
        value = int.from_bytes(output, "big")
        return value if value <= _BPS else claim.proposer_bps
    finally:
        state.revert(snapshot)


def apply_rewards(state: StateAPI, plan: RewardPlan) -> None:
    """Move ``plan.total`` out of the emission pool to the dividend pool and the payees."""
    state.delta_balance(Address(EMISSION_POOL), -plan.total)
    state.set_storage(Address(EMISSION_POOL), PAID_UNTIL_SLOT, plan.until)
    state.delta_balance(Address(DIVIDEND_POOL), plan.dividend)
    staked: list[tuple[Payee, int]] = []
    for payee, amount in plan.credits():
        if payee.key:
            staked.append((payee, amount))
        else:
            state.delta_balance(Address(payee.account), amount)
    if staked and not _credit_staking(state, staked):
        for payee, amount in staked:
            state.delta_balance(Address(payee.account), amount)
    state.lock_changes()


def _credit_staking(state: StateAPI, staked: list[tuple[Payee, int]]) -> bool:
    """Pay ``staked`` into Staking with one ``creditRewards`` call; False (and nothing
    changed) when there is no Staking contract or the call fails."""
    code = state.get_code(Address(STAKING))
    if not code:
        return False
    snapshot = state.snapshot()
    state.delta_balance(Address(STAKING), sum(a for _, a in staked))
    data = _CREDIT_REWARDS + abi_encode(
        ["bytes32[]", "uint256[]"], [[p.key for p, _ in staked], [a for _, a in staked]]
    )
    message = Message(
        gas=SYSTEM_CALL_GAS,
        to=Address(STAKING),
        sender=Address(SYSTEM_CALLER),
        value=0,
        data=data,
        code=code,
    )
    context = state.get_transaction_context_class()(gas_price=0, origin=Address(SYSTEM_CALLER))
    computation = state.computation_class.apply_message(state, message, context)
    if computation.is_error:
        log.warning(
            "Staking.creditRewards failed (%r); paying the validators' accounts instead",
            computation.error,
        )
        state.revert(snapshot)
        return False
    state.commit(snapshot)
    return True
