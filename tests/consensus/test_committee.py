"""Committees: roles, seeds, quorum and skip thresholds, stakes from the genesis and lookback."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from powerverse.chain.genesis import PVC, ConsensusParams, Genesis, Validator
from powerverse.consensus.committee import (
    COMMITTEE_ROLE,
    PROPOSER_ROLE,
    Committee,
    GenesisStakes,
    StakeEntry,
    committee_for,
    committee_role,
    genesis_seed,
    next_seed,
    proposer_role,
    seed_alpha,
)

SEED = b"\x01" * 32


def stakes(*units: int) -> dict[bytes, StakeEntry]:
    return {
        bytes([i + 1]) * 32: StakeEntry(bytes([i + 1]) * 32, bytes([i + 1]) * 20, u)
        for i, u in enumerate(units)
    }


def committee(*units: int, **params: int) -> Committee:
    return Committee(7, SEED, stakes(*units), ConsensusParams(**params))


# --- roles and seeds -------------------------------------------------------------------------


def test_roles_are_distinct_per_height_and_round() -> None:
    roles = {proposer_role(h, r) for h in range(4) for r in range(4)}
    roles |= {committee_role(h) for h in range(4)}
    assert len(roles) == 20


def test_role_layout() -> None:
    assert proposer_role(1, 2) == PROPOSER_ROLE + (1).to_bytes(8, "big") + (2).to_bytes(4, "big")
    assert committee_role(9) == COMMITTEE_ROLE + (9).to_bytes(8, "big")
    assert proposer_role(2**64 - 1, 2**32 - 1).endswith(b"\xff" * 12)


def test_proposer_role_does_not_swap_height_and_round() -> None:
    assert proposer_role(1, 2) != proposer_role(2, 1)


def test_committee_role_is_the_same_for_every_round() -> None:
    assert committee_role(5) == committee_role(5)
    assert committee_role(5) != committee_role(6)


def test_seed_alpha_names_previous_seed_and_height() -> None:
    assert seed_alpha(SEED, 3) != seed_alpha(SEED, 4)
    assert seed_alpha(SEED, 3) != seed_alpha(b"\x02" * 32, 3)
    assert seed_alpha(SEED, 3) not in {proposer_role(3, 0), committee_role(3)}


def test_next_seed_empty_block_differs_from_vrf_output() -> None:
    output = b"\x07" * 64
    empty = next_seed(SEED, 3, None)
    produced = next_seed(SEED, 3, output)
    assert empty != produced
    assert len(empty) == len(produced) == 32


def test_next_seed_is_deterministic_and_depends_on_every_input() -> None:
    output = b"\x07" * 64
    assert next_seed(SEED, 3, output) == next_seed(SEED, 3, output)
    assert next_seed(SEED, 3, None) == next_seed(SEED, 3, None)
    assert next_seed(SEED, 3, None) != next_seed(SEED, 4, None)
    assert next_seed(SEED, 3, None) != next_seed(b"\x02" * 32, 3, None)
    assert next_seed(SEED, 3, output) != next_seed(b"\x02" * 32, 3, output)
    assert next_seed(SEED, 3, output) != next_seed(SEED, 3, b"\x08" * 64)


def test_next_seed_of_empty_blocks_changes_every_height() -> None:
    seeds = [SEED]
    for h in range(1, 50):
        seeds.append(next_seed(seeds[-1], h, None))
    assert len(set(seeds)) == 50


def test_genesis_seed() -> None:
    assert genesis_seed(b"\x0a" * 32) == genesis_seed(b"\x0a" * 32)
    assert genesis_seed(b"\x0a" * 32) != genesis_seed(b"\x0b" * 32)
    assert len(genesis_seed(b"\x0a" * 32)) == 32


# --- weights and thresholds ------------------------------------------------------------------


def test_total_stake_and_stake_of() -> None:
    c = committee(1000, 2000, 3)
    assert c.total_stake == 3003
    assert c.stake_of(b"\x02" * 32) == 2000
    assert c.stake_of(b"\x09" * 32) == 0
    assert c.stake_of(b"") == 0


@pytest.mark.parametrize(
    ("tau", "units", "expected"),
    [
        (2000, (1000, 1000, 1000, 1000), 2000),
        (4000, (1000, 1000, 1000, 1000), 4000),
        (10**9, (1000, 1000, 1000, 1000), 4000),
        (1, (5,), 1),
    ],
)
def test_expected_weight_is_min_of_tau_and_total(
    tau: int, units: tuple[int, ...], expected: int
) -> None:
    assert committee(*units, tau_committee=tau).expected_weight == expected


def test_quorum_is_strictly_more_than_two_thirds() -> None:
    c = committee(1000, 1000, 1000, tau_committee=10**6)  # expected weight 3000
    assert not c.is_quorum(0)
    assert not c.is_quorum(1999)
    assert not c.is_quorum(2000)  # exactly 2/3 is not enough
    assert c.is_quorum(2001)
    assert c.is_quorum(3000)


def test_quorum_boundary_when_not_divisible() -> None:
    c = committee(1000, 1000, 1000, 1000, tau_committee=2000)  # expected 2000, 2/3 = 1333.33
    assert not c.is_quorum(1333)
    assert c.is_quorum(1334)


def test_skip_is_strictly_more_than_one_third() -> None:
    c = committee(1000, 1000, 1000, tau_committee=10**6)
    assert not c.is_skip(999)
    assert not c.is_skip(1000)
    assert c.is_skip(1001)
    c = committee(1000, 1000, 1000, 1000, tau_committee=2000)  # 1/3 of 2000 = 666.67
    assert not c.is_skip(666)
    assert c.is_skip(667)


def test_thresholds_follow_params() -> None:
    c = committee(100, tau_committee=10**6, threshold_numerator=3, threshold_denominator=4)
    assert not c.is_quorum(75)
    assert c.is_quorum(76)
    assert not c.is_skip(25)
    assert c.is_skip(26)


def test_quorum_and_skip_leave_no_gap_for_two_disjoint_quorums() -> None:
    """Two quorums overlap in more than 1/3: a skip-sized honest intersection."""
    c = committee(1000, 1000, 1000, tau_committee=10**6)
    for a in range(2001, 3001, 37):
        for b in range(2001, 3001, 41):
            assert c.is_quorum(a) and c.is_quorum(b)
            assert c.is_skip(a + b - 3000)  # their overlap


def test_empty_committee_has_no_quorum_of_nothing() -> None:
    c = committee()
    assert c.total_stake == 0
    assert c.expected_weight == 0
    assert not c.is_quorum(0)
    assert not c.is_skip(0)


# --- stakes ----------------------------------------------------------------------------------


def validator(i: int, stake: int) -> Validator:
    return Validator(address=bytes([i]) * 20, consensus_key=bytes([i]) * 32, stake=stake)


def test_genesis_stakes_count_whole_units() -> None:
    genesis = Genesis(
        chain_id=1,
        timestamp=0,
        validators=(
            validator(1, 1000 * PVC),
            validator(2, 1000 * PVC + PVC - 1),  # a part of a unit does not count
            validator(3, PVC - 1),  # less than a unit: no stake
            validator(4, 2 * PVC),
        ),
    )
    entries = GenesisStakes.of(genesis).stakes_at(0)
    assert {k: e.stake for k, e in entries.items()} == {
        b"\x01" * 32: 1000,
        b"\x02" * 32: 1000,
        b"\x03" * 32: 0,
        b"\x04" * 32: 2,
    }
    assert entries[b"\x01" * 32] == StakeEntry(b"\x01" * 32, b"\x01" * 20, 1000)
    c = Committee(1, SEED, entries, genesis.consensus)
    assert c.total_stake == 2002
    assert c.stake_of(b"\x03" * 32) == 0


def test_genesis_stakes_use_the_genesis_unit() -> None:
    genesis = Genesis(
        chain_id=1,
        timestamp=0,
        validators=(validator(1, 10**9), validator(2, 3 * 10**9 + 5)),
        consensus=ConsensusParams(stake_unit_wei=10**9),
    )
    entries = GenesisStakes.of(genesis).stakes_at(5)
    assert [e.stake for e in entries.values()] == [1, 3]


def test_genesis_stakes_are_the_same_at_every_height() -> None:
    genesis = Genesis(chain_id=1, timestamp=0, validators=(validator(1, 5 * PVC),))
    source = GenesisStakes.of(genesis)
    assert source.stakes_at(0) == source.stakes_at(1) == source.stakes_at(10**6)


def test_no_validators() -> None:
    source = GenesisStakes.of(Genesis(chain_id=1, timestamp=0))
    assert dict(source.stakes_at(3)) == {}


@dataclass
class RecordingStakes:
    """A StakeSource whose stakes grow with the height, recording the heights asked."""

    asked: list[int] = field(default_factory=list)

    def stakes_at(self, height: int) -> Mapping[bytes, StakeEntry]:
        self.asked.append(height)
        return stakes(height + 1)


@pytest.mark.parametrize(
    ("height", "lookback", "asked"),
    [(10, 2, 8), (2, 2, 0), (1, 2, 0), (0, 2, 0), (5, 0, 5), (100, 7, 93)],
)
def test_committee_for_reads_stakes_at_lookback(height: int, lookback: int, asked: int) -> None:
    source = RecordingStakes()
    params = ConsensusParams(lookback=lookback)
    c = committee_for(height, SEED, source, params)
    assert source.asked == [asked]
    assert c.height == height
    assert c.seed == SEED
    assert c.params == params
    assert c.total_stake == asked + 1
