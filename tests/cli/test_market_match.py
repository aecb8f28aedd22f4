"""`pv market match` through Typer's CliRunner, on listings from a JSON file (and a dead node)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from powerverse.cli.market_match import BadInput, parse_budget, parse_mib, parse_start, register
from powerverse.market.matching import (
    Coordinates,
    Cpu,
    Disk,
    DiskType,
    Gpu,
    Listing,
    Memory,
    Specs,
    listing_to_json,
)

PVC = 10**18
DAY = 86_400
T0 = 1_800_000_000


def _app() -> typer.Typer:
    market = typer.Typer()

    @market.callback()
    def _group() -> None:
        """pv market (as the lead mounts it)."""

    register(market)
    return market


def _listing(token_id: int, **kw: Any) -> Listing:
    base: dict[str, Any] = {
        "token_id": token_id,
        "provider": "0x" + "22" * 20,
        "price_per_day": PVC,
        "available_from": T0,
        "available_until": T0 + 90 * DAY,
        "min_days": 1,
        "max_days": 60,
        "perform_points": 1_000 * token_id,
        "specs": Specs(
            Cpu("EPYC", 3_000, 16),
            Gpu("NVIDIA A100 80GB", 81_920, 6_912, 1),
            Memory(65_536, 3_200),
            Disk(DiskType.NVME, 2_000, 7_000, 5_000),
        ),
        "region": "eu-central",
        "coordinates": Coordinates(50_110_000, 8_680_000),
        "reputation": 40_000,
    }
    base.update(kw)
    return Listing(**base)


@pytest.fixture
def listings(tmp_path: Path) -> Path:
    small_gpu = Gpu("NVIDIA RTX 4090", 24_576, 16_384, 1)
    items = [
        _listing(1),
        _listing(2, price_per_day=3 * PVC),
        _listing(3, region="us-east", coordinates=Coordinates(39_000_000, -77_500_000)),
        _listing(
            4,
            specs=Specs(
                Cpu("EPYC", 3_000, 16),
                small_gpu,
                Memory(65_536, 3_200),
                Disk(DiskType.SSD, 2_000, 3_000, 2_000),
            ),
        ),
    ]
    path = tmp_path / "listings.json"
    path.write_text(json.dumps([listing_to_json(x) for x in items]))
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(_app(), ["match", *args])


BASE = ("--days", "7", "--budget", "14", "--start", str(T0))


def test_matches_ranked_as_json(listings: Path) -> None:
    result = run("--listings", str(listings), *BASE, "--near", "50.11,8.68", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [m["token_id"] for m in doc["matches"]] == ["4", "1", "3"]  # 3 is 6,400 km away
    assert doc["matched"] == 3 and doc["considered"] == 4
    assert doc["matches"][0]["total_price_wei"] == str(7 * PVC)
    assert doc["matches"][0]["distance_km"] == 0.0
    budget = next(c for c in doc["constraints"] if c["name"] == "budget")
    assert budget == {
        "name": "budget",
        "label": "budget",
        "description": "budget 14 PVC for 7 days (price <= 2 PVC/day)",
        "excluded": 1,
        "matches_if_relaxed": 4,
        "relaxable": True,
    }
    assert doc["order"]["budget_wei"] == str(14 * PVC)
    assert doc["order"]["coordinates"] == {"lat": 50.11, "lon": 8.68}


def test_every_constraint_option_reaches_the_order(listings: Path) -> None:
    args = (
        *("--min-cores", "16", "--min-clock", "3000", "--gpu", "a100"),
        *("--min-gpu-memory", "80GiB", "--min-gpus", "1", "--min-cuda-cores", "6912"),
        *("--min-memory", "64", "--min-memory-mhz", "3200", "--disk-type", "nvme"),
        *("--min-disk-gb", "2000", "--min-disk-read", "7000", "--min-disk-write", "5000"),
        *("--region", "EU-Central", "--near", "50.11,8.68", "--max-km", "100"),
        *("--min-stars", "4", "--limit", "1"),
    )
    result = run("--listings", str(listings), *BASE, *args, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [m["token_id"] for m in doc["matches"]] == ["1"]
    names = [c["name"] for c in doc["constraints"]]
    assert names == [
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
    ]
    assert doc["order"]["min_gpu_memory_mib"] == 81_920
    assert doc["order"]["min_memory_mib"] == 65_536
    assert doc["order"]["min_reputation"] == 40_000
    assert doc["order"]["min_disk_type"] == "NVMe"


def test_human_output_has_a_table_and_the_message(listings: Path) -> None:
    result = run("--listings", str(listings), *BASE, "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "best 2 for 7 days" in result.stdout
    assert "3 matches among 4 listings" in result.stdout


def test_no_match_exits_1_and_says_why(listings: Path) -> None:
    result = run("--listings", str(listings), *BASE, "--gpu", "h100")
    assert result.exit_code == 1
    assert "no match among 4 listings: 4 excluded by GPU model ~ 'h100'" in result.stdout
    as_json = run("--listings", str(listings), *BASE, "--gpu", "h100", "--json")
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert doc["matched"] == 0 and doc["matches"] == []
    assert doc["message"].startswith("no match among 4 listings")
    assert doc["constraints"][1]["name"] == "gpu_model"
    assert doc["constraints"][1]["excluded"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--days", "0", "--budget", "1"), "period_days must be at least 1"),
        (("--days", "7", "--budget", "abc"), "--budget 'abc'"),
        (("--days", "7", "--budget", "-1"), "non-negative"),
        (("--days", "7", "--budget", "1", "--max-km", "5"), "--max-km needs --near"),
        (("--days", "7", "--budget", "1", "--near", "95,0"), "--near '95,0'"),
        (("--days", "7", "--budget", "1", "--near", "abc"), "--near 'abc'"),
        (("--days", "7", "--budget", "1", "--disk-type", "tape"), "unknown disk type"),
        (("--days", "7", "--budget", "1", "--min-gpu-memory", "lots"), "expected a size"),
        (("--days", "7", "--budget", "1", "--min-stars", "6"), "between 0 and 5"),
        (("--days", "7", "--budget", "1", "--limit", "0"), "--limit must be at least 1"),
        (("--days", "7", "--budget", "1", "--start", "tomorrow"), "--start 'tomorrow'"),
        (("--days", "7", "--budget", "1", "--gpu", " "), "gpu_model must not be empty"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    listings: Path, args: tuple[str, ...], message: str
) -> None:
    result = run("--listings", str(listings), *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr.replace("\n", "")


def test_bad_listing_files_exit_2(tmp_path: Path) -> None:
    missing = run("--listings", str(tmp_path / "nope.json"), *BASE)
    assert missing.exit_code == 2 and "No such file" in missing.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert "not JSON" in run("--listings", str(garbage), *BASE).stderr
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"token_id": 1}]))
    result = run("--listings", str(wrong), *BASE)
    assert result.exit_code == 2 and "missing the field" in result.stderr


def test_unreachable_node_exits_3() -> None:
    result = run(*BASE, "--rpc-url", "http://127.0.0.1:9")
    assert result.exit_code == 3
    assert "cannot reach a node" in result.stderr


def test_missing_required_options_is_a_usage_error() -> None:
    assert run("--budget", "1").exit_code == 2


def test_parsers() -> None:
    assert parse_budget("12.5") == 12 * PVC + PVC // 2
    assert parse_budget("10 PVC") == 10 * PVC
    assert parse_budget("1_000wei") == 1_000
    with pytest.raises(BadInput):
        parse_budget("0.5wei")
    assert parse_mib("80GiB", "x") == 81_920
    assert parse_mib("512MiB", "x") == 512
    assert parse_mib("1.5", "x") == 1_536
    assert parse_mib("1T", "x") == 2**20
    assert parse_start(None, 100) == 100
    assert parse_start("+2d", 100) == 100 + 2 * DAY
    assert parse_start("1700000000", 0) == 1_700_000_000
    assert parse_start("2027-01-15T08:00:00Z", 0) == 1_800_000_000
    assert parse_start("2027-01-15T16:00:00+08:00", 0) == 1_800_000_000
