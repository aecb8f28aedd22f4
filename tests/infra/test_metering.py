"""Metering over a scripted driver and a manual clock: deltas, restarts, pruning, online rule."""

from __future__ import annotations

from pathlib import Path

from powerverse.infra.drivers.base import InstanceUsage
from powerverse.infra.exceptions import InstanceNotFound
from powerverse.infra.metering import Meter, online


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A driver whose instances report given cumulative counters."""

    def __init__(self) -> None:
        self.counters: dict[str, tuple[float, int, int, int, float]] = {}

    def list_instances(self) -> list[str]:
        return [*sorted(self.counters), "vanished"]

    def usage(self, instance_id: str) -> InstanceUsage:
        if instance_id not in self.counters:
            raise InstanceNotFound(instance_id)
        cpu, rss, rd, wr, up = self.counters[instance_id]
        return InstanceUsage(
            instance_id=instance_id, cpu_seconds=cpu, memory_rss_bytes=rss, disk_read_bytes=rd,
            disk_write_bytes=wr, net_rx_bytes=0, net_tx_bytes=0, uptime_seconds=up,
        )  # fmt: skip


def test_totals_add_deltas_and_survive_a_restart(tmp_path: Path) -> None:
    clock, driver = Clock(), Scripted()
    meter = Meter(driver, tmp_path / "m.sqlite", clock=clock)  # type: ignore[arg-type]
    for cpu, rss, rd, wr, up in [
        (1.0, 100, 10, 5, 10.0),
        (3.0, 300, 30, 5, 20.0),
        (0.5, 200, 4, 1, 2.0),  # the VM restarted: counters began again
        (1.5, 400, 8, 3, 12.0),
    ]:
        driver.counters["vm"] = (cpu, rss, rd, wr, up)
        assert meter.sample() == 1  # the vanished instance is skipped
        clock.now += 10
    t = meter.totals("vm")
    assert t.samples == 4
    assert t.cpu_seconds == 2.0 + 0.5 + 1.0 and t.disk_read_bytes == 20 + 4 + 4
    assert t.disk_write_bytes == 0 + 1 + 2 and t.uptime_seconds == 10 + 2 + 10
    assert t.memory_peak_bytes == 400 and t.memory_avg_bytes == 250
    window = meter.totals("vm", since=1_015, until=1_035)
    assert window.samples == 2 and window.cpu_seconds == 1.0
    assert meter.totals("nothing").samples == 0


def test_old_samples_are_pruned(tmp_path: Path) -> None:
    clock, driver = Clock(), Scripted()
    meter = Meter(driver, tmp_path / "m.sqlite", clock=clock, keep_seconds=100)  # type: ignore[arg-type]
    driver.counters["vm"] = (1.0, 1, 1, 1, 1.0)
    meter.sample()
    clock.now += 500
    meter.sample()
    assert meter.totals("vm", since=0).samples == 1


def test_online_is_the_markets_rule() -> None:
    assert online(last_heartbeat=100, now=100 + 600 + 300, interval=600, grace=300)
    assert not online(last_heartbeat=100, now=100 + 600 + 301, interval=600, grace=300)
