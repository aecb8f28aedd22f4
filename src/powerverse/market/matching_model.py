"""What the matching engine reads: listings, demand orders, and their validation.

A `Listing` mirrors one listed ResourceNFT token (whitepaper 5.2: performPoints and
performPara {cpu, gpu, memory, disk}) plus the Market listing terms (price per day,
available window, rental period bounds), the location, the flags that decide whether it can
be rented at all, and the provider's reputation, which the caller fills in (the Reputation
contract is read by the loader, not by the engine).

Units: prices and budgets in wei (1 PVC = 10**18 wei), times in unix seconds, memory in MiB,
disk size in GB, disk speeds in MB/s, clocks in MHz, coordinates in integer microdegrees.
Reputation uses the Reputation contract's scale: 10,000 units per star, 0..50,000 (five stars),
so the loader copies `Reputation.reputationOf(provider)` unchanged.

Every value is checked when the object is built; bad values raise `InvalidListingError` or
`InvalidOrderError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from powerverse.market.exceptions import MarketError

WEI_PER_PVC = 10**18
SECONDS_PER_DAY = 86_400
REPUTATION_MAX = 50_000  # Reputation.MAX_SCORE
REPUTATION_PER_STAR = 10_000  # Reputation.SCALE
INT63_MAX = 2**63 - 1
UINT256_MAX = 2**256 - 1
MAX_LAT_MICRO = 90_000_000
MAX_LON_MICRO = 180_000_000


class MatchingError(MarketError, ValueError):
    """Base class of the matching engine's errors."""


class InvalidListingError(MatchingError):
    """A listing has a missing or out-of-range field."""


class InvalidOrderError(MatchingError):
    """A demand order (or a match request) has a missing or out-of-range field."""


class InvalidCoordinatesError(MatchingError):
    """Coordinates outside ±90° latitude / ±180° longitude, or not whole microdegrees."""


class DuplicateListingError(MatchingError):
    """`ListingIndex.add` got a token id the index already holds."""


class UnknownListingError(MatchingError):
    """The index holds no listing with that token id."""


