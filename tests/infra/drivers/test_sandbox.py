"""The bubblewrap sandbox on real tasks: limits end bombs and endless loops with the right
outcome, the network and the host's files are out of reach, inputs are read-only, outputs land
in the output directory, and nothing of a task survives its run."""

from __future__ import annotations

import ast
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from powerverse.infra.drivers.base import TaskLimits, TaskOutcome, TaskResult, TaskSpec
from powerverse.infra.drivers.sandbox import SandboxRunner
from powerverse.infra.exceptions import SandboxError
from tests.infra.conftest import require_tools

PY = "/usr/bin/python3"


@pytest.fixture(autouse=True)
def _bwrap() -> None:
    require_tools("bwrap")
    if not Path(PY).exists():
        pytest.skip("needs the system python3 (/usr/bin/python3) inside the sandbox")


def run(tmp_path: Path, *argv: str, name: str = "out", **kw: object) -> TaskResult:
    inputs = kw.pop("inputs", {})
    env = kw.pop("env", {})
    out = tmp_path / name
    out.mkdir()
    spec = TaskSpec(
        task_id=f"test-{name}", argv=argv, inputs=inputs, env=env,  # type: ignore[arg-type]
        limits=TaskLimits(**{"wall_seconds": 20.0, **kw}),  # type: ignore[arg-type]
    )  # fmt: skip
    return SandboxRunner().run(spec, out)


def test_a_task_writes_its_outputs_and_its_exit_status_counts(tmp_path: Path) -> None:
    ok = run(tmp_path, "sh", "-c", "echo result > /output/answer.txt; echo done", name="ok")
    assert ok.outcome == TaskOutcome.SUCCEEDED and ok.exit_code == 0
    assert (tmp_path / "ok" / "answer.txt").read_text() == "result\n"
    assert ok.stdout_tail == "done\n"
    bad = run(tmp_path, "sh", "-c", "echo oops >&2; exit 3", name="bad")
    assert bad.outcome == TaskOutcome.FAILED and bad.exit_code == 3 and "oops" in bad.stderr_tail
    missing = run(tmp_path, "/usr/bin/no-such-program", name="missing")
    assert missing.outcome == TaskOutcome.FAILED


def test_a_memory_bomb_is_stopped_at_its_limit(tmp_path: Path) -> None:
    bomb = "a = []\nwhile True:\n    a.append(bytearray(10**7))"
    result = run(tmp_path, PY, "-c", bomb, memory_bytes=128 << 20)
    assert result.outcome == TaskOutcome.OUT_OF_MEMORY


def test_a_fork_bomb_is_stopped_at_its_process_limit(tmp_path: Path) -> None:
    result = run(tmp_path, "sh", "-c", "f(){ f | f & }; f; sleep 2", max_processes=32)
    assert result.outcome == TaskOutcome.PROCESS_LIMIT
    assert run(tmp_path, "sh", "-c", "echo fine", name="after").outcome == TaskOutcome.SUCCEEDED


def test_an_endless_task_is_stopped_at_its_time_limits(tmp_path: Path) -> None:
    wall = run(tmp_path, "sh", "-c", "sleep 600", wall_seconds=1.5, name="wall")
    assert wall.outcome == TaskOutcome.TIMED_OUT and wall.wall_seconds < 60
    cpu = run(tmp_path, "sh", "-c", "while :; do :; done", cpu_seconds=1, name="cpu")
    assert cpu.outcome == TaskOutcome.TIMED_OUT


def test_an_output_limit_is_enforced(tmp_path: Path) -> None:
    result = run(
        tmp_path, "sh", "-c", "head -c 5000000 /dev/zero > /output/big", max_output_bytes=1 << 20
    )
    assert result.outcome == TaskOutcome.OUTPUT_LIMIT
    assert (tmp_path / "out" / "big").stat().st_size <= 1 << 20


