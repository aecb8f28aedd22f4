#!/usr/bin/env python3
"""Benchmark a local validator devnet beside a single dev node: finalized tx/s and finality.

    .venv/bin/python bench/devnet.py [--validators 4] [--count 2000] [--json]

Phase 1 starts `pv node --dev` and phase 2 a devnet of N `pv node` validators (the layout of
`pv devnet up`: chain 31338, keys "devnet-validator-I", every node the others' bootnode; plus
--txpool-account-slots 4096 so the pool takes the load). Both get the transfer load of tps.py:
pre-signed 1-wei transfers from the 20 dev accounts, JSON-RPC batches of one tx per account,
sent to node 0. A second connection polls node 0's head every --poll s and records when each
block is first seen: a tx's finality latency runs from the send of its batch to that moment
(BFT blocks are final once a node serves them), and throughput from the first send to the last
block holding the load. The CPU the node processes (executors included) use over that window
is read from /proc: per finalized transfer, and as cores kept busy. Every process started is
stopped; a final scan of /proc checks it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench._accounts import DEV_ACCOUNT_COUNT
from bench._load import (
    RECEIPT_BATCH,
    Rates,
    Target,
    _percentile,
    _plan,
    _transfers_from,
    connect,
    pending_nonces,
    prepare_senders,
    split,
)
from bench._procs import NodeProcess, ours_command, rss_bytes, run_guarded, tree_cpu_seconds
from bench._rpc import RpcClient
from bench.exceptions import BenchError, LoadError, NodeStartError, RpcError
from bench.tps import RichProgress
from powerverse.chain.genesis import Genesis
from powerverse.cli.devnet import MAX_VALIDATORS, devnet_genesis, validator_label
from powerverse.node.validator_key import ValidatorKey

HOST = "127.0.0.1"
DEVNET_ACCOUNT_SLOTS = 4096  # the dev node's pool size per account; the default 64 is too few
READY_HEIGHT = 2  # blocks every validator must have finalized before the load starts
TPS_RATIO_TARGET = 0.70  # devnet tx/s at least this share of the single node's
P50_TARGET_S = 1.5  # devnet median finality at most this
LOG_LINES = 30


# --- what a load observes -------------------------------------------------------------


@dataclass(frozen=True)
class SeenBlock:
    """A block as the watcher first saw it: number, time (perf_counter) and its tx hashes."""

    number: int
    seen_at: float
    tx_hashes: tuple[str, ...]


@dataclass(frozen=True)
class FinalityResult(Rates):
    """One timed load: throughput from first send to last inclusion, and per-tx latency."""

    count: int
    included: int
    failed: int
    seconds: float
    send_seconds: float
    blocks: int
    window_blocks: int
    empty_blocks: int
    p50_s: float
    p99_s: float
    mean_s: float
    max_s: float
    node_cpu_s: float | None = None
    """CPU seconds the node processes (executors included) used from first send to last
    inclusion; None when not measured."""

    @property
    def cpu_us_per_tx(self) -> float | None:
        """Node CPU per included transaction, in microseconds (all nodes together)."""
        if self.node_cpu_s is None or not self.included:
            return None
        return self.node_cpu_s / self.included * 1e6

    @property
    def cores_busy(self) -> float | None:
        """Cores the node processes kept busy on average over the timed window."""
        if self.node_cpu_s is None or self.seconds <= 0:
            return None
        return self.node_cpu_s / self.seconds

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able figures, derived rates included."""
        return {
            **asdict(self),
            "tps": self.tps,
            "send_tps": self.send_tps,
            "cpu_us_per_tx": self.cpu_us_per_tx,
            "cores_busy": self.cores_busy,
        }


