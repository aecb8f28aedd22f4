"""The agent's own state: leases and tasks in SQLite, written before it acts.

Every step that changes the world (spawning a VM, sending a transaction, running a task) is
preceded by a committed row saying what is about to happen, so a ``kill -9`` at any point
leaves a record that the next start reconciles with the chain and the driver: a lease is never
lost and never provisioned twice, a task is never taken or paid twice. SQLite runs in WAL mode
with ``synchronous=FULL``: a committed row survives a crash of the process or the machine.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from powerverse.infra.sqlitestore import SqliteStore

log = logging.getLogger(__name__)

__all__ = ["AgentState", "Lease", "LeaseState", "TaskRecord", "TaskState"]


class LeaseState(enum.Enum):
    """Where the agent is with one rental of one of its resources."""

    PROVISIONING = "provisioning"  # spawn about to happen (or happened, not yet recorded)
    RUNNING = "running"  # the VM runs; the start is not confirmed on chain yet
    CONFIRMED = "confirmed"  # confirmed on chain: the rental is active
    STOPPING = "stopping"  # the rental ended: the VM is being destroyed and wiped
    DONE = "done"  # nothing left on the host
    FAILED = "failed"  # could not be served (declined or missed the confirm deadline)


class TaskState(enum.Enum):
    """Where the agent is with one task order."""

    TAKING = "taking"  # takeTask about to be sent
    TAKEN = "taken"  # taken on chain; not run yet
    RUNNING = "running"  # in the sandbox
    STORED = "stored"  # result stored by content id; submitResult about to be sent
    SUBMITTED = "submitted"  # result on chain
    FAILED = "failed"  # could not be run or submitted in time


@dataclass(frozen=True, kw_only=True)
class Lease:
    """One rental the agent serves."""

    rental_id: int
    token_id: int
    consumer: str
    instance_id: str
    state: LeaseState
    ssh_port: int | None = None
    end: int = 0
    note: str = ""
    updated_at: float = 0.0


@dataclass(frozen=True, kw_only=True)
class TaskRecord:
    """One task order the agent took."""

    order_id: int
    token_id: int
    state: TaskState
    result_cid: str = ""
    result_hash: str = ""
    note: str = ""
    updated_at: float = 0.0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    rental_id INTEGER PRIMARY KEY, token_id INTEGER NOT NULL, consumer TEXT NOT NULL,
    instance_id TEXT NOT NULL UNIQUE, state TEXT NOT NULL, ssh_port INTEGER,
    end_time INTEGER NOT NULL, note TEXT NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    order_id INTEGER PRIMARY KEY, token_id INTEGER NOT NULL, state TEXT NOT NULL,
    result_cid TEXT NOT NULL, result_hash TEXT NOT NULL, note TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL
);
"""


class AgentState(SqliteStore):
    """The agent's SQLite database (one file; safe to share between threads)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(path, _SCHEMA, clock=clock)

    # ------------------------------------------------------------------ leases

    def put_lease(self, lease: Lease) -> Lease:
        """Insert or replace a lease (committed when this returns)."""
        lease = replace(lease, updated_at=self._clock())
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    lease.rental_id,
                    lease.token_id,
                    lease.consumer,
                    lease.instance_id,
                    lease.state.value,
                    lease.ssh_port,
                    lease.end,
                    lease.note,
                    lease.updated_at,
                ),
            )
        return lease

    def lease(self, rental_id: int) -> Lease | None:
        """The lease of ``rental_id``, if the agent has one."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM leases WHERE rental_id = ?", (rental_id,)
            ).fetchone()
        return None if row is None else _lease(row)

    def leases(self, *states: LeaseState) -> list[Lease]:
        """Leases in any of ``states`` (all without), by rental id."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM leases ORDER BY rental_id").fetchall()
        found = [_lease(r) for r in rows]
        return [x for x in found if not states or x.state in states]

    # ------------------------------------------------------------------ tasks

    def put_task(self, task: TaskRecord) -> TaskRecord:
        """Insert or replace a task record (committed when this returns)."""
        task = replace(task, updated_at=self._clock())
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    task.order_id,
                    task.token_id,
                    task.state.value,
                    task.result_cid,
                    task.result_hash,
                    task.note,
                    task.updated_at,
                ),
            )
        return task

    def task(self, order_id: int) -> TaskRecord | None:
        """The agent's record of task ``order_id``."""
        with self._lock:
            row = self._db.execute("SELECT * FROM tasks WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else _task(row)

    def tasks(self, *states: TaskState) -> list[TaskRecord]:
        """Task records in any of ``states`` (all without), by order id."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM tasks ORDER BY order_id").fetchall()
        found = [_task(r) for r in rows]
        return [x for x in found if not states or x.state in states]

    # ------------------------------------------------------------------ cursors, journal

    def cursor(self, name: str) -> int:
        """A scan position (e.g. the last rental id looked at); 0 at first."""
        with self._lock:
            row = self._db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def set_cursor(self, name: str, value: int) -> None:
        """Move a scan position."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (name, value))

    def record(self, kind: str, message: str) -> None:
        """Append to the agent's journal (what `pv provider status` shows), and log it."""
        log.info("%s: %s", kind, message)
        with self._tx() as db:
            db.execute(
                "INSERT INTO journal (at, kind, message) VALUES (?, ?, ?)",
                (self._clock(), kind, message),
            )

    def journal(self, limit: int = 50) -> list[tuple[float, str, str]]:
        """The latest journal entries, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT at, kind, message FROM journal ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [(float(a), str(k), str(m)) for a, k, m in reversed(rows)]


def _lease(row: tuple[object, ...]) -> Lease:
    rental_id, token_id, consumer, instance_id, state, port, end, note, at = row
    return Lease(
        rental_id=int(str(rental_id)),
        token_id=int(str(token_id)),
        consumer=str(consumer),
        instance_id=str(instance_id),
        state=LeaseState(state),
        ssh_port=None if port is None else int(str(port)),
        end=int(str(end)),
        note=str(note),
        updated_at=float(str(at)),
    )


def _task(row: tuple[object, ...]) -> TaskRecord:
    order_id, token_id, state, cid, digest, note, at = row
    return TaskRecord(
        order_id=int(str(order_id)),
        token_id=int(str(token_id)),
        state=TaskState(state),
        result_cid=str(cid),
        result_hash=str(digest),
        note=str(note),
        updated_at=float(str(at)),
    )
