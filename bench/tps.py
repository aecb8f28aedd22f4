#!/usr/bin/env python3
"""Benchmark a node's JSON-RPC: transfer and ERC-20 throughput, eth_call latency, memory.

    .venv/bin/python bench/tps.py URL                   bench the node at URL
    .venv/bin/python bench/tps.py --compare-hardhat     start our dev node and Hardhat 2, bench both
    .venv/bin/python bench/tps.py --compare-hardhat URL bench URL, then a fresh Hardhat 2 beside it
    .venv/bin/python bench/tps.py --memory-after 100000 [...]  long run reporting the node's RSS

Every tx is signed before the clock starts; sends go as JSON-RPC batches of one tx per account
over one keep-alive connection; a load ends when every tx is in a block (nonces, then receipts).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from bench._hardhat import HARDHAT_VERSION, default_cache_dir, ensure_hardhat, hardhat_node
from bench._load import (
    connect,
    deploy_erc20,
    fund_tokens,
    prepare_senders,
    run_calls,
    run_erc20,
    run_memory,
    run_transfers,
)
from bench._procs import (
    REPO_ROOT,
    NodeProcess,
    free_port,
    ours_command,
    run_guarded,
    tree_rss_bytes,
)
from bench._report import NodeReport, render_table, to_json
from bench._rpc import RpcClient
from bench.exceptions import BenchError, RpcError

DEFAULT_ARTIFACT = REPO_ROOT / "tests" / "contracts" / "artifacts" / "PVTestToken.json"


class RichProgress:
    """A Progress (see bench._load) drawn as one transient rich bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self.prefix = ""

    def start(self, label: str, total: int) -> None:
        """Replace the current bar with a new one."""
        self.finish()
        text = escape(f"{self.prefix}{label}")
        self._task = self._progress.add_task(text, total=max(total, 1))

    def advance(self, steps: int) -> None:
        """Move the current bar on."""
        if self._task is not None:
            self._progress.advance(self._task, steps)

    def finish(self) -> None:
        """Remove the current bar."""
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and check the command line."""
    p = argparse.ArgumentParser(
        prog="bench/tps.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("url", nargs="?", help="JSON-RPC URL of a running dev node")
    p.add_argument(
        "--compare-hardhat",
        action="store_true",
        help="also bench a fresh Hardhat 2 node; without URL, start our dev node too",
    )
    p.add_argument("--count", type=int, default=3000, help="value transfers to send")
    p.add_argument("--accounts", type=int, default=20, help="sending accounts (past 20: funded)")
    p.add_argument("--erc20-count", type=int, default=1000, help="ERC-20 transfers (0: skip)")
    p.add_argument("--calls", type=int, default=1000, help="eth_call balanceOf calls (0: skip)")
    p.add_argument(
        "--memory-after",
        type=int,
        metavar="N",
        default=0,
        help="instead: send N transfers in chunks and report the node's RSS",
    )
    p.add_argument("--chunk", type=int, default=4000, help="txs per chunk in --memory-after")
    p.add_argument("--pid", type=int, help="pid of the node at URL, for its RSS")
    p.add_argument("--json", action="store_true", help="print one JSON document of all figures")
    p.add_argument("--timeout", type=float, default=60.0, help="give up after s without progress")
    p.add_argument("--artifact", type=Path, default=DEFAULT_ARTIFACT, help="ERC-20 artifact")
    p.add_argument("--pv", type=Path, help="pv executable for our node (default .venv/bin/pv)")
    p.add_argument("--hardhat-dir", type=Path, default=None, help="Hardhat install dir")
    args = p.parse_args(argv)
    if args.url is None and not args.compare_hardhat:
        p.error("give a node URL, or --compare-hardhat to start the nodes")
    for name in ("count", "erc20_count", "calls", "memory_after"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must not be negative")
    if args.accounts < 1 or args.chunk < 1 or args.timeout <= 0:
        p.error("--accounts, --chunk and --timeout must be positive")
    if args.url is None and args.pid is not None:
        p.error("--pid only applies to a node given by URL")
    return args


def bench_node(
    report: NodeReport, args: argparse.Namespace, progress: RichProgress, log: Console
) -> None:
    """Run the whole load on one node, filling `report` as figures come in."""
    progress.prefix = f"[{report.name}] "
    rss: Callable[[], int | None] = lambda: None  # noqa: E731
    if report.pid is not None:
        pid = report.pid
        rss = lambda: tree_rss_bytes(pid)  # noqa: E731
    with RpcClient(report.url or "") as rpc:
        try:
            report.client_version = str(rpc.call("web3_clientVersion"))
        except RpcError:
            report.client_version = None
        target = connect(rpc, progress=progress, stall_timeout=args.timeout)
        if args.memory_after:
            per_account = math.ceil(args.memory_after / args.accounts)
            senders = prepare_senders(target, args.accounts, per_account)
            report.memory = run_memory(target, senders, args.memory_after, args.chunk, rss)
            report.rss_end = rss()
            return
        per_account = math.ceil(max(args.count, args.erc20_count) / args.accounts) + 1
        senders = prepare_senders(target, args.accounts, per_account)
        if args.count:
            report.transfers = run_transfers(target, senders, args.count)
            _say(log, report.name, f"transfers: {report.transfers.tps:,.1f} tx/s")
        if args.erc20_count or args.calls:
            artifact = _read_artifact(args.artifact)
            if artifact is None:
                report.notes.append(f"ERC-20 and eth_call skipped: no artifact at {args.artifact}")
                _say(log, report.name, report.notes[-1])
            else:
                token = deploy_erc20(target, senders[0], artifact)
                if args.erc20_count:
                    gas = fund_tokens(target, token, senders[0], senders)
                    report.erc20 = run_erc20(target, token, senders, args.erc20_count, gas)
                    _say(log, report.name, f"ERC-20: {report.erc20.tps:,.1f} tx/s")
                if args.calls:
                    report.calls = run_calls(target, token, senders, args.calls)
                    _say(log, report.name, f"eth_call p50 {report.calls.p50_ms:.2f} ms")
        report.rss_end = rss()


def _say(log: Console, name: str, message: str) -> None:
    """Print a status line for one node on stderr."""
    log.print(f"[{name}] {message}", markup=False, highlight=False)


def _read_artifact(path: Path) -> dict[str, Any] | None:
    """Load a {"abi", "bytecode"} JSON artifact, or None if the file does not exist."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot read ERC-20 artifact {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise BenchError(f"ERC-20 artifact {path} is not a JSON object")
    return data


