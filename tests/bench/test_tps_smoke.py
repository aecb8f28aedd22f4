"""Smoke test of the bench loads against a running dev node (PV_E2E_RPC_URL); no timing checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench._load import (
    Target,
    connect,
    deploy_erc20,
    fund_tokens,
    prepare_senders,
    run_calls,
    run_erc20,
    run_memory,
    run_transfers,
)
from bench._rpc import RpcClient

from bench import tps
from tests.e2e.conftest import DevNode, dev_node

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["dev_node"]  # the fixture, re-used from the e2e suite

ARTIFACT = Path(__file__).resolve().parents[1] / "contracts" / "artifacts" / "PVTestToken.json"


@pytest.fixture
def url(dev_node: DevNode) -> str:
    """The node under test: a real `pv node --dev` process, or PV_E2E_RPC_URL."""
    return dev_node.rpc_url


@pytest.fixture
def target(url: str) -> Iterator[Target]:
    """A connected load target for the node under test."""
    with RpcClient(url) as rpc:
        yield connect(rpc, stall_timeout=60.0)


@pytest.fixture
def artifact() -> dict[str, object]:
    """The ERC-20 test token artifact, or skip."""
    data = json.loads(ARTIFACT.read_text())
    assert isinstance(data, dict)
    return data


def test_transfers_are_all_included(target: Target) -> None:
    senders = prepare_senders(target, 20, 2)
    result = run_transfers(target, senders, 40)
    assert (result.count, result.included, result.failed) == (40, 40, 0)
    assert result.seconds > 0 and result.tps > 0 and result.send_tps > 0
    assert result.blocks >= 1


def test_extra_accounts_are_funded_and_send(target: Target) -> None:
    senders = prepare_senders(target, 23, 2)
    assert len({s.address for s in senders}) == 23
    result = run_transfers(target, senders, 46)  # two txs from every account, extras included
    assert (result.included, result.failed) == (46, 0)


def test_erc20_transfers_and_call_latency(target: Target, artifact: dict[str, object]) -> None:
    senders = prepare_senders(target, 20, 2)
    token = deploy_erc20(target, senders[0], artifact)
    gas = fund_tokens(target, token, senders[0], senders)
    assert gas > 21_000
    result = run_erc20(target, token, senders, 40, gas)
    assert (result.count, result.included, result.failed) == (40, 40, 0)
    assert result.tps > 0
    calls = run_calls(target, token, senders, 40)
    assert calls.count == 40
    assert 0 < calls.p50_ms <= calls.p99_ms <= calls.max_ms
    assert calls.calls_per_s > 0


def test_memory_run_sends_every_chunk(target: Target) -> None:
    senders = prepare_senders(target, 20, 3)
    samples: list[int] = []

    def fake_rss() -> int:
        samples.append(len(samples) + 1)
        return samples[-1]

    result = run_memory(target, senders, 45, 20, fake_rss)  # chunks of 20, 20, 5
    assert (result.count, result.included) == (45, 45)
    assert result.rss_before == 1 and result.rss_after == 5 and result.rss_peak == 4
    assert result.tps > 0


def test_cli_json_figures(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = tps.main([url, "--count", "40", "--erc20-count", "20", "--calls", "20", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    node = doc["nodes"]["node"]
    assert node["error"] is None
    assert node["transfers"]["included"] == 40 and node["transfers"]["tps"] > 0
    if ARTIFACT.exists():
        assert node["erc20"]["included"] == 20 and node["erc20"]["tps"] > 0
        assert node["eth_call"]["p50_ms"] > 0
    assert doc["params"]["count"] == 40