def summarize(
    sends: Mapping[str, float],
    send_seconds: float,
    blocks: Sequence[SeenBlock],
    head_before: int,
    failed: int = 0,
) -> FinalityResult:
    """Figures of a load from each tx's send time and the blocks seen after head `head_before`.

    Only blocks after `head_before` count. A tx counts in the lowest block holding it;
    LoadError if one is in none. The window is every such block up to the last one holding
    the load; empty blocks are those of the window without any tx.
    """
    if not sends:
        raise ValueError("no transactions were sent")
    ordered = sorted((b for b in blocks if b.number > head_before), key=lambda b: b.number)
    holder: dict[str, SeenBlock] = {}
    for block in ordered:
        for tx_hash in block.tx_hashes:
            key = tx_hash.lower()
            if key in sends and key not in holder:
                holder[key] = block
    missing = [h for h in sends if h not in holder]
    if missing:
        raise LoadError(
            f"{len(missing):,} of {len(sends):,} txs are in no block seen (first: {missing[0]})"
        )
    latencies = sorted(holder[h].seen_at - sent for h, sent in sends.items())
    last = max(b.number for b in holder.values())
    window = [b for b in ordered if b.number <= last]
    return FinalityResult(
        count=len(sends),
        included=len(sends) - failed,
        failed=failed,
        seconds=max(b.seen_at for b in holder.values()) - min(sends.values()),
        send_seconds=send_seconds,
        blocks=len({b.number for b in holder.values()}),
        window_blocks=len(window),
        empty_blocks=sum(1 for b in window if not b.tx_hashes),
        p50_s=_percentile(latencies, 50),
        p99_s=_percentile(latencies, 99),
        mean_s=sum(latencies) / len(latencies),
        max_s=latencies[-1],
    )


