"""The orchestration stacks' records in SQLite, written before anything is created or deleted.

A stack's row holds its owner, its validated template (canonical JSON) and its state; one row
per planned resource (volumes, then VMs, in creation order) holds the resource's state and,
once known, its id on the host. Deploy inserts every row (``pending``) before creating
anything and moves a row to ``creating`` before the call that creates it, so after a crash
(``kill -9`` at any point) the store names every resource that may exist: ``resume`` finishes
the stack and ``delete`` removes it. VM instance ids are unique across stacks (an index
refuses a second stack that would reuse one). WAL mode with ``synchronous=FULL``: a committed
row survives a crash of the process or the machine.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from powerverse.infra.exceptions import InfraError
from powerverse.infra.sqlitestore import SqliteStore

__all__ = [
    "ResourceKind",
    "ResourceRecord",
    "ResourceState",
    "StackError",
    "StackExists",
    "StackNotFound",
    "StackRecord",
    "StackState",
    "StackStore",
]


class StackError(InfraError):
    """An orchestration stack could not be deployed, resumed or deleted."""


class StackNotFound(StackError):
    """No stack of that name in the store."""


class StackExists(StackError):
    """A stack of that name (or one of its VM instance ids) is already in the store."""


class StackState(enum.Enum):
    """Where a stack is in its lifecycle."""

    DEPLOYING = "deploying"  # resources being created (or a crash interrupted it: resume/delete)
    DEPLOYED = "deployed"  # every resource created
    FAILED = "failed"  # a deploy failed and its rollback did not finish: delete it
    DELETING = "deleting"  # resources being deleted (or a crash interrupted it: delete again)


class ResourceKind(enum.Enum):
    """What a stack creates on the host."""

    VOLUME = "volume"
    VM = "vm"


class ResourceState(enum.Enum):
    """Where one resource of a stack is."""

    PENDING = "pending"  # planned; nothing done yet
    CREATING = "creating"  # the create call is about to run (or ran): it may exist
    CREATED = "created"  # exists, ours
    FAILED = "failed"  # the create call refused; nothing of ours exists
    DELETING = "deleting"  # the delete call is about to run (or ran)
    DELETED = "deleted"  # gone


@dataclass(frozen=True, kw_only=True)
class ResourceRecord:
    """One planned resource of a stack.

    ``name`` is the template's name (``data`` for a volume, ``web-0`` for replica 0 of VM
    ``web``); ``ref`` its id on the host (the instance id of a VM, known from the plan; the
    volume id once the volume service returned it). ``live`` is filled in by ``show`` with what
    the driver says of a VM now.
    """

    seq: int
    kind: ResourceKind
    name: str
    ref: str | None
    state: ResourceState
    note: str = ""
    updated_at: float = 0.0
    live: str | None = None


@dataclass(frozen=True, kw_only=True)
class StackRecord:
    """One stack and its resources, in creation order."""

    name: str
    owner: str
    state: StackState
    template: Mapping[str, Any]
    resources: tuple[ResourceRecord, ...]
    note: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS stacks (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, template TEXT NOT NULL, state TEXT NOT NULL,
    note TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS resources (
    stack TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    ref TEXT, state TEXT NOT NULL, note TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (stack, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS resources_ref ON resources (kind, ref);
"""


class StackStore(SqliteStore):
    """The stacks' SQLite database (one file; safe to share between threads)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(path, _SCHEMA, clock=clock)

    def create(
        self,
        name: str,
        *,
        owner: str,
        template: Mapping[str, Any],
        resources: Sequence[tuple[ResourceKind, str, str | None]],
    ) -> StackRecord:
        """Record a new stack (``deploying``) and its planned resources (``pending``), in order.

        StackExists if the name is taken, or if a VM instance id belongs to another stack.
        """
        now = self._clock()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM stacks WHERE name = ?", (name,)).fetchone():
                raise StackExists(f"stack {name!r} already exists: delete it or pick another name")
            for kind, _, ref in resources:
                row = db.execute(
                    "SELECT stack FROM resources WHERE kind = ? AND ref = ?", (kind.value, ref)
                ).fetchone()
                if ref is not None and row is not None:
                    raise StackExists(
                        f"stack {name!r} would reuse {kind.value} id {ref!r} of stack {row[0]!r}:"
                        " pick a stack name that does not start like that one's"
                    )
            db.execute(
                "INSERT INTO stacks VALUES (?, ?, ?, ?, '', ?, ?)",
                (name, owner, json.dumps(template), StackState.DEPLOYING.value, now, now),
            )
            db.executemany(
                "INSERT INTO resources VALUES (?, ?, ?, ?, ?, ?, '', ?)",
                [
                    (name, seq, kind.value, rname, ref, ResourceState.PENDING.value, now)
                    for seq, (kind, rname, ref) in enumerate(resources)
                ],
            )
        return self.get(name)

    def find(self, name: str) -> StackRecord | None:
        """The stack ``name``, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM stacks WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            rows = self._db.execute(
                "SELECT seq, kind, name, ref, state, note, updated_at FROM resources"
                " WHERE stack = ? ORDER BY seq",
                (name,),
            ).fetchall()
        sname, owner, template, state, note, created, updated = row
        return StackRecord(
            name=sname,
            owner=owner,
            state=StackState(state),
            template=json.loads(template),
            resources=tuple(_resource(r) for r in rows),
            note=note,
            created_at=float(created),
            updated_at=float(updated),
        )

    def get(self, name: str) -> StackRecord:
        """The stack ``name`` (StackNotFound if unknown)."""
        found = self.find(name)
        if found is None:
            raise StackNotFound(f"no stack {name!r}")
        return found

    def names(self, owner: str | None = None) -> list[str]:
        """The stacks' names (of ``owner``), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, owner FROM stacks ORDER BY created_at, name"
            ).fetchall()
        return [n for n, o in rows if owner is None or o == owner]

    def set_state(self, name: str, state: StackState, note: str = "") -> None:
        """Move a stack to ``state`` (committed when this returns)."""
        with self._tx() as db:
            done = db.execute(
                "UPDATE stacks SET state = ?, note = ?, updated_at = ? WHERE name = ?",
                (state.value, note, self._clock(), name),
            )
            if done.rowcount != 1:
                raise StackNotFound(f"no stack {name!r}")

    def set_resource(
        self,
        name: str,
        seq: int,
        state: ResourceState,
        *,
        ref: str | None = None,
        note: str = "",
    ) -> None:
        """Move resource ``seq`` of stack ``name`` to ``state`` (and set its id, if given)."""
        with self._tx() as db:
            done = db.execute(
                "UPDATE resources SET state = ?, note = ?, updated_at = ?,"
                " ref = COALESCE(?, ref) WHERE stack = ? AND seq = ?",
                (state.value, note, self._clock(), ref, name, seq),
            )
            if done.rowcount != 1:
                raise StackNotFound(f"stack {name!r} has no resource #{seq}")

    def remove(self, name: str) -> None:
        """Forget a stack whose resources are all gone."""
        with self._tx() as db:
            db.execute("DELETE FROM resources WHERE stack = ?", (name,))
            db.execute("DELETE FROM stacks WHERE name = ?", (name,))


def _resource(row: tuple[Any, ...]) -> ResourceRecord:
    seq, kind, name, ref, state, note, updated = row
    return ResourceRecord(
        seq=int(seq),
        kind=ResourceKind(kind),
        name=name,
        ref=ref,
        state=ResourceState(state),
        note=note,
        updated_at=float(updated),
    )
