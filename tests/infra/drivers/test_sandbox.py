"""The bubblewrap sandbox on real tasks: bombs and endless loops end at their limits with the
right outcome (with cgroups, and with the rlimit fallback of hosts that have none), the network
and the host's files are out of reach, inputs are read-only, outputs land in the output
directory, and nothing of a task survives its run or the agent's death."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from powerverse.infra.drivers.base import TaskLimits, TaskOutcome, TaskResult, TaskSpec
from powerverse.infra.drivers.sandbox import SandboxRunner
from powerverse.infra.exceptions import SandboxError
from tests.infra.conftest import require_tools

PY = "/usr/bin/python3"  # the host's Python, which the sandbox sees in its read-only /usr
SRC = Path(__file__).resolve().parents[3] / "src"
MODES = ["cgroups", "rlimits"]  # rlimits: as on a host where no cgroup can be made


@pytest.fixture(autouse=True)
def _bwrap() -> None:
    require_tools("bwrap", PY)  # Debian's python3, for the tasks (the venv's is not in /usr)


def run(
    tmp_path: Path,
    *argv: str,
    name: str = "out",
    runner: SandboxRunner | None = None,
    inputs: dict[str, Path] | None = None,
    env: dict[str, str] | None = None,
    **limits: object,
) -> TaskResult:
    out = tmp_path / name
    out.mkdir()
    spec = TaskSpec(
        task_id=f"test-{name}",
        argv=argv,
        inputs=inputs or {},
        env=env or {},
        limits=TaskLimits(**{"wall_seconds": 60.0, **limits}),  # type: ignore[arg-type]
    )
    return (runner or SandboxRunner()).run(spec, out)


def runner_for(mode: str) -> SandboxRunner:
    return SandboxRunner(cgroups=mode == "cgroups")


def marked(marker: str) -> list[psutil.Process]:
    """The live processes whose command line holds ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def test_a_task_writes_its_outputs_and_its_exit_status_counts(tmp_path: Path) -> None:
    script = (
        "mkdir -p /output/sub && echo result > /output/sub/answer.txt"
        " && ln -s /etc/shadow /output/link && mkfifo /output/fifo && echo done"
    )
    ok = run(tmp_path, "sh", "-c", script, name="ok")
    assert ok.outcome == TaskOutcome.SUCCEEDED and ok.exit_code == 0, ok.stderr_tail
    assert ok.stdout_tail == "done\n" and ok.output_dir == tmp_path / "ok"
    answer = tmp_path / "ok" / "sub" / "answer.txt"
    assert answer.read_text() == "result\n"
    assert answer.stat().st_uid == os.geteuid()  # handed over to the agent
    assert sorted(p.name for p in (tmp_path / "ok").iterdir()) == ["sub"]  # no link, no fifo
    bad = run(tmp_path, "sh", "-c", "echo oops >&2; exit 3", name="bad")
    assert bad.outcome == TaskOutcome.FAILED and bad.exit_code == 3
    assert bad.stderr_tail == "oops\n"
    missing = run(tmp_path, "/usr/bin/no-such-program", name="missing")
    assert missing.outcome == TaskOutcome.FAILED and "no-such-program" in missing.stderr_tail
    killed = run(tmp_path, "sh", "-c", "kill -TERM $$", name="killed")
    assert killed.outcome == TaskOutcome.FAILED and killed.exit_code == 128 + signal.SIGTERM


def test_only_the_tail_of_a_long_log_is_kept(tmp_path: Path) -> None:
    result = run(tmp_path, "sh", "-c", "seq 1 200000; echo last >&2; seq 1 100000 >&2")
    assert result.outcome == TaskOutcome.SUCCEEDED
    assert len(result.stdout_tail) == 8192 and result.stdout_tail.endswith("\n199999\n200000\n")
    assert len(result.stderr_tail) == 8192 and result.stderr_tail.endswith("\n100000\n")


@pytest.mark.parametrize("mode", MODES)
def test_a_memory_bomb_is_stopped_at_its_limit(tmp_path: Path, mode: str) -> None:
    bomb = "a = []\nwhile True:\n    a.append(bytearray(10**7))"
    result = run(tmp_path, PY, "-c", bomb, memory_bytes=128 << 20, runner=runner_for(mode))
    assert result.outcome == TaskOutcome.OUT_OF_MEMORY, result.stderr_tail


