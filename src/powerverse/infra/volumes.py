"""Block storage: qcow2 volumes that VMs attach, detach and snapshot.

Volumes are qcow2 files in ``<root>/volumes/`` with their records in SQLite (``volumes.sqlite``):
size, owner (e.g. a rental), the instance it is attached to, and its snapshots. Snapshots are
qcow2 internal snapshots (``qemu-img snapshot``), taken while the volume is detached (a VM's
live disk is snapshotted through the driver instead). The hot plug itself is the driver's
(:meth:`ComputeDriver.attach_volume`); this service keeps the bookkeeping that refuses to delete
or resize an attached volume.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from powerverse.infra.drivers.base import VolumeAttachment
from powerverse.infra.exceptions import NotFound, StorageError
from powerverse.infra.tools import find_tool

__all__ = ["Volume", "VolumeService"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_GIB = 1 << 16


@dataclass(frozen=True, kw_only=True)
class Volume:
    """One volume's record."""

    volume_id: str
    name: str
    size_gib: int
    owner: str
    attached_to: str | None
    snapshots: tuple[str, ...]
    created_at: float


class VolumeService:
    """qcow2 volumes under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "volumes").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "volumes.sqlite", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS volumes (id TEXT PRIMARY KEY, name TEXT NOT NULL,"
            " size INTEGER NOT NULL, owner TEXT NOT NULL, attached TEXT, snapshots TEXT NOT NULL,"
            " created REAL NOT NULL)"
        )
        self._db.commit()

    def path(self, volume_id: str) -> Path:
        """The volume's qcow2 file."""
        self.get(volume_id)
        return self.root / "volumes" / f"{volume_id}.qcow2"

    def _img(self, *args: str) -> str:
        done = subprocess.run(
            [find_tool("qemu-img"), *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise StorageError(f"qemu-img {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def create(self, name: str, size_gib: int, *, owner: str = "") -> Volume:
        """A new empty volume of ``size_gib``."""
        if not _NAME.match(name):
            raise StorageError(f"volume name {name!r}: use lower-case a-z, 0-9 and -")
        if not 1 <= size_gib <= MAX_GIB:
            raise StorageError(f"volume size must be 1..{MAX_GIB} GiB, not {size_gib}")
        volume_id = f"{name}-{uuid.uuid4().hex[:8]}"
        target = self.root / "volumes" / f"{volume_id}.qcow2"
        self._img("create", "-q", "-f", "qcow2", str(target), f"{size_gib}G")
        with self._lock:
            self._db.execute(
                "INSERT INTO volumes VALUES (?, ?, ?, ?, NULL, '[]', ?)",
                (volume_id, name, size_gib, owner, time.time()),
            )
            self._db.commit()
        return self.get(volume_id)

    def get(self, volume_id: str) -> Volume:
        """One volume (NotFound if unknown)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM volumes WHERE id = ?", (volume_id,)).fetchone()
        if row is None:
            raise NotFound(f"no volume {volume_id!r}")
        vid, name, size, owner, attached, snaps, created = row
        return Volume(
            volume_id=vid,
            name=name,
            size_gib=int(size),
            owner=owner,
            attached_to=attached,
            snapshots=tuple(json.loads(snaps)),
            created_at=float(created),
        )

    def list(self, owner: str | None = None) -> list[Volume]:
        """Every volume (of ``owner``)."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM volumes ORDER BY created")]
        found = [self.get(i) for i in ids]
        return [v for v in found if owner is None or v.owner == owner]

    def _update(self, volume_id: str, column: str, value: object) -> None:
        with self._lock:
            self._db.execute(f"UPDATE volumes SET {column} = ? WHERE id = ?", (value, volume_id))
            self._db.commit()

    def attachment(self, volume_id: str, *, read_only: bool = False) -> VolumeAttachment:
        """What the driver needs to attach the volume."""
        return VolumeAttachment(volume_id=volume_id, path=self.path(volume_id), read_only=read_only)

    def mark_attached(self, volume_id: str, instance_id: str) -> None:
        """Record that the driver attached the volume (refused if attached elsewhere)."""
        current = self.get(volume_id).attached_to
        if current is not None and current != instance_id:
            raise StorageError(f"volume {volume_id} is attached to {current}")
        self._update(volume_id, "attached", instance_id)

    def mark_detached(self, volume_id: str) -> None:
        """Record that the volume was detached."""
        self.get(volume_id)
        self._update(volume_id, "attached", None)

    def _detached(self, volume_id: str, doing: str) -> Volume:
        volume = self.get(volume_id)
        if volume.attached_to is not None:
            raise StorageError(
                f"cannot {doing} volume {volume_id}: attached to {volume.attached_to}"
            )
        return volume

    def resize(self, volume_id: str, size_gib: int) -> Volume:
        """Grow a detached volume (shrinking would destroy data: refused)."""
        volume = self._detached(volume_id, "resize")
        if not volume.size_gib < size_gib <= MAX_GIB:
            raise StorageError(f"a volume only grows: {volume.size_gib} GiB -> {size_gib} GiB")
        self._img("resize", "-q", str(self.path(volume_id)), f"{size_gib}G")
        self._update(volume_id, "size", size_gib)
        return self.get(volume_id)

    def snapshot(self, volume_id: str, name: str) -> Volume:
        """An internal snapshot of a detached volume."""
        volume = self._detached(volume_id, "snapshot")
        if not _NAME.match(name) or name in volume.snapshots:
            raise StorageError(f"snapshot name {name!r} is invalid or taken")
        self._img("snapshot", "-c", name, str(self.path(volume_id)))
        self._update(volume_id, "snapshots", json.dumps([*volume.snapshots, name]))
        return self.get(volume_id)

    def restore(self, volume_id: str, name: str) -> None:
        """Revert a detached volume to a snapshot."""
        volume = self._detached(volume_id, "restore")
        if name not in volume.snapshots:
            raise NotFound(f"volume {volume_id} has no snapshot {name!r}")
        self._img("snapshot", "-a", name, str(self.path(volume_id)))

    def delete_snapshot(self, volume_id: str, name: str) -> Volume:
        """Remove a snapshot."""
        volume = self._detached(volume_id, "change")
        if name not in volume.snapshots:
            raise NotFound(f"volume {volume_id} has no snapshot {name!r}")
        self._img("snapshot", "-d", name, str(self.path(volume_id)))
        rest = [s for s in volume.snapshots if s != name]
        self._update(volume_id, "snapshots", json.dumps(rest))
        return self.get(volume_id)

    def delete(self, volume_id: str) -> None:
        """Delete a detached volume and its file."""
        self._detached(volume_id, "delete")
        self.path(volume_id).unlink(missing_ok=True)
        with self._lock:
            self._db.execute("DELETE FROM volumes WHERE id = ?", (volume_id,))
            self._db.commit()
