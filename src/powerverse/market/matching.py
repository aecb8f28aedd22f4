"""Off-chain matching: recommend listed resources for a demand order, and say why not.

`match(order, index, limit)` keeps the listings that pass every constraint of the order, ranks
them by `score`, and reports for each constraint how many listings it excluded and how many
would match if that constraint alone were dropped.

Constraints, in the fixed order used to count exclusions (a listing is counted under the
first one it fails; unset order fields are not constraints):

 1. `rentable`          verified, not frozen, not paused (always)
 2. `cpu_cores`         cores >= min_cpu_cores
 3. `cpu_clock`         clock >= min_cpu_clock_mhz
 4. `gpu_model`         gpu_model is a case-insensitive substring of the GPU model
 5. `gpu_memory`        GPU memory >= min_gpu_memory_mib
 6. `gpu_count`         GPU count >= min_gpu_count
 7. `gpu_cuda_cores`    CUDA cores >= min_gpu_cuda_cores
 8. `memory_size`       memory >= min_memory_mib
 9. `memory_frequency`  memory frequency >= min_memory_frequency_mhz
10. `disk_type`         disk type >= min_disk_type (HDD < SSD < NVMe)
11. `disk_size`         disk size >= min_disk_size_gb
12. `disk_read`         disk read speed >= min_disk_read_mbps
13. `disk_write`        disk write speed >= min_disk_write_mbps
14. `period`            min_days <= period_days <= max_days (always)
15. `window`            available_from <= start and start + period <= available_until (always)
16. `budget`            price_per_day × period_days <= budget_wei (always)
17. `region`            same region, case-insensitive
18. `distance`          great-circle distance <= max_distance_km
19. `reputation`        provider reputation >= min_reputation

Score (higher is better):

    score = value × (0.5 + reputation / 100,000) × 1 / (1 + distance_km / 1,000)

where value = performPoints per PVC per day (performPoints × 10**18 / price_per_day), the
reputation factor runs from 0.5 (no stars) to 1.0 (five stars), and the distance factor
(only when the order gives coordinates) halves the score of a resource 1,000 km away.
Equal scores rank the lower price first, then the lower token id.

The index computes all of this on numpy columns; float results that land within a small band
of a boundary (a distance near max_distance_km, a score near the last place taken) are
settled with the exact pure-Python `distance_km` and `score`, so results equal a linear scan
with those functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from powerverse.market.matching_index import BoolCol, FloatCol, IntCol, ListingIndex
from powerverse.market.matching_model import (
    INT63_MAX,
    REPUTATION_MAX,
    REPUTATION_PER_STAR,
    WEI_PER_PVC,
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
    MatchingError,
    Memory,
    Specs,
    UnknownListingError,
    listing_from_json,
    listing_to_json,
    pvc,
)

__all__ = [
    "CONSTRAINT_ORDER",
    "ConstraintReport",
    "Coordinates",
    "Cpu",
    "DemandOrder",
    "Disk",
    "DiskType",
    "DuplicateListingError",
    "Gpu",
    "InvalidCoordinatesError",
    "InvalidListingError",
    "InvalidOrderError",
    "Listing",
    "ListingIndex",
    "Match",
    "MatchResult",
    "MatchingError",
    "Memory",
    "Specs",
    "UnknownListingError",
    "distance_km",
    "listing_from_json",
    "listing_to_json",
    "match",
    "score",
]

EARTH_RADIUS_KM = 6371.0088
DISTANCE_HALVING_KM = 1_000.0
DEFAULT_LIMIT = 10

CONSTRAINT_ORDER = (
    "rentable",
    "cpu_cores",
    "cpu_clock",
    "gpu_model",
    "gpu_memory",
    "gpu_count",
    "gpu_cuda_cores",
    "memory_size",
    "memory_frequency",
    "disk_type",
    "disk_size",
    "disk_read",
    "disk_write",
    "period",
    "window",
    "budget",
    "region",
    "distance",
    "reputation",
)

# Relative width of the band around a float boundary that is re-checked exactly. numpy's and
# libm's sin/asin may differ by a few ulps, which near-antipodal points amplify to ~0.1 km.
_SCORE_BAND = 1e-4
_DISTANCE_BAND_REL = 1e-6
_DISTANCE_BAND_KM = 0.2


def distance_km(a: Coordinates, b: Coordinates) -> float:
    """Great-circle distance (haversine, mean Earth radius) in km."""
    lat1 = math.radians(a.lat_micro / 1_000_000)
    lat2 = math.radians(b.lat_micro / 1_000_000)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon_micro / 1_000_000) - math.radians(a.lon_micro / 1_000_000)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def score(listing: Listing, order: DemandOrder) -> float:
    """The ranking score of a listing for an order (see the module docstring)."""
    value = listing.perform_points * WEI_PER_PVC / listing.price_per_day
    result = value * (0.5 + listing.reputation / (2 * REPUTATION_MAX))
    if order.coordinates is not None:
        d = distance_km(order.coordinates, listing.coordinates)
        result = result * (1.0 / (1.0 + d / DISTANCE_HALVING_KM))
    return result


@dataclass(frozen=True, slots=True)
class Match:
    """One recommended listing with its score, total price and distance."""

    listing: Listing
    score: float
    total_price_wei: int
    distance_km: float | None

    def to_json(self) -> dict[str, Any]:
        """JSON types; wei as a decimal string."""
        return {
            "token_id": str(self.listing.token_id),
            "score": self.score,
            "total_price_wei": str(self.total_price_wei),
            "distance_km": self.distance_km,
            "listing": listing_to_json(self.listing),
        }


@dataclass(frozen=True, slots=True)
class ConstraintReport:
    """What one constraint did: listings it excluded first, matches without it."""

    name: str
    label: str
    description: str
    excluded: int
    matches_if_relaxed: int
    relaxable: bool

    def to_json(self) -> dict[str, Any]:
        """JSON types."""
        return {
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "excluded": self.excluded,
            "matches_if_relaxed": self.matches_if_relaxed,
            "relaxable": self.relaxable,
        }


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Ranked matches (at most `limit`), the total matched, and the exclusion report."""

    matches: tuple[Match, ...]
    matched: int
    considered: int
    limit: int
    constraints: tuple[ConstraintReport, ...]

    def constraint(self, name: str) -> ConstraintReport:
        """The report of one active constraint; KeyError if the order did not set it."""
        for report in self.constraints:
            if report.name == name:
                return report
        raise KeyError(name)

    @property
    def message(self) -> str:
        """One human sentence: how many matched and, if too few, what excluded the rest."""
        n, total = self.matched, self.considered
        if n >= self.limit:
            return f"{n:,} {_plural(n, 'match', 'matches')} among {total:,} listings"
        head = (
            f"no match among {total:,} listings"
            if n == 0
            else f"only {n:,} {_plural(n, 'match', 'matches')} among {total:,} listings "
            f"(fewer than {self.limit} asked)"
        )
        parts = [
            f"{c.excluded:,} excluded by {c.description}" for c in self.constraints if c.excluded
        ]
        text = head + (": " + ", ".join(parts) if parts else "")
        hints = sorted(
            (c for c in self.constraints if c.relaxable and c.matches_if_relaxed > n),
            key=lambda c: -c.matches_if_relaxed,
        )[:3]
        if hints:
            text += "; " + ", ".join(
                f"relaxing {c.label} alone would give {c.matches_if_relaxed:,} "
                f"{_plural(c.matches_if_relaxed, 'match', 'matches')}"
                for c in hints
            )
        elif n == 0 and total:
            text += "; no single constraint relaxed alone would give a match"
        return text

    def to_json(self) -> dict[str, Any]:
        """JSON types: matches in rank order, the report in constraint order, the message."""
        return {
            "matched": self.matched,
            "considered": self.considered,
            "limit": self.limit,
            "message": self.message,
            "matches": [m.to_json() for m in self.matches],
            "constraints": [c.to_json() for c in self.constraints],
        }


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


