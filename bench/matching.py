"""Matching latency over many listings (issue 4: p50 under 50 ms over 100,000 listings).

Builds seeded synthetic listings (realistic mixes of CPUs, GPUs, memory, disks, prices,
windows, regions and reputations), indexes them, then times `match` for N varied orders:
loose ones that match tens of thousands (ranking cost), tight ones that match nothing (the
full exclusion report), with and without coordinates, region, budget and reputation.

    .venv/bin/python bench/matching.py                       # 100,000 listings, 500 orders
    .venv/bin/python bench/matching.py --listings 100000 --orders 500 --seed 4 --json
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np

from powerverse.market.matching import (
    Coordinates,
    Cpu,
    DemandOrder,
    Disk,
    DiskType,
    Gpu,
    Listing,
    ListingIndex,
    Memory,
    Specs,
    match,
)
from powerverse.market.matching_model import WEI_PER_PVC

NOW = 1_800_000_000
DAY = 86_400
GPUS = (  # model, memory MiB, CUDA cores, base price factor
    ("NVIDIA GeForce RTX 3090", 24_576, 10_496, 1.0),
    ("NVIDIA GeForce RTX 4090", 24_576, 16_384, 1.6),
    ("NVIDIA A100 40GB", 40_960, 6_912, 2.5),
    ("NVIDIA A100 80GB", 81_920, 6_912, 3.5),
    ("NVIDIA H100 80GB HBM3", 81_920, 16_896, 6.0),
    ("NVIDIA L4", 24_576, 7_424, 0.8),
    ("AMD Instinct MI250", 131_072, 0, 3.0),
)
CPUS = ("AMD EPYC 7763", "AMD EPYC 9654", "Intel Xeon Gold 6338", "Intel Core i9-13900K")
REGIONS = (  # name, lat, lon
    ("us-east", 39.0, -77.5),
    ("us-west", 37.4, -122.1),
    ("eu-west", 53.3, -6.3),
    ("eu-central", 50.1, 8.7),
    ("ap-east", 22.3, 114.2),
    ("ap-northeast", 35.7, 139.7),
    ("ap-southeast", 1.35, 103.8),
    ("cn-north", 39.9, 116.4),
    ("cn-east", 31.2, 121.5),
    ("sa-east", -23.5, -46.6),
    ("af-south", -33.9, 18.4),
    ("me-central", 25.2, 55.3),
)


def synthetic_listing(rng: random.Random, token_id: int) -> Listing:
    """One plausible listed resource."""
    cores = rng.choice((2, 4, 8, 16, 32, 64, 96, 128))
    clock = rng.randrange(2_000, 4_001, 100)
    memory_gib = rng.choice((4, 8, 16, 32, 64, 128, 256, 512))
    if rng.random() < 0.6:
        model, gpu_mem, cuda, factor = rng.choice(GPUS)
        count = rng.choice((1, 1, 1, 2, 4, 8))
        gpu = Gpu(model, gpu_mem, cuda, count)
    else:
        gpu, factor, count = Gpu(), 0.0, 0
    disk_type = rng.choice(tuple(DiskType))
    disk = Disk(
        disk_type,
        rng.choice((100, 250, 500, 1_000, 2_000, 4_000, 8_000)),
        rng.randrange(150, 7_001) * (1 + int(disk_type)),
        rng.randrange(100, 6_001) * (1 + int(disk_type)),
    )
    points = cores * clock // 10 + memory_gib * 20 + int(factor * count * 5_000)
    price_pvc = (0.05 * cores + 0.01 * memory_gib + factor * count * 4) * rng.uniform(0.5, 2.0)
    price = int(price_pvc * WEI_PER_PVC) + rng.randrange(10**12)
    region, lat, lon = rng.choice(REGIONS)
    start = NOW - rng.randrange(0, 30) * DAY
    min_days = rng.choice((1, 1, 1, 3, 7))
    return Listing(
        token_id=token_id,
        provider=f"0x{rng.getrandbits(160):040x}",
        price_per_day=price,
        available_from=start,
        available_until=NOW + rng.randrange(7, 366) * DAY,
        min_days=min_days,
        max_days=rng.choice((30, 90, 180, 365)),
        perform_points=points,
        specs=Specs(
            Cpu(rng.choice(CPUS), clock, cores), gpu, Memory(memory_gib * 1024, 3200), disk
        ),
        region=region,
        coordinates=Coordinates.from_degrees(
            lat + rng.uniform(-4, 4), max(-180.0, min(180.0, lon + rng.uniform(-4, 4)))
        ),
        reputation=min(50_000, max(0, int(rng.gauss(37_500, 7_500)))),
        verified=rng.random() < 0.97,
        frozen=rng.random() < 0.01,
        paused=rng.random() < 0.03,
    )


def synthetic_listings(n: int, seed: int) -> list[Listing]:
    """`n` listings with token ids 1..n, the same for the same seed."""
    rng = random.Random(seed)
    return [synthetic_listing(rng, token_id) for token_id in range(1, n + 1)]


def synthetic_order(rng: random.Random) -> DemandOrder:
    """A demand order using a random subset of the constraints (some match nothing)."""
    days = rng.choice((1, 3, 7, 14, 30, 60))
    kw: dict[str, Any] = {
        "period_days": days,
        "budget_wei": int(rng.choice((0.5, 2, 10, 50, 200, 1_000)) * days * WEI_PER_PVC),
        "start": NOW + rng.randrange(0, 30) * DAY,
    }
    if rng.random() < 0.5:
        kw["min_cpu_cores"] = rng.choice((4, 8, 16, 32, 64))
    if rng.random() < 0.3:
        kw["min_cpu_clock_mhz"] = rng.randrange(2_000, 3_800, 100)
    if rng.random() < 0.4:
        kw["gpu_model"] = rng.choice(("a100", "h100", "4090", "rtx", "mi250", "v100"))
    if rng.random() < 0.3:
        kw["min_gpu_memory_mib"] = rng.choice((16, 24, 40, 80)) * 1024
    if rng.random() < 0.2:
        kw["min_gpu_count"] = rng.choice((1, 2, 4, 8))
    if rng.random() < 0.4:
        kw["min_memory_mib"] = rng.choice((8, 32, 64, 256)) * 1024
    if rng.random() < 0.3:
        kw["min_disk_type"] = rng.choice(tuple(DiskType))
    if rng.random() < 0.2:
        kw["min_disk_size_gb"] = rng.choice((500, 1_000, 4_000))
    if rng.random() < 0.3:
        kw["region"] = rng.choice(REGIONS)[0]
    if rng.random() < 0.5:
        _, lat, lon = rng.choice(REGIONS)
        kw["coordinates"] = Coordinates.from_degrees(lat, lon)
        if rng.random() < 0.5:
            kw["max_distance_km"] = rng.choice((200.0, 500.0, 1_000.0, 3_000.0))
    if rng.random() < 0.4:
        kw["min_reputation"] = rng.choice((25_000, 35_000, 40_000, 45_000))
    return DemandOrder(**kw)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run(listings: int, orders: int, seed: int, limit: int) -> dict[str, Any]:
    """Build, index and time; returns the figures."""
    t0 = time.perf_counter()
    items = synthetic_listings(listings, seed)
    t1 = time.perf_counter()
    index = ListingIndex(items)
    t2 = time.perf_counter()
    rng = random.Random(seed + 1)
    order_list = [synthetic_order(rng) for _ in range(orders)]
    match(order_list[0], index, limit)  # warm-up: first-call allocations
    latencies, matched, empty = [], [], 0
    for order in order_list:
        start = time.perf_counter()
        result = match(order, index, limit)
        latencies.append((time.perf_counter() - start) * 1_000)
        matched.append(result.matched)
        empty += result.matched == 0
    updates = []
    for k in range(min(1_000, listings)):
        fresh = synthetic_listing(rng, rng.randrange(1, listings + 1))
        start = time.perf_counter()
        index.upsert(fresh)
        updates.append((time.perf_counter() - start) * 1e6)
        if k % 2:
            start = time.perf_counter()
            index.remove(fresh.token_id)
            index.add(fresh)
            updates.append((time.perf_counter() - start) * 1e6 / 2)
    return {
        "listings": listings,
        "orders": orders,
        "seed": seed,
        "limit": limit,
        "generate_s": round(t1 - t0, 3),
        "index_build_s": round(t2 - t1, 3),
        "match_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p99": round(percentile(latencies, 99), 2),
            "mean": round(statistics.fmean(latencies), 2),
            "max": round(max(latencies), 2),
        },
        "matched": {
            "median": int(statistics.median(matched)),
            "max": max(matched),
            "orders_with_no_match": empty,
        },
        "index_write_us_p50": round(percentile(updates, 50), 1),
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": __import__("os").cpu_count(),
            "platform": platform.platform(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    if args.listings < 1 or args.orders < 1 or args.limit < 1:
        parser.error("--listings, --orders and --limit must be positive")
    figures = run(args.listings, args.orders, args.seed, args.limit)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    m = figures["match_ms"]
    print(
        f"{figures['listings']:,} listings: generated in {figures['generate_s']} s, "
        f"indexed in {figures['index_build_s']} s"
    )
    print(
        f"match over {figures['orders']} orders: p50 {m['p50']} ms, p99 {m['p99']} ms, "
        f"mean {m['mean']} ms, max {m['max']} ms (target p50 < 50 ms)"
    )
    mt = figures["matched"]
    print(
        f"matched per order: median {mt['median']:,}, max {mt['max']:,}, "
        f"{mt['orders_with_no_match']} orders with no match"
    )
    print(f"index add/update/remove: p50 {figures['index_write_us_p50']} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
