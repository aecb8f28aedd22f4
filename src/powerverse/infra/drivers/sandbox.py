"""The ``sandbox`` TaskRunner: a task's command under bubblewrap, held to its limits.

What a task sees: the host's ``/usr`` read-only (with ``/bin``, ``/sbin``, ``/lib*`` as the
host has them: links on a merged-/usr system, read-only binds otherwise), a minimal read-only
``/etc`` (library cache, certificates, a ``passwd`` naming it ``task``; resolver files only
with the network), its inputs read-only under ``/inputs/<name>``, its output directory
read-write at ``/output`` (its working directory), a private ``/tmp`` (a tmpfs of at most
``memory_bytes``), fresh ``/proc`` and ``/dev``, and only the environment it was given (plus
``PATH`` and ``HOME=/tmp`` unless it sets them). Everything else, the sandbox's root included,
is read-only or absent. It runs in new user, PID, IPC, UTS, mount, cgroup and network
namespaces (``--unshare-all``; the host's network namespace only with ``limits.network``), in
a session of its own, and dies with the agent (``--die-with-parent``).

Who it runs as: when the agent is root, as a host uid of its own (:class:`UidLease`, from
``uid_base``), which it also is inside (named ``task``); otherwise as the agent's uid. Never
root, with no capabilities on the host. A root agent hands over inputs the task's uid could not
read as private copies, and outputs as regular files owned by the agent (symlinks, devices and
fifos the task made are dropped).

Limits (``TaskLimits``), enforced by the kernel and watched by the runner, which polls while
the task runs and ends it (the whole PID namespace) as soon as one is reached:

- time: the wall-clock deadline (injectable clock); total CPU of all its processes where CPU
  accounting is available (cgroup, else ``/proc``), and ``RLIMIT_CPU`` per process -> TIMED_OUT;
- memory: the ``memory`` cgroup (no swap beyond it) where the host lets us make one, else
  ``RLIMIT_AS`` per process plus the runner's sum of its processes' RSS -> OUT_OF_MEMORY;
- processes: ``max_processes`` tasks (threads count) of its own, by the ``pids`` cgroup where
  possible and ``RLIMIT_NPROC`` always (per uid, hence the uid of its own; set inside the
  user namespace by util-linux's ``prlimit`` when the agent is not root) -> PROCESS_LIMIT;
- output: ``RLIMIT_FSIZE`` per file and the output directory's size (every file and directory
  counts at least 512 bytes, so floods of empty files count too) -> OUTPUT_LIMIT.

How an ending is classified (:meth:`SandboxRunner.run`), the first rule that applies:

1. the runner ended the task because it saw a limit reached: the deadline, the CPU total, an
   OOM kill or a refused fork counted by the task's cgroup, its tasks, RSS or output over the
   limit -- facts the runner measured, never the task's own words;
2. it ended by itself, and the same counters show a limit reached since the last poll, or
   bubblewrap reports death by SIGXCPU (or SIGKILL with its CPU at the limit): TIMED_OUT, or
   by SIGXFSZ, or it failed with its output at the limit: OUTPUT_LIMIT;
3. only where no cgroup watched that resource (best effort: the rlimits leave no count): a
   task that failed is OUT_OF_MEMORY when the runner saw its memory within 10% of the limit
   or it reports a failed allocation; a task that reports a refused fork is PROCESS_LIMIT;
4. otherwise exit status 0 is SUCCEEDED and anything else FAILED. Bubblewrap reports a task
   killed by a signal as 128 + the signal number, like a shell.

Nothing of a task survives :meth:`SandboxRunner.run`: it kills the PID namespace's first
process, which takes every process in the namespace with it, and waits for bubblewrap to reap
it (then empties and removes the cgroups).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from powerverse.infra.drivers.base import (
    TaskLimits,
    TaskOutcome,
    TaskResult,
    TaskRunner,
    TaskSpec,
)
from powerverse.infra.drivers.limits import (
    TaskCgroups,
    TreeUsage,
    UidLease,
    scan_tree,
)
from powerverse.infra.exceptions import SandboxError, ToolMissing
from powerverse.infra.tools import find_tool

__all__ = ["SandboxRunner"]

_TAIL = 8192  # bytes of stdout and stderr kept
_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
_TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC = ("ld.so.cache", "alternatives", "ssl", "ca-certificates", "nsswitch.conf", "localtime")
_ETC_NET = ("resolv.conf", "hosts", "host.conf", "gai.conf")
_PRLIMIT = "/usr/bin/prlimit"  # util-linux; inside the sandbox too, under the read-only /usr
_BWRAP_TASKS = 2  # bubblewrap's own processes: the one we start and the namespace's init
_AS_SLACK = 64 << 20  # address space for bubblewrap and the C library beyond the task's memory
_MIN_MEMORY = 16 << 20
_ENTRY_BYTES = 512
_UNBOUNDED = 1 << 62
_FORK_FAILED = ("Cannot fork", "can't fork", "fork: Resource temporarily unavailable")
_NO_MEMORY = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")


class SandboxRunner(TaskRunner):
    """Runs tasks under bubblewrap with resource limits (see the module docstring).

    ``cgroups=False`` leaves cgroups alone (the rlimit and ``/proc`` fallback, as on a host
    without writable cgroups); ``clock`` measures the wall-clock limit; ``poll_seconds`` is
    how often the runner looks at a running task.
    """

    name = "sandbox"

    def __init__(
        self,
        *,
        uid_base: int = 200_000,
        uid_span: int = 50_000,
        lock_dir: Path | None = None,
        cgroups: bool = True,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = 0.05,
    ) -> None:
        self.uid_base = uid_base
        self.uid_span = uid_span
        run_dir = Path("/run")
        default = run_dir if os.access(run_dir, os.W_OK) else Path(tempfile.gettempdir())
        self.lock_dir = lock_dir or default / "powerverse-sandbox-uids"
        self.cgroups = cgroups
        self.clock = clock
        self.poll_seconds = poll_seconds

    def run(self, spec: TaskSpec, output_dir: Path) -> TaskResult:
        """Run ``spec`` to its end or its limits; SandboxError if it cannot start."""
        try:
            bwrap = find_tool("bwrap")
        except ToolMissing as exc:
            raise SandboxError(f"cannot run tasks: {exc}") from exc
        _check(spec, output_dir)
        cleanup: list[Callable[[], object]] = []
        try:
            return self._run(spec, output_dir, bwrap, cleanup)
        finally:
            for undo in reversed(cleanup):
                undo()

    def _run(
        self, spec: TaskSpec, output_dir: Path, bwrap: str, cleanup: list[Callable[[], object]]
    ) -> TaskResult:
        lease = self._lease(spec) if os.geteuid() == 0 else None
        if lease is not None:
            cleanup.append(lease.release)
        scratch = Path(tempfile.mkdtemp(prefix="pv-task-"))
        cleanup.append(lambda: shutil.rmtree(scratch, ignore_errors=True))
        uid = lease.uid if lease else os.getuid()
        try:
            workdir = _prepare(scratch, uid, output_dir, root=lease is not None)
            inputs = _inputs(spec.inputs, scratch, copy_unreadable=lease is not None)
        except OSError as exc:
            raise SandboxError(f"task {spec.task_id!r}: cannot prepare its sandbox: {exc}") from exc
        groups = TaskCgroups(
            memory_bytes=spec.limits.memory_bytes,
            max_tasks=spec.limits.max_processes + _BWRAP_TASKS,
            enabled=self.cgroups,
        )
        cleanup.append(groups.close)

        def command(status_fd: int) -> list[str]:
            return _command(
                bwrap, spec, scratch, workdir, inputs, status_fd, groups, root=lease is not None
            )

        started = self.clock()
        watch = _Watch.start(command, _preexec(spec.limits, groups, lease))
        try:
            reason = self._watch(watch, spec.limits, groups, workdir, started)
        finally:
            watch.end()
        wall = self.clock() - started
        if "child-pid" not in watch.status and reason is None:
            raise SandboxError(
                "bubblewrap could not set up the sandbox: "
                + (watch.stderr.text().strip() or f"exit status {watch.code}")
            )
        outcome = reason or _classify(watch, spec.limits, groups, _footprint(workdir))
        if workdir != output_dir:
            _hand_over(workdir, output_dir)
        return TaskResult(
            task_id=spec.task_id,
            outcome=outcome,
            exit_code=None if reason is not None else watch.code,
            wall_seconds=wall,
            output_dir=output_dir,
            stdout_tail=watch.stdout.text(),
            stderr_tail=watch.stderr.text(),
        )

    def _lease(self, spec: TaskSpec) -> UidLease:
        try:
            return UidLease(
                base=self.uid_base, span=self.uid_span, lock_dir=self.lock_dir, hint=spec.task_id
            )
        except OSError as exc:
            raise SandboxError(f"cannot give task {spec.task_id!r} a uid: {exc}") from exc

    def _watch(
        self,
        watch: _Watch,
        limits: TaskLimits,
        groups: TaskCgroups,
        workdir: Path,
        started: float,
    ) -> TaskOutcome | None:
        """Follow the task until it ends or reaches a limit (then: which one)."""
        next_look = time.monotonic()
        for look in itertools.count():
            while not watch.reap():  # read its output until it ends or it is time to look
                wait = next_look - time.monotonic()
                if wait <= 0:
                    break
                watch.pump(wait)
            else:
                return None
            next_look = time.monotonic() + self.poll_seconds
            if self.clock() - started >= limits.wall_seconds:
                return TaskOutcome.TIMED_OUT
            if groups.oom_kills():
                return TaskOutcome.OUT_OF_MEMORY
            if groups.fork_refusals():
                return TaskOutcome.PROCESS_LIMIT
            cpu = groups.cpu_seconds()
            init = watch.status.get("child-pid")
            if init is not None and len(groups.controllers) < 3:
                seen = watch.seen.add(scan_tree(init))
                cpu = seen.cpu_seconds if cpu is None else cpu
                # the namespace's init is one of its tasks: more than max + 1 is over the limit
                if "pids" not in groups.controllers and seen.tasks > limits.max_processes + 1:
                    return TaskOutcome.PROCESS_LIMIT
                if "memory" not in groups.controllers and seen.rss_bytes > limits.memory_bytes:
                    return TaskOutcome.OUT_OF_MEMORY
            if cpu is not None and cpu >= limits.cpu_seconds:
                return TaskOutcome.TIMED_OUT
            if look % 5 == 4 and _footprint(workdir) > limits.max_output_bytes:
                return TaskOutcome.OUTPUT_LIMIT
        raise AssertionError("unreachable")  # pragma: no cover


def _check(spec: TaskSpec, output_dir: Path) -> None:
    """Refuse, before anything runs, what could not run as asked."""
    argv = spec.argv
    if not argv or not all(isinstance(a, str) for a in argv) or not argv[0]:
        raise SandboxError(f"task {spec.task_id!r}: argv must be a non-empty list of strings")
    if any("\0" in a for a in argv):
        raise SandboxError(f"task {spec.task_id!r}: argv must not contain NUL characters")
    if output_dir.is_symlink() or not output_dir.is_dir():
        raise SandboxError(f"output directory {output_dir} does not exist (or is not a directory)")
    if any(output_dir.iterdir()):
        raise SandboxError(f"output directory {output_dir} is not empty: give each task a new one")
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise SandboxError(f"output directory {output_dir} is not writable by the agent")
    for name, path in spec.inputs.items():
        if not name or "/" in name or "\0" in name or name in (".", ".."):
            raise SandboxError(f"input name {name!r} must be a plain file name")
        if not path.exists():
            raise SandboxError(f"input {name!r}: {path} does not exist")
        if not (path.is_file() or path.is_dir()):
            raise SandboxError(f"input {name!r}: {path} is neither a file nor a directory")
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            raise SandboxError(f"input {name!r}: {path} is not readable by the agent")
    for key, value in spec.env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise SandboxError(f"environment variable {key!r}: invalid name or value")
    limits = spec.limits
    if limits.cpu_seconds < 1 or limits.wall_seconds <= 0 or limits.max_processes < 1:
        raise SandboxError(
            "limits: cpu_seconds must be >= 1, wall_seconds > 0 and max_processes >= 1"
        )
    if limits.memory_bytes < _MIN_MEMORY or limits.max_output_bytes < 1:
        raise SandboxError(
            f"limits: memory_bytes must be >= {_MIN_MEMORY} and max_output_bytes >= 1"
        )


def _prepare(scratch: Path, uid: int, output_dir: Path, *, root: bool) -> Path:
    """Write the sandbox's /etc files; return the directory that becomes /output (a fresh one
    owned by the task's uid when the agent is root, handed over afterwards)."""
    etc = scratch / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"task:x:{uid}:{uid}:sandboxed task:/tmp:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\ntask:x:{uid}:\nnogroup:x:65534:\n")
    for path in (etc, etc / "passwd", etc / "group"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    if not root:
        return output_dir
    scratch.chmod(0o711)  # the task's uid passes through to its own directories only
    workdir = scratch / "output"
    workdir.mkdir(mode=0o700)
    os.chown(workdir, uid, uid)
    return workdir


def _inputs(inputs: Mapping[str, Path], scratch: Path, *, copy_unreadable: bool) -> dict[str, Path]:
    """Host paths to bind under /inputs: the inputs themselves, or (root agent) private copies
    of those the task's uid could not read where they are."""
    out: dict[str, Path] = {}
    for name, path in sorted(inputs.items()):
        real = path.resolve()
        if not copy_unreadable or _world_readable(real):
            out[name] = real
            continue
        copies = scratch / "inputs"
        copies.mkdir(mode=0o711, exist_ok=True)
        _copy_readable(real, copies / name)
        out[name] = copies / name
    return out


def _world_readable(path: Path) -> bool:
    """Whether any uid can reach ``path`` and read all of it."""
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    for item in _walk(path):
        mode = item.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & need != need:
            return False
    return True


def _walk(root: Path) -> Iterator[Path]:
    """``root`` and everything under it, parents first, without following symlinks."""
    todo = [root]
    while todo:
        path = todo.pop()
        yield path
        if path.is_dir() and not path.is_symlink():
            todo += sorted(path.iterdir(), reverse=True)


def _copy_readable(source: Path, target: Path) -> None:
    """Copy a file or tree so that anyone may read it; symlinks stay links (they resolve inside
    the sandbox), devices and fifos are left out."""
    for item in _walk(source):
        copy = target / item.relative_to(source)
        mode = item.lstat().st_mode
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(item), copy)
        elif stat.S_ISDIR(mode):
            copy.mkdir(mode=0o755)
            copy.chmod(0o755)
        elif stat.S_ISREG(mode):
            shutil.copyfile(item, copy)
            copy.chmod(0o755 if mode & stat.S_IXUSR else 0o644)


