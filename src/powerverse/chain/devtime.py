"""Block timestamps: an injected clock plus the dev-mode time controls."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    """Wall-clock seconds; injected so tests can run on simulated time."""

    def time(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """The machine's clock."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()


@dataclass
class ManualClock:
    """A clock that moves only when told to (tests)."""

    now: float = 1_700_000_000.0

    def time(self) -> float:
        """The current simulated time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


DEV_CLOCK_FILE = "dev-clock.json"
"""Where a --dev-clock node keeps its clock offset, in its data directory."""


def load_clock_offset(path: Path | None) -> int:
    """The clock offset a dev-clock node saved (0 without a file)."""
    if path is None or not path.exists():
        return 0
    try:
        offset = json.loads(path.read_text())["offset"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a dev-clock file: {exc}") from None
    if not isinstance(offset, int) or offset < 0:
        raise ValueError(f"{path}: the offset must be a non-negative integer")
    return offset


def save_clock_offset(path: Path, offset: int) -> None:
    """Persist a dev-clock node's offset atomically, so a restart keeps the chain's time."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump({"offset": offset}, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


@dataclass
class BlockTime:
    """Chooses each block's timestamp: the clock, plus a dev offset, or a pinned next value."""

    clock: Clock
    offset: int = 0
    pinned_next: int | None = None

    def next_timestamp(self, parent_timestamp: int) -> int:
        """Timestamp for a child of a block with `parent_timestamp` (strictly later)."""
        if self.pinned_next is not None:
            return max(self.pinned_next, parent_timestamp + 1)
        return max(int(self.clock.time()) + self.offset, parent_timestamp + 1)

    def block_committed(self) -> None:
        """A block was made: a pinned timestamp applies once."""
        self.pinned_next = None

    def increase(self, seconds: int) -> int:
        """Move chain time forward; returns the total offset."""
        if seconds < 0:
            raise ValueError("time can only move forward")
        self.offset += seconds
        return self.offset

    def pin_next(self, timestamp: int, parent_timestamp: int) -> None:
        """Fix the next block's timestamp; it must be later than the head's."""
        if timestamp <= parent_timestamp:
            raise ValueError(
                f"timestamp {timestamp} is lower than or equal to the previous block's "
                f"timestamp {parent_timestamp}"
            )
        self.pinned_next = timestamp
        # Later blocks continue from the pinned time, as Hardhat does.
        self.offset = max(self.offset, timestamp - int(self.clock.time()))
