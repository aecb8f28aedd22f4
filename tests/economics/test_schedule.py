"""The whole table at many instants, including one second before and at every unlock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from powerverse.economics.allocations import ALLOCATION_NAMES, TokenomicsParams
from powerverse.economics.constants import DAY, PVC, TOTAL_SUPPLY
from powerverse.economics.emission import emitted
from powerverse.economics.schedule import AllocationStatus, schedule_at, unlocked_at

LISTING = 1_767_225_600  # 2026-01-01 00:00 UTC
GENESIS = 1_766_000_000  # about two weeks earlier
MAY_31_2026 = 1_780_185_600
MONTH = 2_592_000
M = 1_000_000 * PVC
PARAMS = TokenomicsParams(listing_time=LISTING, genesis_time=GENESIS)


def _steps(first: int, amounts: list[int]) -> list[tuple[int, int]]:
    return [(first + i * MONTH, a) for i, a in enumerate(amounts)]


# The table written out independently of powerverse.economics.allocations.
OPS, OPS_LAST = 1_458_333_333333333333333333, 1_458_333_333333333333333349
FDN, FDN_LAST = 5_833_333_333333333333333333, 5_833_333_333333333333333349
SPEC: dict[str, list[tuple[int, int]]] = {
    "seed": _steps(LISTING + 60 * DAY, [14 * M] * 10),
    "angel": _steps(LISTING + 60 * DAY, [14 * M] * 10),
    "series_a": _steps(LISTING + 60 * DAY, [14 * M] * 10),
    "presale": [(GENESIS, 28 * M), *_steps(MAY_31_2026, [7 * M] * 6)],
    "airdrop": [(GENESIS, 28 * M)],
    "team": [
        (LISTING + 60 * DAY, 10_500_000 * PVC),
        *_steps(LISTING + (60 + 1095) * DAY, [19_950_000 * PVC] * 10),
    ],
    "compliance_advisors": _steps(LISTING + 30 * DAY, [875_000 * PVC] * 48),
    "operations_advisors": _steps(LISTING + 30 * DAY, [OPS] * 47 + [OPS_LAST]),
    "foundation": _steps(LISTING + 60 * DAY, [FDN] * 47 + [FDN_LAST]),
}
TOTALS = {
    "block_rewards": 280 * M,
    "seed": 140 * M,
    "angel": 140 * M,
    "series_a": 140 * M,
    "presale": 70 * M,
    "airdrop": 28 * M,
    "team": 210 * M,
    "compliance_advisors": 42 * M,
    "operations_advisors": 70 * M,
    "foundation": 280 * M,
}
START = LISTING + 30 * DAY
PERIOD = 1_826 * DAY
EMISSION_BOUNDARIES = [START + k * PERIOD for k in range(13)]


def _expected(name: str, t: int) -> int:
    if name == "block_rewards":
        # closed form over whole periods, linear within the current one
        if t <= START:
            return 0
        k, s = divmod(t - START, PERIOD)
        a0 = 140 * M
        return sum(a0 >> j for j in range(k)) + (a0 >> k) * s // PERIOD
    return sum(amount for when, amount in SPEC[name] if when <= t)


def _boundaries() -> list[int]:
    times = {when for rows in SPEC.values() for when, _ in rows}
    times.update(EMISSION_BOUNDARIES)
    return sorted(times)


def test_spec_totals() -> None:
    for name, rows in SPEC.items():
        assert sum(a for _, a in rows) == TOTALS[name], name
    assert sum(TOTALS.values()) == TOTAL_SUPPLY


@pytest.mark.parametrize("boundary", _boundaries())
def test_every_allocation_one_second_before_and_at_each_unlock(boundary: int) -> None:
    for t in (boundary - 1, boundary):
        rows = schedule_at(PARAMS, t)
        assert [r.name for r in rows] == list(ALLOCATION_NAMES)
        for row in rows:
            expected = _expected(row.name, t)
            assert row == AllocationStatus(
                row.name, TOTALS[row.name], expected, TOTALS[row.name] - expected
            ), (row.name, t)


def test_each_unlock_changes_exactly_its_own_allocations() -> None:
    for name, rows in SPEC.items():
        for when, amount in rows:
            before = unlocked_at(name, PARAMS, when - 1)
            at = unlocked_at(name, PARAMS, when)
            assert at - before == amount, (name, when)


def test_known_instants() -> None:
    def unlocked(t: int) -> dict[str, int]:
        return {r.name: r.unlocked for r in schedule_at(PARAMS, t)}

    assert unlocked(GENESIS - 1) == dict.fromkeys(ALLOCATION_NAMES, 0)
    at_genesis = unlocked(GENESIS)
    assert at_genesis["presale"] == 28 * M and at_genesis["airdrop"] == 28 * M
    assert sum(at_genesis.values()) == 56 * M
    day60 = unlocked(LISTING + 60 * DAY)
    assert day60 == {
        "block_rewards": emitted(LISTING + 60 * DAY, LISTING),
        "seed": 14 * M,
        "angel": 14 * M,
        "series_a": 14 * M,
        "presale": 28 * M,
        "airdrop": 28 * M,
        "team": 10_500_000 * PVC,
        "compliance_advisors": 1_750_000 * PVC,
        "operations_advisors": 2 * OPS,
        "foundation": FDN,
    }
    assert day60["block_rewards"] == 140 * M * 30 * DAY // PERIOD
    everything = unlocked(LISTING + 100 * 365 * DAY)
    assert {n: v for n, v in everything.items() if n != "block_rewards"} == {
        n: v for n, v in TOTALS.items() if n != "block_rewards"
    }
    assert 279 * M < everything["block_rewards"] < 280 * M


@pytest.mark.parametrize("t", [0, GENESIS, LISTING, LISTING + 1_000 * DAY, 2**40])
def test_rows_add_up(t: int) -> None:
    rows = schedule_at(PARAMS, t)
    assert sum(r.total for r in rows) == TOTAL_SUPPLY
    for r in rows:
        assert r.unlocked + r.locked == r.total and 0 <= r.unlocked <= r.total


def test_listing_on_31_may_starts_the_presale_that_instant() -> None:
    params = TokenomicsParams(listing_time=MAY_31_2026, genesis_time=MAY_31_2026)
    assert unlocked_at("presale", params, MAY_31_2026 - 1) == 0
    assert unlocked_at("presale", params, MAY_31_2026) == 35 * M  # 40% + the first 10%


def test_explicit_presale_unlock_start() -> None:
    params = TokenomicsParams(LISTING, GENESIS, presale_unlock_start=LISTING + 90 * DAY)
    at: Callable[[int], int] = lambda t: unlocked_at("presale", params, t)  # noqa: E731
    assert at(LISTING + 90 * DAY - 1) == 28 * M
    assert at(LISTING + 90 * DAY) == 35 * M
    assert at(LISTING + 90 * DAY + 5 * MONTH) == 70 * M
