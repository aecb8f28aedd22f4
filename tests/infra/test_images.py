"""The image registry with real qemu-img and the real object store."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from powerverse.infra.exceptions import NotFound, StorageError
from powerverse.infra.images import ImageRegistry
from powerverse.infra.objects import ObjectStore
from tests.infra.conftest import require_tools


@pytest.fixture
def registry(tmp_path: Path) -> ImageRegistry:
    require_tools("qemu-img")
    return ImageRegistry(tmp_path / "images", ObjectStore(tmp_path / "objects"))


def _img(path: Path, fmt: str, *extra: str) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, *extra, str(path), "16M"], check=True)
    return path


def test_register_list_edit_boot_and_delete(registry: ImageRegistry, tmp_path: Path) -> None:
    disk = _img(tmp_path / "debian.qcow2", "qcow2")
    image = registry.register("debian-12", disk=disk, os="debian", min_memory_mib=256)
    assert image.image_id.startswith("bafkrei") and image.format == "qcow2"
    again = registry.register("debian-12-copy", disk=disk)
    assert again.image_id == image.image_id  # stored by content: one object
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd"
    kernel.write_bytes(b"kernel bytes")
    initrd.write_bytes(b"initrd bytes")
    tiny = registry.register("tiny", format="kernel", kernel=kernel, initrd=initrd,
                             cmdline="console=ttyS0", tags=["test"])  # fmt: skip
    assert [i.name for i in registry.list()] == ["debian-12-copy", "tiny"]
    edited = registry.edit(tiny.image_id, description="busybox", tags=["test", "small"])
    assert edited.description == "busybox" and edited.tags == ("test", "small")
    boot = registry.boot_source(tiny.image_id)
    assert boot.kernel is not None and boot.kernel.read_bytes() == b"kernel bytes"
    assert boot.cmdline == "console=ttyS0"
    assert registry.boot_source(image.image_id).disk_format == "qcow2"
    registry.delete(tiny.image_id)
    with pytest.raises(NotFound):
        registry.get(tiny.image_id)


def test_unsafe_or_wrong_images_are_refused(registry: ImageRegistry, tmp_path: Path) -> None:
    raw = _img(tmp_path / "disk.raw", "raw")
    with pytest.raises(StorageError, match="not qcow2"):
        registry.register("liar", disk=raw, format="qcow2")
    base = _img(tmp_path / "base.qcow2", "qcow2")
    overlay = _img(tmp_path / "overlay.qcow2", "qcow2", "-b", str(base), "-F", "qcow2")
    with pytest.raises(StorageError, match="backing file"):
        registry.register("sneaky", disk=overlay)
    junk = tmp_path / "junk.qcow2"
    junk.write_bytes(b"not an image")
    with pytest.raises(StorageError):
        registry.register("junk", disk=junk)
    with pytest.raises(StorageError):
        registry.register("Bad Name", disk=base)
    with pytest.raises(StorageError):
        registry.register("k", format="kernel", kernel=base)
    with pytest.raises(StorageError, match="unknown image field"):
        registry.register("x", disk=base, colour="red")
    with pytest.raises(StorageError):
        registry.register("x", disk=base, min_disk_gib=-1)
    assert registry.list() == []


def test_an_image_in_use_cannot_be_deleted(tmp_path: Path) -> None:
    require_tools("qemu-img")
    used: set[str] = set()
    registry = ImageRegistry(tmp_path / "i", ObjectStore(tmp_path / "o"), in_use=used.__contains__)
    image = registry.register("base", disk=_img(tmp_path / "b.qcow2", "qcow2"))
    used.add(image.image_id)
    with pytest.raises(StorageError, match="in use"):
        registry.delete(image.image_id)
    used.clear()
    registry.delete(image.image_id)