@pytest.mark.parametrize("mode", MODES)
def test_memory_shared_by_many_processes_counts_as_one(tmp_path: Path, mode: str) -> None:
    """Four processes of 60 MiB each: each under the 128 MiB limit, together over it."""
    hog = "import os, time\nfor _ in range(2): os.fork()\nb = bytearray(60 << 20)\ntime.sleep(30)"
    result = run(tmp_path, PY, "-c", hog, memory_bytes=128 << 20, runner=runner_for(mode))
    assert result.outcome == TaskOutcome.OUT_OF_MEMORY


@pytest.mark.parametrize("mode", MODES)
def test_a_fork_bomb_is_stopped_at_its_process_limit(tmp_path: Path, mode: str) -> None:
    marker = f"pv-bomb-{os.getpid()}-{mode}"
    # a bomb that swallows every refused fork would run on to its wall time if nobody watched
    bomb = (
        f"import os, time  # {marker}\n"
        "while True:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(300)\n"
        "    except OSError:\n"
        "        pass"
    )
    runner = runner_for(mode)
    result = run(tmp_path, PY, "-c", bomb, max_processes=20, runner=runner, name="py")
    assert result.outcome == TaskOutcome.PROCESS_LIMIT and result.exit_code is None
    # the classic one; its shell stays (sleep), or the PID namespace would end the bomb with it
    classic = "f(){ f | f & }; f; sleep 3"
    shell = run(tmp_path, "sh", "-c", classic, max_processes=20, runner=runner)
    assert shell.outcome == TaskOutcome.PROCESS_LIMIT
    # the host is fine: nothing of the bombs is left, and tasks and forks work as before
    assert marked(marker) == []
    after = run(tmp_path, "sh", "-c", "sleep 0 & sleep 0 & wait; echo fine", name="after")
    assert after.outcome == TaskOutcome.SUCCEEDED and after.stdout_tail == "fine\n"
    assert subprocess.run(["true"], check=False).returncode == 0


def test_a_task_may_use_all_its_processes(tmp_path: Path) -> None:
    """max_processes counts the task's own processes, not bubblewrap's."""
    script = "for i in 1 2 3 4 5 6 7; do sleep 1 & done; wait; echo ok"  # sh + 7 sleeps = 8
    result = run(tmp_path, "sh", "-c", script, max_processes=8)
    assert result.outcome == TaskOutcome.SUCCEEDED and result.stdout_tail == "ok\n"


@pytest.mark.parametrize("mode", MODES)
def test_an_endless_task_is_stopped_at_its_time_limits(tmp_path: Path, mode: str) -> None:
    runner = runner_for(mode)
    wall = run(tmp_path, "sleep", "600", wall_seconds=1.0, runner=runner, name="wall")
    assert wall.outcome == TaskOutcome.TIMED_OUT and wall.exit_code is None
    spin = "while :; do :; done"
    cpu = run(tmp_path, "sh", "-c", spin, cpu_seconds=1, runner=runner, name="cpu")
    assert cpu.outcome == TaskOutcome.TIMED_OUT
    # two busy processes: each under the CPU limit, together over it
    pair = run(tmp_path, "sh", "-c", f"({spin}) & ({spin}) & wait", cpu_seconds=1, runner=runner)
    assert pair.outcome == TaskOutcome.TIMED_OUT


def test_the_wall_clock_limit_follows_the_injected_clock(tmp_path: Path) -> None:
    now = [1000.0]

    def clock() -> float:
        now[0] += 30.0  # every look at the clock: half a minute later
        return now[0]

    runner = SandboxRunner(clock=clock)
    result = run(tmp_path, "sleep", "600", wall_seconds=100.0, runner=runner)
    assert result.outcome == TaskOutcome.TIMED_OUT
    assert result.wall_seconds >= 100.0  # measured by that clock too


def test_output_limits_are_enforced(tmp_path: Path) -> None:
    limit = 1 << 20
    one = run(
        tmp_path, "sh", "-c", "head -c 5000000 /dev/zero > /output/big",
        max_output_bytes=limit, name="one",
    )  # fmt: skip
    assert one.outcome == TaskOutcome.OUTPUT_LIMIT
    assert (tmp_path / "one" / "big").stat().st_size == limit  # RLIMIT_FSIZE cut it there
    # many files, each under the limit: their sum counts
    many = "i=0; while :; do head -c 100000 /dev/zero > /output/f$i; i=$((i+1)); done"
    spread = run(tmp_path, "sh", "-c", many, max_output_bytes=limit, name="many")
    assert spread.outcome == TaskOutcome.OUTPUT_LIMIT
    empty = "i=0; while :; do : > /output/e$i; i=$((i+1)); done"  # empty files count too
    flood = run(tmp_path, "sh", "-c", empty, max_output_bytes=limit, name="empty")
    assert flood.outcome == TaskOutcome.OUTPUT_LIMIT


