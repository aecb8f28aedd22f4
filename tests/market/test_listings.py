"""Listings read from a real dev node (ResourceNFT, Market, PlatformAdmin, Reputation), matched."""

from __future__ import annotations

import dataclasses
import json

import typer
from typer.testing import CliRunner

from powerverse.cli.market_match import register
from powerverse.market.admin import Admin
from powerverse.market.listings import ChainListings, disk_type
from powerverse.market.matching import DemandOrder, DiskType, match
from powerverse.market.rentals import Rentals
from powerverse.market.resources import Disk, Gpu
from tests.market.conftest import ClientFactory
from tests.market.market_helpers import (
    FOUNDATION,
    PARA,
    PRICE,
    head_time,
    list_resource,
    register_resource,
)
from tests.rpc.conftest import ThreadedNode

PROVIDER = 3


def test_disk_kinds_map_to_classes() -> None:
    assert disk_type("NVMe") is DiskType.NVME
    assert disk_type("sata-ssd") is DiskType.SSD
    assert disk_type("hdd") is DiskType.HDD
    assert disk_type("tape") is DiskType.HDD


def test_listings_from_the_chain_match_and_follow_changes(client: ClientFactory) -> None:
    provider, foundation = client(PROVIDER), client(FOUNDATION)
    before = {x.token_id for x in ChainListings(client(0)).load()}
    a100 = dataclasses.replace(
        PARA,
        gpu=Gpu(model="NVIDIA A100 80GB", memory_mib=81_920, cuda_cores=6_912, count=1),
        disk=Disk(kind="ssd", size_gb=1_000, read_mbps=3_000, write_mbps=2_000),
    )
    listed = register_resource(provider, foundation, para=a100)
    list_resource(provider, listed, price=2 * PRICE, max_days=20)
    paused = register_resource(provider, foundation)
    list_resource(provider, paused)
    Rentals(provider).pause_listing(paused)
    unlisted = register_resource(provider, foundation)  # verified, never listed
    reader = ChainListings(client(0))
    found = {x.token_id: x for x in reader.load() if x.token_id not in before}
    assert sorted(found) == [listed, paused]
    item = found[listed]
    assert item.provider == provider.address
    assert item.price_per_day == 2 * PRICE and item.max_days == 20
    assert item.specs.gpu.model == "NVIDIA A100 80GB" and item.specs.gpu.memory_mib == 81_920
    assert item.specs.disk.type is DiskType.SSD and item.specs.cpu.cores == PARA.cpu.cores
    assert item.region == "cn-east" and item.coordinates.lat_micro == 31_230_400
    assert item.verified and not item.frozen and not item.paused
    assert item.perform_points > 0 and 0 < item.reputation <= 50_000
    assert found[paused].paused

    index = reader.index()
    order = DemandOrder(
        period_days=7,
        budget_wei=7 * 2 * PRICE,
        start=head_time(provider) + 60,
        gpu_model="a100",
        min_gpu_memory_mib=80 * 1024,
    )
    result = match(order, index)
    assert [m.listing.token_id for m in result.matches] == [listed]

    # the chain changes; refresh re-reads the tokens the events named
    Admin(foundation).freeze_resource(listed, "suspicious benchmark")
    Rentals(provider).resume_listing(paused)
    list_resource(provider, unlisted)
    reader.refresh(index, [listed, paused, unlisted])
    assert index.get(listed).frozen and not index.get(paused).paused and unlisted in index
    after = match(order, index)
    assert after.matched == 0
    assert after.constraint("rentable").matches_if_relaxed == 1
    Rentals(provider).unlist(unlisted)
    reader.refresh(index, [unlisted])
    assert unlisted not in index


def test_cli_match_reads_listings_from_the_node(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    provider = client(PROVIDER)
    h100 = dataclasses.replace(
        PARA, gpu=Gpu(model="NVIDIA H100 80GB HBM3", memory_mib=81_920, cuda_cores=16_896, count=8)
    )
    token_id = register_resource(provider, client(FOUNDATION), para=h100)
    list_resource(provider, token_id, price=5 * PRICE)
    market = typer.Typer()

    @market.callback()
    def _group() -> None:
        """pv market."""

    register(market)
    args = ["match", "--rpc-url", dev_node.url, "--days", "3", "--gpu", "H100", "--min-gpus", "8"]
    result = CliRunner().invoke(market, [*args, "--budget", f"{15 * PRICE}wei", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [m["token_id"] for m in doc["matches"]] == [str(token_id)]
    poor = CliRunner().invoke(market, [*args, "--budget", f"{15 * PRICE - 1}wei"])
    assert poor.exit_code == 1
    assert "relaxing budget alone would give 1 match" in poor.stdout
