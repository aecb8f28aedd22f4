"""Block-reward emission: halvings, blocks across a period boundary, the cap, the dividend share."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.economics.constants import DAY, EMISSION_DELAY, HALVING_PERIOD, PVC
from powerverse.economics.emission import (
    EMISSION_CAP,
    FIRST_PERIOD_AMOUNT,
    PERIODS,
    block_reward,
    dividend_share,
    emission_start,
    emitted,
    period_amount,
    split_reward,
)
from powerverse.economics.exceptions import EconomicsError, ScheduleError

LISTING = 1_767_225_600  # 2026-01-01 00:00 UTC
START = LISTING + 30 * DAY
P = 1_826 * DAY
A0 = 140_000_000 * PVC
YEAR = 365 * DAY


def test_figures() -> None:
    assert HALVING_PERIOD == P == 157_766_400
    assert EMISSION_DELAY == 2_592_000
    assert FIRST_PERIOD_AMOUNT == A0
    assert EMISSION_CAP == 280_000_000 * PVC
    assert emission_start(LISTING) == START
    assert [period_amount(k) for k in range(3)] == [A0, A0 // 2, A0 // 4]
    assert period_amount(PERIODS - 1) == 1 and period_amount(PERIODS) == 0
    with pytest.raises(ScheduleError):
        period_amount(-1)


def test_nothing_is_emitted_before_the_start() -> None:
    assert emitted(0, LISTING) == 0
    assert emitted(LISTING, LISTING) == 0
    assert emitted(START - 1, LISTING) == 0
    assert emitted(START, LISTING) == 0
    assert emitted(START + 1, LISTING) == A0 // P  # one second of period 0
    assert emitted(START + 1000, LISTING) == A0 * 1000 // P


def test_halving_boundaries() -> None:
    # the end of each period holds its whole amount; the next second runs at half the rate
    assert emitted(START + P - 1, LISTING) == A0 * (P - 1) // P
    assert emitted(START + P, LISTING) == 140_000_000 * PVC
    assert emitted(START + P + 1, LISTING) == A0 + (A0 // 2) // P
    assert emitted(START + 2 * P - 1, LISTING) == A0 + (A0 // 2) * (P - 1) // P
    assert emitted(START + 2 * P, LISTING) == 210_000_000 * PVC
    assert emitted(START + 3 * P, LISTING) == 245_000_000 * PVC
    assert emitted(START + 4 * P, LISTING) == 262_500_000 * PVC
    # the rate in wei per second halves at each boundary
    first = block_reward(START + P - 2, START + P - 1, LISTING)
    second = block_reward(START + P + 1, START + P + 2, LISTING)
    assert A0 // P <= first <= A0 // P + 1
    assert (A0 // 2) // P <= second <= (A0 // 2) // P + 1


def test_a_block_across_a_period_boundary_is_paid_from_both_periods() -> None:
    parent, child = START + P - 10, START + P + 10
    expected = (A0 - A0 * (P - 10) // P) + (A0 // 2) * 10 // P
    assert block_reward(parent, child, LISTING) == expected
    # split at the boundary, the two halves add up to the same reward
    assert (
        block_reward(parent, START + P, LISTING) + block_reward(START + P, child, LISTING)
        == expected
    )


def test_a_block_across_the_emission_start() -> None:
    assert block_reward(START - 5, START + 5, LISTING) == A0 * 5 // P
    assert block_reward(LISTING, START, LISTING) == 0


def test_emission_ends_just_below_the_cap() -> None:
    # sum_k floor(A0 / 2^k) = 2*A0 - popcount(A0)
    final = 2 * A0 - bin(A0).count("1")
    assert emitted(START + PERIODS * P, LISTING) == final
    assert emitted(START + 10_000 * YEAR, LISTING) == final
    assert emitted(START + (PERIODS - 1) * P, LISTING) == final - 1  # the last period emits 1 wei
    assert final < EMISSION_CAP
    assert emitted(START + 60 * YEAR, LISTING) < EMISSION_CAP


def test_a_block_before_its_parent_is_refused() -> None:
    with pytest.raises(ScheduleError, match="before its parent"):
        block_reward(START + 10, START + 9, LISTING)
    assert block_reward(START + 10, START + 10, LISTING) == 0


def test_dividend_share_is_three_percent_rounded_down() -> None:
    assert dividend_share(100) == 3
    assert dividend_share(33) == 0
    assert dividend_share(34) == 1
    assert dividend_share(0) == 0
    assert dividend_share(1000 * PVC) == 30 * PVC
    assert split_reward(1001) == (30, 971)
    with pytest.raises(EconomicsError):
        dividend_share(-1)


@given(st.integers(min_value=0, max_value=EMISSION_CAP))
def test_dividend_share_plus_the_rest_is_the_reward(reward: int) -> None:
    dividend, rest = split_reward(reward)
    assert dividend == dividend_share(reward) == reward * 3 // 100
    assert dividend + rest == reward
    assert 0 <= dividend <= rest


@settings(max_examples=300, deadline=None)
@given(
    listing=st.integers(min_value=0, max_value=4_000_000_000),
    gaps=st.lists(st.integers(min_value=1, max_value=400 * DAY), min_size=1, max_size=200),
    tail=st.lists(st.integers(min_value=1, max_value=30), max_size=20),
)
def test_block_rewards_over_sixty_years_sum_to_the_emission(
    listing: int, gaps: list[int], tail: list[int]
) -> None:
    """Random block times from genesis (= listing) to 60 years later: the rewards add up to
    emitted(last block) exactly, rewards are never negative, and the cap holds."""
    times = [listing]
    for gap in gaps:
        times.append(times[-1] + gap)
    times.append(max(times[-1] + 1, listing + 60 * YEAR))
    for gap in tail:  # a few ordinary blocks at the end
        times.append(times[-1] + gap)
    rewards = [block_reward(a, b, listing) for a, b in itertools.pairwise(times)]
    assert all(r >= 0 for r in rewards)
    assert sum(rewards) == emitted(times[-1], listing) <= EMISSION_CAP
    assert emitted(times[-1], listing) > 270_000_000 * PVC  # 60 years is past eleven halvings


@given(
    a=st.integers(min_value=0, max_value=100 * YEAR),
    b=st.integers(min_value=0, max_value=100 * YEAR),
)
def test_emitted_is_monotonic(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert emitted(LISTING + lo, LISTING) <= emitted(LISTING + hi, LISTING) <= EMISSION_CAP