def test_outputs_too_deep_to_walk_end_the_task_without_harm(tmp_path: Path) -> None:
    deep = "import os\nfor _ in range(30):\n    os.mkdir('d' * 200)\n    os.chdir('d' * 200)"
    result = run(tmp_path, PY, "-c", deep)  # 6,000 characters of path: beyond PATH_MAX
    assert result.outcome == TaskOutcome.OUTPUT_LIMIT


def test_outputs_are_handed_over_across_file_systems(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == Path(tempfile.gettempdir()).stat().st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    other = Path(tempfile.mkdtemp(prefix="pv-test-out-", dir=shm))
    try:
        script = "printf '#!/bin/sh\\necho hi\\n' > /output/run.sh && chmod 700 /output/run.sh"
        result = run(other, "sh", "-c", script)
        assert result.outcome == TaskOutcome.SUCCEEDED, result.stderr_tail
        handed = other / "out" / "run.sh"
        assert handed.read_text() == "#!/bin/sh\necho hi\n"
        info = handed.stat()
        assert (info.st_uid, info.st_mode & 0o777) == (os.geteuid(), 0o755)
    finally:
        shutil.rmtree(other)


@pytest.fixture
def server() -> Iterator[int]:
    """A TCP server on the host's loopback that answers "pong"."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()

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
    probe = textwrap.dedent(f"""
        import socket
        s = socket.create_connection(('127.0.0.1', {server}), timeout=5)
        print(s.recv(4).decode())
    """)
    cut = run(tmp_path, PY, "-c", probe, name="cut")
    assert cut.outcome == TaskOutcome.FAILED and "pong" not in cut.stdout_tail
    assert "ConnectionRefusedError" in cut.stderr_tail or "unreachable" in cut.stderr_tail
    interfaces = run(tmp_path, "cat", "/proc/net/dev", name="ifaces")
    names = [line.split(":")[0].strip() for line in interfaces.stdout_tail.splitlines()[2:]]
    assert names == ["lo"]  # none of the host's interfaces
    dns = "import socket; socket.getaddrinfo('deb.debian.org', 443)"
    assert run(tmp_path, PY, "-c", dns, name="dns").outcome == TaskOutcome.FAILED
    allowed = run(tmp_path, PY, "-c", probe, network=True, name="allowed")
    assert allowed.outcome == TaskOutcome.SUCCEEDED, allowed.stderr_tail
    assert allowed.stdout_tail.strip() == "pong"


WRITE_PROBE = textwrap.dedent("""
    import os, sys
    print(open('/inputs/data.txt').read())
    print(sorted(os.listdir('/inputs/tree')), open('/inputs/tree/inner.txt').read())
    for target in sys.argv[1:]:
        try:
            with open(target, 'w') as f:
                f.write('x')
            print('WROTE', target)
        except OSError:
            pass
    open('/tmp/scratch', 'w').write('fine')
    print(os.path.exists('/root'), os.path.exists('/inputs/tree/leak'))
    print(sorted(os.environ))
""")


def test_inputs_are_read_only_and_the_host_is_out_of_reach(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    secret.chmod(0o600)
    data = tmp_path / "data.txt"
    data.write_text("input data")
    data.chmod(0o600)  # only root may read it on the host: the task gets a readable copy
    tree = tmp_path / "tree"
    tree.mkdir(mode=0o700)
    (tree / "inner.txt").write_text("inner")
    (tree / "leak").symlink_to(secret)  # resolves inside the sandbox, where it leads nowhere
    targets = [
        "/inputs/data.txt", "/inputs/tree/inner.txt", "/inputs/new", "/usr/evil", "/etc/evil",
        "/evil", "/root/evil", "/tmp/../etc/passwd", str(secret), str(tmp_path / "evil"),
    ]  # fmt: skip
    result = run(
        tmp_path, PY, "-c", WRITE_PROBE, *targets,
        inputs={"data.txt": data, "tree": tree}, env={"SEED": "7"},
    )  # fmt: skip
    assert result.outcome == TaskOutcome.SUCCEEDED, result.stderr_tail
    lines = result.stdout_tail.splitlines()
    assert lines[0] == "input data" and lines[1] == "['inner.txt', 'leak'] inner"
    assert [line for line in lines if line.startswith("WROTE")] == []
    assert lines[-2] == "False False"  # the host's home and files are not even visible
    seen = set(ast.literal_eval(lines[-1]))
    # a clean environment: what the task was given (PWD from the shell, LC_CTYPE from
    # Python's locale coercion), nothing of the host's (this test process's variables)
    assert {"HOME", "PATH", "SEED"} <= seen <= {"HOME", "PATH", "SEED", "PWD", "LC_CTYPE"}
    assert data.read_text() == "input data" and secret.read_text() == "host secret"
    assert (secret.stat().st_mode & 0o777, data.stat().st_mode & 0o777) == (0o600, 0o600)
    assert not (tmp_path / "evil").exists()


def test_a_readable_input_is_bound_not_copied(tmp_path: Path) -> None:
    shared = Path(tempfile.mkdtemp(prefix="pv-test-shared-", dir="/tmp"))
    try:
        shared.chmod(0o755)
        data = shared / "data.bin"
        data.write_bytes(b"\0" * 1000)
        data.chmod(0o644)
        result = run(tmp_path, "stat", "-c", "%i", "/inputs/data.bin", inputs={"data.bin": data})
        assert result.outcome == TaskOutcome.SUCCEEDED, result.stderr_tail
        assert int(result.stdout_tail) == data.stat().st_ino  # the host's file itself
    finally:
        shutil.rmtree(shared)


def test_the_task_is_an_unprivileged_user_of_its_own(tmp_path: Path) -> None:
    marker = f"pv-whoami-{os.getpid()}"
    script = f"id -u; id -un; grep CapEff /proc/self/status; hostname; exec -a {marker} sleep 2"
    results: list[TaskResult] = []
    threads = [
        threading.Thread(
            target=lambda n=n: results.append(run(tmp_path, "bash", "-c", script, name=f"t{n}"))
        )
        for n in range(2)
    ]
    for thread in threads:
        thread.start()
    host_uids: set[int] = set()  # what the host sees the two tasks run as, at the same time
    deadline = time.monotonic() + 60
    while len(host_uids) < 2 and time.monotonic() < deadline and any(t.is_alive() for t in threads):
        with contextlib.suppress(psutil.Error):
            host_uids |= {p.uids().real for p in marked(marker) if p.name() == "sleep"}
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    inside = set()
    for result in results:
        assert result.outcome == TaskOutcome.SUCCEEDED, result.stderr_tail
        uid, user, caps, hostname = result.stdout_tail.splitlines()
        assert user == "task" and caps.split() == ["CapEff:", "0000000000000000"]
        assert hostname == "sandbox"
        inside.add(int(uid))
    if os.geteuid() == 0:  # a host uid of its own for each task, the same inside and outside
        assert host_uids == inside and len(inside) == 2 and min(inside) >= 200_000
    else:
        assert host_uids == inside == {os.getuid()}


def test_nothing_of_the_task_survives_the_run(tmp_path: Path) -> None:
    marker = f"pv-orphan-{os.getpid()}"
    script = (
        f"(exec -a {marker}-a sleep 300) & (setsid sh -c 'exec -a {marker}-b sleep 300' &);"
        f" nohup sh -c 'exec -a {marker}-c sleep 300' >/dev/null 2>&1 & exit 0"
    )
    result = run(tmp_path, "bash", "-c", script)
    assert result.outcome == TaskOutcome.SUCCEEDED
    assert marked(marker) == []
    cut = run(
        tmp_path, "bash", "-c", script.replace("exit 0", "sleep 300"), wall_seconds=1.0, name="cut"
    )
    assert cut.outcome == TaskOutcome.TIMED_OUT and marked(marker) == []


AGENT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from powerverse.infra.drivers.base import TaskLimits, TaskSpec
    from powerverse.infra.drivers.sandbox import SandboxRunner
    from powerverse.infra.exceptions import SandboxError
    out, argv = Path(sys.argv[1]), json.loads(sys.argv[2])
    inputs = {k: Path(v) for k, v in json.loads(sys.argv[3] if len(sys.argv) > 3 else "{}").items()}
    spec = TaskSpec(task_id=out.name, argv=tuple(argv), inputs=inputs, limits=TaskLimits(
        wall_seconds=120, memory_bytes=128 << 20, max_processes=20, max_output_bytes=1 << 20))
    try:
        result = SandboxRunner().run(spec, out)
    except SandboxError as exc:
        print(json.dumps(["refused", str(exc)]))
    else:
        print(json.dumps([result.outcome.value, sorted(p.name for p in out.iterdir())]))
""")


