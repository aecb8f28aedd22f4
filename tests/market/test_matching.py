"""The matching engine: every filter, ranking, ties, the exclusion report, the index, bad input.

The property test compares `match` over a ListingIndex (built, then edited incrementally)
with a plain linear scan written here from the documented rules.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerverse.market.matching import (
    CONSTRAINT_ORDER,
    Coordinates,
    Cpu,
    DemandOrder,
    Disk,
    DiskType,
    DuplicateListingError,
    Gpu,
    InvalidCoordinatesError,
    InvalidListingError,
    InvalidOrderError,
    Listing,
    ListingIndex,
    MatchResult,
    Memory,
    Specs,
    UnknownListingError,
    distance_km,
    listing_from_json,
    listing_to_json,
    match,
    score,
)
from powerverse.market.matching_model import WEI_PER_PVC, pvc

PVC = WEI_PER_PVC
DAY = 86_400
T0 = 1_800_000_000
BERLIN = Coordinates(52_520_000, 13_405_000)
PARIS = Coordinates(48_856_600, 2_352_200)
TOKYO = Coordinates(35_676_200, 139_650_300)


def specs(
    *,
    cores: int = 8,
    clock: int = 3_000,
    gpu: Gpu | None = None,
    memory_mib: int = 32_768,
    memory_mhz: int = 3_200,
    disk: Disk | None = None,
) -> Specs:
    return Specs(
        Cpu("AMD EPYC 7763", clock, cores),
        gpu if gpu is not None else Gpu("NVIDIA A100 80GB", 81_920, 6_912, 1),
        Memory(memory_mib, memory_mhz),
        disk if disk is not None else Disk(DiskType.SSD, 1_000, 3_000, 2_000),
    )


def listing(token_id: int, **kw: Any) -> Listing:
    """A rentable listing that any `order()` matches unless overridden."""
    base: dict[str, Any] = {
        "token_id": token_id,
        "provider": "0x" + "11" * 20,
        "price_per_day": 1 * PVC,
        "available_from": T0,
        "available_until": T0 + 365 * DAY,
        "min_days": 1,
        "max_days": 90,
        "perform_points": 1_000,
        "specs": specs(),
        "region": "eu-central",
        "coordinates": BERLIN,
        "reputation": 50_000,
    }
    base.update(kw)
    return Listing(**base)


def order(**kw: Any) -> DemandOrder:
    base: dict[str, Any] = {"period_days": 7, "budget_wei": 100 * PVC, "start": T0}
    base.update(kw)
    return DemandOrder(**base)


def ids(result: MatchResult) -> list[int]:
    return [m.listing.token_id for m in result.matches]


# -- each filter ---------------------------------------------------------------------------

# (constraint name, order fields, a listing that passes, a listing that fails)
FILTERS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("rentable", {}, {}, {"verified": False}),
    ("rentable", {}, {}, {"frozen": True}),
    ("rentable", {}, {}, {"paused": True}),
    ("cpu_cores", {"min_cpu_cores": 8}, {"specs": specs(cores=8)}, {"specs": specs(cores=7)}),
    (
        "cpu_clock",
        {"min_cpu_clock_mhz": 3_000},
        {"specs": specs(clock=3_000)},
        {"specs": specs(clock=2_999)},
    ),
    (
        "gpu_model",
        {"gpu_model": " a100 "},
        {"specs": specs(gpu=Gpu("NVIDIA A100 40GB", 40_960, 6_912, 1))},
        {"specs": specs(gpu=Gpu("NVIDIA H100", 81_920, 16_896, 1))},
    ),
    ("gpu_model", {"gpu_model": "a100"}, {}, {"specs": specs(gpu=Gpu())}),
    (
        "gpu_memory",
        {"min_gpu_memory_mib": 81_920},
        {},
        {"specs": specs(gpu=Gpu("NVIDIA A100 40GB", 40_960, 6_912, 1))},
    ),
    (
        "gpu_count",
        {"min_gpu_count": 2},
        {"specs": specs(gpu=Gpu("L4", 24_576, 7_424, 2))},
        {"specs": specs(gpu=Gpu("L4", 24_576, 7_424, 1))},
    ),
    (
        "gpu_cuda_cores",
        {"min_gpu_cuda_cores": 7_000},
        {"specs": specs(gpu=Gpu("L4", 24_576, 7_424, 1))},
        {},
    ),
    (
        "memory_size",
        {"min_memory_mib": 32_768},
        {},
        {"specs": specs(memory_mib=32_767)},
    ),
    (
        "memory_frequency",
        {"min_memory_frequency_mhz": 4_800},
        {"specs": specs(memory_mhz=4_800)},
        {},
    ),
    (
        "disk_type",
        {"min_disk_type": DiskType.SSD},
        {"specs": specs(disk=Disk(DiskType.NVME, 1_000, 3_000, 2_000))},
        {"specs": specs(disk=Disk(DiskType.HDD, 1_000, 3_000, 2_000))},
    ),
    (
        "disk_size",
        {"min_disk_size_gb": 1_000},
        {},
        {"specs": specs(disk=Disk(DiskType.SSD, 999, 3_000, 2_000))},
    ),
    (
        "disk_read",
        {"min_disk_read_mbps": 3_000},
        {},
        {"specs": specs(disk=Disk(DiskType.SSD, 1_000, 2_999, 2_000))},
    ),
    (
        "disk_write",
        {"min_disk_write_mbps": 2_000},
        {},
        {"specs": specs(disk=Disk(DiskType.SSD, 1_000, 3_000, 1_999))},
    ),
    ("period", {"period_days": 7}, {"min_days": 7}, {"min_days": 8}),
    ("period", {"period_days": 7}, {"max_days": 7}, {"min_days": 1, "max_days": 6}),
    ("window", {"start": T0}, {"available_from": T0}, {"available_from": T0 + 1}),
    (
        "window",
        {"start": T0, "period_days": 7},
        {"available_until": T0 + 7 * DAY},
        {"available_until": T0 + 7 * DAY - 1},
    ),
    ("budget", {"budget_wei": 7 * PVC}, {}, {"price_per_day": PVC + 1}),
    ("region", {"region": "EU-Central"}, {}, {"region": "us-east"}),
    (
        "distance",
        {"coordinates": BERLIN, "max_distance_km": 1_000.0},
        {"coordinates": PARIS},
        {"coordinates": TOKYO},
    ),
    ("reputation", {"min_reputation": 8_000}, {"reputation": 8_000}, {"reputation": 7_999}),
]


@pytest.mark.parametrize(("name", "order_kw", "good", "bad"), FILTERS)
def test_each_filter_keeps_the_passing_listing_and_counts_the_failing_one(
    name: str, order_kw: dict[str, Any], good: dict[str, Any], bad: dict[str, Any]
) -> None:
    index = ListingIndex([listing(1, **good), listing(2, **bad)])
    result = match(order(**order_kw), index)
    assert ids(result) == [1]
    assert result.matched == 1 and result.considered == 2
    report = result.constraint(name)
    assert report.excluded == 1
    assert report.matches_if_relaxed == 2
    others = [c for c in result.constraints if c.name != name]
    assert all(c.excluded == 0 and c.matches_if_relaxed == 1 for c in others)


def test_unset_constraints_are_not_reported_and_the_order_is_fixed() -> None:
    result = match(order(), ListingIndex([listing(1)]))
    assert [c.name for c in result.constraints] == ["rentable", "period", "window", "budget"]
    full = order(
        min_cpu_cores=1,
        min_cpu_clock_mhz=1,
        gpu_model="a",
        min_gpu_memory_mib=1,
        min_gpu_count=1,
        min_gpu_cuda_cores=1,
        min_memory_mib=1,
        min_memory_frequency_mhz=1,
        min_disk_type=DiskType.HDD,
        min_disk_size_gb=1,
        min_disk_read_mbps=1,
        min_disk_write_mbps=1,
        region="eu-central",
        coordinates=BERLIN,
        max_distance_km=1.0,
        min_reputation=1,
    )
    names = [c.name for c in match(full, ListingIndex([listing(1)])).constraints]
    assert tuple(names) == CONSTRAINT_ORDER


def test_budget_is_exact_on_uint256_prices_that_round_to_the_same_float() -> None:
    big = 2**200
    assert float(big + 1) == float(big)
    index = ListingIndex(
        [
            listing(1, price_per_day=big),
            listing(2, price_per_day=big + 1),
            listing(3, price_per_day=big - 1),
        ]
    )
    result = match(order(period_days=1, budget_wei=big), index)
    assert sorted(ids(result)) == [1, 3]
    result = match(order(period_days=2, budget_wei=2 * big + 3), index)
    assert sorted(ids(result)) == [1, 2, 3]
    result = match(order(period_days=3, budget_wei=3 * big - 1), index)
    assert ids(result) == [3]


def test_region_unknown_to_the_index_excludes_everything() -> None:
    result = match(order(region="mars-1"), ListingIndex([listing(1), listing(2)]))
    assert result.matched == 0
    assert result.constraint("region").excluded == 2


def test_coordinates_without_max_distance_rank_but_do_not_filter() -> None:
    index = ListingIndex([listing(1, coordinates=TOKYO), listing(2, coordinates=PARIS)])
    result = match(order(coordinates=BERLIN), index)
    assert ids(result) == [2, 1]
    assert "distance" not in [c.name for c in result.constraints]
    paris = result.matches[0]
    assert paris.distance_km is not None
    assert paris.distance_km == pytest.approx(878, abs=5)  # Berlin-Paris great circle


def test_distance_boundary_is_inclusive() -> None:
    d = distance_km(BERLIN, PARIS)
    index = ListingIndex([listing(1, coordinates=PARIS)])
    assert match(order(coordinates=BERLIN, max_distance_km=d), index).matched == 1
    assert (
        match(order(coordinates=BERLIN, max_distance_km=math.nextafter(d, 0)), index).matched == 0
    )
    here = ListingIndex([listing(1, coordinates=BERLIN)])
    assert match(order(coordinates=BERLIN, max_distance_km=0.0), here).matched == 1


def test_distance_km_known_values() -> None:
    assert distance_km(BERLIN, BERLIN) == 0.0
    assert distance_km(BERLIN, PARIS) == pytest.approx(877.5, abs=2)
    pole_to_pole = distance_km(Coordinates(90_000_000, 0), Coordinates(-90_000_000, 0))
    assert pole_to_pole == pytest.approx(math.pi * 6371.0088)
    assert distance_km(PARIS, TOKYO) == pytest.approx(distance_km(TOKYO, PARIS))


# -- ranking ---------------------------------------------------------------------------------


def test_score_formula() -> None:
    item = listing(1, perform_points=3_000, price_per_day=2 * PVC, reputation=25_000)
    assert score(item, order()) == pytest.approx(1_500 * 0.75)
    near = order(coordinates=BERLIN)
    assert score(item, near) == pytest.approx(1_500 * 0.75)
    far = listing(
        1, perform_points=3_000, price_per_day=2 * PVC, reputation=25_000, coordinates=PARIS
    )
    d = distance_km(BERLIN, PARIS)
    assert score(far, near) == pytest.approx(1_500 * 0.75 / (1 + d / 1_000))


def test_ranking_by_value_then_reputation_then_distance() -> None:
    index = ListingIndex(
        [
            listing(1, perform_points=1_000, price_per_day=1 * PVC),  # 1000 / PVC
            listing(2, perform_points=3_000, price_per_day=2 * PVC),  # 1500 / PVC
            listing(3, perform_points=3_000, price_per_day=2 * PVC, reputation=0),  # 750
            listing(4, perform_points=900, price_per_day=PVC // 2),  # 1800 but far away
        ]
    )
    assert ids(match(order(), index)) == [4, 2, 1, 3]
    far = ListingIndex([*index, listing(5, perform_points=900, price_per_day=PVC // 2)])
    far.update(listing(4, perform_points=900, price_per_day=PVC // 2, coordinates=TOKYO))
    assert ids(match(order(coordinates=BERLIN), far)) == [5, 2, 1, 3, 4]


def test_equal_scores_rank_the_cheaper_then_the_lower_token_id() -> None:
    items = [
        listing(9, perform_points=2_000, price_per_day=2 * PVC),
        listing(7, perform_points=1_000, price_per_day=1 * PVC),
        listing(8, perform_points=1_000, price_per_day=1 * PVC),
        listing(3, perform_points=2_000, price_per_day=2 * PVC),
    ]
    for arrangement in (items, list(reversed(items))):
        index = ListingIndex()
        for item in arrangement:
            index.add(item)
        result = match(order(), index)
        assert ids(result) == [7, 8, 3, 9]
        assert len({m.score for m in result.matches}) == 1


def test_limit_keeps_the_best_and_counts_all() -> None:
    index = ListingIndex(listing(i, perform_points=100 * i) for i in range(1, 51))
    result = match(order(), index, limit=3)
    assert ids(result) == [50, 49, 48]
    assert result.matched == 50
    assert result.matches[0].total_price_wei == 7 * PVC
    assert result.message == "50 matches among 50 listings"


# -- the exclusion report --------------------------------------------------------------------


def test_exclusion_report_counts_first_failures_and_single_relaxations() -> None:
    small_gpu = specs(gpu=Gpu("NVIDIA A100 40GB", 40_960, 6_912, 1))
    index = ListingIndex(
        [
            listing(1),  # matches
            listing(2, paused=True, specs=small_gpu),  # rentable first, also GPU memory
            listing(3, specs=small_gpu),  # GPU memory only
            listing(4, specs=small_gpu, price_per_day=50 * PVC),  # GPU memory, then budget
            listing(5, price_per_day=50 * PVC),  # budget only
            listing(6, price_per_day=50 * PVC),  # budget only
            listing(7, price_per_day=50 * PVC, reputation=100),  # budget and reputation
            listing(8, reputation=100),  # reputation only
        ]
    )
    wanted = order(min_gpu_memory_mib=80 * 1024, budget_wei=70 * PVC, min_reputation=25_000)
    result = match(wanted, index, limit=10)
    assert ids(result) == [1]
    report = {c.name: (c.excluded, c.matches_if_relaxed) for c in result.constraints}
    assert report == {
        "rentable": (1, 1),
        "gpu_memory": (2, 2),  # 3, 4 fail it first (2 is counted above); without it 1, 3
        "period": (0, 1),
        "window": (0, 1),
        "budget": (3, 3),  # 5, 6, 7 first; without it 1, 5, 6
        "reputation": (1, 2),  # 8 first; without it 1, 8
    }
    assert result.message == (
        "only 1 match among 8 listings (fewer than 10 asked): "
        "1 excluded by listing status (unverified, frozen or paused), "
        "2 excluded by GPU memory >= 80 GiB, "
        "3 excluded by budget 70 PVC for 7 days (price <= 10 PVC/day), "
        "1 excluded by reputation >= 25,000 (2.5 stars); "
        "relaxing budget alone would give 3 matches, "
        "relaxing GPU memory alone would give 2 matches, "
        "relaxing reputation alone would give 2 matches"
    )


def test_no_match_message_names_the_constraints() -> None:
    index = ListingIndex(listing(i, price_per_day=(i + 1) * PVC) for i in range(1, 13))
    result = match(order(budget_wei=7 * PVC, min_gpu_memory_mib=80 * 1024 + 1), index)
    assert result.matched == 0 and result.matches == ()
    assert result.message == (
        "no match among 12 listings: 12 excluded by GPU memory >= 81,921 MiB; "
        "no single constraint relaxed alone would give a match"
    )
    assert result.constraint("budget").matches_if_relaxed == 0
    cheap = order(budget_wei=21 * PVC, min_gpu_memory_mib=80 * 1024 + 1)
    hint = match(cheap, index).message
    assert hint.endswith("; relaxing GPU memory alone would give 2 matches")


def test_empty_index() -> None:
    result = match(order(), ListingIndex())
    assert result.matched == 0 and result.considered == 0
    assert result.message == "no match among 0 listings"
    assert all(c.excluded == 0 for c in result.constraints)


def test_result_json_has_ranked_matches_report_and_message() -> None:
    doc = match(order(coordinates=PARIS), ListingIndex([listing(1), listing(2)])).to_json()
    assert [m["token_id"] for m in doc["matches"]] == ["1", "2"]
    assert doc["matches"][0]["total_price_wei"] == str(7 * PVC)
    assert doc["matches"][0]["distance_km"] == pytest.approx(877.5, abs=2)
    assert doc["matched"] == 2 and doc["limit"] == 10
    assert doc["constraints"][0] == {
        "name": "rentable",
        "label": "listing status",
        "description": "listing status (unverified, frozen or paused)",
        "excluded": 0,
        "matches_if_relaxed": 2,
        "relaxable": False,
    }
    assert doc["message"].startswith("only 2 matches among 2 listings")


# -- the index -------------------------------------------------------------------------------


def test_index_add_update_remove_and_slot_reuse() -> None:
    index = ListingIndex()
    for i in range(1, 41):  # beyond the initial capacity
        index.add(listing(i))
    assert len(index) == 40 and 40 in index and 41 not in index
    with pytest.raises(DuplicateListingError, match="token id 3"):
        index.add(listing(3))
    removed = index.remove(3)
    assert removed.token_id == 3 and 3 not in index
    with pytest.raises(UnknownListingError, match="token id 3"):
        index.remove(3)
    with pytest.raises(UnknownListingError):
        index.update(listing(3))
    with pytest.raises(UnknownListingError):
        index.get(3)
    slots = index.slots
    index.add(listing(99, perform_points=10**6))
    assert index.slots == slots  # reused the freed slot
    result = match(order(), index, limit=1)
    assert ids(result) == [99] and result.matched == 40
    index.update(listing(99, paused=True))
    assert match(order(), index).constraint("rentable").excluded == 1
    index.upsert(listing(99))
    index.upsert(listing(100))
    assert len(index) == 41
    assert [x.token_id for x in index][:3] == [1, 2, 4]
    assert index.get(100).token_id == 100


def test_index_refuses_what_is_not_a_listing_and_duplicates_at_build() -> None:
    with pytest.raises(InvalidListingError, match="expected a Listing"):
        ListingIndex([{"token_id": 1}])  # type: ignore[list-item]
    with pytest.raises(DuplicateListingError, match="listed twice"):
        ListingIndex([listing(1), listing(1)])


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"period_days": 0}, "period_days must be at least 1"),
        ({"period_days": True}, "period_days must be an integer"),
        ({"budget_wei": -1}, "budget_wei must be between 0"),
        ({"budget_wei": 2**256}, "budget_wei must be between 0"),
        ({"start": -5}, "start must be between 0"),
        ({"min_cpu_cores": -1}, "min_cpu_cores must be between 0"),
        ({"min_gpu_memory_mib": 1.5}, "min_gpu_memory_mib must be an integer"),
        ({"gpu_model": "  "}, "gpu_model must not be empty"),
        ({"region": ""}, "region must not be empty"),
        ({"max_distance_km": 10.0}, "needs coordinates"),
        ({"coordinates": BERLIN, "max_distance_km": -1.0}, "must not be negative"),
        ({"coordinates": BERLIN, "max_distance_km": math.inf}, "finite number"),
        ({"coordinates": (1, 2)}, "coordinates must be Coordinates"),
        ({"min_disk_type": "ssd"}, "min_disk_type must be a DiskType"),
        ({"min_reputation": 50_001}, "min_reputation must be between 0 and 50000"),
    ],
)
def test_bad_orders_are_refused_with_the_field_named(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidOrderError, match=message):
        order(**kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"price_per_day": 0}, "price_per_day must be positive"),
        ({"token_id": -1}, "token_id must be between 0"),
        ({"provider": ""}, "provider must not be empty"),
        ({"available_until": T0 - 1}, "is before available_from"),
        ({"min_days": 0}, "min_days must be at least 1"),
        ({"min_days": 5, "max_days": 4}, "below min_days"),
        ({"reputation": 50_001}, "reputation must be between 0 and 50000"),
        ({"verified": 1}, "verified must be a bool"),
        ({"specs": specs(cores=-1)}, "cpu.cores must be between 0"),
        ({"specs": "fast"}, "specs must be Specs"),
        ({"available_from": 2**63}, "available_from must be between 0"),
    ],
)
def test_bad_listings_are_refused_with_the_field_named(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidListingError, match=message):
        listing(**{"token_id": 1, **kw})


def test_bad_coordinates_and_match_arguments() -> None:
    with pytest.raises(InvalidCoordinatesError, match="latitude"):
        Coordinates(90_000_001, 0)
    with pytest.raises(InvalidCoordinatesError, match="longitude"):
        Coordinates(0, -180_000_001)
    with pytest.raises(InvalidCoordinatesError, match="finite"):
        Coordinates.from_degrees(math.nan, 0)
    index = ListingIndex([listing(1)])
    for bad in (0, -1, True, 2.0):
        with pytest.raises(InvalidOrderError, match="limit must be a positive integer"):
            match(order(), index, limit=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidOrderError, match="expected a DemandOrder"):
        match({"period_days": 1}, index)  # type: ignore[arg-type]
    with pytest.raises(InvalidOrderError, match="expected a ListingIndex"):
        match(order(), [listing(1)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown disk type"):
        DiskType.parse("tape")


def test_listing_json_round_trip_and_errors() -> None:
    item = listing(2**200, price_per_day=2**255, coordinates=Coordinates(-33_868_800, 151_209_300))
    doc = listing_to_json(item)
    assert doc["token_id"] == str(2**200) and doc["specs"]["disk"]["type"] == "SSD"
    assert listing_from_json(doc) == item
    broken = dict(doc)
    del broken["region"]
    with pytest.raises(InvalidListingError, match="missing the field 'region'"):
        listing_from_json(broken)
    with pytest.raises(InvalidListingError, match="price_per_day_wei must be an integer"):
        listing_from_json({**doc, "price_per_day_wei": "1e18"})
    with pytest.raises(InvalidListingError, match="unknown disk type"):
        listing_from_json({**doc, "specs": {**doc["specs"], "disk": {"type": "tape"}}})


def test_pvc_formatting() -> None:
    assert pvc(0) == "0 PVC"
    assert pvc(PVC) == "1 PVC"
    assert pvc(3 * PVC // 2) == "1.5 PVC"
    assert pvc(1) == "0.000000000000000001 PVC"
    assert pvc(100 * PVC // 7) == "~14.285714 PVC"
    assert pvc(1_234_567 * PVC) == "1,234,567 PVC"


# -- the property: index == linear scan ------------------------------------------------------


def _failures(o: DemandOrder, x: Listing) -> list[str]:
    """The constraints `x` fails, in the documented order (written from the docstring)."""
    s = x.specs
    out = []

    def need(name: str, ok: bool) -> None:
        if not ok:
            out.append(name)

    need("rentable", x.verified and not x.frozen and not x.paused)
    for name, want, have in (
        ("cpu_cores", o.min_cpu_cores, s.cpu.cores),
        ("cpu_clock", o.min_cpu_clock_mhz, s.cpu.clock_mhz),
    ):
        need(name, want is None or have >= want)
    need("gpu_model", o.gpu_model is None or o.gpu_model.strip().lower() in s.gpu.model.lower())
    for name, want, have in (
        ("gpu_memory", o.min_gpu_memory_mib, s.gpu.memory_mib),
        ("gpu_count", o.min_gpu_count, s.gpu.count),
        ("gpu_cuda_cores", o.min_gpu_cuda_cores, s.gpu.cuda_cores),
        ("memory_size", o.min_memory_mib, s.memory.size_mib),
        ("memory_frequency", o.min_memory_frequency_mhz, s.memory.frequency_mhz),
        ("disk_type", o.min_disk_type, s.disk.type),
        ("disk_size", o.min_disk_size_gb, s.disk.size_gb),
        ("disk_read", o.min_disk_read_mbps, s.disk.read_mbps),
        ("disk_write", o.min_disk_write_mbps, s.disk.write_mbps),
    ):
        need(name, want is None or have >= want)
    need("period", x.min_days <= o.period_days <= x.max_days)
    need(
        "window",
        x.available_from <= o.start and o.start + o.period_days * DAY <= x.available_until,
    )
    need("budget", x.price_per_day * o.period_days <= o.budget_wei)
    need("region", o.region is None or o.region.strip().lower() == x.region.strip().lower())
    if o.max_distance_km is not None:
        assert o.coordinates is not None
        need("distance", distance_km(o.coordinates, x.coordinates) <= o.max_distance_km)
    need("reputation", o.min_reputation is None or x.reputation >= o.min_reputation)
    return out


def _linear_scan(o: DemandOrder, listings: list[Listing], limit: int) -> dict[str, Any]:
    fails = {x.token_id: _failures(o, x) for x in listings}
    ok = [x for x in listings if not fails[x.token_id]]
    ok.sort(key=lambda x: (-score(x, o), x.price_per_day, x.token_id))
    excluded: dict[str, int] = {}
    relaxed: dict[str, int] = {}
    for f in fails.values():
        if f:
            excluded[f[0]] = excluded.get(f[0], 0) + 1
        if len(f) == 1:
            relaxed[f[0]] = relaxed.get(f[0], 0) + 1
    return {
        "ranked": [(x.token_id, score(x, o)) for x in ok[:limit]],
        "matched": len(ok),
        "excluded": excluded,
        "relaxed": {k: v + len(ok) for k, v in relaxed.items()},
    }


small = st.sampled_from
coords = st.builds(
    Coordinates,
    st.one_of(
        small([0, 90_000_000, -90_000_000, 45_000_000]), st.integers(-90_000_000, 90_000_000)
    ),
    st.one_of(
        small([0, 180_000_000, -180_000_000, 90_000_000]), st.integers(-180_000_000, 180_000_000)
    ),
)
prices = st.one_of(
    small([PVC, 2 * PVC, 3 * PVC, 2**200, 2**200 + 1, 2**200 - 1]), st.integers(1, 10 * PVC)
)
gpus = st.one_of(
    st.just(Gpu()),
    st.builds(
        Gpu,
        small(["NVIDIA A100 80GB", "nvidia a100 40gb", "RTX 4090", "H100"]),
        small([0, 24_576, 40_960, 81_920]),
        small([0, 6_912, 16_384]),
        st.integers(0, 4),
    ),
)
spec_values = st.builds(
    Specs,
    st.builds(Cpu, st.just("cpu"), small([2_000, 3_000, 3_500]), small([1, 2, 4, 8, 64])),
    gpus,
    st.builds(Memory, small([4_096, 32_768, 65_536]), small([2_400, 3_200])),
    st.builds(
        Disk, st.sampled_from(list(DiskType)), small([100, 1_000]), small([500, 3_000]), small([1])
    ),
)


@st.composite
def listings_and_order(draw: st.DrawFn) -> tuple[list[Listing], DemandOrder]:
    n = draw(st.integers(0, 30))
    token_ids = draw(st.lists(st.integers(0, 2**64), min_size=n, max_size=n, unique=True))
    items = []
    for token_id in token_ids:
        start = T0 + draw(small([0, DAY, -DAY]))
        min_days = draw(st.integers(1, 5))
        items.append(
            Listing(
                token_id=token_id,
                provider="0xabc",
                price_per_day=draw(prices),
                available_from=start,
                available_until=start + draw(small([3, 7, 8, 30])) * DAY + draw(small([0, -1])),
                min_days=min_days,
                max_days=min_days + draw(st.integers(0, 10)),
                perform_points=draw(small([0, 1, 1_000, 2_000, 10**12])),
                specs=draw(spec_values),
                region=draw(small(["eu", "EU ", "us", "ap"])),
                coordinates=draw(coords),
                reputation=draw(st.one_of(small([0, 25_000, 50_000]), st.integers(0, 50_000))),
                verified=draw(st.booleans()),
                frozen=draw(small([False, False, True])),
                paused=draw(small([False, False, True])),
            )
        )

    def maybe(values: list[Any]) -> st.SearchStrategy[Any]:
        return st.none() | small(values)

    with_coords = draw(st.booleans())
    o = DemandOrder(
        period_days=draw(st.integers(1, 8)),
        budget_wei=draw(st.one_of(prices, st.integers(0, 100 * PVC), small([2**201 + 2]))),
        start=T0 + draw(small([0, DAY, -DAY, 2 * DAY])),
        min_cpu_cores=draw(maybe([2, 8])),
        min_cpu_clock_mhz=draw(maybe([3_000])),
        gpu_model=draw(maybe(["a100", "A100 80", "4090", "x"])),
        min_gpu_memory_mib=draw(maybe([24_576, 81_920])),
        min_gpu_count=draw(maybe([1, 2])),
        min_gpu_cuda_cores=draw(maybe([6_912])),
        min_memory_mib=draw(maybe([32_768])),
        min_memory_frequency_mhz=draw(maybe([3_200])),
        min_disk_type=draw(maybe(list(DiskType))),
        min_disk_size_gb=draw(maybe([1_000, 2**70])),
        min_disk_read_mbps=draw(maybe([3_000])),
        min_disk_write_mbps=draw(maybe([1])),
        region=draw(maybe(["eu", "Us", "sa"])),
        coordinates=draw(coords) if with_coords else None,
        max_distance_km=draw(maybe([0.0, 500.0, 5_000.0, 20_015.1])) if with_coords else None,
        min_reputation=draw(maybe([25_000, 50_000])),
    )
    return items, o


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=listings_and_order(), limit=st.integers(1, 12), edits=st.data())
def test_match_equals_a_linear_scan(
    case: tuple[list[Listing], DemandOrder], limit: int, edits: st.DataObject
) -> None:
    items, o = case
    # build half at once, add the rest one by one, then remove and re-add or change some
    split = edits.draw(st.integers(0, len(items)))
    index = ListingIndex(items[:split])
    for item in items[split:]:
        index.add(item)
    current = {x.token_id: x for x in items}
    for item in edits.draw(st.lists(st.sampled_from(items), max_size=5)) if items else []:
        action = edits.draw(small(["remove", "update", "readd"]))
        if action == "remove" and item.token_id in current:
            index.remove(item.token_id)
            del current[item.token_id]
        elif action == "update":
            changed = dataclasses.replace(item, paused=not item.paused, reputation=7_777)
            index.upsert(changed)
            current[item.token_id] = changed
        elif item.token_id not in current:
            index.add(item)
            current[item.token_id] = item
    expected = _linear_scan(o, list(current.values()), limit)
    result = match(o, index, limit)
    assert [(m.listing.token_id, m.score) for m in result.matches] == expected["ranked"]
    assert result.matched == expected["matched"]
    assert result.considered == len(current)
    for report in result.constraints:
        assert report.excluded == expected["excluded"].get(report.name, 0), report.name
        assert report.matches_if_relaxed == expected["relaxed"].get(
            report.name, expected["matched"]
        ), report.name
    assert sum(r.excluded for r in result.constraints) + result.matched == len(current)


def test_the_bench_runs_on_a_small_set() -> None:
    from bench import matching as bench

    figures = bench.run(listings=300, orders=20, seed=1, limit=5)
    assert figures["listings"] == 300 and figures["orders"] == 20
    assert figures["match_ms"]["p50"] <= figures["match_ms"]["p99"]
    assert 0 <= figures["matched"]["median"] <= 300
    same = bench.synthetic_listings(50, 7)
    assert same == bench.synthetic_listings(50, 7)
