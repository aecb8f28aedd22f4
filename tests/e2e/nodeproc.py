"""Start, kill and restart real `pv node` processes for fault tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
PV_BIN = REPO_ROOT / ".venv" / "bin" / "pv"


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RpcFailure(RuntimeError):
    """A JSON-RPC call answered with an error."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 10.0) -> Any:
    """One JSON-RPC call; errors raise RpcFailure."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    reply = httpx.post(url, json=body, timeout=timeout).json()
    if "error" in reply:
        raise RpcFailure(reply["error"])
    return reply["result"]


@dataclass
class NodeProcess:
    """One `pv node --dev` over a data directory that outlives the process."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    dev: bool = True  # False: a network node; extra_args carry --genesis, keys and ports
    program: tuple[str, ...] = ()  # another node program instead of `pv node` (test-only)
    prefix: tuple[str, ...] = ()  # run under this (e.g. `ip netns exec NS`)
    rpc_host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        """HTTP JSON-RPC URL."""
        return f"http://{self.rpc_host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the current process logs."""
        return self.data_dir.parent / f"{self.data_dir.name}-node-{self.starts}.log"

    def start(self, timeout: float = 60.0) -> None:
        """Start the process and wait until RPC answers."""
        self.starts += 1
        head = list(self.program) or [str(PV_BIN), "node", *(["--dev"] if self.dev else [])]
        cmd = [*self.prefix, *head, "--data-dir", str(self.data_dir)]
        cmd += ["--rpc-host", self.rpc_host, "--rpc-port", str(self.port), *self.extra_args]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited with {self.process.returncode}:\n{self.log()}")
            try:
                rpc(self.url, "eth_chainId", timeout=2)
                return
            except (httpx.HTTPError, RpcFailure):
                time.sleep(0.1)
        raise RuntimeError(f"node did not answer within {timeout} s:\n{self.log()}")

    def children(self) -> list[int]:
        """Pids of the node's child processes (its block executor)."""
        assert self.process is not None
        found: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):
            try:
                found += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
        return found

    def executor_pid(self) -> int:
        """The pid of the node's block executor process."""
        for pid in self.children():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                return pid
        raise AssertionError("the node has no block executor process")

    def kill9(self) -> None:
        """SIGKILL the node: no chance to clean up; its executor must die with it."""
        assert self.process is not None
        children = self.children()
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in children):
            if time.monotonic() > deadline:
                raise AssertionError(f"executor processes {children} outlived the killed node")
            time.sleep(0.05)

    def stop(self) -> None:
        """Ctrl-C, then wait; kill if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        """The tail of the current log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])
        except OSError:
            return "<no log>"


def validator_nodes(
    root: Path,
    genesis: Any,
    keys: Sequence[Any],
    *,
    validators: int | None = None,
    programs: Mapping[int, tuple[str, ...]] | None = None,
) -> list[NodeProcess]:
    """One network node per validator key on `genesis` (a chain.genesis.Genesis), each with its
    own data dir under `root`, P2P port and the first `validators` keys' nodes as bootnodes
    (default: all of them); `programs` replaces `pv node` for some (test-only builds)."""
    (root / "genesis.json").write_text(json.dumps(genesis.to_json()))
    p2p = [free_port() for _ in keys]
    boots = range(len(keys) if validators is None else validators)
    nodes = []
    for i, key in enumerate(keys):
        key.save(root / f"key-{i}.json")
        boot = [
            f"--bootnode={keys[j].consensus.public_key.hex()}@127.0.0.1:{p2p[j]}"
            for j in boots
            if j != i
        ]
        args = (
            "--genesis", str(root / "genesis.json"),
            "--validator-key", str(root / f"key-{i}.json"),
            "--p2p-port", str(p2p[i]),
            *boot,
        )  # fmt: skip
        program = (programs or {}).get(i, ())
        nodes.append(NodeProcess(root / f"node-{i}", dev=False, extra_args=args, program=program))
    return nodes