def _command(
    bwrap: str,
    spec: TaskSpec,
    scratch: Path,
    workdir: Path,
    inputs: Mapping[str, Path],
    status_fd: int,
    groups: TaskCgroups,
    *,
    root: bool,
) -> list[str]:
    """The bubblewrap command line for ``spec``."""
    limits = spec.limits
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if limits.network:
        args.append("--share-net")
    args += ["--ro-bind", "/usr", "/usr"]
    for name in _TOP_LEVEL:
        host = Path("/", name)
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    for name in _ETC + (_ETC_NET if limits.network else ()):
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for name in ("passwd", "group"):
        args += ["--ro-bind", str(scratch / "etc" / name), f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(limits.memory_bytes), "--tmpfs", "/tmp", "--dir", "/inputs"]
    for name, path in inputs.items():
        args += ["--ro-bind", str(path), f"/inputs/{name}"]
    args += ["--bind", str(workdir), "/output", "--chdir", "/output"]
    args += ["--clearenv", "--setenv", "PATH", _PATH, "--setenv", "HOME", "/tmp"]
    for key, value in sorted(spec.env.items()):
        args += ["--setenv", key, value]
    args += ["--json-status-fd", str(status_fd), "--remount-ro", "/", "--"]
    if not root and Path(_PRLIMIT).is_file():
        # RLIMIT_NPROC counts per uid in the task's user namespace only when set inside it:
        # set outside, it would count every process of the agent's uid on the host
        nproc = _nproc(limits, groups, outside=False)
        args += [_PRLIMIT, f"--nproc={nproc}:{nproc}", "--"]
    return [*args, *spec.argv]


