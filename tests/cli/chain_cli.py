"""Shared pieces of the CLI tests that run `pv ...` in-process against a real dev node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from typer.testing import CliRunner

from powerverse.cli.app import _register_subcommands, app
from powerverse.crypto.keys import dev_accounts
from powerverse.node.runner import NodeConfig
from tests.rpc.conftest import ThreadedNode, run_threaded, stop_threaded

_register_subcommands()
runner = CliRunner()
# each group's own Typer app, as registered on `pv`: invoking it alone skips building every
# other group's commands on each call (half the time of a call otherwise)
GROUPS = {info.name: info.typer_instance for info in app.registered_groups}
PVC = 10**18
UNREACHABLE = "http://127.0.0.1:9"
EVIDENCE = "0x" + "ab" * 32
RESOURCE_OPTIONS = (
    "--metadata", "ipfs://bafy-resource",
    "--cpu-model", "AMD EPYC 7763", "--cpu-mhz", "2450", "--cpu-cores", "16",
    "--gpu-model", "NVIDIA RTX 4090", "--gpu-memory-mib", "24576", "--gpu-cuda-cores", "16384",
    "--gpu-count", "2",
    "--ram-mib", "65536", "--ram-mhz", "3200",
    "--disk-type", "nvme", "--disk-gb", "2000", "--disk-read-mbps", "7000",
    "--disk-write-mbps", "5000",
    "--region", "cn-east", "--lat", "31.2304", "--lon", "121.4737",
    "--agent-endpoint", "https://agent.example",
)  # fmt: skip


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedNode]:
    """One real dev node for a test module (dev account 0 holds every role)."""
    node = run_threaded(
        NodeConfig(data_dir=tmp_path_factory.mktemp("cli") / "data", dev=True, rpc_port=0)
    )
    try:
        yield node
    finally:
        stop_threaded(node)


def addr(i: int) -> str:
    """Checksummed address of dev account i."""
    return to_checksum_address(dev_accounts()[i].address)


def pv(node: ThreadedNode | None, *args: str, signer: int | None = None) -> Any:
    """Run `pv ...` in-process against `node` (None: an address where nothing listens)."""
    url = node.url if node is not None else UNREACHABLE
    extra = ["--rpc-url", url] + (["--dev-account", str(signer)] if signer is not None else [])
    group = GROUPS[args[0]]
    assert group is not None
    return runner.invoke(group, [*args[1:], *extra])


def ok(result: Any) -> Any:
    """The JSON document of a command that must succeed."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def refused(result: Any, name: str) -> dict[str, Any]:
    """Assert a refusal by the contract error `name` (exit 1); its JSON document or {}."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    if result.stdout.strip():
        doc: dict[str, Any] = json.loads(result.stdout)
        assert doc["error"] == name, doc
        return doc
    assert name in result.stderr, result.stderr
    return {}


def head_time(node: ThreadedNode) -> int:
    """Timestamp of the node's latest block."""
    return int(node.result("eth_getBlockByNumber", "latest", False)["timestamp"], 16)


def warp_by(node: ThreadedNode, seconds: int) -> int:
    """Move the head at least `seconds` past its current timestamp; the new head time."""
    target = head_time(node) + seconds
    node.result("evm_increaseTime", seconds)
    node.result("evm_mine", target)
    return head_time(node)


def register_verified(node: ThreadedNode, provider: int, *extra: str) -> int:
    """Register a resource for dev account `provider` and verify it as the foundation."""
    token = ok(pv(node, "resource", "register", *RESOURCE_OPTIONS, *extra, "--json",
                  signer=provider))["tokenId"]  # fmt: skip
    ok(pv(node, "resource", "verify", str(token), "--evidence-hash", EVIDENCE, "--json", signer=0))
    return int(token)
