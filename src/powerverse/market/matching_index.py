"""ListingIndex: listings kept as numpy columns so one match scans 100,000 of them in a few ms.

Each listing occupies a slot; every attribute the filters or the score read is a column
indexed by slot. A match computes one boolean mask per constraint over all slots (a handful
of vector comparisons each), which is also exactly what the exclusion report needs: how many
listings each constraint removes and how many would match without it. Adding, updating and
removing a listing (the chain's events) writes one slot; removed slots are reused.

Values that do not fit a 64-bit column are kept exactly beside it: prices (uint256 wei) are
compared through float64 with the rare ties settled on the exact integers, and strings (GPU
model, region) are interned to integer codes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from powerverse.market.matching_model import (
    DuplicateListingError,
    InvalidListingError,
    Listing,
    UnknownListingError,
)

IntCol = npt.NDArray[np.int64]
FloatCol = npt.NDArray[np.float64]
BoolCol = npt.NDArray[np.bool_]

# int64 columns read straight from a listing; then the interned string codes
_INT_READERS: tuple[tuple[str, Callable[[Listing], int]], ...] = (
    ("cpu_cores", lambda x: x.specs.cpu.cores),
    ("cpu_clock", lambda x: x.specs.cpu.clock_mhz),
    ("gpu_memory", lambda x: x.specs.gpu.memory_mib),
    ("gpu_count", lambda x: x.specs.gpu.count),
    ("gpu_cuda_cores", lambda x: x.specs.gpu.cuda_cores),
    ("memory_size", lambda x: x.specs.memory.size_mib),
    ("memory_frequency", lambda x: x.specs.memory.frequency_mhz),
    ("disk_type", lambda x: int(x.specs.disk.type)),
    ("disk_size", lambda x: x.specs.disk.size_gb),
    ("disk_read", lambda x: x.specs.disk.read_mbps),
    ("disk_write", lambda x: x.specs.disk.write_mbps),
    ("min_days", lambda x: x.min_days),
    ("max_days", lambda x: x.max_days),
    ("available_from", lambda x: x.available_from),
    ("available_until", lambda x: x.available_until),
    ("reputation", lambda x: x.reputation),
)
_INT_COLUMNS = (*(name for name, _ in _INT_READERS), "gpu_model_code", "region_code")
_FLOAT_COLUMNS = ("price", "perform_points", "lat", "lon", "cos_lat")
_BOOL_COLUMNS = ("alive", "rentable", "price_exact")


def _key(text: str) -> str:
    """How GPU models and regions compare: case-insensitive, outer spaces ignored."""
    return text.strip().casefold()


_T = TypeVar("_T", bound=np.generic)


def _grown(column: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """The column at twice its capacity, zero-filled."""
    return np.concatenate([column, np.zeros_like(column)])


class _Interner:
    """Distinct strings to small integer codes (codes are never reused)."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.names: list[str] = []

    def code(self, text: str) -> int:
        key = _key(text)
        found = self.codes.get(key)
        if found is None:
            found = self.codes[key] = len(self.names)
            self.names.append(key)
        return found