@pytest.fixture
def server() -> Iterator[int]:
    """A TCP server on the host's loopback that answers "pong"."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(30)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = sock.accept()
                conn.sendall(b"pong")
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield int(sock.getsockname()[1])
    sock.close()


def test_no_network_unless_asked_for(tmp_path: Path, server: int) -> None:
    probe = (
        f"import socket\ns = socket.create_connection(('127.0.0.1', {server}), timeout=3)\n"
        "print(s.recv(4).decode())"
    )
    cut = run(tmp_path, PY, "-c", probe, name="cut")
    assert cut.outcome == TaskOutcome.FAILED and "pong" not in cut.stdout_tail
    dns = run(
        tmp_path, PY, "-c", "import socket; socket.getaddrinfo('example.org', 80)", name="dns"
    )
    assert dns.outcome == TaskOutcome.FAILED
    allowed = run(tmp_path, PY, "-c", probe, network=True, name="allowed")
    assert allowed.outcome == TaskOutcome.SUCCEEDED and allowed.stdout_tail.strip() == "pong"


def test_inputs_are_read_only_and_the_host_is_out_of_reach(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("input data")
    data.chmod(0o600)  # only root may read it on the host: the sandbox gets a readable copy
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    script = "\n".join(
        [
            "import os",
            "print(open('/inputs/data.txt').read())",
            "for target in ['/inputs/data.txt', '/usr/evil', '/etc/evil', '/tmp/../root/evil',"
            f" {str(secret)!r}]:",
            "    try:",
            "        open(target, 'w').write('x')",
            "        print('WROTE', target)",
            "    except OSError as exc:",
            "        print('refused', target)",
            f"print(os.path.exists({str(secret)!r}))",
            "print(sorted(os.environ))",
        ]
    )
    result = run(tmp_path, PY, "-c", script, inputs={"data.txt": data}, env={"SEED": "7"})
    assert result.outcome == TaskOutcome.SUCCEEDED, result.stderr_tail
    lines = result.stdout_tail.splitlines()
    assert lines[0] == "input data"
    assert not any(line.startswith("WROTE") for line in lines), lines
    assert lines[-2] == "False"  # the host's files are not even visible
    seen = set(ast.literal_eval(lines[-1]))
    # a clean environment: what the task was given (PWD from the shell, LC_CTYPE from
    # Python's locale coercion), nothing of the host's (e.g. this test process's variables)
    assert {"HOME", "PATH", "SEED"} <= seen <= {"HOME", "PATH", "SEED", "PWD", "LC_CTYPE"}
    assert data.read_text() == "input data" and secret.read_text() == "host secret"


def test_nothing_of_the_task_survives_the_run(tmp_path: Path) -> None:
    marker = f"pv-orphan-{os.getpid()}"
    result = run(
        tmp_path, "sh", "-c", f"(exec -a {marker} sleep 300) & (setsid sleep 300 &) ; exit 0"
    )
    assert result.outcome == TaskOutcome.SUCCEEDED
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


def test_bad_requests_are_refused_before_anything_runs(tmp_path: Path) -> None:
    runner = SandboxRunner()
    out = tmp_path / "out"
    out.mkdir()
    cases = [
        (TaskSpec(task_id="t", argv=()), out, "argv"),
        (TaskSpec(task_id="t", argv=("true",)), tmp_path / "missing", "does not exist"),
        (TaskSpec(task_id="t", argv=("true",), inputs={"../x": tmp_path}), out, "plain file"),
        (TaskSpec(task_id="t", argv=("true",), inputs={"x": tmp_path / "nope"}), out, "nope"),
        (TaskSpec(task_id="t", argv=("true",), env={"A=B": "1"}), out, "environment"),
    ]
    for spec, directory, message in cases:
        with pytest.raises(SandboxError, match=message):
            runner.run(spec, directory)
    (out / "stale").write_text("x")
    with pytest.raises(SandboxError, match="not empty"):
        runner.run(TaskSpec(task_id="t", argv=("true",)), out)
    assert sys.executable  # the test process itself is untouched
