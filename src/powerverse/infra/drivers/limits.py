"""Holding a sandboxed task to its resource limits, and seeing what it uses.

Three parts, used by :mod:`powerverse.infra.drivers.sandbox`:

- :class:`TaskCgroups`: per-task ``pids``, ``memory`` and CPU-accounting cgroups, made wherever
  this host lets us make them (cgroup v1 controllers under the agent's own cgroup, as on this
  project's machines; or cgroup v2 where the controllers are enabled for a hierarchy the agent
  may write). Each controller is optional: on a host without writable cgroups (an unprivileged
  container, an agent without root) the sandbox falls back to rlimits and :func:`scan_tree`.
- :func:`scan_tree`: the tasks, memory and CPU of a process and its descendants, read from
  ``/proc`` (the fallback measurement when a cgroup is missing).
- :class:`UidLease`: a host uid of its own for each task when the agent runs as root, because
  ``RLIMIT_NPROC`` never binds uid 0 and counts per uid: with a uid no other process has,
  the limit counts exactly the task's processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import pwd
import signal
import stat
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TaskCgroups", "TreeUsage", "UidLease", "scan_tree"]

_PREFIX = "pv-sandbox-"
_counter = itertools.count()
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class _Mount:
    """One mounted cgroup hierarchy."""

    point: Path
    root: str  # the hierarchy's path mounted at ``point``
    version: int  # 1 or 2
    controllers: frozenset[str]


def _mounts() -> list[_Mount]:
    """The cgroup hierarchies mounted here (from /proc/self/mountinfo)."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        point = Path(fields[4].replace("\\040", " "))
        if tail[0] == "cgroup":
            controllers = frozenset(tail[2].split(",")) & {"pids", "memory", "cpuacct"}
            out.append(_Mount(point, fields[3], 1, controllers))
        else:
            with contextlib.suppress(OSError):
                enabled = (point / "cgroup.controllers").read_text().split()
                out.append(_Mount(point, fields[3], 2, frozenset(enabled) | {"cpuacct"}))
    return out


def _own_paths() -> dict[str, str]:
    """This process's cgroup path in each hierarchy: {controller or "" (v2): path}."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                out[name] = path
    return out


def _parents(mount: _Mount, own: dict[str, str], controller: str) -> list[Path]:
    """Where a task's cgroup for ``controller`` may go in ``mount``: under the agent's own
    cgroup (v1), or under a v2 cgroup (the agent's own, else the hierarchy's root) that
    delegates the controller to its children."""
    path = own.get(controller if mount.version == 1 else "")
    if path is None:
        return []
    relative = os.path.relpath(path, mount.root)
    if relative.startswith(".."):
        return []  # the agent's cgroup is outside what is mounted here
    own_dir = mount.point if relative == "." else mount.point / relative
    if mount.version == 1:
        return [own_dir]
    candidates = [own_dir, mount.point] if own_dir != mount.point else [mount.point]
    out = []
    for candidate in candidates:
        with contextlib.suppress(OSError):
            delegated = set((candidate / "cgroup.subtree_control").read_text().split())
            if controller == "cpuacct" or controller in delegated:
                out.append(candidate)
    return out


def _fields(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file ("key value" per line) as a dict; {} when unreadable."""
    try:
        pairs = (line.split()[:2] for line in path.read_text().splitlines() if line.strip())
        return {key: int(value) for key, value in pairs if value.lstrip("-").isdigit()}
    except OSError:
        return {}