@dataclass(frozen=True, slots=True)
class _Check:
    name: str
    label: str
    description: str
    passes: BoolCol


def match(order: DemandOrder, index: ListingIndex, limit: int = DEFAULT_LIMIT) -> MatchResult:
    """The best `limit` listings of `index` for `order`, and what excluded the others."""
    if not isinstance(order, DemandOrder):
        raise InvalidOrderError(f"expected a DemandOrder, got {type(order).__name__}")
    if not isinstance(index, ListingIndex):
        raise InvalidOrderError(f"expected a ListingIndex, got {type(index).__name__}")
    if type(limit) is not int or limit < 1:
        raise InvalidOrderError(f"limit must be a positive integer, got {limit!r}")
    alive = index.bool_col("alive")
    distances = _distances(order, index)
    checks = _checks(order, index, distances)
    # prefix[i]: passes the first i checks; suffix[i]: passes checks i.. (both among the alive)
    prefix = [alive]
    for check in checks:
        prefix.append(prefix[-1] & check.passes)
    suffix = [alive] * (len(checks) + 1)
    for i in range(len(checks) - 1, -1, -1):
        suffix[i] = checks[i].passes & suffix[i + 1]
    counts = [int(np.count_nonzero(p)) for p in prefix]
    reports = tuple(
        ConstraintReport(
            name=c.name,
            label=c.label,
            description=c.description,
            excluded=counts[i] - counts[i + 1],
            matches_if_relaxed=int(np.count_nonzero(prefix[i] & suffix[i + 1])),
            relaxable=c.name != "rentable",
        )
        for i, c in enumerate(checks)
    )
    matched = prefix[-1]
    return MatchResult(
        matches=_rank(order, index, matched, distances, limit),
        matched=counts[-1],
        considered=counts[0],
        limit=limit,
        constraints=reports,
    )


