"""`pv market match`: recommend listed resources for a demand, or say what excluded them.

Listings come from a node (`--rpc-url`, read through the SDK) or from a JSON file
(`--listings`, a list of `listing_to_json` documents). Exit codes: 0 matches found, 1 no
match, 2 bad input, 3 node unreachable.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from powerverse.cli.common import DEFAULT_RPC, EXIT_USAGE, fail, print_json
from powerverse.market.matching import (
    Coordinates,
    DemandOrder,
    DiskType,
    ListingIndex,
    MatchingError,
    MatchResult,
    listing_from_json,
    match,
)
from powerverse.market.matching_model import REPUTATION_PER_STAR, WEI_PER_PVC, pvc

__all__ = ["match_command", "parse_budget", "parse_mib", "parse_start", "register"]

EXIT_MATCHED = 0
EXIT_NO_MATCH = 1

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m|tib|tb|t)?\s*$", re.IGNORECASE)
_UNITS_MIB = {"g": 1024, "gb": 1024, "gib": 1024, "m": 1, "mb": 1, "mib": 1, "t": 2**20}
_UNITS_MIB |= {"tb": 2**20, "tib": 2**20}


class BadInput(ValueError):
    """An option value that cannot be understood."""


def parse_mib(text: str, option: str) -> int:
    """A memory size to MiB: `80GiB`, `512MiB`, `1.5T`; a bare number is GiB."""
    m = _SIZE.match(text)
    if not m:
        raise BadInput(f"{option} {text!r}: expected a size such as 80GiB or 512MiB")
    unit = (m.group(2) or "gib").lower()
    return int(Decimal(m.group(1)) * _UNITS_MIB[unit])


def parse_budget(text: str) -> int:
    """A budget to wei: `10` or `10pvc` (PVC, decimals allowed), `123wei`."""
    raw = text.strip().lower().replace("_", "").replace(",", "")
    unit = WEI_PER_PVC
    if raw.endswith("wei"):
        raw, unit = raw[:-3].strip(), 1
    elif raw.endswith("pvc"):
        raw = raw[:-3].strip()
    try:
        amount = Decimal(raw) * unit
    except InvalidOperation:
        raise BadInput(
            f"--budget {text!r}: expected an amount such as 12.5 (PVC) or 10wei"
        ) from None
    if not amount.is_finite() or amount < 0 or amount != amount.to_integral_value():
        raise BadInput(f"--budget {text!r}: must be a non-negative whole number of wei")
    return int(amount)


def parse_start(text: str | None, now: int) -> int:
    """Unix seconds, an ISO 8601 time (UTC unless it says otherwise), `now`, or `+3d`/`+12h`."""
    if text is None or text.strip().lower() == "now":
        return now
    raw = text.strip()
    rel = re.fullmatch(r"\+(\d+)([dhm])", raw)
    if rel:
        return now + int(rel.group(1)) * {"d": 86_400, "h": 3_600, "m": 60}[rel.group(2)]
    if raw.isdigit():
        return int(raw)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(
            f"--start {text!r}: expected unix seconds, an ISO time, now, or +3d / +12h"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def _near(text: str) -> Coordinates:
    try:
        lat, lon = (float(part) for part in text.split(","))
        return Coordinates.from_degrees(lat, lon)
    except (ValueError, MatchingError) as exc:
        raise BadInput(f"--near {text!r}: expected LAT,LON in degrees ({exc})") from None


def _load_file(path: Path) -> ListingIndex:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise BadInput(f"--listings {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BadInput(f"--listings {path}: not JSON ({exc})") from None
    if isinstance(doc, dict):
        doc = doc.get("listings")
    if not isinstance(doc, list):
        raise BadInput(f"--listings {path}: expected a JSON list of listings")
    try:
        return ListingIndex(listing_from_json(item) for item in doc)
    except MatchingError as exc:
        raise BadInput(f"--listings {path}: {exc}") from None


def _load_chain(rpc_url: str) -> tuple[ListingIndex, int]:
    """Every listed resource on the node, and the head block's timestamp."""
    from powerverse.cli.chainopts import connect
    from powerverse.market.listings import ChainListings

    client = connect(rpc_url, need_signer=False)
    head = int(client.w3.eth.get_block("latest")["timestamp"])
    return ChainListings(client).index(), head


def _stars(reputation: int) -> str:
    return f"{reputation / REPUTATION_PER_STAR:.2f}"


def _render(result: MatchResult, days: int) -> None:
    console = Console()
    if result.matches:
        table = Table(title=f"best {len(result.matches)} for {days} days")
        for col in ("#", "token", "price/day", "total", "score", "GPU", "CPU", "memory"):
            table.add_column(col, justify="right" if col in ("#", "score") else "left")
        for col in ("region", "km", "stars"):
            table.add_column(col)
        for rank, m in enumerate(result.matches, 1):
            x, s = m.listing, m.listing.specs
            gpu = f"{s.gpu.count}× {s.gpu.model}" if s.gpu.count else "-"
            table.add_row(
                str(rank),
                str(x.token_id),
                pvc(x.price_per_day),
                pvc(m.total_price_wei),
                f"{m.score:,.1f}",
                gpu,
                f"{s.cpu.cores} × {s.cpu.clock_mhz} MHz",
                f"{s.memory.size_mib // 1024} GiB",
                x.region,
                "-" if m.distance_km is None else f"{m.distance_km:,.0f}",
                _stars(x.reputation),
            )
        console.print(table)
    console.print(result.message, highlight=False)


