"""The content-addressed object store: IPFS-compatible ids, atomic writes, corruption found."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from powerverse.infra.exceptions import NotFound, StorageError
from powerverse.infra.objects import ObjectStore, cid_of, parse_cid


def test_ids_are_ipfs_cidv1_raw_sha256(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    # `ipfs add --cid-version 1 --raw-leaves` of b"hello" (a single raw block) gives this id
    assert cid_of(b"hello") == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    cid = store.put_bytes(b"hello")
    assert cid == cid_of(b"hello") and store.has(cid)
    assert store.get_bytes(cid) == b"hello" and store.size(cid) == 5
    assert store.path_of(cid).read_bytes() == b"hello"
    assert store.put_bytes(b"hello") == cid  # same content, one object
    assert store.list() == [cid]


def test_files_and_streams_and_reopening(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 20_000)
    store = ObjectStore(tmp_path / "store")
    a = store.put_file(big)
    b = store.put_stream(iter([big.read_bytes()[:1000], big.read_bytes()[1000:]]))
    assert a == b == cid_of(big.read_bytes())
    again = ObjectStore(tmp_path / "store")  # a restarted agent
    assert again.get_bytes(a) == big.read_bytes() and again.verify(a)
    again.delete(a)
    assert not again.has(a)
    with pytest.raises(NotFound):
        again.delete(a)


def test_corruption_is_detected(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    cid = store.put_bytes(b"precious data")
    path = store.path_of(cid)
    path.write_bytes(b"precious dat4")
    assert not store.verify(cid)
    path.write_bytes(b"precious")  # truncated
    assert not store.verify(cid)


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-cid",
        "",
        "../../etc/passwd",
        "bafyinvalid",
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",  # CIDv0 (dag-pb), not a raw object
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",  # dag-pb CIDv1
    ],
)
def test_bad_ids_are_refused(tmp_path: Path, bad: str) -> None:
    store = ObjectStore(tmp_path)
    with pytest.raises(StorageError):
        store.get_bytes(bad)
    with pytest.raises(StorageError):
        parse_cid(bad)


def test_size_limit_and_no_half_objects(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path, max_object_bytes=10)
    with pytest.raises(StorageError, match="limit"):
        store.put_bytes(b"x" * 11)

    def failing() -> object:
        yield b"part one"
        raise OSError("the disk went away")

    with pytest.raises(OSError):
        ObjectStore(tmp_path).put_stream(failing())  # type: ignore[arg-type]
    assert store.list() == []
    assert list((tmp_path / "tmp").iterdir()) == []  # no temporary left behind


def test_concurrent_writers_of_the_same_content_agree(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    data = b"z" * 500_000
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(store.put_bytes(data))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(ids) == {cid_of(data)} and store.verify(ids[0]) and len(store.list()) == 1