def _ge(column: IntCol, threshold: int) -> BoolCol:
    """column >= threshold for thresholds of any size."""
    if threshold > INT63_MAX:
        return np.zeros(len(column), dtype=np.bool_)
    return column >= threshold


def _mib(value: int) -> str:
    return f"{value // 1024:,} GiB" if value and value % 1024 == 0 else f"{value:,} MiB"


def _when(ts: int) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, ValueError, OSError):
        return f"unix time {ts}"


def _checks(order: DemandOrder, ix: ListingIndex, distances: FloatCol | None) -> list[_Check]:
    """One mask per active constraint, in CONSTRAINT_ORDER."""
    o = order
    checks = [
        _Check(
            "rentable",
            "listing status",
            "listing status (unverified, frozen or paused)",
            ix.bool_col("rentable").copy(),
        )
    ]
    minimums: tuple[tuple[str, int | None, str, str], ...] = (
        ("cpu_cores", o.min_cpu_cores, "CPU cores", f"CPU cores >= {o.min_cpu_cores}"),
        ("cpu_clock", o.min_cpu_clock_mhz, "CPU clock", f"CPU clock >= {o.min_cpu_clock_mhz} MHz"),
    )
    for name, value, label, text in minimums:
        if value is not None:
            checks.append(_Check(name, label, text, _ge(ix.int_col(name), value)))
    if o.gpu_model is not None:
        needle = o.gpu_model.strip().casefold()
        codes = [c for c, model in enumerate(ix.gpu_models.names) if needle in model]
        passes = np.isin(ix.int_col("gpu_model_code"), np.array(codes, dtype=np.int64))
        checks.append(_Check("gpu_model", "GPU model", f"GPU model ~ {o.gpu_model!r}", passes))
    disk_type = None if o.min_disk_type is None else int(o.min_disk_type)
    disk_label = "" if o.min_disk_type is None else o.min_disk_type.label
    rest: tuple[tuple[str, int | None, str, str], ...] = (
        ("gpu_memory", o.min_gpu_memory_mib, "GPU memory", f">= {_mib(o.min_gpu_memory_mib or 0)}"),
        ("gpu_count", o.min_gpu_count, "GPU count", f">= {o.min_gpu_count}"),
        ("gpu_cuda_cores", o.min_gpu_cuda_cores, "CUDA cores", f">= {o.min_gpu_cuda_cores or 0:,}"),
        ("memory_size", o.min_memory_mib, "memory", f">= {_mib(o.min_memory_mib or 0)}"),
        (
            "memory_frequency",
            o.min_memory_frequency_mhz,
            "memory frequency",
            f">= {o.min_memory_frequency_mhz} MHz",
        ),
        ("disk_type", disk_type, "disk type", f"{disk_label} or better"),
        ("disk_size", o.min_disk_size_gb, "disk size", f">= {o.min_disk_size_gb or 0:,} GB"),
        ("disk_read", o.min_disk_read_mbps, "disk read", f">= {o.min_disk_read_mbps or 0:,} MB/s"),
        (
            "disk_write",
            o.min_disk_write_mbps,
            "disk write",
            f">= {o.min_disk_write_mbps or 0:,} MB/s",
        ),
    )
    for name, value, label, text in rest:
        if value is not None:
            checks.append(_Check(name, label, f"{label} {text}", _ge(ix.int_col(name), value)))
    d = o.period_days
    checks.append(
        _Check(
            "period",
            "rental period",
            f"rental period of {d} {_plural(d, 'day', 'days')} (listing min/max days)",
            (ix.int_col("min_days") <= d) & _ge(ix.int_col("max_days"), d),
        )
    )
    checks.append(
        _Check(
            "window",
            "start time",
            f"availability from {_when(o.start)} for {d} {_plural(d, 'day', 'days')}",
            (ix.int_col("available_from") <= o.start)
            & _ge(ix.int_col("available_until"), o.start + o.period_seconds),
        )
    )
    checks.append(
        _Check(
            "budget",
            "budget",
            f"budget {pvc(o.budget_wei)} for {d} {_plural(d, 'day', 'days')} "
            f"(price <= {pvc(o.max_price_per_day)}/day)",
            _budget_mask(o.max_price_per_day, ix),
        )
    )
    if o.region is not None:
        code = ix.regions.codes.get(o.region.strip().casefold())
        region_col = ix.int_col("region_code")
        passes = np.zeros(len(region_col), dtype=np.bool_) if code is None else region_col == code
        checks.append(_Check("region", "region", f"region {o.region!r}", passes))
    if o.max_distance_km is not None and o.coordinates is not None and distances is not None:
        lat, lon = o.coordinates.degrees
        checks.append(
            _Check(
                "distance",
                "distance",
                f"distance <= {o.max_distance_km:g} km from ({lat:.4f}, {lon:.4f})",
                _distance_mask(o.max_distance_km, o.coordinates, distances, ix),
            )
        )
    if o.min_reputation is not None:
        r = o.min_reputation
        checks.append(
            _Check(
                "reputation",
                "reputation",
                f"reputation >= {r:,} ({r / REPUTATION_PER_STAR:g} stars)",
                _ge(ix.int_col("reputation"), r),
            )
        )
    return checks


