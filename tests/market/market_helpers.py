"""Shared pieces of the ResourceNFT / Market / PlatformAdmin tests: sample resources and time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from powerverse.market.client import ChainClient
from powerverse.market.exceptions import ContractError
from powerverse.market.rentals import DAY, Rentals
from powerverse.market.resources import Cpu, Disk, Gpu, Location, PerformPara, Ram, Resources
from tests.rpc.conftest import ThreadedNode

FOUNDATION = 0  # dev account 0 holds every role and is the treasury
EVIDENCE = b"\xab" * 32
PRICE = 10**16  # wei per day

PARA = PerformPara(
    cpu=Cpu(model="AMD EPYC 7763", clock_speed_mhz=2450, cores=16),
    gpu=Gpu(model="NVIDIA RTX 4090", memory_mib=24_576, cuda_cores=16_384, count=2),
    ram=Ram(size_mib=65_536, frequency_mhz=3_200),
    disk=Disk(kind="nvme", size_gb=2_000, read_mbps=7_000, write_mbps=5_000),
)
SHANGHAI = Location.from_degrees("cn-east", 31.2304, 121.4737)


def head_time(client: ChainClient) -> int:
    """Timestamp of the latest block (what calls and gas estimates see)."""
    return int(client.w3.eth.get_block("latest")["timestamp"])


def warp_to(node: ThreadedNode, client: ChainClient, timestamp: int) -> int:
    """Make the head's timestamp exactly `timestamp` when it is later than the head's
    (evm_increaseTime, then evm_mine pinned to it, since blocks can run ahead of the clock)."""
    now = head_time(client)
    if now < timestamp:
        node.result("evm_increaseTime", timestamp - now)
        node.result("evm_mine", timestamp)
    return head_time(client)


def warp_by(node: ThreadedNode, client: ChainClient, seconds: int) -> int:
    """Move the head at least `seconds` past its current timestamp."""
    return warp_to(node, client, head_time(client) + seconds)


@contextmanager
def refused(name: str, *values: object, **args: object) -> Iterator[None]:
    """Expect a ContractError named `name`, with these argument values (positional: in order;
    by name: for errors whose signature no other system contract shares with other names)."""
    with pytest.raises(ContractError) as info:
        yield
    err = info.value
    assert err.name == name, f"expected {name}, got {err}"
    if values:
        assert tuple(err.args_by_name.values()) == values, f"{err.args_by_name} vs {values}"
    for key, value in args.items():
        assert err.args_by_name.get(key) == value, f"{key}: {err.args_by_name} vs {value}"


def register_resource(
    provider: ChainClient,
    verifier: ChainClient | None,
    *,
    para: PerformPara = PARA,
    agent: str | None = None,
) -> int:
    """Register a resource for `provider`; verify it when a verifier is given."""
    reg = Resources(provider).register(
        "ipfs://bafy-resource", para, SHANGHAI, agent_endpoint="https://agent.example", agent=agent
    )
    if verifier is not None:
        Resources(verifier).verify(reg.token_id, EVIDENCE)
    return reg.token_id


def list_resource(
    provider: ChainClient,
    token_id: int,
    *,
    price: int = PRICE,
    min_days: int = 1,
    max_days: int = 10,
    window_days: int = 60,
) -> None:
    """List `token_id` from now for `window_days` days."""
    now = head_time(provider)
    Rentals(provider).list_resource(
        token_id,
        price_per_day=price,
        available_from=now - 10,
        available_until=now + window_days * DAY,
        min_days=min_days,
        max_days=max_days,
    )


ClientFactory = Callable[[int], ChainClient]


def listed_resource(client: ClientFactory, provider: int, **listing: int) -> int:
    """A verified resource of dev account `provider`, listed."""
    token_id = register_resource(client(provider), client(FOUNDATION))
    list_resource(client(provider), token_id, **listing)
    return token_id