class BlockWatcher:
    """Poll a node's head on its own connection and thread; remember when each block appeared.

    Polls eth_blockNumber (cheap) every `interval` s; when the head moves, it fetches the new
    blocks (tx hashes only) in one batch and stamps them all with the time the move was seen.
    """

    def __init__(
        self,
        url: str,
        interval: float = 0.025,
        *,
        max_failures: int = 40,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._rpc = RpcClient(url, timeout=30.0, transport=transport)
        self._interval = interval
        self._max_failures = max_failures
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._blocks: dict[int, SeenBlock] = {}
        self._hashes: set[str] = set()
        self._thread: threading.Thread | None = None
        self.head_before = -1
        self._head = -1
        self.error: BenchError | None = None

    def start(self) -> None:
        """Read the current head (blocks up to it are not watched) and start polling."""
        self.head_before = int(self._rpc.call("eth_blockNumber"), 16)
        self._head = self.head_before
        self._thread = threading.Thread(target=self._run, name="block-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._rpc.close()

    def __enter__(self) -> BlockWatcher:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def blocks(self) -> list[SeenBlock]:
        """The blocks seen so far, in number order."""
        with self._lock:
            return [self._blocks[n] for n in sorted(self._blocks)]

    def count_seen(self, hashes: Sequence[str]) -> int:
        """How many of `hashes` (lower-case) are in a block seen so far."""
        with self._lock:
            return sum(1 for h in hashes if h in self._hashes)

    def _run(self) -> None:
        failures = 0
        while not self._stop.wait(self._interval):
            try:
                self._poll()
                failures = 0
            except BenchError as exc:
                failures += 1
                if failures >= self._max_failures:
                    self.error = exc
                    return

    def _poll(self) -> None:
        head = int(self._rpc.call("eth_blockNumber"), 16)
        seen_at = time.perf_counter()
        if head <= self._head:
            return
        numbers = range(self._head + 1, head + 1)
        calls = [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        found = []
        for number, block in zip(numbers, self._rpc.batch_ok(calls), strict=True):
            if not isinstance(block, dict):
                raise RpcError("eth_getBlockByNumber", None, f"no block {number} below head {head}")
            hashes = tuple(str(h).lower() for h in block.get("transactions") or ())
            found.append(SeenBlock(number, seen_at, hashes))
        with self._lock:
            for block in found:
                self._blocks[block.number] = block
                self._hashes.update(block.tx_hashes)
        self._head = head


def run_timed_transfers(
    target: Target,
    watcher: BlockWatcher,
    count: int,
    stall_timeout: float,
    cpu: Callable[[], float] | None = None,
) -> FinalityResult:
    """Send `count` pre-signed transfers from the dev accounts; time each to its block.

    `cpu`, if given, reads the nodes' CPU seconds so far: read at the first send and once
    every transfer is in a block, it gives the node CPU the load took.
    """
    senders = prepare_senders(target, DEV_ACCOUNT_COUNT, math.ceil(count / DEV_ACCOUNT_COUNT))
    nonces = pending_nonces(target, senders)
    counts = split(count, len(senders))
    rounds = _plan(target, "sign transfers", senders, nonces, counts, _transfers_from(target, 0))
    progress = target.progress
    sends: dict[str, float] = {}
    progress.start("transfers: send", count)
    cpu_before = cpu() if cpu is not None else None
    first = time.perf_counter()
    for batch in rounds:
        sent_at = time.perf_counter()
        replies = target.rpc.batch([("eth_sendRawTransaction", [tx.raw]) for tx in batch])
        for tx, reply in zip(batch, replies, strict=True):
            if isinstance(reply, RpcError):
                raise LoadError(f"node refused tx of {tx.sender} nonce {tx.nonce}: {reply.message}")
            sends[tx.hash.lower()] = sent_at
        progress.advance(len(batch))
    send_seconds = time.perf_counter() - first
    progress.finish()
    hashes = list(sends)
    _wait_seen(target, watcher, hashes, stall_timeout)
    node_cpu = cpu() - cpu_before if cpu is not None and cpu_before is not None else None
    failed = _failed_receipts(
        target, hashes, {h: b.number for b in watcher.blocks() for h in b.tx_hashes}
    )
    result = summarize(sends, send_seconds, watcher.blocks(), watcher.head_before, failed)
    return replace(result, node_cpu_s=node_cpu)


def _wait_seen(
    target: Target, watcher: BlockWatcher, hashes: Sequence[str], stall_timeout: float
) -> None:
    """Wait until the watcher has seen every tx in a block; LoadError if progress stalls."""
    progress = target.progress
    progress.start("transfers: finalize", len(hashes))
    done = 0
    last_change = time.monotonic()
    while done < len(hashes):
        time.sleep(0.05)
        if watcher.error is not None:
            raise LoadError(f"watching blocks failed: {watcher.error}")
        now = watcher.count_seen(hashes)
        if now != done:
            progress.advance(now - done)
            done, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > stall_timeout:
            raise LoadError(
                f"only {done:,} of {len(hashes):,} txs in a block; none more in {stall_timeout:g} s"
            )
    progress.finish()


def _failed_receipts(target: Target, hashes: Sequence[str], block_of: Mapping[str, int]) -> int:
    """Count receipts with status 0; LoadError if one is missing or names another block."""
    failed = 0
    for k in range(0, len(hashes), RECEIPT_BATCH):
        chunk = hashes[k : k + RECEIPT_BATCH]
        calls = [("eth_getTransactionReceipt", [h]) for h in chunk]
        for tx_hash, receipt in zip(chunk, target.rpc.batch_ok(calls), strict=True):
            if not isinstance(receipt, dict):
                raise LoadError(f"no receipt for included tx {tx_hash}")
            number = int(receipt["blockNumber"], 16)
            if block_of.get(tx_hash) != number:
                raise LoadError(
                    f"receipt of {tx_hash} names block {number}, the watcher saw it in "
                    f"{block_of.get(tx_hash)}"
                )
            failed += int(receipt.get("status", "0x1"), 16) != 1
    return failed


# --- the two phases -------------------------------------------------------------------


@dataclass
class PhaseReport:
    """Everything measured in one phase; `error` says why it stopped early, if it did."""

    name: str
    nodes: int
    url: str | None = None
    client_version: str | None = None
    chain_id: int | None = None
    result: FinalityResult | None = None
    height_end: int | None = None
    consensus: dict[str, Any] | None = None
    start_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able figures of the phase."""
        return {
            "nodes": self.nodes,
            "url": self.url,
            "client_version": self.client_version,
            "chain_id": self.chain_id,
            "transfers": None if self.result is None else self.result.to_json(),
            "height_end": self.height_end,
            "consensus_status": self.consensus,
            "start_seconds": self.start_seconds,
            "notes": self.notes,
            "error": self.error,
        }


def free_ports(n: int) -> list[int]:
    """Return `n` distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(n):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def validator_commands(
    pv: Path,
    root: Path,
    peer_ids: Sequence[bytes],
    rpc_ports: Sequence[int],
    p2p_ports: Sequence[int],
    account_slots: int = DEVNET_ACCOUNT_SLOTS,
) -> list[list[str]]:
    """The `pv node` command of each validator: files under `root`, every other node a bootnode."""
    if not len(peer_ids) == len(rpc_ports) == len(p2p_ports):
        raise ValueError("one peer id, JSON-RPC port and p2p port per validator")
    commands = []
    for i in range(len(peer_ids)):
        cmd = [
            str(pv), "node",
            "--genesis", str(root / "genesis.json"),
            "--data-dir", str(root / f"node-{i}"),
            "--validator-key", str(root / "keys" / f"validator-{i}.json"),
            "--rpc-host", HOST,
            "--rpc-port", str(rpc_ports[i]),
            "--p2p-port", str(p2p_ports[i]),
            "--txpool-account-slots", str(account_slots),
        ]  # fmt: skip
        for j, peer_id in enumerate(peer_ids):
            if j != i:
                cmd += ["--bootnode", f"{peer_id.hex()}@{HOST}:{p2p_ports[j]}"]
        commands.append(cmd)
    return commands


def write_devnet_files(root: Path, keys: Sequence[ValidatorKey]) -> Genesis:
    """Write the keys and the genesis (chain 31338, dev accounts funded, `keys` validators)."""
    (root / "keys").mkdir(parents=True, exist_ok=True)
    for i, key in enumerate(keys):
        key.save(root / "keys" / f"validator-{i}.json")
    genesis = devnet_genesis(keys, int(time.time()))
    (root / "genesis.json").write_text(json.dumps(genesis.to_json(), indent=2) + "\n")
    return genesis


def leftover_processes(
    sessions: set[int], markers: Sequence[str], proc: Path = Path("/proc")
) -> list[int]:
    """Pids in one of `sessions` (or process groups) or whose command line names a marker."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) < 4 or fields[0] in ("Z", "X"):
            continue
        pgrp, sid = int(fields[2]), int(fields[3])
        if pgrp in sessions or sid in sessions or any(m and m in cmdline for m in markers):
            found.append(int(entry.name))
    return sorted(found)


class Bench:
    """Runs the phases, keeps track of every process started, and reports to stderr."""

    def __init__(self, args: argparse.Namespace, progress: RichProgress, log: Console) -> None:
        self.args = args
        self.progress = progress
        self.log = log
        self.pv: Path = args.pv or Path(sys.executable).parent / "pv"
        self.sessions: set[int] = set()
        self.markers: list[str] = []

    def say(self, name: str, message: str) -> None:
        """Print a status line on stderr."""
        self.log.print(f"[{name}] {message}", markup=False, highlight=False)

    def single(self) -> PhaseReport:
        """Phase 1: one `pv node --dev`, the load, stop."""
        report = PhaseReport("single", 1)
        port = free_ports(1)[0]
        try:
            node = NodeProcess("single", lambda d: ours_command(port, d / "data", self.pv), port)
            self.markers.append(str(node.workdir))
            self.say(report.name, f"starting: {shlex.join(node.command)}")
            t0 = time.monotonic()
            with node:
                self.sessions.add(node.pid)
                report.start_seconds = time.monotonic() - t0
                try:
                    self._load(report, node.url, [node.pid])
                except BenchError as exc:
                    raise BenchError(f"{exc}\n{node.log_tail(LOG_LINES)}") from exc
        except BenchError as exc:
            self._failed(report, exc)
        return report

    def devnet(self) -> PhaseReport:
        """Phase 2: N validators, wait for finality, the load on node 0, stop them all."""
        n = self.args.validators
        report = PhaseReport("devnet", n)
        with contextlib.ExitStack() as stack:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pv-bench-devnet-")))
            self.markers.append(str(root))
            nodes: list[NodeProcess] = []
            try:
                keys = [ValidatorKey.from_label(validator_label(i)) for i in range(n)]
                write_devnet_files(root, keys)
                ports = free_ports(2 * n)
                peer_ids = [k.consensus.public_key for k in keys]
                commands = validator_commands(self.pv, root, peer_ids, ports[:n], ports[n:])
                self.say(report.name, f"node 0: {shlex.join(commands[0])}")
                t0 = time.monotonic()
                for i, command in enumerate(commands):
                    node = NodeProcess(f"validator-{i}", command, ports[i], ready_timeout=120.0)
                    self.markers.append(str(node.workdir))
                    nodes.append(node)
                    stack.enter_context(_started(node, self.sessions))
                self.say(report.name, f"{n} validators answer JSON-RPC; waiting for finality")
                self._wait_finalizing(nodes)
                report.start_seconds = time.monotonic() - t0
                self._load(report, nodes[0].url, [node.pid for node in nodes])
                self._check_agreement(report, nodes)
            except BenchError as exc:
                self._failed(report, _with_logs(exc, nodes))
            finally:
                self._keep_logs(nodes)
            self.say(report.name, "stopping the validators")
        return report

    def _keep_logs(self, nodes: Sequence[NodeProcess]) -> None:
        """Copy each validator's log into --keep-logs DIR (the run's files are deleted)."""
        target = self.args.keep_logs
        if target is None:
            return
        target.mkdir(parents=True, exist_ok=True)
        for node in nodes:
            with contextlib.suppress(OSError):
                shutil.copyfile(node.log_path, target / f"{node.name}.log")

    def scan(self) -> list[int]:
        """Kill and return any process left from this run (there should be none)."""
        left = leftover_processes(self.sessions, self.markers)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return left

    def _load(self, report: PhaseReport, url: str, pids: Sequence[int]) -> None:
        """Apply the timed transfer load at `url`, filling the report; the CPU of the
        processes `pids` (and their executors) is measured over the timed window."""
        report.url = url
        self.progress.prefix = f"[{report.name}] "
        with RpcClient(url) as rpc:
            with contextlib.suppress(RpcError):
                report.client_version = str(rpc.call("web3_clientVersion"))
            target = connect(rpc, progress=self.progress, stall_timeout=self.args.timeout)
            report.chain_id = target.chain_id
            with BlockWatcher(url, self.args.poll) as watcher:
                result = run_timed_transfers(
                    target,
                    watcher,
                    self.args.count,
                    self.args.timeout,
                    cpu=lambda: tree_cpu_seconds(pids),
                )
            report.result = result
            report.height_end = int(rpc.call("eth_blockNumber"), 16)
            with contextlib.suppress(RpcError):
                status = rpc.call("pv_consensusStatus")
                report.consensus = status if isinstance(status, dict) else None
        self.say(
            report.name,
            f"{result.tps:,.1f} tx/s, finality p50 {result.p50_s:.3f} s p99 {result.p99_s:.3f} s",
        )

    def _wait_finalizing(self, nodes: Sequence[NodeProcess]) -> None:
        """Wait until every validator has READY_HEIGHT blocks and node 0 sees all its peers."""
        deadline = time.monotonic() + self.args.start_timeout
        heights: list[int | None] = [None] * len(nodes)
        peers: int | None = None
        while True:
            for i, node in enumerate(nodes):
                if rss_bytes(node.pid) is None:
                    raise NodeStartError(f"{node.name} exited\n{node.log_tail(LOG_LINES)}")
                heights[i] = _try_call(node.url, "eth_blockNumber", lambda v: int(v, 16))
            status = _try_call(nodes[0].url, "pv_consensusStatus", lambda v: v)
            peers = status.get("peers") if isinstance(status, dict) else None
            low = min((h if h is not None else -1) for h in heights)
            if low >= READY_HEIGHT and peers == len(nodes) - 1:
                return
            if time.monotonic() > deadline:
                lagging = min(range(len(nodes)), key=lambda i: heights[i] or -1)
                raise NodeStartError(
                    f"the devnet did not finalize {READY_HEIGHT} blocks within "
                    f"{self.args.start_timeout:g} s (heights {heights}, node 0 peers {peers}); "
                    f"{nodes[lagging].name} lags\n{nodes[lagging].log_tail(LOG_LINES)}"
                )
            time.sleep(0.5)

    def _check_agreement(self, report: PhaseReport, nodes: Sequence[NodeProcess]) -> None:
        """Every validator must reach node 0's height at the end with the same block hash."""
        height = report.height_end
        if height is None:
            return
        deadline = time.monotonic() + self.args.timeout
        for node in nodes[1:]:
            while True:
                block = _try_call(
                    node.url, "eth_getBlockByNumber", lambda v: v, [hex(height), False]
                )
                if isinstance(block, dict):
                    break
                if time.monotonic() > deadline:
                    raise LoadError(f"{node.name} did not reach height {height}")
                time.sleep(0.25)
            mine = _try_call(
                nodes[0].url, "eth_getBlockByNumber", lambda v: v, [hex(height), False]
            )
            if not isinstance(mine, dict) or mine.get("hash") != block.get("hash"):
                raise LoadError(f"{node.name} holds another block {height} than validator-0")
        report.notes.append(f"all {len(nodes)} validators hold the same block {height}")

    def _failed(self, report: PhaseReport, exc: BenchError) -> None:
        self.progress.finish()
        report.error = str(exc)
        self.say(report.name, f"error: {exc}")


@contextlib.contextmanager
def _started(node: NodeProcess, sessions: set[int]) -> Iterator[NodeProcess]:
    """Start a node (its own session), note its session, stop it (process group) on exit."""
    with node:
        sessions.add(node.pid)
        yield node


def _with_logs(exc: BenchError, nodes: Sequence[NodeProcess]) -> BenchError:
    """Add the log tail of node 0 and of every node that has exited to an error."""
    if isinstance(exc, NodeStartError) or not nodes:
        return exc
    tails = []
    for i, node in enumerate(nodes):
        try:
            dead = rss_bytes(node.pid) is None
        except BenchError:
            continue
        if i == 0 or dead:
            tails.append(f"{node.name}{' (exited)' if dead else ''}:\n{node.log_tail(LOG_LINES)}")
    return BenchError("\n".join([str(exc), *tails]))


def _try_call(url: str, method: str, parse: Any, params: Sequence[Any] = ()) -> Any:
    """One JSON-RPC call on a short-lived connection; None if it fails in any way."""
    try:
        with RpcClient(url, timeout=5.0) as rpc:
            return parse(rpc.call(method, params))
    except (BenchError, ValueError, TypeError):
        return None


# --- report ---------------------------------------------------------------------------


def targets(single: PhaseReport, devnet: PhaseReport) -> dict[str, Any]:
    """The two targets: devnet tx/s >= 70% of the single node's, devnet p50 <= 1.5 s."""
    a, b = single.result, devnet.result
    ratio = b.tps / a.tps if a is not None and b is not None and a.tps > 0 else None
    p50 = b.p50_s if b is not None else None
    return {
        "tps_ratio": {
            "value": ratio,
            "target": TPS_RATIO_TARGET,
            "met": None if ratio is None else ratio >= TPS_RATIO_TARGET,
        },
        "devnet_p50_s": {
            "value": p50,
            "target": P50_TARGET_S,
            "met": None if p50 is None else p50 <= P50_TARGET_S,
        },
    }


def _verdict(met: bool | None) -> str:
    return "-" if met is None else ("[green]met[/]" if met else "[red]missed[/]")


def render_table(single: PhaseReport, devnet: PhaseReport) -> Table:
    """Single node and devnet side by side, with the ratio and the two targets."""
    goals = targets(single, devnet)
    table = Table(title=f"finality: 1 dev node vs a devnet of {devnet.nodes} validators")
    table.add_column("metric", no_wrap=True)
    table.add_column("single node (--dev)", justify="right")
    table.add_column(f"devnet ({devnet.nodes} validators)", justify="right")
    table.add_column("devnet/single", justify="right")
    table.add_column("target", no_wrap=True)
    ratio = goals["tps_ratio"]
    p50 = goals["devnet_p50_s"]
    rows = [
        ("transfers included OK", "included", False),
        ("finalized tx/s (end to end)", "tps", True),
        ("  first send → last inclusion", "seconds", True),
        ("  accepted by sendRawTransaction", "send_tps", True),
        ("finality p50 (send → block seen)", "p50_s", True),
        ("finality p99", "p99_s", True),
        ("finality mean", "mean_s", True),
        ("finality max", "max_s", True),
        ("blocks holding the load", "blocks", False),
        ("blocks during the load", "window_blocks", False),
        ("  of them empty", "empty_blocks", False),
        ("node CPU per finalized tx", "cpu_us_per_tx", True),
        ("  cores the nodes kept busy", "cores_busy", True),
    ]
    goal_text = {
        "tps": f"≥ {TPS_RATIO_TARGET:.2f}× single: {_verdict(ratio['met'])}",
        "p50_s": f"devnet ≤ {P50_TARGET_S:g} s: {_verdict(p50['met'])}",
    }
    for label, key, show_ratio in rows:
        a = _figure(single.result, key)
        b = _figure(devnet.result, key)
        r = f"{b / a:.2f}×" if show_ratio and a and b is not None else ""
        table.add_row(label, _fmt(key, a), _fmt(key, b), r, goal_text.get(key, ""))
    table.add_row(
        "chain height at end", _fmt("height", single.height_end), _fmt("height", devnet.height_end)
    )
    table.add_row(
        "start to ready",
        _fmt("start", single.start_seconds),
        _fmt("start", devnet.start_seconds),
    )
    return table


def _figure(result: FinalityResult | None, key: str) -> float | None:
    value = None if result is None else getattr(result, key)
    return None if value is None else float(value)


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key.endswith("tps"):
        return f"{value:,.1f} tx/s"
    if key == "cpu_us_per_tx":
        return f"{value:,.0f} µs"
    if key == "cores_busy":
        return f"{value:.2f}"
    if key.endswith("_s"):
        return f"{value:,.3f} s"
    if key in ("seconds", "start"):
        return f"{value:,.2f} s"
    return f"{int(value):,}"


def to_json(
    single: PhaseReport, devnet: PhaseReport, params: Mapping[str, Any], command: str
) -> dict[str, Any]:
    """The whole run as one JSON document."""
    return {
        "tool": "bench/devnet.py",
        "schema": 1,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "params": dict(params),
        "single": single.to_json(),
        "devnet": devnet.to_json(),
        "targets": targets(single, devnet),
    }


# --- command line ---------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and check the command line."""
    p = argparse.ArgumentParser(
        prog="bench/devnet.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--validators", type=int, default=4, help="validators of the devnet")
    p.add_argument("--count", type=int, default=2000, help="value transfers per phase")
    p.add_argument("--json", action="store_true", help="print one JSON document of all figures")
    p.add_argument("--poll", type=float, default=0.025, help="s between polls of node 0's head")
    p.add_argument("--timeout", type=float, default=120.0, help="give up after s without progress")
    p.add_argument(
        "--start-timeout", type=float, default=180.0, help="s for the devnet's first blocks"
    )
    p.add_argument("--pv", type=Path, help="pv executable (default: the one beside this Python)")
    p.add_argument("--keep-logs", type=Path, help="copy the validators' logs into this folder")
    p.add_argument(
        "--skip-single", action="store_true", help="run the devnet phase only (no ratio)"
    )
    args = p.parse_args(argv)
    if not 1 <= args.validators <= MAX_VALIDATORS:
        p.error(f"--validators must be between 1 and {MAX_VALIDATORS}")
    if args.count < 1:
        p.error("--count must be positive")
    if args.poll <= 0 or args.timeout <= 0 or args.start_timeout <= 0:
        p.error("--poll, --timeout and --start-timeout must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: both phases, then the side-by-side figures; 1 on any failure."""
    args = parse_args(argv)
    return run_guarded(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    out, log = Console(), Console(stderr=True, soft_wrap=True)
    if not out.is_terminal:
        out = Console(width=140)
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=log, transient=True) as bar:
        bench = Bench(args, RichProgress(bar), log)
        if not bench.pv.exists():
            log.print(f"error: no pv executable at {bench.pv} (pass --pv)", markup=False)
            return 1
        try:
            single = PhaseReport("single", 1, error="skipped (--skip-single)")
            if not args.skip_single:
                single = bench.single()
            devnet = bench.devnet()
        finally:
            left = bench.scan()
    if left:
        devnet.error = (devnet.error or "") + f"\nleftover processes killed: {left}"
    devnet.notes.append("leftover scan: " + (f"killed {left}" if left else "no process left"))
    params = {k: getattr(args, k) for k in ("validators", "count", "poll", "timeout")}
    params["txpool_account_slots"] = DEVNET_ACCOUNT_SLOTS
    if args.json:
        print(json.dumps(to_json(single, devnet, params, command), indent=2))
    else:
        out.print(render_table(single, devnet))
        if devnet.consensus is not None:
            status = json.dumps(devnet.consensus, separators=(",", ":"))
            print(f"validator-0 pv_consensusStatus: {status}")
        for report in (single, devnet):
            print(f"client [{report.name}]: {report.client_version or '-'} at {report.url or '-'}")
            for note in report.notes:
                out.print(f"note [{report.name}]: {note}", markup=False)
            if report.error:
                out.print(f"FAILED [{report.name}]: {report.error.splitlines()[0]}", markup=False)
        print(f"params: {params}")
        print(f"command: {command}")
    return 1 if (single.error and not args.skip_single) or devnet.error else 0


if __name__ == "__main__":
    sys.exit(main())
