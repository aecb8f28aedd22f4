"""`pv devnet`: a local network of N validators, each a separate `pv node` process.

A devnet lives in one directory::

    DIR/devnet.json          what runs where: pids, ports, peer ids (rewritten atomically)
    DIR/genesis.json         chain id 31338, the 20 dev accounts funded, N validators
    DIR/keys/validator-I.json  deterministic keys (label "devnet-validator-I")
    DIR/node-I/              node I's data dir
    DIR/node-I.log           node I's stdout and stderr

Nodes are started detached (their own session, reparented away from the CLI by a short-lived
launcher process) so they outlive `pv devnet up` and never become zombies of the CLI. A
recorded pid counts as our node only while /proc/PID/cmdline carries `--data-dir DIR/node-I`,
so a pid reused by another process is never signalled.

For tests only, the environment variable PV_DEVNET_NODE_CMD replaces the node command
(default: `pv node` of this Python environment); it receives the same arguments.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from powerverse.chain.devtime import DEV_CLOCK_FILE, load_clock_offset, save_clock_offset
from powerverse.chain.exceptions import ChainError
from powerverse.chain.genesis import DEFAULT_STAKE, Genesis, Validator, dev_genesis
from powerverse.cli.common import EXIT_USAGE, EXIT_USER_ERROR, err_console, fail, print_json
from powerverse.contracts.system import dev_system_config, dev_tokenomics, with_system_contracts
from powerverse.crypto.keys import dev_accounts
from powerverse.node.validator_key import ValidatorKey
from powerverse.p2p.address import PeerAddress

DEVNET_CHAIN_ID = 31338
MAX_VALIDATORS = 16
DEFAULT_VALIDATORS = 4
DEFAULT_RPC_BASE_PORT = 8545
DEFAULT_P2P_BASE_PORT = 30303
HOST = "127.0.0.1"
STATE_FILE = "devnet.json"
LOCK_FILE = "devnet.lock"
GENESIS_FILE = "genesis.json"
KEYS_DIR = "keys"
STATE_VERSION = 1
NODE_CMD_ENV = "PV_DEVNET_NODE_CMD"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
KILL_WAIT_S = 10.0
LOG_TAIL_LINES = 30
RPC_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.2

app = typer.Typer(
    help="Run a local network of several validators, each its own `pv node` process.",
    no_args_is_help=True,
)


class DevnetError(Exception):
    """A devnet command cannot go on; `code` is the exit status (1 failure, 2 usage)."""

    def __init__(self, message: str, code: int = EXIT_USER_ERROR) -> None:
        super().__init__(message)
        self.code = code


# --- layout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeRecord:
    """One node of a devnet: where it stores, listens and logs; its pid while started."""

    index: int
    data_dir: Path
    key_file: Path
    log_file: Path
    rpc_port: int
    p2p_port: int
    peer_id: str
    bootnodes: tuple[str, ...]
    command: tuple[str, ...]
    pid: int | None = None

    @property
    def rpc_url(self) -> str:
        """The node's HTTP JSON-RPC address."""
        return f"http://{HOST}:{self.rpc_port}"

    @property
    def p2p_address(self) -> str:
        """The node's address as other nodes' --bootnode: pubkeyhex@host:port."""
        return str(PeerAddress(bytes.fromhex(self.peer_id), HOST, self.p2p_port))

    def to_json(self) -> dict[str, Any]:
        """The node's entry in devnet.json."""
        return {
            "index": self.index,
            "pid": self.pid,
            "dataDir": str(self.data_dir),
            "keyFile": str(self.key_file),
            "log": str(self.log_file),
            "rpcPort": self.rpc_port,
            "rpcUrl": self.rpc_url,
            "p2pPort": self.p2p_port,
            "peerId": self.peer_id,
            "p2pAddress": self.p2p_address,
            "bootnodes": list(self.bootnodes),
            "command": list(self.command),
        }

    @classmethod
    def from_json(cls, doc: Any) -> NodeRecord:
        """Read an entry of devnet.json; KeyError/TypeError/ValueError if malformed."""
        pid = doc["pid"]
        if pid is not None and (not isinstance(pid, int) or pid <= 0):
            raise ValueError(f"bad pid {pid!r}")
        return cls(
            index=int(doc["index"]),
            data_dir=Path(doc["dataDir"]),
            key_file=Path(doc["keyFile"]),
            log_file=Path(doc["log"]),
            rpc_port=int(doc["rpcPort"]),
            p2p_port=int(doc["p2pPort"]),
            peer_id=str(doc["peerId"]),
            bootnodes=tuple(str(b) for b in doc["bootnodes"]),
            command=tuple(str(c) for c in doc["command"]),
            pid=pid,
        )