class ListingIndex:
    """Listings by token id, stored column-wise for `match`."""

    def __init__(self, listings: Iterable[Listing] = ()) -> None:
        self._slot_of: dict[int, int] = {}
        self._listings: list[Listing | None] = []
        self._free: list[int] = []
        self.gpu_models = _Interner()
        self.regions = _Interner()
        self.ints: dict[str, IntCol] = {}
        self.floats: dict[str, FloatCol] = {}
        self.bools: dict[str, BoolCol] = {}
        self._bulk_load(list(listings))

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._slot_of

    def __iter__(self) -> Iterator[Listing]:
        """Listings in token id order."""
        for token_id in sorted(self._slot_of):
            yield self.get(token_id)

    def get(self, token_id: int) -> Listing:
        """The listing of `token_id`, or UnknownListingError."""
        slot = self._slot_of.get(token_id)
        if slot is None:
            raise UnknownListingError(f"no listing with token id {token_id}")
        listing = self._listings[slot]
        assert listing is not None
        return listing

    def at(self, slot: int) -> Listing:
        """The listing in a live slot."""
        listing = self._listings[slot]
        assert listing is not None
        return listing

    @property
    def slots(self) -> int:
        """Slots in use or freed (the length of the column views)."""
        return len(self._listings)

    def int_col(self, name: str) -> IntCol:
        """An int64 column, one value per slot."""
        return self.ints[name][: self.slots]

    def float_col(self, name: str) -> FloatCol:
        """A float64 column, one value per slot."""
        return self.floats[name][: self.slots]

    def bool_col(self, name: str) -> BoolCol:
        """A bool column, one value per slot (`alive` is False in freed slots)."""
        return self.bools[name][: self.slots]

    # -- writing -------------------------------------------------------------------------

    def add(self, listing: Listing) -> None:
        """Add a new listing; DuplicateListingError if its token id is already here."""
        self._check(listing)
        if listing.token_id in self._slot_of:
            raise DuplicateListingError(f"token id {listing.token_id} is already listed")
        slot = self._free.pop() if self._free else self._new_slot()
        self._slot_of[listing.token_id] = slot
        self._write(slot, listing)

    def update(self, listing: Listing) -> None:
        """Replace the listing with the same token id; UnknownListingError if there is none."""
        self._check(listing)
        slot = self._slot_of.get(listing.token_id)
        if slot is None:
            raise UnknownListingError(f"no listing with token id {listing.token_id}")
        self._write(slot, listing)

    def upsert(self, listing: Listing) -> None:
        """Add or replace."""
        if listing.token_id in self._slot_of:
            self.update(listing)
        else:
            self.add(listing)

    def remove(self, token_id: int) -> Listing:
        """Drop a listing (unlisted, burned); returns it. UnknownListingError if absent."""
        slot = self._slot_of.pop(token_id, None)
        if slot is None:
            raise UnknownListingError(f"no listing with token id {token_id}")
        listing = self._listings[slot]
        assert listing is not None
        self._listings[slot] = None
        self.bools["alive"][slot] = False
        self._free.append(slot)
        return listing

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _check(listing: object) -> None:
        if not isinstance(listing, Listing):
            raise InvalidListingError(f"expected a Listing, got {type(listing).__name__}")

    def _row(self, listing: Listing) -> tuple[list[int], list[float], list[bool]]:
        """The column values of one listing, in column order."""
        ints = [read(listing) for _, read in _INT_READERS]
        ints.append(self.gpu_models.code(listing.specs.gpu.model))
        ints.append(self.regions.code(listing.region))
        lat = math.radians(listing.coordinates.lat_micro / 1_000_000)
        lon = math.radians(listing.coordinates.lon_micro / 1_000_000)
        price = float(listing.price_per_day)
        floats = [price, float(listing.perform_points), lat, lon, math.cos(lat)]
        bools = [True, listing.rentable, int(price) == listing.price_per_day]
        return ints, floats, bools

    def _bulk_load(self, listings: list[Listing]) -> None:
        rows_i: list[list[int]] = []
        rows_f: list[list[float]] = []
        rows_b: list[list[bool]] = []
        for listing in listings:
            self._check(listing)
            if listing.token_id in self._slot_of:
                raise DuplicateListingError(f"token id {listing.token_id} is listed twice")
            self._slot_of[listing.token_id] = len(self._listings)
            self._listings.append(listing)
            i, f, b = self._row(listing)
            rows_i.append(i)
            rows_f.append(f)
            rows_b.append(b)
        n = len(listings)
        capacity = max(16, n)
        table_i = np.array(rows_i, dtype=np.int64).reshape(n, len(_INT_COLUMNS))
        table_f = np.array(rows_f, dtype=np.float64).reshape(n, len(_FLOAT_COLUMNS))
        table_b = np.array(rows_b, dtype=np.bool_).reshape(n, len(_BOOL_COLUMNS))
        for k, name in enumerate(_INT_COLUMNS):
            self.ints[name] = np.zeros(capacity, dtype=np.int64)
            self.ints[name][:n] = table_i[:, k]
        for k, name in enumerate(_FLOAT_COLUMNS):
            self.floats[name] = np.zeros(capacity, dtype=np.float64)
            self.floats[name][:n] = table_f[:, k]
        for k, name in enumerate(_BOOL_COLUMNS):
            self.bools[name] = np.zeros(capacity, dtype=np.bool_)
            self.bools[name][:n] = table_b[:, k]

    def _new_slot(self) -> int:
        slot = len(self._listings)
        self._listings.append(None)
        capacity = len(self.bools["alive"])
        if slot >= capacity:
            self.ints = {k: _grown(v) for k, v in self.ints.items()}
            self.floats = {k: _grown(v) for k, v in self.floats.items()}
            self.bools = {k: _grown(v) for k, v in self.bools.items()}
        return slot

    def _write(self, slot: int, listing: Listing) -> None:
        self._listings[slot] = listing
        i, f, b = self._row(listing)
        for name, value in zip(_INT_COLUMNS, i, strict=True):
            self.ints[name][slot] = value
        for name, fvalue in zip(_FLOAT_COLUMNS, f, strict=True):
            self.floats[name][slot] = fvalue
        for name, bvalue in zip(_BOOL_COLUMNS, b, strict=True):
            self.bools[name][slot] = bvalue
