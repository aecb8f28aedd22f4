"""The allocation table and each allocation's installments, to the wei."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from powerverse.economics.allocations import (
    AIRDROP_CLAIM,
    AIRDROP_MAX_CLAIMS,
    ALLOCATION_NAMES,
    ALLOCATIONS,
    PRESALE_GENESIS_PART,
    VESTED_NAMES,
    TokenomicsParams,
    allocation,
    first_may_31_on_or_after,
    installments,
    vesting_installments,
)
from powerverse.economics.constants import DAY, MONTH, PVC, TOTAL_SUPPLY
from powerverse.economics.exceptions import ScheduleError, UnknownAllocation

LISTING = 1_767_225_600  # 2026-01-01 00:00 UTC
GENESIS = 1_767_000_000  # a few days before the listing
MAY_31_2026 = 1_780_185_600
MAY_31_2027 = 1_811_721_600
PARAMS = TokenomicsParams(listing_time=LISTING, genesis_time=GENESIS)
M = 1_000_000 * PVC


def test_the_table() -> None:
    rows = [(a.name, a.share_percent, a.pvc) for a in ALLOCATIONS]
    assert rows == [
        ("block_rewards", 20, 280_000_000),
        ("seed", 10, 140_000_000),
        ("angel", 10, 140_000_000),
        ("series_a", 10, 140_000_000),
        ("presale", 5, 70_000_000),
        ("airdrop", 2, 28_000_000),
        ("team", 15, 210_000_000),
        ("compliance_advisors", 3, 42_000_000),
        ("operations_advisors", 5, 70_000_000),
        ("foundation", 20, 280_000_000),
    ]
    assert sum(a.total for a in ALLOCATIONS) == TOTAL_SUPPLY == 1_400_000_000 * 10**18
    assert sum(a.share_percent for a in ALLOCATIONS) == 100
    for a in ALLOCATIONS:
        assert a.total == TOTAL_SUPPLY * a.share_percent // 100
    assert allocation("airdrop").total == AIRDROP_CLAIM * AIRDROP_MAX_CLAIMS
    assert AIRDROP_CLAIM == 500 * PVC and AIRDROP_MAX_CLAIMS == 56_000
    assert allocation("presale").total * 40 // 100 == PRESALE_GENESIS_PART
    assert tuple(a.name for a in ALLOCATIONS) == ALLOCATION_NAMES
    assert set(VESTED_NAMES) == set(ALLOCATION_NAMES) - {"block_rewards", "airdrop"}


def test_unknown_allocation_is_named() -> None:
    with pytest.raises(UnknownAllocation, match=r"no allocation 'nope'.*seed"):
        allocation("nope")
    with pytest.raises(UnknownAllocation):
        installments("nope", PARAMS)


def test_pooled_allocations_have_no_installments() -> None:
    with pytest.raises(ScheduleError, match="emitted per block"):
        installments("block_rewards", PARAMS)
    with pytest.raises(ScheduleError, match="claimed"):
        vesting_installments("airdrop", PARAMS)


@pytest.mark.parametrize("name", ["seed", "angel", "series_a"])
def test_seed_angel_series_a(name: str) -> None:
    first = LISTING + 60 * DAY
    assert installments(name, PARAMS) == [(first + i * MONTH, 14 * M) for i in range(10)]


def test_presale() -> None:
    rows = installments("presale", PARAMS)
    assert rows == [(GENESIS, 28 * M)] + [(MAY_31_2026 + i * MONTH, 7 * M) for i in range(6)]
    assert vesting_installments("presale", PARAMS) == rows[1:]
    custom = TokenomicsParams(LISTING, GENESIS, presale_unlock_start=LISTING + 5)
    assert installments("presale", custom)[1:] == [
        (LISTING + 5 + i * MONTH, 7 * M) for i in range(6)
    ]


def test_team() -> None:
    rows = installments("team", PARAMS)
    assert rows[0] == (LISTING + 60 * DAY, 10_500_000 * PVC)
    first_after_cliff = LISTING + 60 * DAY + 1_095 * DAY
    assert rows[1:] == [(first_after_cliff + i * MONTH, 19_950_000 * PVC) for i in range(10)]


def test_advisors_and_foundation_put_the_remainder_on_the_last_installment() -> None:
    compliance = installments("compliance_advisors", PARAMS)
    assert compliance == [(LISTING + 30 * DAY + i * MONTH, 875_000 * PVC) for i in range(48)]
    operations = installments("operations_advisors", PARAMS)
    each = 1_458_333_333333333333333333
    assert operations[:47] == [(LISTING + 30 * DAY + i * MONTH, each) for i in range(47)]
    assert operations[47] == (LISTING + 30 * DAY + 47 * MONTH, 1_458_333_333333333333333349)
    foundation = installments("foundation", PARAMS)
    each = 5_833_333_333333333333333333
    assert foundation[:47] == [(LISTING + 60 * DAY + i * MONTH, each) for i in range(47)]
    assert foundation[47] == (LISTING + 60 * DAY + 47 * MONTH, 5_833_333_333333333333333349)


@given(
    listing=st.integers(min_value=0, max_value=4_000_000_000),
    genesis=st.integers(min_value=0, max_value=4_000_000_000),
    presale=st.none() | st.integers(min_value=0, max_value=4_000_000_000),
)
def test_installments_add_up_exactly_and_vesting_times_increase(
    listing: int, genesis: int, presale: int | None
) -> None:
    params = TokenomicsParams(listing, genesis, presale)
    for name in VESTED_NAMES:
        rows = installments(name, params)
        assert sum(amount for _, amount in rows) == allocation(name).total
        assert all(amount > 0 for _, amount in rows)
        vesting = vesting_installments(name, params)
        times = [t for t, _ in vesting]
        assert times == sorted(set(times))  # strictly increasing: what Vesting.sol demands


def test_default_presale_unlock_start_is_the_next_31_may() -> None:
    assert first_may_31_on_or_after(LISTING) == MAY_31_2026
    assert first_may_31_on_or_after(MAY_31_2026) == MAY_31_2026  # exactly 31 May 00:00
    assert first_may_31_on_or_after(MAY_31_2026 - 1) == MAY_31_2026
    assert first_may_31_on_or_after(MAY_31_2026 + 1) == MAY_31_2027
    assert first_may_31_on_or_after(MAY_31_2026 + 12 * 3600) == MAY_31_2027
    assert first_may_31_on_or_after(1_717_113_600) == 1_717_113_600  # 2024 (a leap year)
    assert TokenomicsParams(MAY_31_2026, 0).presale_start == MAY_31_2026
    assert TokenomicsParams(MAY_31_2026 + 1, 0).presale_start == MAY_31_2027
    assert TokenomicsParams(LISTING, 0, presale_unlock_start=7).presale_start == 7


@pytest.mark.parametrize(
    "kwargs",
    [
        {"listing_time": -1, "genesis_time": 0},
        {"listing_time": 0, "genesis_time": -5},
        {"listing_time": 0, "genesis_time": 0, "presale_unlock_start": -1},
        {"listing_time": True, "genesis_time": 0},
        {"listing_time": "1", "genesis_time": 0},
    ],
)
def test_bad_params_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ScheduleError, match="must be a non-negative integer"):
        TokenomicsParams(**kwargs)  # type: ignore[arg-type]
