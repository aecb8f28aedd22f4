"""The LMDB store: atomic batches, buffering, and the data-dir lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from powerverse.chain.exceptions import DataDirLocked
from powerverse.chain.store import BufferedStore, LmdbStore


def test_buffered_writes_are_invisible_until_commit(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    db = BufferedStore(store)
    db[b"a"] = b"1"
    assert db[b"a"] == b"1"
    assert store.get(b"a") is None
    db.commit()
    assert store.get(b"a") == b"1"
    store.close()


def test_discard_drops_pending_writes(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    db = BufferedStore(store)
    db[b"a"] = b"1"
    db.discard()
    assert b"a" not in db
    with pytest.raises(KeyError):
        db[b"a"]
    store.close()


def test_delete_is_buffered_and_committed(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    db = BufferedStore(store)
    db[b"k"] = b"v"
    db.commit()
    del db[b"k"]
    assert not db.exists(b"k")
    assert store.get(b"k") == b"v"
    db.commit()
    assert store.get(b"k") is None
    with pytest.raises(KeyError):
        del db[b"k"]
    store.close()


def test_data_persists_across_reopen(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    db = BufferedStore(store)
    for i in range(100):
        db[i.to_bytes(4, "big")] = b"x" * i
    db.commit()
    store.close()
    store = LmdbStore(tmp_path)
    assert store.get((99).to_bytes(4, "big")) == b"x" * 99
    assert [k for k, _ in store.iter_prefix(b"\x00\x00\x00")][:3] == [
        b"\x00\x00\x00\x00",
        b"\x00\x00\x00\x01",
        b"\x00\x00\x00\x02",
    ]
    store.close()


def test_second_process_cannot_open_the_same_data_dir(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    code = (
        "import sys; from pathlib import Path\n"
        "from powerverse.chain.store import LmdbStore\n"
        "from powerverse.chain.exceptions import DataDirLocked\n"
        "try:\n    LmdbStore(Path(sys.argv[1]))\n"
        "except DataDirLocked as e:\n    print(e); sys.exit(7)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 7
    assert "in use by another process" in result.stdout
    store.close()


def test_same_process_second_open_is_refused(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    with pytest.raises(DataDirLocked):
        LmdbStore(tmp_path)
    store.close()
    LmdbStore(tmp_path).close()


def test_store_cannot_be_iterated(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    db = BufferedStore(store)
    with pytest.raises(TypeError):
        iter(db)
    store.close()
