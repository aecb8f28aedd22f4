"""Figures of one or two benched nodes: a human table (with ratio ours/hardhat) and JSON."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from bench._load import CallResult, LoadResult, MemoryResult

__all__ = ["NodeReport", "figures", "render_table", "to_json"]


@dataclass
class NodeReport:
    """Everything measured on one node; `error` says why the run stopped early, if it did."""

    name: str
    url: str | None = None
    client_version: str | None = None
    pid: int | None = None
    transfers: LoadResult | None = None
    erc20: LoadResult | None = None
    calls: CallResult | None = None
    memory: MemoryResult | None = None
    rss_end: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class _Row:
    """One line of the table: a label, a dotted path into NodeReport, and a formatter."""

    label: str
    key: str
    fmt: Callable[[float], str]
    ratio: bool = True

    def get(self, report: NodeReport) -> float | None:
        """Follow the dotted key (attributes or properties) through the report."""
        value: Any = report
        for part in self.key.split("."):
            value = getattr(value, part, None)
            if value is None:
                return None
        return float(value)


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _tx_s(v: float) -> str:
    return f"{v:,.1f} tx/s"


def _calls_s(v: float) -> str:
    return f"{v:,.1f} calls/s"


def _secs(v: float) -> str:
    return f"{v:,.2f} s"


def _ms(v: float) -> str:
    return f"{v:,.2f} ms"


def _int(v: float) -> str:
    return f"{int(v):,}"


_SPAN = "  first send → last inclusion"
ROWS = [
    _Row("transfers sent", "transfers.count", _int, False),
    _Row("transfers included OK", "transfers.included", _int, False),
    _Row("transfers end-to-end", "transfers.tps", _tx_s),
    _Row(_SPAN, "transfers.seconds", _secs),
    _Row("  accepted by sendRawTransaction", "transfers.send_tps", _tx_s),
    _Row("  blocks used", "transfers.blocks", _int, False),
    _Row("ERC-20 transfers sent", "erc20.count", _int, False),
    _Row("ERC-20 transfers included OK", "erc20.included", _int, False),
    _Row("ERC-20 transfers end-to-end", "erc20.tps", _tx_s),
    _Row(_SPAN, "erc20.seconds", _secs),
    _Row("  blocks used", "erc20.blocks", _int, False),
    _Row("eth_call balanceOf p50", "calls.p50_ms", _ms),
    _Row("eth_call balanceOf p99", "calls.p99_ms", _ms),
    _Row("eth_call sequential rate", "calls.calls_per_s", _calls_s),
    _Row("memory run: transfers included", "memory.included", _int, False),
    _Row("memory run: end-to-end", "memory.tps", _tx_s),
    _Row("memory run: RSS before", "memory.rss_before", _mib),
    _Row("memory run: RSS after", "memory.rss_after", _mib),
    _Row("memory run: RSS peak", "memory.rss_peak", _mib),
    _Row("node RSS at end (process tree)", "rss_end", _mib),
]


def render_table(reports: list[NodeReport]) -> Table:
    """Build a rich table with one column per node and, for two nodes, their ratio."""
    table = Table()
    table.add_column("metric", no_wrap=True)
    for report in reports:
        table.add_column(report.name, justify="right")
    two = len(reports) == 2
    if two:
        table.add_column(f"{reports[0].name}/{reports[1].name}", justify="right")
    for row in ROWS:
        values = [row.get(r) for r in reports]
        if all(v is None for v in values):
            continue
        cells = [row.fmt(v) if v is not None else "-" for v in values]
        if two:
            a, b = values
            ratio = a / b if row.ratio and a is not None and b else None
            cells.append(f"{ratio:.2f}×" if ratio is not None else "")
        table.add_row(row.label, *cells)
    return table


def figures(report: NodeReport) -> dict[str, Any]:
    """Return one node's figures as plain JSON-able data."""
    out: dict[str, Any] = {
        "url": report.url,
        "client_version": report.client_version,
        "pid": report.pid,
        "error": report.error,
        "notes": report.notes,
        "rss_end_bytes": report.rss_end,
    }
    out["transfers"] = _load(report.transfers)
    out["erc20"] = _load(report.erc20)
    calls = report.calls
    out["eth_call"] = None if calls is None else {**asdict(calls), "calls_per_s": calls.calls_per_s}
    memory = report.memory
    out["memory"] = None if memory is None else {**asdict(memory), "tps": memory.tps}
    return out


def _load(result: LoadResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {**asdict(result), "tps": result.tps, "send_tps": result.send_tps}


def to_json(
    reports: list[NodeReport], params: Mapping[str, Any], command: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the whole run as one JSON document (for docs/benchmarks.md)."""
    doc: dict[str, Any] = {
        "tool": "bench/tps.py",
        "schema": 1,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": _cpus(),
            "cpu_model": _cpu_model(),
        },
        "params": dict(params),
        **extra,
        "nodes": {r.name: figures(r) for r in reports},
    }
    if len(reports) == 2:
        doc["ratios"] = {
            f"{reports[0].name}/{reports[1].name}": {
                row.key: _ratio(row, *reports) for row in ROWS if row.ratio
            }
        }
    return doc


def _ratio(row: _Row, a: NodeReport, b: NodeReport) -> float | None:
    x, y = row.get(a), row.get(b)
    return x / y if x is not None and y else None


def _cpus() -> int | None:
    return os.cpu_count()


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None