class DiskType(IntEnum):
    """Disk classes, ordered: a demand for SSD accepts SSD and NVMe."""

    HDD = 0
    SSD = 1
    NVME = 2

    @classmethod
    def parse(cls, text: str) -> DiskType:
        """`hdd`, `ssd` or `nvme`, any case."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown disk type {text!r} (HDD, SSD or NVMe)") from None

    @property
    def label(self) -> str:
        """HDD, SSD or NVMe."""
        return "NVMe" if self is DiskType.NVME else self.name


def _uint(error: type[MatchingError], name: str, value: object, maximum: int = INT63_MAX) -> int:
    """`value` as an int in 0..maximum (bools refused), or `error` naming the field."""
    if type(value) is not int:
        raise error(f"{name} must be an integer, got {value!r}")
    if not 0 <= value <= maximum:
        raise error(f"{name} must be between 0 and {maximum}, got {value}")
    return value


def _text(error: type[MatchingError], name: str, value: object, *, empty: bool) -> str:
    if not isinstance(value, str):
        raise error(f"{name} must be a string, got {value!r}")
    if not empty and not value.strip():
        raise error(f"{name} must not be empty")
    return value


@dataclass(frozen=True, slots=True)
class Coordinates:
    """A point on Earth in integer microdegrees (as stored on chain)."""

    lat_micro: int
    lon_micro: int

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("latitude", self.lat_micro, MAX_LAT_MICRO),
            ("longitude", self.lon_micro, MAX_LON_MICRO),
        ):
            if type(value) is not int or not -limit <= value <= limit:
                raise InvalidCoordinatesError(
                    f"{name} must be an integer number of microdegrees within ±{limit}, "
                    f"got {value!r}"
                )

    @classmethod
    def from_degrees(cls, lat: float, lon: float) -> Coordinates:
        """Round decimal degrees to microdegrees."""
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise InvalidCoordinatesError(f"coordinates must be finite, got {lat}, {lon}")
        return cls(round(lat * 1_000_000), round(lon * 1_000_000))

    @property
    def degrees(self) -> tuple[float, float]:
        """(latitude, longitude) in degrees."""
        return self.lat_micro / 1_000_000, self.lon_micro / 1_000_000


@dataclass(frozen=True, slots=True)
class Cpu:
    """CPU of a virtual resource."""

    model: str
    clock_mhz: int
    cores: int


@dataclass(frozen=True, slots=True)
class Gpu:
    """GPUs of a virtual resource (count 0 and an empty model: none)."""

    model: str = ""
    memory_mib: int = 0
    cuda_cores: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True)
class Memory:
    """Main memory of a virtual resource."""

    size_mib: int
    frequency_mhz: int


@dataclass(frozen=True, slots=True)
class Disk:
    """Disk of a virtual resource."""

    type: DiskType
    size_gb: int
    read_mbps: int
    write_mbps: int


@dataclass(frozen=True, slots=True)
class Specs:
    """performPara of the ResourceNFT."""

    cpu: Cpu
    gpu: Gpu
    memory: Memory
    disk: Disk

    def check(self, error: type[MatchingError]) -> None:
        """Raise `error` naming the first bad field."""
        _text(error, "cpu.model", self.cpu.model, empty=True)
        _text(error, "gpu.model", self.gpu.model, empty=True)
        for name, value in (
            ("cpu.clock_mhz", self.cpu.clock_mhz),
            ("cpu.cores", self.cpu.cores),
            ("gpu.memory_mib", self.gpu.memory_mib),
            ("gpu.cuda_cores", self.gpu.cuda_cores),
            ("gpu.count", self.gpu.count),
            ("memory.size_mib", self.memory.size_mib),
            ("memory.frequency_mhz", self.memory.frequency_mhz),
            ("disk.size_gb", self.disk.size_gb),
            ("disk.read_mbps", self.disk.read_mbps),
            ("disk.write_mbps", self.disk.write_mbps),
        ):
            _uint(error, name, value)
        if not isinstance(self.disk.type, DiskType):
            raise error(f"disk.type must be a DiskType, got {self.disk.type!r}")


@dataclass(frozen=True, slots=True)
class Listing:
    """One listed resource: token, terms, parameters, location, provider standing."""

    token_id: int
    provider: str
    price_per_day: int
    available_from: int
    available_until: int
    min_days: int
    max_days: int
    perform_points: int
    specs: Specs
    region: str
    coordinates: Coordinates
    reputation: int
    verified: bool = True
    frozen: bool = False
    paused: bool = False

    def __post_init__(self) -> None:
        e = InvalidListingError
        _uint(e, "token_id", self.token_id, UINT256_MAX)
        _text(e, "provider", self.provider, empty=False)
        if _uint(e, "price_per_day", self.price_per_day, UINT256_MAX) == 0:
            raise e("price_per_day must be positive")
        _uint(e, "available_from", self.available_from)
        if _uint(e, "available_until", self.available_until) < self.available_from:
            raise e(
                f"available_until ({self.available_until}) is before available_from "
                f"({self.available_from})"
            )
        if _uint(e, "min_days", self.min_days) == 0:
            raise e("min_days must be at least 1")
        if _uint(e, "max_days", self.max_days) < self.min_days:
            raise e(f"max_days ({self.max_days}) is below min_days ({self.min_days})")
        _uint(e, "perform_points", self.perform_points)
        if not isinstance(self.specs, Specs):
            raise e(f"specs must be Specs, got {self.specs!r}")
        self.specs.check(e)
        _text(e, "region", self.region, empty=True)
        if not isinstance(self.coordinates, Coordinates):
            raise e(f"coordinates must be Coordinates, got {self.coordinates!r}")
        _uint(e, "reputation", self.reputation, REPUTATION_MAX)
        for name in ("verified", "frozen", "paused"):
            if not isinstance(getattr(self, name), bool):
                raise e(f"{name} must be a bool")

    @property
    def rentable(self) -> bool:
        """Verified, not frozen, not paused."""
        return self.verified and not self.frozen and not self.paused


@dataclass(frozen=True, slots=True)
class DemandOrder:
    """A rental demand: minimum specs (any subset), period, budget, place, standing.

    `None` means "no requirement". `gpu_model` is a case-insensitive substring of the GPU
    model. `max_distance_km` needs `coordinates`; `coordinates` alone only ranks by distance.
    `region` is compared case-insensitively with the listing's region.
    """

    period_days: int
    budget_wei: int
    start: int
    min_cpu_cores: int | None = None
    min_cpu_clock_mhz: int | None = None
    gpu_model: str | None = None
    min_gpu_memory_mib: int | None = None
    min_gpu_count: int | None = None
    min_gpu_cuda_cores: int | None = None
    min_memory_mib: int | None = None
    min_memory_frequency_mhz: int | None = None
    min_disk_type: DiskType | None = None
    min_disk_size_gb: int | None = None
    min_disk_read_mbps: int | None = None
    min_disk_write_mbps: int | None = None
    region: str | None = None
    coordinates: Coordinates | None = None
    max_distance_km: float | None = None
    min_reputation: int | None = None
    _minimums: tuple[str, ...] = field(
        default=(
            "min_cpu_cores",
            "min_cpu_clock_mhz",
            "min_gpu_memory_mib",
            "min_gpu_count",
            "min_gpu_cuda_cores",
            "min_memory_mib",
            "min_memory_frequency_mhz",
            "min_disk_size_gb",
            "min_disk_read_mbps",
            "min_disk_write_mbps",
        ),
        init=False,
        repr=False,
        compare=False,
    )

    def __post_init__(self) -> None:
        e = InvalidOrderError
        if _uint(e, "period_days", self.period_days) == 0:
            raise e("period_days must be at least 1")
        _uint(e, "budget_wei", self.budget_wei, UINT256_MAX)
        _uint(e, "start", self.start)
        for name in self._minimums:
            value = getattr(self, name)
            if value is not None:
                _uint(e, name, value, UINT256_MAX)
        if self.gpu_model is not None:
            _text(e, "gpu_model", self.gpu_model, empty=False)
        if self.region is not None:
            _text(e, "region", self.region, empty=False)
        if self.min_disk_type is not None and not isinstance(self.min_disk_type, DiskType):
            raise e(f"min_disk_type must be a DiskType, got {self.min_disk_type!r}")
        if self.coordinates is not None and not isinstance(self.coordinates, Coordinates):
            raise e(f"coordinates must be Coordinates, got {self.coordinates!r}")
        if self.max_distance_km is not None:
            d = self.max_distance_km
            if isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d):
                raise e(f"max_distance_km must be a finite number, got {d!r}")
            if d < 0:
                raise e(f"max_distance_km must not be negative, got {d}")
            if self.coordinates is None:
                raise e("max_distance_km needs coordinates to measure from")
        if self.min_reputation is not None:
            _uint(e, "min_reputation", self.min_reputation, REPUTATION_MAX)

    @property
    def period_seconds(self) -> int:
        """The rental period in seconds."""
        return self.period_days * SECONDS_PER_DAY

    @property
    def max_price_per_day(self) -> int:
        """The highest price per day the budget pays for the whole period."""
        return self.budget_wei // self.period_days


def pvc(wei: int) -> str:
    """Wei as PVC for messages: `1.5 PVC`, `~2.333333 PVC` (truncated to 6 decimals above 1)."""
    whole, frac = divmod(wei, WEI_PER_PVC)
    digits = f"{frac:018d}".rstrip("0")
    mark = ""
    if whole and len(digits) > 6:
        digits, mark = digits[:6].rstrip("0"), "~"
    return f"{mark}{whole:,}" + (f".{digits}" if digits else "") + " PVC"


def listing_to_json(listing: Listing) -> dict[str, Any]:
    """A listing as JSON types (wei and token ids as decimal strings where they may be big)."""
    s = listing.specs
    lat, lon = listing.coordinates.degrees
    return {
        "token_id": str(listing.token_id),
        "provider": listing.provider,
        "price_per_day_wei": str(listing.price_per_day),
        "available_from": listing.available_from,
        "available_until": listing.available_until,
        "min_days": listing.min_days,
        "max_days": listing.max_days,
        "perform_points": listing.perform_points,
        "specs": {
            "cpu": {"model": s.cpu.model, "clock_mhz": s.cpu.clock_mhz, "cores": s.cpu.cores},
            "gpu": {
                "model": s.gpu.model,
                "memory_mib": s.gpu.memory_mib,
                "cuda_cores": s.gpu.cuda_cores,
                "count": s.gpu.count,
            },
            "memory": {"size_mib": s.memory.size_mib, "frequency_mhz": s.memory.frequency_mhz},
            "disk": {
                "type": s.disk.type.label,
                "size_gb": s.disk.size_gb,
                "read_mbps": s.disk.read_mbps,
                "write_mbps": s.disk.write_mbps,
            },
        },
        "region": listing.region,
        "coordinates": {"lat": lat, "lon": lon},
        "reputation": listing.reputation,
        "verified": listing.verified,
        "frozen": listing.frozen,
        "paused": listing.paused,
    }


def listing_from_json(doc: Any) -> Listing:
    """The inverse of `listing_to_json`; any missing or mistyped field is an InvalidListingError."""
    try:
        sp = doc["specs"]
        cpu, gpu, mem, disk = sp["cpu"], sp["gpu"], sp["memory"], sp["disk"]
        return Listing(
            token_id=_int_field(doc["token_id"], "token_id"),
            provider=doc["provider"],
            price_per_day=_int_field(doc["price_per_day_wei"], "price_per_day_wei"),
            available_from=doc["available_from"],
            available_until=doc["available_until"],
            min_days=doc["min_days"],
            max_days=doc["max_days"],
            perform_points=doc["perform_points"],
            specs=Specs(
                Cpu(cpu["model"], cpu["clock_mhz"], cpu["cores"]),
                Gpu(gpu["model"], gpu["memory_mib"], gpu["cuda_cores"], gpu["count"]),
                Memory(mem["size_mib"], mem["frequency_mhz"]),
                Disk(
                    DiskType.parse(disk["type"]),
                    disk["size_gb"],
                    disk["read_mbps"],
                    disk["write_mbps"],
                ),
            ),
            region=doc["region"],
            coordinates=Coordinates.from_degrees(
                float(doc["coordinates"]["lat"]), float(doc["coordinates"]["lon"])
            ),
            reputation=doc["reputation"],
            verified=doc.get("verified", True),
            frozen=doc.get("frozen", False),
            paused=doc.get("paused", False),
        )
    except InvalidListingError:
        raise
    except KeyError as exc:
        raise InvalidListingError(f"listing is missing the field {exc.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidListingError(f"bad listing: {exc}") from None


def _int_field(value: Any, name: str) -> int:
    """An integer given as an int or a decimal string."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if type(value) is int:
        return value
    raise InvalidListingError(f"{name} must be an integer or a decimal string, got {value!r}")