def _nproc(limits: TaskLimits, groups: TaskCgroups, *, outside: bool) -> int:
    """RLIMIT_NPROC for a task: its processes, bubblewrap's that it counts (``outside``: set
    before bubblewrap starts, it counts both of them; set inside the user namespace, only the
    init), and one spare that lets the /proc scan see a task going over its limit."""
    nproc = limits.max_processes + (_BWRAP_TASKS if outside else 1) + 1
    if "pids" in groups.controllers:
        # the pids cgroup, which counts its refusals, must be what stops a fork bomb:
        # RLIMIT_NPROC also counts forks still in flight on every CPU, so leave it room
        nproc += 2 * (os.cpu_count() or 1) + 8
    return nproc


def _preexec(limits: TaskLimits, groups: TaskCgroups, lease: UidLease | None) -> Callable[[], None]:
    """What the child does between fork and exec: join the cgroups, set the rlimits, and (root
    agent) become the task's uid. Only system calls, on values computed beforehand."""
    procs = groups.procs_files
    cpu = int(limits.cpu_seconds)
    rlimits = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, limits.max_output_bytes, limits.max_output_bytes),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if "memory" not in groups.controllers:
        memory = limits.memory_bytes + _AS_SLACK
        rlimits.append((resource.RLIMIT_AS, memory, memory))
    uid = lease.uid if lease else None
    if uid is not None:
        nproc = _nproc(limits, groups, outside=True)
        rlimits.append((resource.RLIMIT_NPROC, nproc, nproc))

    def setup() -> None:
        for path in procs:
            fd = os.open(path, os.O_WRONLY)
            os.write(fd, b"0")
            os.close(fd)
        for which, soft, hard in rlimits:
            resource.setrlimit(which, (soft, hard))
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)

    return setup