def test_the_task_dies_with_the_agent(tmp_path: Path) -> None:
    marker = f"pv-agent-dies-{os.getpid()}"
    (tmp_path / "out").mkdir()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = json.dumps(["sh", "-c", f"exec -a {marker} sleep 300"])
    agent = subprocess.Popen([sys.executable, "-c", AGENT, str(tmp_path / "out"), argv], env=env)
    try:
        deadline = time.monotonic() + 60
        while not marked(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marked(marker), "the task did not start"
    finally:
        agent.kill()
        agent.wait()
    deadline = time.monotonic() + 30
    while marked(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marked(marker) == []


def test_an_agent_that_is_not_root_holds_tasks_to_their_limits() -> None:
    """The same limits when the agent runs as an ordinary user (here: nobody)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    home = Path(tempfile.mkdtemp(prefix="pv-test-nobody-", dir="/tmp"))

    def as_nobody(python: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                "env", "-i", f"PYTHONPATH={SRC}", f"TMPDIR={home}", "PATH=/usr/bin:/bin",
                python, *args,
            ],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip

    try:
        home.chmod(0o777)
        probe = "import powerverse.infra.drivers.sandbox"
        usable = [p for p in (sys.executable, PY) if as_nobody(p, "-c", probe).returncode == 0]
        assert usable, "no Python with which the user nobody can import the sandbox"
        data, secret = home / "data.txt", home / "secret.txt"
        data.write_text("input data")
        data.chmod(0o644)
        secret.write_text("root's")
        secret.chmod(0o600)  # root's alone: the agent (nobody) cannot give it to a task
        copy = "cat /inputs/data > /output/f"
        cases = {
            "ok": (["sh", "-c", copy], {"data": str(data)}, "succeeded"),
            "secret": (["sh", "-c", copy], {"data": str(secret)}, "refused"),
            "mem": (
                [PY, "-c", "a = []\nwhile True: a.append(bytearray(10**7))"],
                {},
                "out_of_memory",
            ),
            "fork": (["sh", "-c", "f(){ f | f & }; f; sleep 3"], {}, "process_limit"),
        }
        for name, (argv, inputs, outcome) in cases.items():
            (home / name).mkdir()
            (home / name).chmod(0o777)
            done = as_nobody(
                usable[0], "-c", AGENT, str(home / name), json.dumps(argv), json.dumps(inputs)
            )
            assert done.returncode == 0, done.stderr
            got, detail = json.loads(done.stdout)
            assert got == outcome, (name, done.stdout)
            if outcome == "refused":
                assert "not readable" in detail
        assert (home / "ok" / "f").read_text() == "input data"
    finally:
        shutil.rmtree(home)


def test_bad_requests_are_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = SandboxRunner()
    out = tmp_path / "out"
    out.mkdir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    ok = ("true",)
    cases = [
        (TaskSpec(task_id="t", argv=()), out, "argv"),
        (TaskSpec(task_id="t", argv=("",)), out, "argv"),
        (TaskSpec(task_id="t", argv=("echo", "a\0b")), out, "NUL"),
        (TaskSpec(task_id="t", argv=ok), tmp_path / "missing", "does not exist"),
        (TaskSpec(task_id="t", argv=ok), a_file, "not a directory"),
        (TaskSpec(task_id="t", argv=ok, inputs={"../x": tmp_path}), out, "plain file name"),
        (TaskSpec(task_id="t", argv=ok, inputs={"x": tmp_path / "nope"}), out, "nope"),
        (TaskSpec(task_id="t", argv=ok, inputs={"x": fifo}), out, "neither a file"),
        (TaskSpec(task_id="t", argv=ok, env={"A=B": "1"}), out, "environment variable"),
        (TaskSpec(task_id="t", argv=ok, limits=TaskLimits(wall_seconds=0)), out, "wall_seconds"),
        (TaskSpec(task_id="t", argv=ok, limits=TaskLimits(max_processes=0)), out, "max_proc"),
        (TaskSpec(task_id="t", argv=ok, limits=TaskLimits(memory_bytes=1000)), out, "memory"),
    ]
    for spec, directory, message in cases:
        with pytest.raises(SandboxError, match=message):
            runner.run(spec, directory)
    (out / "stale").write_text("x")
    with pytest.raises(SandboxError, match="not empty"):
        runner.run(TaskSpec(task_id="t", argv=ok), out)
    (out / "stale").unlink()
    if os.geteuid() == 0:  # uid leases are locked in a directory only the agent may write
        locks = tmp_path / "locks"
        locks.mkdir(mode=0o777)
        locks.chmod(0o777)
        with pytest.raises(SandboxError, match="uid"):
            SandboxRunner(lock_dir=locks).run(TaskSpec(task_id="t", argv=ok), out)
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH
    with pytest.raises(SandboxError, match="bubblewrap"):
        runner.run(TaskSpec(task_id="t", argv=ok), out)
    assert list(out.iterdir()) == []