def match_command(
    days: Annotated[int, typer.Option("--days", help="Rental period in days.")],
    budget: Annotated[
        str, typer.Option("--budget", help="Most you pay for the whole period: 12.5 (PVC), 10wei.")
    ],
    start: Annotated[
        str | None,
        typer.Option("--start", help="Start: unix seconds, ISO time, +3d (default: now)."),
    ] = None,
    min_cores: Annotated[int | None, typer.Option("--min-cores", min=0)] = None,
    min_clock: Annotated[int | None, typer.Option("--min-clock", min=0, help="MHz.")] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="GPU model contains (any case).")] = None,
    min_gpu_memory: Annotated[
        str | None, typer.Option("--min-gpu-memory", help="Per card: 80GiB, 24576MiB (bare: GiB).")
    ] = None,
    min_gpus: Annotated[int | None, typer.Option("--min-gpus", min=0)] = None,
    min_cuda_cores: Annotated[int | None, typer.Option("--min-cuda-cores", min=0)] = None,
    min_memory: Annotated[
        str | None, typer.Option("--min-memory", help="RAM: 64GiB (bare: GiB).")
    ] = None,
    min_memory_mhz: Annotated[int | None, typer.Option("--min-memory-mhz", min=0)] = None,
    disk: Annotated[
        str | None, typer.Option("--disk-type", help="hdd, ssd or nvme (or better).")
    ] = None,
    min_disk_gb: Annotated[int | None, typer.Option("--min-disk-gb", min=0)] = None,
    min_disk_read: Annotated[
        int | None, typer.Option("--min-disk-read", min=0, help="MB/s.")
    ] = None,
    min_disk_write: Annotated[
        int | None, typer.Option("--min-disk-write", min=0, help="MB/s.")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="Region name (any case).")] = None,
    near: Annotated[
        str | None, typer.Option("--near", help="LAT,LON in degrees: rank by distance.")
    ] = None,
    max_km: Annotated[
        float | None, typer.Option("--max-km", help="Only within this distance of --near.")
    ] = None,
    min_stars: Annotated[
        float | None, typer.Option("--min-stars", help="Provider reputation, 0 to 5 stars.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many to recommend.")] = 10,
    listings_file: Annotated[
        Path | None, typer.Option("--listings", help="JSON file of listings instead of a node.")
    ] = None,
    rpc_url: Annotated[
        str, typer.Option("--rpc-url", envvar="PV_RPC_URL", help="JSON-RPC URL of a node.")
    ] = DEFAULT_RPC,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Recommend listed resources for a rental demand, or say which constraint excluded how many."""
    try:
        if limit < 1:
            raise BadInput(f"--limit must be at least 1, got {limit}")
        if min_stars is not None and not 0 <= min_stars <= 5:
            raise BadInput(f"--min-stars must be between 0 and 5, got {min_stars}")
        if max_km is not None and near is None:
            raise BadInput("--max-km needs --near LAT,LON to measure from")
        try:
            disk_type = None if disk is None else DiskType.parse(disk)
        except ValueError as exc:
            raise BadInput(f"--disk-type: {exc}") from None
        budget_wei = parse_budget(budget)
        coordinates = None if near is None else _near(near)
        gpu_mib = None if min_gpu_memory is None else parse_mib(min_gpu_memory, "--min-gpu-memory")
        ram_mib = None if min_memory is None else parse_mib(min_memory, "--min-memory")
        if listings_file is not None:
            index, now = _load_file(listings_file), int(time.time())
        else:
            index, now = _load_chain(rpc_url)
        order = DemandOrder(
            period_days=days,
            budget_wei=budget_wei,
            start=parse_start(start, now),
            min_cpu_cores=min_cores,
            min_cpu_clock_mhz=min_clock,
            gpu_model=gpu,
            min_gpu_memory_mib=gpu_mib,
            min_gpu_count=min_gpus,
            min_gpu_cuda_cores=min_cuda_cores,
            min_memory_mib=ram_mib,
            min_memory_frequency_mhz=min_memory_mhz,
            min_disk_type=disk_type,
            min_disk_size_gb=min_disk_gb,
            min_disk_read_mbps=min_disk_read,
            min_disk_write_mbps=min_disk_write,
            region=region,
            coordinates=coordinates,
            max_distance_km=max_km,
            min_reputation=None if min_stars is None else round(min_stars * REPUTATION_PER_STAR),
        )
        result = match(order, index, limit)
    except (BadInput, MatchingError) as exc:
        fail(str(exc), EXIT_USAGE)
    if as_json:
        print_json({"order": _order_json(order), **result.to_json()})
    else:
        _render(result, days)
    raise typer.Exit(EXIT_MATCHED if result.matched else EXIT_NO_MATCH)


def _order_json(order: DemandOrder) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for f in fields(order):
        if not f.init:
            continue
        name, value = f.name, getattr(order, f.name)
        if value is None:
            continue
        if isinstance(value, DiskType):
            value = value.label
        elif isinstance(value, Coordinates):
            value = {"lat": value.degrees[0], "lon": value.degrees[1]}
        elif name == "budget_wei":
            value = str(value)
        doc[name] = value
    return doc


def register(market_app: typer.Typer) -> None:
    """Attach `match` to the `pv market` group."""
    market_app.command("match")(match_command)
