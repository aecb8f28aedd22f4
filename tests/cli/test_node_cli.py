"""`pv node`, `pv genesis` and `pv status`: real processes, JSON output, exit codes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address
from typer.testing import CliRunner

from powerverse.cli.app import _register_subcommands, app
from powerverse.contracts.system import (
    DIVIDEND_POOL,
    SYSTEM_CONTRACTS,
    TOKENOMICS_ADDRESSES,
    dev_tokenomics,
)
from powerverse.crypto.keys import dev_accounts
from tests.e2e.nodeproc import PV_BIN, NodeProcess, free_port, rpc

_register_subcommands()
runner = CliRunner()


def _pv_refused(*args: str) -> str:
    """Run a real `pv` process that must exit with 1; return what it said on stderr."""
    result = subprocess.run(
        [str(PV_BIN), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 1, result.stderr
    return result.stderr


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("node", "genesis", "status", "account"):
        assert command in result.output


def test_non_dev_node_without_genesis_is_a_usage_error() -> None:
    result = runner.invoke(app, ["node"])
    assert result.exit_code == 2
    assert "--genesis" in result.output


def test_bad_block_time_is_a_usage_error() -> None:
    result = runner.invoke(app, ["node", "--dev", "--block-time", "0"])
    assert result.exit_code == 2


def test_dev_clock_is_for_validator_networks_only() -> None:
    result = runner.invoke(app, ["node", "--dev", "--dev-clock"])
    assert result.exit_code == 2
    assert "--dev-clock" in result.output


def test_genesis_dev_writes_and_refuses_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    assert runner.invoke(app, ["genesis", "dev", "--out", str(out)]).exit_code == 0
    doc = json.loads(out.read_text())
    assert doc["chainId"] == 31337
    system = {to_checksum_address(c.address) for c in SYSTEM_CONTRACTS}
    # the tokenomics pools, and the presale beneficiary (the rest of the presale genesis part)
    pools = {to_checksum_address(a) for a in [*TOKENOMICS_ADDRESSES.values(), DIVIDEND_POOL]}
    presale = to_checksum_address(dev_tokenomics(0).beneficiaries["presale"])
    assert set(doc["alloc"]) - system - pools - {presale} == {
        to_checksum_address(a.address) for a in dev_accounts()
    }
    assert system | pools <= set(doc["alloc"])  # the system contracts are predeployed
    again = runner.invoke(app, ["genesis", "dev", "--out", str(out)])
    assert again.exit_code == 1 and "--force" in again.output
    checked = runner.invoke(app, ["genesis", "check", str(out), "--json"])
    assert checked.exit_code == 0
    assert json.loads(checked.stdout)["chainId"] == 31337


def test_validator_key_is_private_and_never_overwritten(tmp_path: Path) -> None:
    key = tmp_path / "v.json"
    result = runner.invoke(app, ["genesis", "validator-key", "--out", str(key), "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["address"].startswith("0x") and len(doc["consensusPublicKey"]) == 66
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert runner.invoke(app, ["genesis", "validator-key", "--out", str(key)]).exit_code == 1


def test_genesis_init_and_bad_alloc(tmp_path: Path) -> None:
    key = tmp_path / "v.json"
    runner.invoke(app, ["genesis", "validator-key", "--out", str(key)])
    out = tmp_path / "g.json"
    ok = runner.invoke(
        app,
        [
            "genesis",
            "init",
            "--chain-id",
            "777",
            "--validator-key",
            str(key),
            "--alloc",
            "0x" + "11" * 20 + "=5",
            "--out",
            str(out),
        ],
    )
    assert ok.exit_code == 0, ok.output
    doc = json.loads(out.read_text())
    assert doc["chainId"] == 777
    assert doc["alloc"][to_checksum_address("0x" + "11" * 20)]["balance"] == str(5 * 10**18)
    bad = runner.invoke(
        app,
        [
            "genesis",
            "init",
            "--chain-id",
            "777",
            "--validator-key",
            str(key),
            "--alloc",
            "nonsense",
            "--out",
            str(tmp_path / "x.json"),
        ],
    )
    assert bad.exit_code == 1 and "ADDRESS=PVC" in bad.output
    missing = runner.invoke(
        app, ["genesis", "init", "--chain-id", "7", "--validator-key", str(tmp_path / "nope")]
    )
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_genesis_check_reports_a_broken_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"chainId": 0, "timestamp": 1}')
    result = runner.invoke(app, ["genesis", "check", str(bad)])
    assert result.exit_code == 1 and "chainId" in result.output


def test_status_of_an_unreachable_node_exits_3() -> None:
    result = runner.invoke(app, ["status", "--rpc", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 3
    assert "cannot reach a node" in result.output


@pytest.mark.e2e
def test_node_process_json_status_and_clean_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            str(PV_BIN),
            "node",
            "--dev",
            "--json",
            "--rpc-port",
            str(port),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        doc = json.loads(proc.stdout.readline())
        assert doc["rpcUrl"] == f"http://127.0.0.1:{port}"
        assert doc["chainId"] == 31337 and len(doc["accounts"]) == 20
        assert doc["accounts"][0]["address"] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        status = subprocess.run(
            [str(PV_BIN), "status", "--json", "--rpc", doc["rpcUrl"]],
            capture_output=True,
            text=True,
            check=True,
        )
        info = json.loads(status.stdout)
        assert info["height"] == 0 and info["chainId"] == 31337 and info["peers"] == 0
        assert info["txpool"] == {"pending": 0, "queued": 0}
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    # Ctrl-C released the data directory: it opens again with the same chain.
    node = NodeProcess(tmp_path / "d")
    node.start()
    try:
        assert rpc(node.url, "eth_blockNumber") == "0x0"
    finally:
        node.stop()


@pytest.mark.e2e
def test_second_node_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "d")
    node.start()
    try:
        stderr = _pv_refused(
            "node", "--dev", "--data-dir", str(tmp_path / "d"), "--rpc-port", str(free_port())
        )
        assert "in use by another process" in stderr
    finally:
        node.stop()


@pytest.mark.e2e
def test_data_dir_of_another_chain_is_refused(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "d")
    node.start()
    node.stop()
    key = tmp_path / "v.json"
    runner.invoke(app, ["genesis", "validator-key", "--out", str(key)])
    gen = tmp_path / "g.json"
    runner.invoke(
        app, ["genesis", "init", "--chain-id", "9", "--validator-key", str(key), "--out", str(gen)]
    )
    stderr = _pv_refused(
        "node",
        "--genesis",
        str(gen),
        "--validator-key",
        str(key),
        "--data-dir",
        str(tmp_path / "d"),
        "--rpc-port",
        str(free_port()),
    )
    assert "differs from the genesis" in stderr


@pytest.mark.e2e
def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "a")
    node.start()
    try:
        stderr = _pv_refused("node", "--dev", "--rpc-port", str(node.port))
        assert "address already in use" in stderr.lower()
    finally:
        node.stop()


@pytest.mark.e2e
def test_without_data_dir_a_temporary_chain_is_used_and_removed() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(PV_BIN), "node", "--dev", "--json", "--rpc-port", str(port), "--block-time", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        doc = json.loads(proc.stdout.readline())
        data_dir = Path(doc["dataDir"])
        assert data_dir.exists()
        # --block-time makes blocks without transactions.
        deadline = time.monotonic() + 30
        while int(rpc(doc["rpcUrl"], "eth_blockNumber"), 16) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert int(rpc(doc["rpcUrl"], "eth_blockNumber"), 16) >= 2
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert not data_dir.exists()