class _Tail:
    """The last :data:`_TAIL` bytes of a stream."""

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        del self.data[:-_TAIL]

    def text(self) -> str:
        return self.data.decode(errors="replace")


@dataclass
class _Watch:
    """One running bubblewrap: its pipes, its status reports and, once reaped, its end."""

    proc: subprocess.Popen[bytes]
    status_fd: int
    stdout: _Tail = field(default_factory=_Tail)
    stderr: _Tail = field(default_factory=_Tail)
    status: dict[str, int] = field(default_factory=dict)
    code: int | None = None
    seen: _Seen = field(default_factory=lambda: _Seen(0, 0, 0.0))
    _status_buf: bytearray = field(default_factory=bytearray)
    _selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)

    @classmethod
    def start(cls, command: Callable[[int], list[str]], preexec: Callable[[], None]) -> _Watch:
        """Start bubblewrap with the command line ``command(status_fd)``."""
        read_fd, write_fd = os.pipe()
        argv = command(write_fd)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                start_new_session=True,
                preexec_fn=preexec,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(read_fd)
            raise SandboxError(f"cannot start bubblewrap: {exc}") from exc
        finally:
            os.close(write_fd)
        watch = cls(proc=proc, status_fd=read_fd)
        assert proc.stdout is not None and proc.stderr is not None
        for stream, sink in ((proc.stdout, watch.stdout), (proc.stderr, watch.stderr)):
            watch._selector.register(stream.fileno(), selectors.EVENT_READ, sink)
        watch._selector.register(read_fd, selectors.EVENT_READ, None)
        return watch

    def pump(self, timeout: float) -> None:
        """Read what the task wrote and what bubblewrap reported, waiting up to ``timeout``."""
        if not self._selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self._selector.select(timeout):
            fd = int(key.fd)
            chunk = os.read(fd, 65536)
            if not chunk:
                self._selector.unregister(fd)
                if fd == self.status_fd:
                    os.close(fd)
            elif key.data is None:
                self._status(chunk)
            else:
                key.data.add(chunk)

    def _status(self, chunk: bytes) -> None:
        self._status_buf += chunk
        *lines, rest = self._status_buf.split(b"\n")
        self._status_buf = bytearray(rest)
        for line in lines:
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    self.status.update({k: v for k, v in doc.items() if isinstance(v, int)})

    def reap(self) -> bool:
        """Whether bubblewrap has exited (then :attr:`code` is set)."""
        if self.code is not None:
            return True
        pid, status = os.waitpid(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.code
        return True

    def end(self) -> None:
        """Make sure nothing of the task is left: kill the PID namespace's init (the whole
        namespace dies with it), let bubblewrap reap it, read the pipes to their end."""
        if not self.reap():
            child = self.status.get("child-pid")
            if child is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while not self.reap() and time.monotonic() < deadline:
                self.pump(0.02)
            if not self.reap():  # bubblewrap itself is stuck: take its process group
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                _, status = os.waitpid(self.proc.pid, 0)
                self.code = self.proc.returncode = os.waitstatus_to_exitcode(status)
        deadline = time.monotonic() + 5
        while self._selector.get_map() and time.monotonic() < deadline:
            self.pump(0.05)
        for key in list(self._selector.get_map().values()):
            self._selector.unregister(key.fd)
            if key.fd == self.status_fd:
                os.close(key.fd)
        self._selector.close()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdout.close()
        self.proc.stderr.close()


def _classify(
    watch: _Watch, limits: TaskLimits, groups: TaskCgroups, footprint: int
) -> TaskOutcome:
    """The outcome of a task that ended by itself (rules 2 to 4 of the module docstring)."""
    code = watch.code if watch.code is not None else -1
    if groups.oom_kills():
        return TaskOutcome.OUT_OF_MEMORY
    if groups.fork_refusals():
        return TaskOutcome.PROCESS_LIMIT
    cpu = groups.cpu_seconds()
    cpu = watch.seen.cpu_seconds if cpu is None else cpu
    if code == 128 + signal.SIGXCPU or (code == 128 + signal.SIGKILL and cpu >= limits.cpu_seconds):
        return TaskOutcome.TIMED_OUT
    over = footprint > limits.max_output_bytes
    if over or code == 128 + signal.SIGXFSZ or (code != 0 and footprint >= limits.max_output_bytes):
        return TaskOutcome.OUTPUT_LIMIT
    err = watch.stderr.text()
    seen = watch.seen
    short_of_memory = seen.rss_bytes >= 0.9 * limits.memory_bytes or any(
        s in err for s in _NO_MEMORY
    )
    if code != 0 and "memory" not in groups.controllers and short_of_memory:
        return TaskOutcome.OUT_OF_MEMORY
    if "pids" not in groups.controllers and any(s in err for s in _FORK_FAILED):
        return TaskOutcome.PROCESS_LIMIT  # it ran into RLIMIT_NPROC, even if it recovered
    return TaskOutcome.SUCCEEDED if code == 0 else TaskOutcome.FAILED


@dataclass
class _Seen:
    """The most the /proc scans saw the task use at once (CPU: the latest total)."""

    tasks: int
    rss_bytes: int
    cpu_seconds: float

    def add(self, usage: TreeUsage) -> _Seen:
        self.tasks = max(self.tasks, usage.tasks)
        self.rss_bytes = max(self.rss_bytes, usage.rss_bytes)
        self.cpu_seconds = max(self.cpu_seconds, usage.cpu_seconds)
        return self


def _footprint(root: Path) -> int:
    """Bytes under ``root``: file sizes, each entry counting at least :data:`_ENTRY_BYTES`. A
    tree the agent cannot walk (too deep for a path, or made unreadable) counts as unbounded."""
    total = 0
    todo = [root]
    while todo:
        try:
            with os.scandir(todo.pop()) as entries:
                for entry in entries:
                    with contextlib.suppress(FileNotFoundError):  # gone while we looked
                        info = entry.stat(follow_symlinks=False)
                        total += max(info.st_size, _ENTRY_BYTES)
                        if stat.S_ISDIR(info.st_mode):
                            todo.append(Path(entry.path))
        except FileNotFoundError:
            continue
        except OSError:
            return _UNBOUNDED
    return total


def _hand_over(workdir: Path, output_dir: Path) -> None:
    """Move the task's regular files and directories into ``output_dir``, owned by the agent
    and readable (a symlink the task made could point anywhere on the host: dropped; so are
    devices, fifos, and paths too long to handle)."""
    todo = [(workdir, output_dir)]
    while todo:
        source, target_dir = todo.pop()
        try:
            with os.scandir(source) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            target = target_dir / entry.name
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    target.mkdir(mode=0o755)
                    todo.append((Path(entry.path), target))
                elif entry.is_file(follow_symlinks=False):
                    _move_file(Path(entry.path), target)


def _move_file(source: Path, target: Path) -> None:
    executable = source.lstat().st_mode & stat.S_IXUSR
    try:
        os.rename(source, target)
        os.chown(target, os.geteuid(), os.getegid(), follow_symlinks=False)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copyfile(source, target, follow_symlinks=False)
    target.chmod(0o755 if executable else 0o644)
