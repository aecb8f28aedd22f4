"""Shared pieces of the Orders / Reputation / Arbitration tests."""

from __future__ import annotations

from powerverse.market.client import ChainClient
from powerverse.market.orders import DAY, Orders, Specs
from tests.market.market_helpers import (
    FOUNDATION,
    PARA,
    ClientFactory,
    head_time,
    register_resource,
)

__all__ = [
    "FOUNDATION",
    "MATCHING",
    "REWARD",
    "demand",
    "resource",
    "task",
]

REWARD = 10**17
MATCHING = Specs(
    cpu_cores=PARA.cpu.cores,
    cpu_clock_mhz=PARA.cpu.clock_speed_mhz,
    gpu_memory_mib=PARA.gpu.memory_mib,
    gpu_count=PARA.gpu.count,
    ram_mib=PARA.ram.size_mib,
    disk_gb=PARA.disk.size_gb,
    disk_kind=PARA.disk.kind,
    region="cn-east",
)
"""Specs that the sample resource (market_helpers.PARA in cn-east) meets exactly."""


def resource(client: ClientFactory, provider: int) -> int:
    """A verified resource of dev account `provider` (verified by the foundation)."""
    return register_resource(client(provider), client(FOUNDATION))


def task(
    consumer: ChainClient,
    *,
    reward: int = REWARD,
    hours: int = 24,
    specs: Specs = MATCHING,
    expected_hash: bytes | None = None,
) -> int:
    """Post a task due in `hours`; returns its id."""
    deadline = head_time(consumer) + hours * 3600
    posted = Orders(consumer).post_task(
        "ipfs://bafy-task", specs, reward=reward, deadline=deadline, expected_hash=expected_hash
    )
    return posted.order_id


def demand(
    consumer: ChainClient,
    *,
    budget: int = 10 * 10**16,
    period_days: int = 3,
    open_days: int = 7,
    specs: Specs = MATCHING,
) -> int:
    """Post a demand open for `open_days`; returns its id."""
    deadline = head_time(consumer) + open_days * DAY
    posted = Orders(consumer).post_demand(
        specs, period_days=period_days, budget=budget, deadline=deadline
    )
    return posted.order_id
