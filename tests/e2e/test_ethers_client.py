"""ethers v6 in Node.js against a dev node: runs ethers_client.mjs, asserts each check."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS_DIR, REPO_ROOT, DevNode

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).with_name("ethers_client.mjs")
RUN_TIMEOUT_S = 240.0
CHECKS = (
    "chain_id",
    "dev_accounts_funded",
    "deploy_contracts",
    "token_transfer",
    "query_filter",
    "custom_error",
    "revert_reason_string",
    "panic",
    "estimate_gas",
    "call_at_past_block",
    "fee_data_and_block",
    "legacy_tx",
    "ws_block_event",
    "ws_contract_event",
)


@pytest.fixture(scope="module")
def ethers_report(dev_node: DevNode) -> dict[str, Any]:
    """Run the ethers script once against the node; return its parsed JSON report."""
    node = shutil.which("node")
    assert node is not None, "node is not on PATH"
    assert (REPO_ROOT / "node_modules" / "ethers").is_dir(), "run scripts/setup (npm ci)"
    cmd = [node, str(SCRIPT), "--rpc", dev_node.rpc_url, "--ws", dev_node.ws_url]
    cmd += ["--artifacts", str(ARTIFACTS_DIR)]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    lines = proc.stdout.strip().splitlines()
    try:
        report: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        pytest.fail(
            f"ethers_client.mjs exited {proc.returncode} without a JSON report\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}\n"
            f"--- node log ---\n{dev_node.log_tail()}",
            pytrace=False,
        )
    report["returncode"] = proc.returncode
    return report


def test_report_lists_every_check(ethers_report: dict[str, Any]) -> None:
    assert [c["name"] for c in ethers_report["checks"]] == list(CHECKS)
    assert ethers_report["returncode"] == (0 if ethers_report["ok"] else 1)


@pytest.mark.parametrize("name", CHECKS)
def test_ethers_check(ethers_report: dict[str, Any], name: str) -> None:
    by_name = {c["name"]: c for c in ethers_report["checks"]}
    assert name in by_name, f"check {name} missing from the report"
    result = by_name[name]
    if not result["ok"]:
        pytest.fail(f"ethers check {name} failed after {result['ms']} ms:\n{result['detail']}")
