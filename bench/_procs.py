"""Node processes the bench starts itself: free ports, readiness, memory (RSS) and shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType

from bench._rpc import RpcClient
from bench.exceptions import BenchError, NodeStartError

__all__ = ["NodeProcess", "free_port", "ours_command", "rss_bytes", "tree_rss_bytes"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int) -> int | None:
    """Return the resident set size of one process from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def tree_rss_bytes(pid: int) -> int | None:
    """Return the summed RSS of a process and all its descendants (npm/npx wrappers included)."""
    own = rss_bytes(pid)
    if own is None:
        return None
    return own + sum(rss_bytes(child) or 0 for child in _descendants(pid))


def cpu_seconds(pid: int) -> float | None:
    """Return the user + system CPU seconds one process has used, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    """Return the CPU seconds used so far by processes `pids` and all their live descendants.

    A process that exited in between is not counted: compare two readings of live trees.
    """
    tree = [*pids, *(child for pid in pids for child in _descendants(pid))]
    return sum(cpu_seconds(pid) or 0.0 for pid in tree)


def _descendants(pid: int) -> list[int]:
    """List the pids below `pid` in the process tree."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def ours_command(port: int, data_dir: Path, pv: Path | None = None) -> list[str]:
    """Return the command line that starts a PowerVerse dev node keeping its data in data_dir."""
    exe = pv or REPO_ROOT / ".venv" / "bin" / "pv"
    return [str(exe), "node", "--dev", "--rpc-port", str(port), "--data-dir", str(data_dir)]


class NodeProcess:
    """A node started as a child process, logging to a file, stopped on exit."""

    def __init__(
        self,
        name: str,
        command: Sequence[str] | Callable[[Path], Sequence[str]],
        port: int,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        ready_timeout: float = 120.0,
    ) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self._cwd = cwd
        self._env = env
        self._ready_timeout = ready_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix=f"pv-bench-{name}-")
        self.workdir = Path(self._tmp.name)
        self.command = list(command(self.workdir) if callable(command) else command)
        self.log_path = self.workdir / "node.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id of the node (raises if it was not started)."""
        if self._proc is None:
            raise BenchError(f"{self.name} node is not running")
        return self._proc.pid

    def start(self) -> None:
        """Start the process and wait until it answers eth_chainId."""
        with self.log_path.open("wb") as log:
            try:
                self._proc = subprocess.Popen(
                    self.command,
                    cwd=self._cwd,
                    env={**os.environ, **(self._env or {})},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                msg = f"cannot start {self.name} node ({self.command[0]}): {exc}"
                raise NodeStartError(msg) from exc
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Poll the RPC port until the node answers, fails, or the timeout passes."""
        deadline = time.monotonic() + self._ready_timeout
        with RpcClient(self.url, timeout=5.0) as rpc:
            while True:
                code = self._proc.poll() if self._proc else None
                if code is not None:
                    raise NodeStartError(
                        f"{self.name} node exited with code {code} before answering; "
                        f"command: {' '.join(self.command)}\n{self.log_tail()}"
                    )
                try:
                    rpc.call("eth_chainId")
                    return
                except BenchError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise NodeStartError(
                        f"{self.name} node did not answer at {self.url} within "
                        f"{self._ready_timeout:.0f} s\n{self.log_tail()}"
                    )
                time.sleep(0.2)

    def wait(self) -> int:
        """Block until the node exits; return its exit code."""
        if self._proc is None:
            raise BenchError(f"{self.name} node is not running")
        return self._proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the node's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        tail = text.splitlines()[-lines:]
        return "--- last log lines ---\n" + "\n".join(tail) if tail else "(empty log)"

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the node: SIGINT to its process group, then SIGKILL if it lingers."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        """Stop the node and delete its working directory."""
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> NodeProcess:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit so context managers stop the nodes."""
    raise SystemExit(128 + signum)


def run_guarded(run: Callable[[], int]) -> int:
    """Run a bench so that SIGTERM and Ctrl-C still stop every node it started."""
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return run()
    except KeyboardInterrupt:
        print("interrupted; nodes started by the bench were stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