def _budget_mask(max_price: int, ix: ListingIndex) -> BoolCol:
    """price_per_day <= max_price, exact on uint256 prices kept as float64."""
    limit = float(max_price)
    price = ix.float_col("price")
    # float() rounds monotonically: only equal floats can hide either answer
    passes = price < limit
    ties = np.flatnonzero((price == limit) & ix.bool_col("alive"))
    if ties.size:
        exact = ix.bool_col("price_exact")[ties]
        passes[ties[exact]] = int(limit) <= max_price
        for slot in ties[~exact].tolist():
            passes[slot] = ix.at(slot).price_per_day <= max_price
    return passes


def _distances(order: DemandOrder, ix: ListingIndex) -> FloatCol | None:
    """Haversine distance of every slot from the order's coordinates (approximate)."""
    if order.coordinates is None:
        return None
    lat0 = math.radians(order.coordinates.lat_micro / 1_000_000)
    lon0 = math.radians(order.coordinates.lon_micro / 1_000_000)
    lat, lon = ix.float_col("lat"), ix.float_col("lon")
    h = np.sin((lat - lat0) / 2) ** 2 + math.cos(lat0) * ix.float_col("cos_lat") * (
        np.sin((lon - lon0) / 2) ** 2
    )
    result: FloatCol = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
    return result


def _distance_mask(
    max_km: float, origin: Coordinates, distances: FloatCol, ix: ListingIndex
) -> BoolCol:
    """distance <= max_km, boundary cases settled with the exact `distance_km`."""
    band = max_km * _DISTANCE_BAND_REL + _DISTANCE_BAND_KM
    passes = distances <= max_km
    near = np.flatnonzero((np.abs(distances - max_km) <= band) & ix.bool_col("alive"))
    for slot in near.tolist():
        passes[slot] = distance_km(origin, ix.at(slot).coordinates) <= max_km
    return passes


def _rank(
    order: DemandOrder,
    ix: ListingIndex,
    matched: BoolCol,
    distances: FloatCol | None,
    limit: int,
) -> tuple[Match, ...]:
    """Top `limit` of the matched slots by exact score, then price, then token id."""
    slots = np.flatnonzero(matched)
    if slots.size == 0:
        return ()
    if slots.size > limit:
        approx = ix.float_col("perform_points")[slots] * float(WEI_PER_PVC)
        approx = approx / ix.float_col("price")[slots]
        approx = approx * (0.5 + ix.int_col("reputation")[slots] / (2 * REPUTATION_MAX))
        if distances is not None:
            approx = approx * (1.0 / (1.0 + distances[slots] / DISTANCE_HALVING_KM))
        cut = slots.size - limit
        kth = float(np.partition(approx, cut)[cut])
        slots = slots[approx >= kth * (1 - _SCORE_BAND)]
    ranked = []
    for slot in slots.tolist():
        listing = ix.at(slot)
        ranked.append((-score(listing, order), listing.price_per_day, listing.token_id, listing))
    ranked.sort(key=lambda r: r[:3])
    return tuple(
        Match(
            listing=listing,
            score=-neg_score,
            total_price_wei=listing.price_per_day * order.period_days,
            distance_km=(
                None
                if order.coordinates is None
                else distance_km(order.coordinates, listing.coordinates)
            ),
        )
        for neg_score, _, _, listing in ranked[:limit]
    )
