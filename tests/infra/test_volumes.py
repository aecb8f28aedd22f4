"""Volumes with real qemu-img: create, snapshot/restore, grow, and the refusals that protect
data (attached volumes, shrinking, unknown ids)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from powerverse.infra.exceptions import NotFound, StorageError
from powerverse.infra.volumes import VolumeService
from tests.infra.conftest import require_tools


@pytest.fixture
def volumes(tmp_path: Path) -> VolumeService:
    require_tools("qemu-img")
    return VolumeService(tmp_path)


def _info(path: Path) -> dict[str, object]:
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


def test_lifecycle(volumes: VolumeService, tmp_path: Path) -> None:
    vol = volumes.create("data", 1, owner="rental-3")
    assert vol.size_gib == 1 and vol.attached_to is None
    info = _info(volumes.path(vol.volume_id))
    assert info["format"] == "qcow2" and info["virtual-size"] == 1 << 30
    assert [v.volume_id for v in volumes.list(owner="rental-3")] == [vol.volume_id]
    assert volumes.list(owner="someone-else") == []

    vol = volumes.snapshot(vol.volume_id, "before")
    assert vol.snapshots == ("before",)
    volumes.restore(vol.volume_id, "before")
    vol = volumes.resize(vol.volume_id, 2)
    assert _info(volumes.path(vol.volume_id))["virtual-size"] == 2 << 30
    vol = volumes.delete_snapshot(vol.volume_id, "before")
    assert vol.snapshots == ()

    attachment = volumes.attachment(vol.volume_id, read_only=True)
    assert attachment.path == volumes.path(vol.volume_id) and attachment.read_only
    again = VolumeService(tmp_path)  # reopened after a restart
    assert again.get(vol.volume_id) == vol
    again.delete(vol.volume_id)
    assert not (tmp_path / "volumes" / f"{vol.volume_id}.qcow2").exists()
    with pytest.raises(NotFound):
        again.get(vol.volume_id)


def test_refusals_protect_data(volumes: VolumeService) -> None:
    vol = volumes.create("disk", 1)
    volumes.mark_attached(vol.volume_id, "rental-1")
    for action in (
        lambda: volumes.delete(vol.volume_id),
        lambda: volumes.resize(vol.volume_id, 4),
        lambda: volumes.snapshot(vol.volume_id, "s"),
        lambda: volumes.mark_attached(vol.volume_id, "rental-2"),
    ):
        with pytest.raises(StorageError, match="attached"):
            action()
    volumes.mark_detached(vol.volume_id)
    with pytest.raises(StorageError, match="only grows"):
        volumes.resize(vol.volume_id, 1)
    for name, size in (("Bad Name", 1), ("ok", 0), ("ok", 1 << 20)):
        with pytest.raises(StorageError):
            volumes.create(name, size)
    with pytest.raises(NotFound):
        volumes.restore(vol.volume_id, "never-taken")
    with pytest.raises(NotFound):
        volumes.path("no-such-volume")
    assert volumes.get(vol.volume_id).attached_to is None
