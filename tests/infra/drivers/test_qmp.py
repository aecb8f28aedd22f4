"""The synchronous QMP client against a real QEMU (no guest: ``-machine none``) and against a
socket that never answers: results, QEMU's refusals with their error class, timeouts, worker
threads, and a QEMU that quits."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from powerverse.infra.drivers.qmp import QmpError, QmpSession, qmp_execute
from tests.infra.conftest import require_tools


@pytest.fixture
def qemu(tmp_path: Path) -> Iterator[Path]:
    """A QEMU with no machine to run, only its QMP socket."""
    require_tools("qemu-system-x86_64")
    sock = tmp_path / "qmp.sock"
    proc = subprocess.Popen(
        ["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none", "-S",
         "-qmp", f"unix:{sock},server=on,wait=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "QEMU did not start"
            time.sleep(0.05)
        yield sock
    finally:
        proc.kill()
        proc.wait()


def test_commands_return_their_result(qemu: Path) -> None:
    with QmpSession(qemu) as qmp:
        assert qmp.execute("query-status")["status"] == "prelaunch"
        assert qmp.execute("query-version")["qemu"]["major"] >= 7
    assert qmp_execute(qemu, "query-status")["running"] is False


def test_a_refused_command_names_qemus_error_class(qemu: Path) -> None:
    with QmpSession(qemu) as qmp, pytest.raises(QmpError, match="no-such-command") as refused:
        qmp.execute("no-such-command")
    assert refused.value.error_class == "CommandNotFound"
    assert qmp_execute(qemu, "query-status")["status"] == "prelaunch"  # the socket is free again


def test_works_from_worker_threads_without_an_event_loop(qemu: Path) -> None:
    lock = threading.Lock()  # QEMU serves one QMP client at a time

    def ask(_: int) -> str:
        with lock:
            return str(qmp_execute(qemu, "query-status")["status"])

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(ask, range(8))) == ["prelaunch"] * 8


def test_a_qemu_that_quits_is_reported(qemu: Path) -> None:
    with QmpSession(qemu) as qmp:
        with contextlib.suppress(QmpError):  # QEMU may exit before its reply is read
            qmp.execute("quit")
        with pytest.raises(QmpError, match=r"closed the connection|not connected"):
            qmp.execute("query-status")
    with pytest.raises(QmpError, match="cannot reach"):
        qmp_execute(qemu, "query-status", timeout=2)


def test_a_silent_socket_times_out(tmp_path: Path) -> None:
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen(1)  # accepts connections, never sends QMP's greeting
        with pytest.raises(QmpError, match=r"did not answer within 0\.5 s"):
            qmp_execute(path, "query-status", timeout=0.5)


def test_a_missing_socket_is_reported(tmp_path: Path) -> None:
    with pytest.raises(QmpError, match="cannot reach") as missing:
        qmp_execute(tmp_path / "nothing.sock", "query-status")
    assert missing.value.error_class is None
