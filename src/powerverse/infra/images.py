"""The image registry: VM images stored by content in the object store, with metadata in SQLite.

An image is a qcow2 or raw disk, or a kernel with an initrd (and a command line). Its bytes live
in the :class:`ObjectStore` under their CIDs (the same image registered twice is one object);
its record (name, format, OS, description, minimum disk and memory, tags) in ``images.sqlite``.
Disk formats are checked with ``qemu-img info``: an image whose real format differs from the
claim is refused, and so is a qcow2 with a backing file (it could make a VM read any file on the
host).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from powerverse.infra.drivers.base import BootSource
from powerverse.infra.exceptions import NotFound, StorageError
from powerverse.infra.objects import ObjectStore
from powerverse.infra.tools import find_tool

__all__ = ["Image", "ImageRegistry"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
FORMATS = ("qcow2", "raw", "kernel")


@dataclass(frozen=True, kw_only=True)
class Image:
    """One registered image."""

    image_id: str  # the CID of the disk, or of the kernel for kernel images
    name: str
    format: str
    initrd: str | None = None  # CID
    cmdline: str = ""
    os: str = ""
    description: str = ""
    min_disk_gib: int = 0
    min_memory_mib: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)
    created_at: float = 0.0


class ImageRegistry:
    """Images under ``root`` over an object store."""

    def __init__(
        self, root: Path, store: ObjectStore, *, in_use: Callable[[str], bool] | None = None
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.store = store
        self._in_use = in_use or (lambda _: False)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "images.sqlite", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, doc TEXT)")
        self._db.commit()

    def _check_disk(self, path: Path, claimed: str) -> None:
        done = subprocess.run(
            [find_tool("qemu-img"), "info", "--output=json", str(path)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise StorageError(f"{path.name} is not a disk image: {done.stderr.strip()}")
        info = json.loads(done.stdout)
        if info.get("format") != claimed:
            raise StorageError(f"{path.name} is {info.get('format')}, not {claimed}")
        if info.get("backing-filename") or info.get("full-backing-filename"):
            raise StorageError(
                f"{path.name} has a backing file: refused (it could read host files)"
            )

    def register(
        self,
        name: str,
        *,
        disk: Path | None = None,
        format: str = "qcow2",
        kernel: Path | None = None,
        initrd: Path | None = None,
        cmdline: str = "",
        **meta: Any,
    ) -> Image:
        """Register an image from local files."""
        if not _NAME.match(name):
            raise StorageError(f"image name {name!r}: use lower-case a-z, 0-9, '.', '_', '-'")
        if format not in FORMATS:
            raise StorageError(f"image format must be one of {', '.join(FORMATS)}")
        if format == "kernel":
            if kernel is None or initrd is None or disk is not None:
                raise StorageError("a kernel image needs kernel and initrd files (and no disk)")
            image_id, initrd_id = self.store.put_file(kernel), self.store.put_file(initrd)
        else:
            if disk is None or kernel is not None:
                raise StorageError(f"a {format} image needs a disk file")
            self._check_disk(disk, format)
            image_id, initrd_id = self.store.put_file(disk), None
        image = Image(
            image_id=image_id, name=name, format=format, initrd=initrd_id, cmdline=cmdline,
            created_at=time.time(), **_meta(meta),
        )  # fmt: skip
        self._save(image)
        return image

    def _save(self, image: Image) -> None:
        doc = json.dumps({**image.__dict__, "tags": list(image.tags)})
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO images VALUES (?, ?)", (image.image_id, doc))
            self._db.commit()

    def get(self, image_id: str) -> Image:
        """One image (NotFound if unknown)."""
        with self._lock:
            row = self._db.execute("SELECT doc FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise NotFound(f"no image {image_id!r}")
        doc = json.loads(row[0])
        return Image(**{**doc, "tags": tuple(doc["tags"])})

    def list(self) -> list[Image]:
        """Every image, oldest first."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM images")]
        return sorted((self.get(i) for i in ids), key=lambda i: i.created_at)

    def edit(self, image_id: str, **meta: Any) -> Image:
        """Change an image's metadata (name, os, description, minimums, tags)."""
        image = replace(self.get(image_id), **_meta(meta))
        if not _NAME.match(image.name):
            raise StorageError(f"image name {image.name!r} is not valid")
        self._save(image)
        return image

    def delete(self, image_id: str) -> None:
        """Remove an image (refused while a VM or volume uses it)."""
        image = self.get(image_id)
        if self._in_use(image_id):
            raise StorageError(f"image {image.name} is in use")
        with self._lock:
            self._db.execute("DELETE FROM images WHERE id = ?", (image_id,))
            self._db.commit()
        for cid in (image.image_id, image.initrd):
            if cid is not None and self.store.has(cid):
                self.store.delete(cid)

    def boot_source(self, image_id: str) -> BootSource:
        """What the QEMU driver boots for this image."""
        image = self.get(image_id)
        if image.format == "kernel":
            assert image.initrd is not None
            return BootSource(
                kernel=self.store.path_of(image.image_id),
                initrd=self.store.path_of(image.initrd),
                cmdline=image.cmdline,
            )
        return BootSource(disk=self.store.path_of(image.image_id), disk_format=image.format)


_META: dict[str, type] = {
    "name": str,
    "os": str,
    "description": str,
    "min_disk_gib": int,
    "min_memory_mib": int,
}


def _meta(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key == "tags":
            if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
                raise StorageError("tags must be a list of strings")
            out["tags"] = tuple(value)
        elif key in _META:
            kind = _META[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise StorageError(f"{key} must be a {kind.__name__}")
            if isinstance(value, int) and value < 0:
                raise StorageError(f"{key} must not be negative")
            out[key] = value
        else:
            raise StorageError(f"unknown image field {key!r}")
    return out
