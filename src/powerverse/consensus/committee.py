"""Who may propose and vote at a height, and how much their votes weigh.

Stakes come from a ``StakeSource`` (the genesis validator set now; the staking contract later),
read at ``height - lookback`` so nobody can move stake to influence the current round. A
validator's weight at a height is its number of sortition sub-users ``j`` for the committee
role; votes are counted by weight, and a value wins with more than ``threshold`` (2/3) of the
expected committee weight ``min(tau_committee, total stake)``. With ``tau_committee`` at least
the total stake every unit is selected (p = 1), and the committee is exactly the validator set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from eth_hash.auto import keccak

from powerverse.chain.genesis import ConsensusParams, Genesis

PROPOSER_ROLE = b"proposer"
COMMITTEE_ROLE = b"committee"
SEED_ROLE = b"seed"


def proposer_role(height: int, round_: int) -> bytes:
    """The sortition role of the proposers of (height, round)."""
    return PROPOSER_ROLE + height.to_bytes(8, "big") + round_.to_bytes(4, "big")


def committee_role(height: int) -> bytes:
    """The sortition role of the committee of a height (one committee for all its rounds)."""
    return COMMITTEE_ROLE + height.to_bytes(8, "big")


def seed_alpha(previous_seed: bytes, height: int) -> bytes:
    """What a block's producer proves with its VRF to derive the block's seed."""
    return SEED_ROLE + previous_seed + height.to_bytes(8, "big")


def next_seed(previous_seed: bytes, height: int, vrf_output: bytes | None) -> bytes:
    """The seed of a block: from its producer's VRF output, or the height for an empty block."""
    if vrf_output is None:
        return keccak(previous_seed + height.to_bytes(8, "big"))
    return keccak(previous_seed + vrf_output)


def genesis_seed(genesis_hash: bytes) -> bytes:
    """The seed block 1's sortition uses."""
    return keccak(b"powerverse/genesis-seed" + genesis_hash)


@dataclass(frozen=True)
class StakeEntry:
    """A validator's consensus key, fee-recipient account and stake in whole units."""

    public_key: bytes
    account: bytes
    stake: int


class StakeSource(Protocol):
    """Stakes as of a block; the staking contract will serve this interface later."""

    def stakes_at(self, height: int) -> Mapping[bytes, StakeEntry]:
        """Validators by consensus public key, as of block ``height``."""
        ...


@dataclass(frozen=True)
class GenesisStakes:
    """The genesis validator set, the same at every height."""

    entries: Mapping[bytes, StakeEntry]

    @classmethod
    def of(cls, genesis: Genesis) -> GenesisStakes:
        """Stakes from the genesis validators: wei, counted in whole ``stake_unit_wei`` units."""
        unit = genesis.consensus.stake_unit_wei
        return cls(
            {
                v.consensus_key: StakeEntry(v.consensus_key, v.address, v.stake // unit)
                for v in genesis.validators
            }
        )

    def stakes_at(self, height: int) -> Mapping[bytes, StakeEntry]:
        """The genesis validators."""
        return self.entries


@dataclass(frozen=True)
class Committee:
    """Everything needed to weigh messages at one height."""

    height: int
    seed: bytes
    stakes: Mapping[bytes, StakeEntry]
    params: ConsensusParams

    @cached_property
    def total_stake(self) -> int:
        """W: all stake units."""
        return sum(e.stake for e in self.stakes.values())

    @cached_property
    def expected_weight(self) -> int:
        """The committee weight sortition selects on average (all of it when tau >= W)."""
        return min(self.params.tau_committee, self.total_stake)

    def stake_of(self, public_key: bytes) -> int:
        """Stake units of a validator; 0 for a key that is not one."""
        entry = self.stakes.get(public_key)
        return entry.stake if entry else 0

    def is_quorum(self, weight: int) -> bool:
        """More than threshold (2/3) of the expected committee weight."""
        p = self.params
        return weight * p.threshold_denominator > self.expected_weight * p.threshold_numerator

    def is_skip(self, weight: int) -> bool:
        """More than 1 - threshold (1/3) of the expected weight: at least one honest voter."""
        p = self.params
        minority = p.threshold_denominator - p.threshold_numerator
        return weight * p.threshold_denominator > self.expected_weight * minority


def committee_for(
    height: int, seed: bytes, source: StakeSource, params: ConsensusParams
) -> Committee:
    """The committee of ``height``: stakes at ``height - lookback`` (genesis at the start)."""
    return Committee(height, seed, source.stakes_at(max(0, height - params.lookback)), params)
