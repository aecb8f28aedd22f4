"""A content-addressed object store on the host, with IPFS CIDv1 ids.

Objects are whole files named by their content: CIDv1, ``raw`` codec, SHA-256 multihash,
base32 (``bafkrei...``), made with the ``multiformats`` library, so the same bytes get the same
id as a raw block on the IPFS network (the later storage service builds on this). Layout:
``<root>/<last two base32 chars>/<cid>``. Writes stream into a temporary file in the store
(hashing as they go), are fsynced, then renamed into place: a crash never leaves a half object
under a real id, and two writers of the same content simply agree. Reads can be verified
against the id (:meth:`ObjectStore.verify`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from multiformats import CID, multihash

from powerverse.infra.exceptions import NotFound, StorageError

__all__ = ["ObjectStore", "cid_of", "parse_cid"]

_CHUNK = 1 << 20


def cid_of(data: bytes) -> str:
    """The CIDv1 (raw, sha2-256, base32) of ``data``."""
    return _cid(hashlib.sha256(data).digest())


def _cid(digest: bytes) -> str:
    return str(CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256")))


def parse_cid(text: str) -> str:
    """The canonical form of a CID this store can hold; StorageError otherwise."""
    try:
        cid = CID.decode(text)
    except Exception as exc:  # multiformats raises several error types for bad input
        raise StorageError(f"{text[:80]!r} is not a CID: {exc}") from None
    if cid.version != 1 or cid.codec.name != "raw" or cid.hashfun.name != "sha2-256":
        raise StorageError(f"{text[:80]!r}: only CIDv1 raw sha2-256 objects are stored here")
    return str(cid.set(base="base32"))


class ObjectStore:
    """Objects by CID under ``root``."""

    def __init__(self, root: Path, *, max_object_bytes: int = 64 << 30) -> None:
        self.root = root
        self.max_object_bytes = max_object_bytes
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def _path(self, cid: str) -> Path:
        cid = parse_cid(cid)
        return self.root / cid[-2:] / cid

    def path_of(self, cid: str) -> Path:
        """Where object ``cid`` is (NotFound if it is not here)."""
        path = self._path(cid)
        if not path.exists():
            raise NotFound(f"no object {cid}")
        return path

    def has(self, cid: str) -> bool:
        """Whether the store holds ``cid``."""
        return self._path(cid).exists()

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; its CID."""
        return self.put_stream([data])

    def put_file(self, path: Path) -> str:
        """Store a file's content; its CID."""

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as f:
                while block := f.read(_CHUNK):
                    yield block

        return self.put_stream(chunks())

    def put_stream(self, chunks: Iterable[bytes]) -> str:
        """Store a stream of bytes (hashed while written); its CID."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", prefix="put-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_object_bytes:
                        raise StorageError(
                            f"object larger than the store's limit ({self.max_object_bytes} bytes)"
                        )
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            cid = _cid(digest.digest())
            final = self._path(cid)
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)  # same content from another writer: same bytes, no harm
            return cid
        finally:
            tmp.unlink(missing_ok=True)

    def get_bytes(self, cid: str) -> bytes:
        """The content of ``cid``."""
        return self.path_of(cid).read_bytes()

    def size(self, cid: str) -> int:
        """Bytes of object ``cid``."""
        return self.path_of(cid).stat().st_size

    def verify(self, cid: str) -> bool:
        """Whether the stored bytes still hash to ``cid`` (detects corruption on disk)."""
        digest = hashlib.sha256()
        with open(self.path_of(cid), "rb") as f:
            while block := f.read(_CHUNK):
                digest.update(block)
        return _cid(digest.digest()) == parse_cid(cid)

    def delete(self, cid: str) -> None:
        """Remove object ``cid`` (NotFound if absent)."""
        self.path_of(cid).unlink()

    def list(self) -> list[str]:
        """Every stored CID, sorted."""
        return sorted(
            p.name
            for d in self.root.iterdir()
            if d.is_dir() and d.name != "tmp"
            for p in d.iterdir()
        )
