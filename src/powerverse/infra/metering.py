"""Monitoring and metering: per-VM usage samples for billing, uptime for online status.

A :class:`Meter` samples every instance's cumulative usage from the driver at an interval and
keeps the samples in SQLite; :meth:`Meter.totals` turns them into a lease's usage over a window
(CPU seconds, average and peak memory, disk bytes, uptime). A VM that restarted (its counters
fell) is counted as a new run, never as negative use. Samples older than ``keep_seconds`` are
pruned. Heartbeats on chain (``Market.heartbeat``) are the agent's; :func:`online` is the same
rule the Market applies to decide that a rental missed them.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from powerverse.infra.drivers.base import ComputeDriver, InstanceUsage
from powerverse.infra.exceptions import DriverError

__all__ = ["Meter", "UsageTotals", "online"]


@dataclass(frozen=True, kw_only=True)
class UsageTotals:
    """One instance's use over a window."""

    instance_id: str
    samples: int
    cpu_seconds: float
    memory_avg_bytes: int
    memory_peak_bytes: int
    disk_read_bytes: int
    disk_write_bytes: int
    uptime_seconds: float


def online(last_heartbeat: int, now: int, interval: int, grace: int) -> bool:
    """Whether a rental still counts as online (the Market's missed-heartbeat rule)."""
    return now <= last_heartbeat + interval + grace


class Meter:
    """Usage samples of the driver's instances, in SQLite."""

    def __init__(
        self,
        driver: ComputeDriver,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        keep_seconds: float = 90 * 86_400,
    ) -> None:
        self.driver = driver
        self.clock = clock
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS samples (instance TEXT NOT NULL, at REAL NOT NULL,"
            " cpu REAL, rss INTEGER, rd INTEGER, wr INTEGER, up REAL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS by_instance ON samples (instance, at)")
        self._db.commit()

    def sample(self) -> int:
        """Record one sample per instance; how many were recorded."""
        now = self.clock()
        rows = []
        for instance_id in self.driver.list_instances():
            try:
                u: InstanceUsage = self.driver.usage(instance_id)
            except DriverError:
                continue  # gone between listing and sampling
            rows.append(
                (instance_id, now, u.cpu_seconds, u.memory_rss_bytes, u.disk_read_bytes,
                 u.disk_write_bytes, u.uptime_seconds)
            )  # fmt: skip
        with self._lock:
            self._db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("DELETE FROM samples WHERE at < ?", (now - self.keep_seconds,))
            self._db.commit()
        return len(rows)

    def totals(
        self, instance_id: str, *, since: float = 0.0, until: float | None = None
    ) -> UsageTotals:
        """Use between ``since`` and ``until`` (counter resets start a new run)."""
        end = self.clock() if until is None else until
        with self._lock:
            rows = self._db.execute(
                "SELECT cpu, rss, rd, wr, up FROM samples WHERE instance = ? AND at >= ?"
                " AND at <= ? ORDER BY at",
                (instance_id, since, end),
            ).fetchall()
        cpu = rd = wr = up = 0.0
        for prev, cur in itertools.pairwise(rows):
            if cur[4] < prev[4]:  # uptime fell: the VM restarted; its counters began again
                cpu, rd, wr, up = cpu + cur[0], rd + cur[2], wr + cur[3], up + cur[4]
                continue
            cpu += max(0.0, cur[0] - prev[0])
            rd += max(0, cur[2] - prev[2])
            wr += max(0, cur[3] - prev[3])
            up += max(0.0, cur[4] - prev[4])
        memory = [int(r[1]) for r in rows]
        return UsageTotals(
            instance_id=instance_id,
            samples=len(rows),
            cpu_seconds=cpu,
            memory_avg_bytes=sum(memory) // len(memory) if memory else 0,
            memory_peak_bytes=max(memory, default=0),
            disk_read_bytes=int(rd),
            disk_write_bytes=int(wr),
            uptime_seconds=up,
        )