def run_on_process(
    report: NodeReport,
    make: Callable[[], NodeProcess],
    args: argparse.Namespace,
    progress: RichProgress,
    log: Console,
) -> None:
    """Start a node process, bench it, stop it; record any failure in the report."""
    try:
        proc = make()
        _say(log, report.name, f"starting: {shlex.join(proc.command)}")
        with proc:
            report.url, report.pid = proc.url, proc.pid
            try:
                bench_node(report, args, progress, log)
            except BenchError as exc:
                raise BenchError(f"{exc}\n{proc.log_tail()}") from exc
    except BenchError as exc:
        progress.finish()
        report.error = str(exc)
        _say(log, report.name, f"error: {exc}")


def run_on_url(
    report: NodeReport, args: argparse.Namespace, progress: RichProgress, log: Console
) -> None:
    """Bench a node that is already running; record any failure in the report."""
    try:
        bench_node(report, args, progress, log)
    except BenchError as exc:
        progress.finish()
        report.error = str(exc)
        _say(log, report.name, f"error: {exc}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: bench one node, or ours beside Hardhat 2; print figures; 1 on any failure."""
    args = parse_args(argv)
    return run_guarded(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    """Run the benchmark the parsed arguments ask for and print its figures."""
    out, log = Console(), Console(stderr=True, soft_wrap=True)
    if not out.is_terminal:
        out = Console(width=120)
    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    hardhat_dir = args.hardhat_dir or default_cache_dir()
    if args.compare_hardhat:
        try:
            ensure_hardhat(hardhat_dir)
        except BenchError as exc:
            log.print(f"error: {exc}", markup=False)
            return 1
    reports: list[NodeReport] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=log, transient=True) as bar:
        progress = RichProgress(bar)
        ours = NodeReport("ours" if args.compare_hardhat else "node", url=args.url, pid=args.pid)
        reports.append(ours)
        if args.url:
            run_on_url(ours, args, progress, log)
        else:
            port = free_port()
            run_on_process(
                ours,
                lambda: NodeProcess(
                    "ours", lambda d: ours_command(port, d / "data", args.pv), port
                ),
                args,
                progress,
                log,
            )
        if args.compare_hardhat:
            theirs = NodeReport("hardhat")
            reports.append(theirs)
            hh_port = free_port()
            run_on_process(theirs, lambda: hardhat_node(hh_port, hardhat_dir), args, progress, log)
    params = {
        k: getattr(args, k)
        for k in ("count", "accounts", "erc20_count", "calls", "memory_after", "chunk")
    }
    extra = {"hardhat_version": HARDHAT_VERSION} if args.compare_hardhat else {}
    if args.json:
        print(json.dumps(to_json(reports, params, command, extra), indent=2))
    else:
        title = "PowerVerse vs Hardhat 2" if args.compare_hardhat else f"node at {args.url}"
        if args.compare_hardhat:
            title += f" (hardhat@{HARDHAT_VERSION}; ratio > 1: ours higher)"
        if any(r.client_version for r in reports):
            print(title)
            out.print(render_table(reports))
        for r in reports:
            print(f"client [{r.name}]: {r.client_version or '-'} at {r.url or '-'}")
            for note in r.notes:
                out.print(f"note [{r.name}]: {note}", markup=False)
            if r.error:
                out.print(f"FAILED [{r.name}]: {r.error.splitlines()[0]}", markup=False)
        print(f"params: {params}")
        print(f"command: {command}")
    return 1 if any(r.error for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