@dataclass(frozen=True)
class Devnet:
    """A devnet directory's recorded state (devnet.json)."""

    directory: Path
    chain_id: int
    genesis_file: Path
    rpc_base_port: int
    p2p_base_port: int
    nodes: tuple[NodeRecord, ...]

    def to_json(self) -> dict[str, Any]:
        """The devnet.json document."""
        return {
            "version": STATE_VERSION,
            "dir": str(self.directory),
            "chainId": self.chain_id,
            "genesis": str(self.genesis_file),
            "rpcBasePort": self.rpc_base_port,
            "p2pBasePort": self.p2p_base_port,
            "nodes": [n.to_json() for n in self.nodes],
        }

    def node(self, index: int) -> NodeRecord:
        """Node `index`; a usage error names the valid range otherwise."""
        if not 0 <= index < len(self.nodes):
            raise DevnetError(
                f"no node {index} in this devnet (nodes are 0..{len(self.nodes) - 1})", EXIT_USAGE
            )
        return self.nodes[index]

    def with_node(self, record: NodeRecord) -> Devnet:
        """A copy with one node's record replaced."""
        nodes = tuple(record if n.index == record.index else n for n in self.nodes)
        return replace(self, nodes=nodes)

    def save(self) -> None:
        """Write devnet.json atomically (a crash never leaves half a file)."""
        _write_atomic(self.directory / STATE_FILE, json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Devnet:
        """Read DIR/devnet.json; a DevnetError says why there is no usable devnet."""
        path = directory / STATE_FILE
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise DevnetError(
                f"no devnet in {directory} (no {STATE_FILE}); start one with `pv devnet up`"
            ) from None
        except (OSError, ValueError) as exc:
            raise DevnetError(f"cannot read {path}: {exc}") from None
        try:
            if doc["version"] != STATE_VERSION:
                raise ValueError(f"unknown version {doc['version']!r}")
            nodes = tuple(NodeRecord.from_json(n) for n in doc["nodes"])
            devnet = cls(
                directory=directory,
                chain_id=int(doc["chainId"]),
                genesis_file=Path(doc["genesis"]),
                rpc_base_port=int(doc["rpcBasePort"]),
                p2p_base_port=int(doc["p2pBasePort"]),
                nodes=nodes,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DevnetError(f"{path} is malformed ({exc!r}); remove the directory") from None
        if [n.index for n in nodes] != list(range(len(nodes))) or not nodes:
            raise DevnetError(f"{path} is malformed (node indexes); remove the directory")
        return devnet


def _write_atomic(path: Path, text: str) -> None:
    """Write a file by renaming a fully written temporary file over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def validator_label(index: int) -> str:
    """The deterministic key label of validator `index`."""
    return f"devnet-validator-{index}"


def node_command() -> tuple[str, ...]:
    """The command that runs one node: `pv node` of this environment (or the test override)."""
    override = os.environ.get(NODE_CMD_ENV)
    if override:
        return tuple(shlex.split(override))
    pv = Path(sys.executable).parent / "pv"
    if pv.exists():
        return (str(pv), "node")
    return (sys.executable, "-c", "from powerverse.cli.app import main; main()", "node")


def check_validator_count(validators: int) -> None:
    """Refuse a validator count outside 1..16 (a usage error)."""
    if not 1 <= validators <= MAX_VALIDATORS:
        raise DevnetError(
            f"--validators must be between 1 and {MAX_VALIDATORS}, got {validators}", EXIT_USAGE
        )


def check_layout_args(validators: int, rpc_base_port: int, p2p_base_port: int) -> None:
    """Refuse a validator count or port ranges that cannot work (usage errors)."""
    check_validator_count(validators)
    for name, base in (("--base-port", rpc_base_port), ("--p2p-base-port", p2p_base_port)):
        if base < 1 or base + validators - 1 > 65535:
            raise DevnetError(
                f"{name} {base}: ports {base}..{base + validators - 1} must lie in 1..65535",
                EXIT_USAGE,
            )
    rpc = set(range(rpc_base_port, rpc_base_port + validators))
    if rpc & set(range(p2p_base_port, p2p_base_port + validators)):
        raise DevnetError("the JSON-RPC and p2p port ranges overlap", EXIT_USAGE)


def plan_devnet(
    directory: Path,
    peer_ids: Sequence[bytes],
    rpc_base_port: int,
    p2p_base_port: int,
    command: Sequence[str],
) -> Devnet:
    """The layout of a devnet of len(peer_ids) nodes: ports base+I, bootnodes = all others."""
    directory = directory.absolute()
    genesis_file = directory / GENESIS_FILE
    addresses = [
        str(PeerAddress(peer_id, HOST, p2p_base_port + i)) for i, peer_id in enumerate(peer_ids)
    ]
    nodes = []
    for i, peer_id in enumerate(peer_ids):
        data_dir = directory / f"node-{i}"
        key_file = directory / KEYS_DIR / f"validator-{i}.json"
        bootnodes = tuple(a for j, a in enumerate(addresses) if j != i)
        args = [
            *command,
            "--genesis",
            str(genesis_file),
            "--data-dir",
            str(data_dir),
            "--validator-key",
            str(key_file),
            "--rpc-host",
            HOST,
            "--rpc-port",
            str(rpc_base_port + i),
            "--p2p-port",
            str(p2p_base_port + i),
            # A development network: scripts send many transactions from one account,
            # and move time forward (`pv devnet warp`, evm_increaseTime on every node).
            "--txpool-account-slots",
            "4096",
            "--dev-clock",
        ]
        for bootnode in bootnodes:
            args += ["--bootnode", bootnode]
        nodes.append(
            NodeRecord(
                index=i,
                data_dir=data_dir,
                key_file=key_file,
                log_file=directory / f"node-{i}.log",
                rpc_port=rpc_base_port + i,
                p2p_port=p2p_base_port + i,
                peer_id=peer_id.hex(),
                bootnodes=bootnodes,
                command=tuple(args),
            )
        )
    return Devnet(
        directory=directory,
        chain_id=DEVNET_CHAIN_ID,
        genesis_file=genesis_file,
        rpc_base_port=rpc_base_port,
        p2p_base_port=p2p_base_port,
        nodes=tuple(nodes),
    )


def devnet_genesis(keys: Sequence[ValidatorKey], timestamp: int) -> Genesis:
    """Chain 31338: the 20 dev accounts funded, each key a validator with the default stake
    (its account funded too, for the gas of its own liveness proofs and evidence), and the dev
    tokenomics (listed at genesis; these balances come out of the presale's genesis part).

    The committee is every validator with its whole stake (tau_committee = total stake), so
    the devnet runs in the exact BFT regime of docs/consensus.md: safe with less than a third
    of the stake faulty, not merely with high probability.
    """
    funded = [a.address for a in dev_accounts()] + [k.address for k in keys]
    base = dev_genesis(timestamp, funded)
    validators = tuple(Validator(k.address, k.consensus.public_key, DEFAULT_STAKE) for k in keys)
    units = sum(v.stake for v in validators) // base.consensus.stake_unit_wei
    consensus = replace(base.consensus, tau_committee=max(units, base.consensus.tau_committee))
    genesis = replace(
        base,
        chain_id=DEVNET_CHAIN_ID,
        validators=validators,
        consensus=consensus,
        tokenomics=dev_tokenomics(timestamp),
    )
    return with_system_contracts(genesis, dev_system_config())


def _load_keys(directory: Path, validators: int) -> list[ValidatorKey]:
    """The validators' keys of an existing devnet, read from its key files."""
    try:
        return [
            ValidatorKey.load(directory / KEYS_DIR / f"validator-{i}.json")
            for i in range(validators)
        ]
    except ChainError as exc:
        raise DevnetError(f"{exc}; start a new chain with --fresh") from None


def _write_keys(devnet: Devnet, keys: Sequence[ValidatorKey]) -> None:
    """Write each validator's key file unless it exists."""
    for record, key in zip(devnet.nodes, keys, strict=True):
        record.key_file.parent.mkdir(parents=True, exist_ok=True)
        if not record.key_file.exists():
            key.save(record.key_file)


# --- processes ------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str] | None:
    """The arguments of a live, non-zombie process; None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return _cmdline_from_ps(pid) if not Path("/proc/self").exists() else None
    state = stat.rpartition(")")[2].split()[:1]
    if state in (["Z"], ["X"]):
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _cmdline_from_ps(pid: int) -> list[str] | None:
    """Fallback without /proc (macOS): `ps`, whose output is space-joined."""
    try:
        out = subprocess.run(
            ["ps", "-o", "stat=,args=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out or out.startswith("Z"):
        return None
    return out.split()[1:]


def is_our_node(record: NodeRecord) -> bool:
    """Whether the recorded pid is alive and is this node (not a reused pid)."""
    if record.pid is None:
        return False
    args = _cmdline(record.pid)
    if args is None:
        return False
    data_dir = str(record.data_dir)
    pairs = itertools.pairwise(args)
    return any(a == "--data-dir" and b == data_dir for a, b in pairs) or (
        f"--data-dir={data_dir}" in args
    )


def node_state(record: NodeRecord) -> str:
    """running, stopped (no pid), exited (pid gone) or stale (pid now another process)."""
    if record.pid is None:
        return "stopped"
    if is_our_node(record):
        return "running"
    return "stale" if _cmdline(record.pid) is not None else "exited"


_LAUNCHER = """
import subprocess, sys
log, cwd, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(log, "ab") as out:
    child = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
sys.stdout.write(str(child.pid))
"""


def launch(record: NodeRecord, cwd: Path) -> int:
    """Start the node detached and return its pid.

    A launcher process starts it in a new session and exits at once, so the node is
    reparented away from us: it outlives the CLI and is never our zombie.
    """
    with record.log_file.open("a") as log:
        log.write(f"--- pv devnet: starting node {record.index} at {time.ctime()} ---\n")
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-I",
                "-c",
                _LAUNCHER,
                str(record.log_file),
                str(cwd),
                *record.command,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DevnetError(f"cannot start node {record.index}: {exc}") from None
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        reason = done.stderr.strip().splitlines()[-1:] or [f"status {done.returncode}"]
        raise DevnetError(f"cannot start node {record.index} ({record.command[0]}): {reason[0]}")
    return int(done.stdout.strip())


def stop_nodes(records: Sequence[NodeRecord], timeout: float) -> list[int]:
    """SIGTERM each node that is ours, wait, then SIGKILL its process group; return the killed."""
    live = [r for r in records if is_our_node(r)]
    for record in live:
        assert record.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
    live = _wait_gone(live, timeout)
    for record in live:
        assert record.pid is not None
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(record.pid) == record.pid:
                os.killpg(record.pid, signal.SIGKILL)  # its executor processes too
            else:
                os.kill(record.pid, signal.SIGKILL)
    survivors = _wait_gone(live, KILL_WAIT_S)
    if survivors:
        raise DevnetError(
            "nodes survived SIGKILL: " + ", ".join(f"{r.index} (pid {r.pid})" for r in survivors)
        )
    return [r.index for r in live]


def _wait_gone(records: list[NodeRecord], timeout: float) -> list[NodeRecord]:
    """Wait until the nodes have exited or the timeout passed; return those still running."""
    deadline = time.monotonic() + timeout
    while records and time.monotonic() < deadline:
        time.sleep(0.05)
        records = [r for r in records if is_our_node(r)]
    return records


def check_ports_free(records: Sequence[NodeRecord]) -> None:
    """Refuse to start when another process listens on one of the nodes' ports."""
    busy = []
    for record in records:
        for kind, port in (("JSON-RPC", record.rpc_port), ("p2p", record.p2p_port)):
            if not _port_free(port):
                busy.append(f"{kind} port {port} (node {record.index})")
    if busy:
        raise DevnetError(
            "ports in use: " + ", ".join(busy) + "; pick others with --base-port/--p2p-base-port"
        )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or a note why it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


# --- JSON-RPC -------------------------------------------------------------------------


class _RpcUnavailable(Exception):
    """No usable answer (unreachable, not JSON, or an RPC error)."""


def _rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    try:
        doc = httpx.post(url, json=body, timeout=RPC_TIMEOUT_S).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise _RpcUnavailable(repr(exc)) from None
    if not isinstance(doc, dict) or "error" in doc or "result" not in doc:
        raise _RpcUnavailable(str(doc.get("error") if isinstance(doc, dict) else doc))
    return doc["result"]


def _hex_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value, 16) if value.startswith("0x") else int(value)
    return None


def query_node(record: NodeRecord) -> dict[str, Any]:
    """Status of one node: state, height, head, and (if the node serves it) consensus."""
    state = node_state(record)
    doc: dict[str, Any] = {
        "index": record.index,
        "pid": record.pid,
        "state": state,
        "running": state == "running",
        "rpcUrl": record.rpc_url,
        "p2pPort": record.p2p_port,
        "peerId": record.peer_id,
        "log": str(record.log_file),
        "height": None,
        "head": None,
        "peers": None,
        "round": None,
        "step": None,
    }
    if state != "running":
        return doc
    try:
        doc["height"] = _hex_int(_rpc(record.rpc_url, "eth_blockNumber"))
    except _RpcUnavailable:
        doc["state"] = "unresponsive"
        return doc
    with contextlib.suppress(_RpcUnavailable):
        block = _rpc(record.rpc_url, "eth_getBlockByNumber", ["latest", False])
        if isinstance(block, dict):
            doc["head"] = block.get("hash")
    with contextlib.suppress(_RpcUnavailable):
        consensus = _rpc(record.rpc_url, "pv_consensusStatus")
        if isinstance(consensus, dict):
            doc["peers"] = _hex_int(consensus.get("peers"))
            doc["round"] = _hex_int(consensus.get("round"))
            doc["step"] = consensus.get("step")
    return doc


def wait_ready(devnet: Devnet, indexes: Sequence[int], timeout: float, show: bool) -> None:
    """Wait until the nodes answer eth_blockNumber; DevnetError names the first that fails."""
    pending = list(indexes)
    deadline = time.monotonic() + timeout
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not show,
    )
    with progress:
        task = progress.add_task("waiting for JSON-RPC", total=len(pending))
        while pending:
            exited = [i for i in pending if not is_our_node(devnet.nodes[i])]
            if exited:
                reason = "exited before answering JSON-RPC"
                if len(exited) > 1:
                    reason += f" (so did node {', '.join(map(str, exited[1:]))})"
                raise _NodeFailed(devnet.nodes[exited[0]], reason)
            for index in list(pending):
                record = devnet.nodes[index]
                try:
                    _rpc(record.rpc_url, "eth_blockNumber")
                except _RpcUnavailable:
                    continue
                pending.remove(index)
                progress.advance(task)
            left = ", ".join(str(i) for i in pending)
            progress.update(task, description=f"waiting for node(s) {left}" if left else "ready")
            if pending and time.monotonic() > deadline:
                record = devnet.nodes[pending[0]]
                raise _NodeFailed(record, f"did not answer JSON-RPC within {timeout:g} s")
            if pending:
                time.sleep(POLL_INTERVAL_S)


class _NodeFailed(DevnetError):
    """A node did not come up; the message carries the tail of its log."""

    def __init__(self, record: NodeRecord, reason: str) -> None:
        super().__init__(
            f"node {record.index} {reason} ({record.rpc_url}); "
            f"last lines of {record.log_file}:\n{log_tail(record.log_file)}"
        )


# --- directory handling ---------------------------------------------------------------


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold DIR's lock so two devnet commands do not start or stop the same nodes at once."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DevnetError(f"another `pv devnet` command is working on {directory}") from None
        yield
    finally:
        os.close(fd)


def _is_devnet_dir(directory: Path) -> bool:
    return (directory / STATE_FILE).is_file()


def _refuse_foreign_dir(directory: Path) -> None:
    """Refuse a non-empty directory that holds no devnet: we never write into (or wipe) it."""
    if not directory.exists() or _is_devnet_dir(directory):
        return
    if not directory.is_dir():
        raise DevnetError(f"{directory} exists and is not a directory")
    others = [p.name for p in directory.iterdir() if p.name != LOCK_FILE]
    if others:
        raise DevnetError(
            f"{directory} is not empty and holds no devnet ({STATE_FILE}); choose another --dir"
        )


def _running(devnet: Devnet) -> list[int]:
    return [n.index for n in devnet.nodes if is_our_node(n)]


def _abs(directory: Path) -> Path:
    return directory.expanduser().absolute()


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn a DevnetError (or a file system error) into a message on stderr and an exit status."""
    try:
        yield
    except DevnetError as exc:
        fail(escape(str(exc)), exc.code)
    except OSError as exc:
        fail(escape(str(exc)))


def _quiet_http() -> None:
    """Keep httpx's per-request INFO lines out of polling output (still shown at debug)."""
    http_log = logging.getLogger("httpx")
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        http_log.setLevel(max(http_log.getEffectiveLevel(), logging.WARNING))


def _dir_option() -> Any:
    return typer.Option(
        Path("devnet"), "--dir", help="The devnet directory.", envvar="PV_DEVNET_DIR"
    )


# --- commands -------------------------------------------------------------------------


@app.command("up")
def up(
    validators: int | None = typer.Option(
        None,
        "--validators",
        "-n",
        help=f"Number of validators, 1..{MAX_VALIDATORS} "
        f"(default: the existing devnet's, or {DEFAULT_VALIDATORS}).",
    ),
    directory: Path = _dir_option(),
    base_port: int | None = typer.Option(
        None,
        "--base-port",
        help=f"JSON-RPC port of node 0; node I gets PORT+I (default {DEFAULT_RPC_BASE_PORT}).",
    ),
    p2p_base_port: int | None = typer.Option(
        None,
        "--p2p-base-port",
        help=f"p2p port of node 0; node I gets PORT+I (default {DEFAULT_P2P_BASE_PORT}).",
    ),
    fresh: bool = typer.Option(
        False, "--fresh", help="Wipe a stopped devnet in DIR and start a new chain."
    ),
    timeout: float = typer.Option(
        START_TIMEOUT_S, "--timeout", help="Seconds to wait for every node's JSON-RPC.", min=1
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the devnet as one JSON document."),
) -> None:
    """Start N validators as background processes (a stopped devnet in DIR is restarted)."""
    _quiet_http()
    directory = _abs(directory)
    with _errors():
        if validators is not None:
            check_validator_count(validators)
        _refuse_foreign_dir(directory)
        created = not directory.exists()
        try:
            with _locked(directory):
                devnet = _prepare(directory, validators, base_port, p2p_base_port, fresh)
                started = _start(devnet, range(len(devnet.nodes)), timeout, show=not as_json)
        except DevnetError:
            if created and not _is_devnet_dir(directory):  # refused before writing anything
                with contextlib.suppress(OSError):
                    (directory / LOCK_FILE).unlink()
                    directory.rmdir()
            raise
    if as_json:
        print_json(started.to_json())
        return
    _print_layout(started)


def _prepare(
    directory: Path,
    validators: int | None,
    base_port: int | None,
    p2p_base_port: int | None,
    fresh: bool,
) -> Devnet:
    """Plan the devnet (new, or the stopped one in DIR), write keys, genesis and devnet.json."""
    old: Devnet | None = None
    if _is_devnet_dir(directory):
        old = Devnet.load(directory)
        running = _running(old)
        if running:
            raise DevnetError(
                f"a devnet is already running in {directory} (nodes "
                f"{', '.join(map(str, running))}); use `pv devnet status` or `pv devnet down`"
            )
        if fresh:
            _clear(directory)
            old = None
        elif validators is not None and validators != len(old.nodes):
            raise DevnetError(
                f"{directory} holds a devnet of {len(old.nodes)} validators; "
                f"pass --fresh to replace it with {validators}"
            )
    if validators is None:
        validators = len(old.nodes) if old else DEFAULT_VALIDATORS
    if base_port is None:
        base_port = old.rpc_base_port if old else DEFAULT_RPC_BASE_PORT
    if p2p_base_port is None:
        p2p_base_port = old.p2p_base_port if old else DEFAULT_P2P_BASE_PORT
    check_layout_args(validators, base_port, p2p_base_port)
    if old is not None:
        keys = _load_keys(directory, validators)
    else:
        keys = [ValidatorKey.from_label(validator_label(i)) for i in range(validators)]
    peer_ids = [k.consensus.public_key for k in keys]
    devnet = plan_devnet(directory, peer_ids, base_port, p2p_base_port, node_command())
    check_ports_free(devnet.nodes)  # before anything is written: a refused `up` leaves no trace
    _write_keys(devnet, keys)
    if old is None or not devnet.genesis_file.exists():
        genesis = devnet_genesis(keys, int(time.time()))
        _write_atomic(devnet.genesis_file, json.dumps(genesis.to_json(), indent=2) + "\n")
    devnet.save()
    return devnet


def _start(devnet: Devnet, indexes: Sequence[int], timeout: float, show: bool) -> Devnet:
    """Launch the nodes, record their pids, wait for JSON-RPC; on failure stop them again."""
    try:
        for index in indexes:
            pid = launch(devnet.nodes[index], devnet.directory)
            devnet = devnet.with_node(replace(devnet.nodes[index], pid=pid))
            devnet.save()
        wait_ready(devnet, indexes, timeout, show)
    except DevnetError:
        started = [devnet.nodes[i] for i in indexes]
        with contextlib.suppress(DevnetError):
            stop_nodes(started, STOP_TIMEOUT_S)
        for record in started:
            devnet = devnet.with_node(replace(record, pid=None))
        devnet.save()
        raise
    return devnet


def _print_layout(devnet: Devnet) -> None:
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"[bold]devnet[/] chain id {devnet.chain_id}, {len(devnet.nodes)} validators, "
        f"in {devnet.directory}"
    )
    table = Table(
        "node",
        "pid",
        "JSON-RPC",
        "p2p port",
        "peer id",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for n in devnet.nodes:
        table.add_row(str(n.index), str(n.pid), n.rpc_url, str(n.p2p_port), n.peer_id[:12])
    console.print(table)
    console.print(
        f"logs:   {devnet.directory}/node-I.log\n"
        f"status: pv devnet status --dir {devnet.directory}\n"
        f"stop:   pv devnet down --dir {devnet.directory}",
        style="dim",
    )


@app.command("status")
def status(
    directory: Path = _dir_option(),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show each node: pid, running or not, height, peers, round and JSON-RPC address."""
    _quiet_http()
    directory = _abs(directory)
    with _errors():
        devnet = Devnet.load(directory)
    with ThreadPoolExecutor(max_workers=len(devnet.nodes)) as pool:
        nodes = list(pool.map(query_node, devnet.nodes))
    if as_json:
        print_json({"dir": str(directory), "chainId": devnet.chain_id, "nodes": nodes})
        return
    table = Table(
        "node",
        "pid",
        "state",
        "height",
        "peers",
        "round",
        "head",
        "JSON-RPC",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    colours = {"running": "green", "stopped": "dim", "unresponsive": "yellow"}
    for n in nodes:
        colour = colours.get(n["state"], "red")
        table.add_row(
            str(n["index"]),
            "-" if n["pid"] is None else str(n["pid"]),
            f"[{colour}]{n['state']}[/]",
            *("-" if n[k] is None else str(n[k]) for k in ("height", "peers", "round")),
            (n["head"] or "-")[:10],
            n["rpcUrl"],
        )
    console = Console(highlight=False, soft_wrap=True)
    up_count = sum(n["running"] for n in nodes)
    console.print(f"devnet in {directory}: {up_count}/{len(nodes)} nodes running")
    console.print(table)


@app.command("warp")
def warp(
    seconds: int = typer.Argument(..., help="Seconds to move every clock forward.", min=1),
    directory: Path = _dir_option(),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Time travel: move every validator's clock forward (block timestamps follow).

    Running nodes get evm_increaseTime; a stopped node's saved offset is moved too, so it
    agrees with the others' block times when it starts again.
    """
    _quiet_http()
    directory = _abs(directory)
    with _errors(), _locked(directory):
        devnet = Devnet.load(directory)
        moved = []
        for record in devnet.nodes:
            running = is_our_node(record)
            if running:
                try:
                    offset = int(_rpc(record.rpc_url, "evm_increaseTime", [seconds]))
                except (_RpcUnavailable, ValueError) as exc:
                    raise DevnetError(
                        f"node {record.index} did not move its clock ({exc}); a devnet made "
                        "before --dev-clock existed needs `pv devnet up --fresh`"
                    ) from None
            else:
                path = record.data_dir / DEV_CLOCK_FILE
                try:
                    offset = load_clock_offset(path) + seconds
                    record.data_dir.mkdir(parents=True, exist_ok=True)
                    save_clock_offset(path, offset)
                except (OSError, ValueError) as exc:
                    raise DevnetError(f"node {record.index}: {exc}") from None
            moved.append({"index": record.index, "running": running, "offset": offset})
    if as_json:
        print_json({"seconds": seconds, "nodes": moved})
        return
    offsets = sorted({m["offset"] for m in moved})
    typer.echo(
        f"moved {len(moved)} validators' clocks {seconds} s forward "
        f"(offset now {', '.join(map(str, offsets))} s)"
    )


@app.command("stop")
def stop(
    index: int = typer.Argument(..., help="The node to stop (0..N-1)."),
    directory: Path = _dir_option(),
    timeout: float = typer.Option(
        STOP_TIMEOUT_S, "--timeout", help="Seconds to wait after SIGTERM before SIGKILL.", min=0
    ),
) -> None:
    """Stop one node (SIGTERM, then SIGKILL after --timeout); its data is kept."""
    directory = _abs(directory)
    with _errors():
        Devnet.load(directory).node(index)  # no devnet or a bad index: before taking the lock
        with _locked(directory):
            devnet = Devnet.load(directory)
            record = devnet.node(index)
            state = node_state(record)
            killed = stop_nodes([record], timeout) if state == "running" else []
            devnet.with_node(replace(record, pid=None)).save()
    if state != "running":
        why = {"exited": "its process has exited", "stale": f"pid {record.pid} is another process"}
        typer.echo(f"node {index} is not running ({why.get(state, state)})")
    elif killed:
        typer.echo(f"node {index} did not stop within {timeout:g} s; killed it")
    else:
        typer.echo(f"stopped node {index}")


@app.command("start")
def start(
    index: int = typer.Argument(..., help="The node to start again (0..N-1)."),
    directory: Path = _dir_option(),
    timeout: float = typer.Option(
        START_TIMEOUT_S, "--timeout", help="Seconds to wait for its JSON-RPC.", min=1
    ),
) -> None:
    """Start a stopped node again with the same arguments and data; wait for its JSON-RPC."""
    _quiet_http()
    directory = _abs(directory)
    with _errors():
        Devnet.load(directory).node(index)  # no devnet or a bad index: before taking the lock
        with _locked(directory):
            devnet = Devnet.load(directory)
            record = devnet.node(index)
            if is_our_node(record):
                typer.echo(f"node {index} is already running (pid {record.pid})")
                return
            check_ports_free([record])
            devnet = _start(devnet, [index], timeout, show=True)
    typer.echo(f"started node {index} (pid {devnet.nodes[index].pid}) at {record.rpc_url}")


@app.command("down")
def down(
    directory: Path = _dir_option(),
    wipe: bool = typer.Option(
        False, "--wipe", help="Delete DIR afterwards (only if it holds a devnet.json)."
    ),
    timeout: float = typer.Option(
        STOP_TIMEOUT_S, "--timeout", help="Seconds to wait after SIGTERM before SIGKILL.", min=0
    ),
) -> None:
    """Stop every node of the devnet; with --wipe also delete its directory."""
    directory = _abs(directory)
    with _errors():
        if wipe and not _is_devnet_dir(directory):
            raise DevnetError(f"{directory} holds no {STATE_FILE}; refusing to delete it")
        Devnet.load(directory)
        with _locked(directory):
            devnet = Devnet.load(directory)
            running = _running(devnet)
            killed = stop_nodes(devnet.nodes, timeout)
            replace(devnet, nodes=tuple(replace(n, pid=None) for n in devnet.nodes)).save()
            if wipe:
                _wipe(directory)
    typer.echo(f"stopped {len(running)} node(s)" if running else "no node was running")
    if killed:
        typer.echo(f"killed node(s) {', '.join(map(str, killed))} after {timeout:g} s")
    if wipe:
        typer.echo(f"removed {directory}")


def _clear(directory: Path) -> None:
    """Empty a devnet directory for --fresh, keeping the lock file we hold."""
    if not _is_devnet_dir(directory):
        raise DevnetError(f"{directory} holds no {STATE_FILE}; refusing to delete it")
    try:
        for child in directory.iterdir():
            if child.name == LOCK_FILE:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    except OSError as exc:
        raise DevnetError(f"cannot empty {directory}: {exc}") from None


def _wipe(directory: Path) -> None:
    """Delete a devnet directory; anything without devnet.json is never touched."""
    if not _is_devnet_dir(directory):
        raise DevnetError(f"{directory} holds no {STATE_FILE}; refusing to delete it")
    try:
        shutil.rmtree(directory)
    except OSError as exc:
        raise DevnetError(f"cannot remove {directory}: {exc}") from None
