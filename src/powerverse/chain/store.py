"""Persistent key-value store for the chain: LMDB behind py-evm's `DatabaseAPI`.

py-evm ships only in-memory databases. A node must survive `kill -9`, so all
chain data lives in one LMDB environment under the data directory, and every
block is committed in a single LMDB write transaction: either the whole block
(state trie nodes, header, body, receipts, indexes and the new head pointer) is
on disk, or none of it is.

`BufferedStore` is what py-evm writes into: it keeps writes in memory until
`commit()` writes them atomically (one transaction, one fsync), or `discard()`
drops them, so a failed block build leaves nothing behind.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import lmdb
from eth.abc import DatabaseAPI

from powerverse.chain.exceptions import DataDirLocked, StoreError

_DELETED = object()
_MAP_SIZE = 1 << 40  # 1 TiB of address space; the file grows only as data is written
_MISSING = object()


class _ReadCache:
    """Two-generation cache of committed values: cheap hits, bounded size."""

    def __init__(self, max_entries: int) -> None:
        self._half = max(1, max_entries // 2)
        self._young: dict[bytes, object] = {}
        self._old: dict[bytes, object] = {}

    def get(self, key: bytes) -> object:
        value = self._young.get(key, _MISSING)
        if value is _MISSING:
            value = self._old.get(key, _MISSING)
            if value is not _MISSING:
                self.put(key, value)
        return value

    def put(self, key: bytes, value: object) -> None:
        self._young[key] = value
        if len(self._young) >= self._half:
            self._old = self._young
            self._young = {}

    def forget(self, key: bytes) -> None:
        self._young.pop(key, None)
        self._old.pop(key, None)


class LmdbStore:
    """An LMDB environment in `path`, locked against use by a second process."""

    def __init__(
        self,
        path: Path,
        *,
        sync: bool = True,
        cache_entries: int = 400_000,
        lock: bool = True,
        sole_writer: bool = True,
    ) -> None:
        self.path = Path(path)
        self._cache = _ReadCache(cache_entries)
        # A process that shares the environment with a writer process may cache only what
        # can never change: values under hash keys (trie nodes, headers, code) and bodies.
        self._sole_writer = sole_writer
        self._write_lock = threading.Lock()
        self._commits = 0  # a reader caches what it read only if no commit happened meanwhile
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_file = _acquire_dir_lock(self.path / "LOCK") if lock else None
        try:
            self.env = lmdb.open(
                str(self.path / "chaindb"),
                map_size=_MAP_SIZE,
                subdir=True,
                sync=sync,
                metasync=sync,
                readahead=False,
                max_readers=512,
            )
        except lmdb.Error as exc:
            if self._lock_file is not None:
                self._lock_file.close()
            raise StoreError(f"cannot open the chain database in {self.path}: {exc}") from exc

    def get(self, key: bytes) -> bytes | None:
        """Read one committed value (through the read cache)."""
        cached = self._cache.get(key)
        if cached is not _MISSING:
            return cached if isinstance(cached, bytes) else None
        commits = self._commits
        with self.env.begin(buffers=False) as txn:
            raw = txn.get(key)
        value = None if raw is None else bytes(raw)
        if not self._sole_writer and (value is None or not _immutable(key)):
            return value
        with self._write_lock:
            if commits == self._commits:
                self._cache.put(key, _DELETED if value is None else value)
        return value

    def write_batch(self, items: dict[bytes, object]) -> None:
        """Write `items` atomically; a value of `_DELETED` removes the key."""
        with self._write_lock:
            with self.env.begin(write=True) as txn:
                for key, value in items.items():
                    if value is _DELETED:
                        txn.delete(key)
                    else:
                        assert isinstance(value, bytes)
                        txn.put(key, value)
            # Only after the transaction is durable do readers see the new values.
            self._commits += 1
            for key, value in items.items():
                if self._sole_writer or (value is not _DELETED and _immutable(key)):
                    self._cache.put(key, value)
                else:
                    self._cache.forget(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Yield committed (key, value) pairs whose key starts with `prefix`."""
        with self.env.begin(buffers=False) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return
            for key, value in cursor:
                if not bytes(key).startswith(prefix):
                    break
                yield bytes(key), bytes(value)

    def close(self) -> None:
        """Close the environment and release the directory lock."""
        self.env.close()
        if self._lock_file is not None:
            self._lock_file.close()


_IMMUTABLE_PREFIXES = (b"pv:body:", b"pv:receipts:", b"pv:blockmeta:")


def _immutable(key: bytes) -> bool:
    """Keys whose value never changes once written (content-addressed or per block hash)."""
    if key.startswith(b"block-number-to-hash:"):  # py-evm's canonical index: can be 32 bytes
        return False
    return len(key) == 32 or key.startswith(_IMMUTABLE_PREFIXES)


def _acquire_dir_lock(lock_path: Path) -> IO[str]:
    """Hold an exclusive lock on the data directory for this process's lifetime."""
    handle = open(lock_path, "a+")  # noqa: SIM115 - held for the store's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise DataDirLocked(
            f"the data directory {lock_path.parent} is in use by another process; "
            "stop that node or choose another --data-dir"
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class BufferedStore(DatabaseAPI):
    """A `DatabaseAPI` whose writes stay in memory until `commit()` makes them durable."""

    def __init__(self, store: LmdbStore) -> None:
        self.store = store
        self._pending: dict[bytes, object] = {}

    def __getitem__(self, key: bytes) -> bytes:
        pending = self._pending.get(key)
        if pending is not None:
            if pending is _DELETED:
                raise KeyError(key)
            assert isinstance(pending, bytes)
            return pending
        value = self.store.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self._pending[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        pending = self._pending.get(key)
        if pending is not None:
            return pending is not _DELETED
        return self.store.get(key) is not None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self._exists(key)

    def set(self, key: bytes, value: bytes) -> None:
        """Buffer a write."""
        self._pending[key] = value

    def exists(self, key: bytes) -> bool:
        """Whether `key` has a value, pending writes included."""
        return self._exists(key)

    def delete(self, key: bytes) -> None:
        """Buffer a deletion (no error when the key is absent)."""
        self._pending[key] = _DELETED

    def __iter__(self) -> Iterator[bytes]:
        raise TypeError("the chain store cannot be iterated")

    def __len__(self) -> int:
        raise TypeError("the chain store cannot be counted")

    @property
    def pending_writes(self) -> int:
        """How many keys wait for the next commit."""
        return len(self._pending)

    def commit(self) -> None:
        """Write every buffered change in one atomic, durable transaction."""
        if self._pending:
            self.store.write_batch(self._pending)
            self._pending = {}

    def discard(self) -> None:
        """Drop every buffered change."""
        self._pending = {}
