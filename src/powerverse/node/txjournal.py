"""The journal of transactions clients gave this node, so a crash does not lose them.

A transaction accepted by ``eth_sendRawTransaction`` is appended here before it is gossiped
(a plain write: it survives the process being killed, as the page cache does). On start the
node submits the journal again: transactions already in blocks are refused as stale and
dropped, the others return to the pool and to the network. The file is rewritten with the
still-pending ones when it grows past a limit. Like geth's journal of local transactions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

MAX_BYTES = 8 * 1024 * 1024
_MAX_RECORD = 128 * 1024 + 1024


class TxJournal:
    """Length-prefixed raw transactions in one append-only file."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._file = open(path, "ab")  # noqa: SIM115 - kept open for appends

    def read(self) -> list[bytes]:
        """Every whole record in the file (a torn last record is ignored)."""
        data = self.path.read_bytes() if self.path.exists() else b""
        out, pos = [], 0
        while pos + 4 <= len(data):
            size = int.from_bytes(data[pos : pos + 4], "big")
            if size > _MAX_RECORD or pos + 4 + size > len(data):
                break
            out.append(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        return out

    def append(self, raw: bytes) -> None:
        """Record one transaction (flushed to the OS before returning)."""
        self._file.write(len(raw).to_bytes(4, "big") + raw)
        self._file.flush()

    def size(self) -> int:
        """Bytes in the file."""
        return self._file.tell()

    def rewrite(self, raws: Iterable[bytes]) -> None:
        """Replace the file's content (atomically) with ``raws``."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for raw in raws:
                f.write(len(raw).to_bytes(4, "big") + raw)
            f.flush()
            os.fsync(f.fileno())
        self._file.close()
        os.replace(tmp, self.path)
        self._file = open(self.path, "ab")  # noqa: SIM115

    def compact_if_large(self, still_pending: Callable[[bytes], bool]) -> None:
        """Drop what no longer waits once the file passed ``max_bytes``."""
        if self.size() > self.max_bytes:
            self.rewrite(raw for raw in self.read() if still_pending(raw))

    def close(self) -> None:
        """Close the file."""
        self._file.close()