def _sweep(parent: Path) -> None:
    """Remove the task cgroups that an agent which has since died left in ``parent``."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            if not entry.name.startswith(_PREFIX):
                continue
            owner = entry.name[len(_PREFIX) :].split("-", 1)[0]
            if owner.isdigit() and not _alive(int(owner)):
                _kill_and_remove(entry, attempts=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_and_remove(path: Path, *, attempts: int = 100) -> bool:
    """SIGKILL every process in the cgroup ``path``, then remove it once empty."""
    for _ in range(attempts):
        with contextlib.suppress(OSError):
            for pid in (path / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.05)
    return False


class TaskCgroups:
    """The cgroups of one task: whichever of ``pids``, ``memory`` and CPU accounting this host
    lets us create (see :attr:`controllers`), with the limits written in.

    The sandbox's first process joins them before it starts bubblewrap (:attr:`procs_files`,
    written by the child between fork and exec), so everything the task starts is inside.
    """

    def __init__(self, *, memory_bytes: int, max_tasks: int, enabled: bool = True) -> None:
        self.dirs: dict[str, Path] = {}  # "pids" | "memory" | "cpuacct" -> its cgroup
        self._version: dict[Path, int] = {}
        if not enabled:
            return
        name = f"{_PREFIX}{os.getpid()}-{next(_counter)}"
        own = _own_paths()
        mounts = _mounts()
        for controller in ("pids", "memory", "cpuacct"):
            for mount in (m for m in mounts if controller in m.controllers):
                parents = _parents(mount, own, controller)
                if mount.version == 2:  # a process is in one v2 cgroup: reuse the one made
                    made_here = [p.parent for p in self._version if p.is_relative_to(mount.point)]
                    parents = [p for p in parents if p in made_here] if made_here else parents
                made = next(
                    (
                        path
                        for parent in parents
                        if (path := self._make(parent / name, mount.version)) is not None
                    ),
                    None,
                )
                if made is not None and self._limit(controller, made, memory_bytes, max_tasks):
                    self.dirs[controller] = made
                    break

    def _make(self, path: Path, version: int) -> Path | None:
        if path in self._version:
            return path
        _sweep(path.parent)
        try:
            path.mkdir()
        except OSError:
            return None
        self._version[path] = version
        return path

    def _limit(self, controller: str, path: Path, memory_bytes: int, max_tasks: int) -> bool:
        v2 = self._version[path] == 2
        try:
            if controller == "pids":
                (path / "pids.max").write_text(str(max_tasks))
            elif controller == "memory":
                (path / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text(
                    str(memory_bytes)
                )
                optional = {"memory.swap.max": "0", "memory.oom.group": "1"}
                if not v2:  # no swapping past the limit either (absent without swap accounting)
                    optional = {"memory.memsw.limit_in_bytes": str(memory_bytes)}
                for knob, value in optional.items():
                    with contextlib.suppress(OSError):
                        (path / knob).write_text(value)
        except OSError:
            return False
        return True

    @property
    def controllers(self) -> frozenset[str]:
        """The controllers in force for this task."""
        return frozenset(self.dirs)

    @property
    def procs_files(self) -> tuple[bytes, ...]:
        """The ``cgroup.procs`` files a process writes "0" to, to join every cgroup."""
        return tuple(bytes(p / "cgroup.procs") for p in sorted(set(self.dirs.values())))

    def oom_kills(self) -> int:
        """How many of the task's processes the kernel killed at its memory limit."""
        path = self.dirs.get("memory")
        if path is None:
            return 0
        name = "memory.events" if self._version[path] == 2 else "memory.oom_control"
        return _fields(path / name).get("oom_kill", 0)

    def fork_refusals(self) -> int:
        """How many forks the ``pids`` limit refused."""
        path = self.dirs.get("pids")
        return 0 if path is None else _fields(path / "pids.events").get("max", 0)

    def cpu_seconds(self) -> float | None:
        """The task's total CPU time so far (None without CPU accounting)."""
        path = self.dirs.get("cpuacct")
        if path is None:
            return None
        if self._version[path] == 2:
            usec = _fields(path / "cpu.stat").get("usage_usec")
            return None if usec is None else usec / 1e6
        try:
            return int((path / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        """Kill whatever is left in the cgroups and remove them."""
        for path in sorted(set(self.dirs.values()) | set(self._version)):
            _kill_and_remove(path)
        self.dirs.clear()
        self._version.clear()


@dataclass(frozen=True)
class TreeUsage:
    """What a process and its descendants use right now."""

    tasks: int  # processes (zombies too: they still count against RLIMIT_NPROC) and threads
    rss_bytes: int
    cpu_seconds: float  # their own CPU and that of the children they reaped


def scan_tree(root: int) -> TreeUsage:
    """Add up, from /proc, process ``root`` and all its descendants (for the sandbox: the PID
    namespace's init, whose descendants are every process in the namespace)."""
    stats: dict[int, tuple[int, list[str]]] = {}  # pid -> (parent, fields after the name)
    with contextlib.suppress(OSError), os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    text = Path(f"/proc/{entry.name}/stat").read_text()
                    fields = text[text.rfind(")") + 2 :].split()  # the name may hold spaces
                    stats[int(entry.name)] = (int(fields[1]), fields)
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    tasks = rss = ticks = 0
    todo = [root] if root in stats else []
    while todo:
        pid = todo.pop()
        fields = stats[pid][1]
        ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        tasks += int(fields[17])
        rss += int(fields[21]) * _PAGE
        todo += children.get(pid, [])
    return TreeUsage(tasks=tasks, rss_bytes=rss, cpu_seconds=ticks / _TICK)


class UidLease:
    """A host uid for one task, held (by an exclusive lock file) until :meth:`release`.

    The uid is in ``[base, base + span)``, has no account in the user database and no running
    process, and no other lease holds it, in this agent or another one on the host.
    """

    def __init__(self, *, base: int, span: int, lock_dir: Path, hint: str = "") -> None:
        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = lock_dir.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            raise OSError(f"{lock_dir} must be a directory of uid {os.geteuid()} only it may write")
        start = zlib.crc32(hint.encode()) % span
        for offset in range(span):
            uid = base + (start + offset) % span
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
            fd = os.open(lock_dir / f"{uid}.lock", flags, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if _has_account(uid) or _has_process(uid):
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise OSError(f"no free uid in [{base}, {base + span}) for a sandboxed task")

    def release(self) -> None:
        """Give the uid back."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _has_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _has_process(uid: int) -> bool:
    with contextlib.suppress(OSError), os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat().st_uid == uid:
                        return True
    return False
