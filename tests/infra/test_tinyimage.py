"""The tiny image: what its initramfs holds (read back with busybox cpio), the virtio modules in
dependency order, the content-hash cache, compressed modules, kernel choice, and clear errors
when the host lacks the parts. Booting it is tested by the QEMU driver's and accel's tests."""

from __future__ import annotations

import gzip
import lzma
import shutil
import subprocess
from pathlib import Path

import pytest

from powerverse.infra.exceptions import ToolMissing
from powerverse.infra.tinyimage import (
    BOOT_MARKER,
    TinyImage,
    build_tiny_image,
    find_kernel,
    module_order,
)
from tests.infra.conftest import require_tools


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("busybox", "dropbear")
    return tmp_path_factory.mktemp("tiny-cache")


@pytest.fixture(scope="module")
def image(cache: Path) -> TinyImage:
    return build_tiny_image(cache)


def unpack(initrd: Path, into: Path) -> Path:
    """Extract the initramfs with busybox's cpio."""
    into.mkdir()
    subprocess.run(
        ["busybox", "cpio", "-i", "-d", "-H", "newc"],
        input=gzip.decompress(initrd.read_bytes()), cwd=into, check=True, capture_output=True,
    )  # fmt: skip
    return into


def test_the_initramfs_holds_init_busybox_dropbear_and_its_libraries(
    image: TinyImage, tmp_path: Path
) -> None:
    root = unpack(image.initrd, tmp_path / "root")
    init = (root / "init").read_text()
    assert init.startswith("#!/bin/busybox sh") and BOOT_MARKER in init
    assert "findfs LABEL=cidata" in init and "dropbearkey" in init and "udhcpc" in init
    assert (root / "init").stat().st_mode & 0o111
    assert (root / "bin/busybox").read_bytes() == Path(shutil.which("busybox") or "").read_bytes()
    dropbear = shutil.which("dropbear") or "/usr/sbin/dropbear"
    assert (root / "usr/sbin/dropbear").read_bytes() == Path(dropbear).read_bytes()
    ldd = subprocess.run(["ldd", dropbear], capture_output=True, text=True, check=True).stdout
    libs = [part for line in ldd.splitlines() for part in line.split() if part.startswith("/")]
    assert libs and all((root / lib.lstrip("/")).is_file() for lib in libs)
    assert image.kernel.read_bytes() == find_kernel()[0].read_bytes()
    assert "console=ttyS0" in image.cmdline


def test_virtio_modules_come_in_dependency_order(image: TinyImage, tmp_path: Path) -> None:
    root = unpack(image.initrd, tmp_path / "root")
    order = (root / "etc/modules.order").read_text().split()
    for name in order:
        assert (root / f"lib/modules/{name}.ko").read_bytes()[:4] == b"\x7fELF"
    chain = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev"]
    chain += ["virtio_pci", "virtio_balloon"]
    present = [m for m in chain if m in order]
    assert present == sorted(present, key=order.index)  # each after what it needs
    for driver in ("virtio_balloon", "virtio_net", "virtio_blk"):  # modular in Debian's kernel
        assert order.index("virtio_pci") < order.index(driver)
    assert order.index("cdrom") < order.index("isofs") or "cdrom" not in order


def test_the_build_is_cached_by_content(image: TinyImage, cache: Path, tmp_path: Path) -> None:
    mtime = image.initrd.stat().st_mtime_ns
    again = build_tiny_image(cache)
    assert again == image and image.initrd.stat().st_mtime_ns == mtime  # reused, not rebuilt
    elsewhere = build_tiny_image(tmp_path / "other")
    assert elsewhere.initrd.parent.name == image.initrd.parent.name  # same inputs, same key
    assert elsewhere.initrd.read_bytes() == image.initrd.read_bytes()  # reproducible
    assert [p.name for p in cache.iterdir()] == [image.initrd.parent.name]  # no temp dirs left


def test_compressed_modules_are_unpacked(image: TinyImage, tmp_path: Path) -> None:
    """A kernel whose modules ship as .ko.xz (newer Debian) gets plain .ko files in the image."""
    _, version = find_kernel()
    real = Path("/lib/modules") / version
    fake = tmp_path / "modules" / version
    wanted = module_order(real)
    lines = []
    for line in (real / "modules.dep").read_text().splitlines():
        target, _, deps = line.partition(":")
        if any(target == str(path.relative_to(real)) for _, path in wanted):
            xz = [f"{d}.xz" for d in deps.split()]
            lines.append(f"{target}.xz: {' '.join(xz)}".rstrip())
            (fake / f"{target}.xz").parent.mkdir(parents=True, exist_ok=True)
            (fake / f"{target}.xz").write_bytes(lzma.compress((real / target).read_bytes()))
    (fake / "modules.dep").write_text("\n".join(lines) + "\n")
    built = build_tiny_image(tmp_path / "cache", modules=tmp_path / "modules")
    assert built.initrd.read_bytes() == image.initrd.read_bytes()  # identical contents


def test_the_newest_cloud_kernel_is_chosen(tmp_path: Path) -> None:
    for version in ("6.1.0-9", "6.1.0-50", "6.1.0-10"):
        (tmp_path / f"vmlinuz-{version}-cloud-amd64").write_bytes(b"k")
    (tmp_path / "vmlinuz-6.1.0-99-amd64").write_bytes(b"not a cloud kernel")
    kernel, version = find_kernel(tmp_path)
    assert version == "6.1.0-50-cloud-amd64" and kernel.name == f"vmlinuz-{version}"


def test_missing_parts_are_named(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="linux-image-cloud-amd64"):
        find_kernel(tmp_path)
    with pytest.raises(ToolMissing, match=r"modules\.dep"):
        module_order(tmp_path)
    require_tools("busybox", "dropbear")
    with pytest.raises(ToolMissing, match=r"modules\.dep"):
        build_tiny_image(tmp_path / "cache", modules=tmp_path / "no-modules")
    assert not (tmp_path / "cache").exists()
