"""The ``sandbox`` TaskRunner: a task's command under bubblewrap, with limits.

What a task sees: a read-only ``/usr`` (with the ``/bin``, ``/lib`` links of a merged-/usr
system), its inputs read-only under ``/inputs/<name>``, its output directory read-write at
``/output`` (its working directory), a private ``/tmp``, fresh ``/proc`` and ``/dev``, a clean
environment, and no network unless ``limits.network``. It runs in new user, PID, IPC, UTS,
mount and cgroup namespaces (``--unshare-all``); when the run ends, killing the sandbox's first
process ends the whole PID namespace, so nothing of the task survives :meth:`run`.

Limits and how an ending is classified:

- processes: as root, the task runs as an unprivileged uid of its own (so ``RLIMIT_NPROC``,
  which never binds uid 0, counts only its processes), plus the ``pids`` cgroup when the host
  lets us make one; a task that hit the ceiling (``pids.events`` ``max``, or fork's EAGAIN in
  its stderr) ends as PROCESS_LIMIT;
- memory: the ``memory`` cgroup when available (an OOM kill is counted there), else
  ``RLIMIT_AS``; an OOM kill, or an allocation failure the task reports (``MemoryError``,
  ``Cannot allocate memory``), is OUT_OF_MEMORY;
- time: ``RLIMIT_CPU`` (SIGXCPU/SIGKILL) and a wall-clock deadline: TIMED_OUT;
- output: ``RLIMIT_FSIZE`` and the output directory's size: OUTPUT_LIMIT.

Otherwise the exit status decides: 0 SUCCEEDED, anything else FAILED.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from powerverse.infra.drivers.base import TaskOutcome, TaskResult, TaskRunner, TaskSpec
from powerverse.infra.exceptions import SandboxError
from powerverse.infra.tools import find_tool

__all__ = ["SandboxRunner"]

_TAIL = 8192
_PATH = "/usr/local/bin:/usr/bin:/bin"
_FORK_FAILED = ("Resource temporarily unavailable", "BlockingIOError", "can't fork", "Cannot fork")
_NO_MEMORY = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
_CGROUP_ROOT = Path("/sys/fs/cgroup")


class _Cgroups:
    """Per-task pids and memory cgroups (v1 or v2) where the host lets us make them."""

    def __init__(self, name: str, memory: int, pids: int) -> None:
        self.dirs: dict[str, Path] = {}
        unified = (_CGROUP_ROOT / "cgroup.controllers").exists()
        for controller, knob, value in (
            ("pids", "pids.max", str(pids)),
            ("memory", "memory.max" if unified else "memory.limit_in_bytes", str(memory)),
        ):
            parent = _CGROUP_ROOT if unified else _own_cgroup(controller)
            if parent is None:
                continue
            path = parent / f"pv-{name}-{os.getpid()}"
            try:
                path.mkdir()
                (path / knob).write_text(value)
                if controller == "memory" and not unified:
                    with contextlib.suppress(OSError):  # no swap accounting on some hosts
                        (path / "memory.memsw.limit_in_bytes").write_text(value)
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
                continue
            self.dirs[controller] = path

    def join(self) -> None:
        """Move the calling process (the sandbox, before exec) into the cgroups."""
        for path in self.dirs.values():
            (path / "cgroup.procs").write_text(str(os.getpid()))

    def hit(self, controller: str) -> bool:
        """Whether the task ran into this controller's ceiling."""
        path = self.dirs.get(controller)
        if path is None:
            return False
        name = {"pids": "pids.events", "memory": "memory.events"}[controller]
        if controller == "memory" and not (path / name).exists():
            name = "memory.oom_control"
        try:
            fields = dict(
                line.split()[:2] for line in (path / name).read_text().splitlines() if line
            )
        except OSError:
            return False
        key = "max" if controller == "pids" else "oom_kill"
        return int(fields.get(key, "0")) > 0

    def close(self) -> None:
        """Kill what is left in the cgroups and remove them."""
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                for pid in (path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def _own_cgroup(controller: str) -> Path | None:
    """The cgroup v1 directory this process is in for ``controller``."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                candidate = _CGROUP_ROOT / controller / path.lstrip("/")
                return candidate if candidate.is_dir() else None
    except OSError:
        return None
    return None


def _dir_size(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total


def _copy_out(source: Path, target: Path) -> None:
    """Move a task's outputs to ``target``: regular files and directories only (a symlink the
    task made could point anywhere on the host)."""
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            continue
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(exist_ok=True)
        elif path.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - _TAIL))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class SandboxRunner(TaskRunner):
    """Runs tasks under bubblewrap with resource limits (see the module docstring)."""

    name = "sandbox"

    def __init__(self, *, uid_base: int = 200_000, uid_span: int = 50_000) -> None:
        self.uid_base = uid_base
        self.uid_span = uid_span

    def _uid(self, task_id: str) -> int | None:
        if os.geteuid() != 0:
            return None
        return self.uid_base + zlib.crc32(task_id.encode()) % self.uid_span

    def _command(self, spec: TaskSpec, output_dir: Path, inputs: dict[str, Path]) -> list[str]:
        bwrap = find_tool("bwrap")
        args = [
            bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
            "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
            "--ro-bind-try", "/etc/ssl", "/etc/ssl",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
            "--bind", str(output_dir), "/output", "--chdir", "/output",
            "--clearenv", "--setenv", "PATH", _PATH, "--setenv", "HOME", "/tmp",
        ]  # fmt: skip
        if spec.limits.network:
            args += ["--share-net", "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
            args += ["--ro-bind-try", "/etc/hosts", "/etc/hosts"]
        if inputs:
            args += ["--dir", "/inputs"]
        for name, path in sorted(inputs.items()):
            args += ["--ro-bind", str(path), f"/inputs/{name}"]
        for key, value in sorted(spec.env.items()):
            args += ["--setenv", key, value]
        # the sandbox's own root (where /etc and the mount points live) is read-only too:
        # /output and the private /tmp are the only writable places
        return [*args, "--remount-ro", "/", "--", *spec.argv]

    def _check(self, spec: TaskSpec, output_dir: Path) -> None:
        if not spec.argv or not all(isinstance(a, str) and a for a in spec.argv):
            raise SandboxError("argv must be a non-empty list of non-empty strings")
        if not output_dir.is_dir():
            raise SandboxError(f"output directory {output_dir} does not exist")
        if any(output_dir.iterdir()):
            raise SandboxError(f"output directory {output_dir} is not empty")
        for name, path in spec.inputs.items():
            if not name or "/" in name or name in (".", ".."):
                raise SandboxError(f"input name {name!r} must be a plain file name")
            if not path.exists():
                raise SandboxError(f"input {name!r}: {path} does not exist")
        for key in spec.env:
            if not key or "=" in key:
                raise SandboxError(f"environment variable name {key!r} is invalid")

    def run(self, spec: TaskSpec, output_dir: Path) -> TaskResult:
        self._check(spec, output_dir)
        limits = spec.limits
        uid = self._uid(spec.task_id)
        with tempfile.TemporaryDirectory(prefix="pv-task-") as tmp:
            scratch = Path(tmp)
            inputs = self._readable_inputs(spec, scratch, uid)
            workdir = output_dir
            if uid is not None:  # the task's uid may not reach output_dir: a scratch one
                os.chmod(scratch, 0o755)
                workdir = scratch / "output"
                workdir.mkdir()
                os.chown(workdir, uid, uid)
            stdout, stderr = scratch / "stdout", scratch / "stderr"
            groups = _Cgroups(
                spec.task_id.replace("/", "_"), limits.memory_bytes, limits.max_processes
            )
            started = time.monotonic()
            timed_out = False
            try:
                with open(stdout, "wb") as out, open(stderr, "wb") as err:
                    proc = subprocess.Popen(
                        self._command(spec, workdir, inputs),
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                        start_new_session=True,
                        preexec_fn=self._preexec(
                            spec, uid, groups, bool(groups.dirs.get("memory"))
                        ),
                    )
                    try:
                        proc.wait(timeout=limits.wall_seconds)
                    except subprocess.TimeoutExpired:
                        timed_out = True
                    finally:
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                wall = time.monotonic() - started
                if workdir != output_dir:
                    _copy_out(workdir, output_dir)
                outcome = self._classify(
                    proc.returncode, timed_out, stderr, output_dir, spec, groups
                )
            finally:
                groups.close()
            return TaskResult(
                task_id=spec.task_id,
                outcome=outcome,
                exit_code=None if timed_out or proc.returncode < 0 else proc.returncode,
                wall_seconds=wall,
                output_dir=output_dir,
                stdout_tail=_tail(stdout),
                stderr_tail=_tail(stderr),
            )

    def _readable_inputs(self, spec: TaskSpec, scratch: Path, uid: int | None) -> dict[str, Path]:
        """Inputs as paths the task's uid can read: copies when it runs as its own uid."""
        if uid is None:
            return dict(spec.inputs)
        out: dict[str, Path] = {}
        root = scratch / "inputs"
        root.mkdir(mode=0o755)
        for name, path in spec.inputs.items():
            copy = root / name
            if path.is_dir():
                shutil.copytree(path, copy, symlinks=False)
                for item in [copy, *copy.rglob("*")]:
                    item.chmod(0o755 if item.is_dir() else 0o644)
            else:
                shutil.copyfile(path, copy)
                copy.chmod(0o644)
            out[name] = copy
        return out

    def _preexec(
        self, spec: TaskSpec, uid: int | None, groups: _Cgroups, memory_cgroup: bool
    ) -> Callable[[], None]:
        limits = spec.limits

        def setup() -> None:
            groups.join()
            cpu = max(1, int(limits.cpu_seconds))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
            resource.setrlimit(
                resource.RLIMIT_FSIZE, (limits.max_output_bytes, limits.max_output_bytes)
            )
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if not memory_cgroup:
                memory = limits.memory_bytes + (64 << 20)  # bubblewrap's own mappings
                resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        return setup

    def _classify(
        self,
        code: int,
        timed_out: bool,
        stderr: Path,
        output_dir: Path,
        spec: TaskSpec,
        groups: _Cgroups,
    ) -> TaskOutcome:
        err = _tail(stderr)
        if groups.hit("pids") or any(s in err for s in _FORK_FAILED):
            return TaskOutcome.PROCESS_LIMIT
        if groups.hit("memory") or (code != 0 and any(s in err for s in _NO_MEMORY)):
            return TaskOutcome.OUT_OF_MEMORY
        if timed_out or code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            return TaskOutcome.TIMED_OUT
        too_big = _dir_size(output_dir) > spec.limits.max_output_bytes
        if too_big or code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ) or "File too large" in err:
            return TaskOutcome.OUTPUT_LIMIT
        return TaskOutcome.SUCCEEDED if code == 0 else TaskOutcome.FAILED
