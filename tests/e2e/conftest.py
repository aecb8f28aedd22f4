"""Fixtures for end-to-end tests: a real `pv node --dev` process, or an external node.

Set PV_E2E_RPC_URL (e.g. http://127.0.0.1:8546 for a Hardhat 2 node on chain 31337) to test
against an already running node instead; PV_E2E_WS_URL overrides its WebSocket address, which
otherwise is the RPC address with the ws scheme.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.e2e.nodeproc import PV_BIN, REPO_ROOT, free_port, rpc

ARTIFACTS_DIR = REPO_ROOT / "tests" / "contracts" / "artifacts"
__all__ = ["PV_BIN", "DevNode", "rpc"]
CHAIN_ID = 31337
DEV_MNEMONIC = "test test test test test test test test test test test junk"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 60


@dataclass(frozen=True)
class DevNode:
    """A node the e2e tests talk to; `process` is None for an external node."""

    rpc_url: str
    ws_url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last lines of the node's log (empty for an external node)."""
        return _tail(self.log_path, lines) if self.log_path else ""


def _tail(path: Path, lines: int) -> str:
    """Return the last `lines` lines of a text file, or a note if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _ws_url_for(rpc_url: str) -> str:
    """Derive the WebSocket address served on the same port as `rpc_url`."""
    scheme, _, rest = rpc_url.partition("://")
    host = rest.split("/", 1)[0]
    return f"{'wss' if scheme == 'https' else 'ws'}://{host}/"


def _wait_ready(node: DevNode, timeout: float) -> None:
    """Poll eth_chainId until it answers 31337; fail with the log tail otherwise."""
    deadline = time.monotonic() + timeout
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if node.process is not None and node.process.poll() is not None:
            pytest.fail(
                f"pv node exited with status {node.process.returncode} before answering RPC\n"
                f"--- log tail ({node.log_path}) ---\n{node.log_tail()}",
                pytrace=False,
            )
        try:
            chain_id = int(rpc(node.rpc_url, "eth_chainId", timeout=2.0), 16)
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            last_error = repr(exc)
            time.sleep(0.2)
            continue
        if chain_id != CHAIN_ID:
            pytest.fail(f"node at {node.rpc_url} has chain id {chain_id}, want {CHAIN_ID}")
        return
    pytest.fail(
        f"node at {node.rpc_url} did not answer eth_chainId within {timeout:.0f} s "
        f"(last error: {last_error})\n--- log tail ({node.log_path}) ---\n{node.log_tail()}",
        pytrace=False,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the node like Ctrl-C would; kill it if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def dev_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNode]:
    """A dev node (chain 31337, dev accounts funded) for one test module."""
    external = os.environ.get("PV_E2E_RPC_URL")
    if external:
        ws_url = os.environ.get("PV_E2E_WS_URL") or _ws_url_for(external)
        node = DevNode(rpc_url=external, ws_url=ws_url)
        _wait_ready(node, START_TIMEOUT_S)
        yield node
        return
    if not PV_BIN.exists():
        pytest.fail(f"{PV_BIN} not found: run scripts/setup", pytrace=False)
    workdir = tmp_path_factory.mktemp("pv-node")
    port = free_port()
    log_path = workdir / "node.log"
    cmd = [
        str(PV_BIN),
        "node",
        "--dev",
        "--rpc-port",
        str(port),
        "--data-dir",
        str(workdir / "data"),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir
        )
    url = f"http://127.0.0.1:{port}"
    node = DevNode(
        rpc_url=url, ws_url=f"ws://127.0.0.1:{port}/", process=process, log_path=log_path
    )
    try:
        _wait_ready(node, START_TIMEOUT_S)
        yield node
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def dev_accounts() -> list[LocalAccount]:
    """The first ten accounts of the dev mnemonic (Hardhat's well-known accounts)."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(10)
    ]


@pytest.fixture(scope="session")
def artifacts() -> dict[str, dict[str, Any]]:
    """The committed test-contract artifacts, keyed by contract name."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(ARTIFACTS_DIR.glob("*.json"))}
