"""A tiny bootable VM image built from the host's own packages (tests, benchmarks, demos).

The image is Debian's cloud kernel (``/boot/vmlinuz-*-cloud-amd64``) with an initramfs holding a
static busybox, the virtio modules the kernel needs (with their dependencies from
``modules.dep``, loaded in order) and dropbear (the SSH server, with the shared libraries it
links). Nothing is downloaded. Its ``/init``:

- prints ``PV-BOOT-OK`` on the serial console once the system is up;
- reads a cloud-init NoCloud seed (an ISO9660 volume labelled ``cidata``, as
  :mod:`powerverse.infra.cloudinit` writes) for ``ssh_authorized_keys``, the hostname and
  ``runcmd`` lines, like cloud-init does on cloud images;
- brings up eth0 with DHCP (QEMU user networking) and starts dropbear on port 22 (root login
  by key only);
- every second brings hot-plugged CPUs online and prints a status line
  ``PV-STATUS cpus=<online> memtotal_kb=<n> memfree_kb=<n>`` so a test can see what the
  guest sees.

:func:`build_tiny_image` caches the result by content hash in a directory the caller chooses.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from powerverse.infra.exceptions import ToolMissing
from powerverse.infra.tools import find_tool

__all__ = ["BOOT_MARKER", "STATUS_PREFIX", "TinyImage", "build_tiny_image", "find_kernel"]

BOOT_MARKER = "PV-BOOT-OK"
STATUS_PREFIX = "PV-STATUS"
MODULES = (
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
    "virtio_balloon", "virtio_blk", "virtio_net", "cdrom", "isofs",
)  # fmt: skip
CMDLINE = "console=ttyS0 panic=-1 quiet"

_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mkdir -p /proc /sys /dev /tmp /run /root/.ssh /etc/dropbear /mnt/seed /var/log
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
for m in $(cat /etc/modules.order); do insmod /lib/modules/$m.ko 2>/dev/null; done
sleep 0.3
hostname pv-vm
# the items of a top-level list in the seed's user-data (the subset of YAML cloud-init writes)
yaml_list() {
  awk -v key="$1:" '$1==key{k=1;next} /^[^ -]/{k=0}
    k&&/^ *- /{sub(/^ *- */,"");gsub(/^"|"$/,"");print}' /mnt/seed/user-data
}
# cloud-init NoCloud seed: the first ISO9660 disk carrying user-data
for dev in /dev/vd? /dev/sr?; do
  [ -b "$dev" ] || continue
  if mount -t iso9660 -o ro "$dev" /mnt/seed 2>/dev/null; then
    if [ -f /mnt/seed/user-data ]; then
      yaml_list ssh_authorized_keys > /root/.ssh/authorized_keys
      yaml_list runcmd > /etc/runcmd
      h=$(awk '/^local-hostname:/{print $2}' /mnt/seed/meta-data 2>/dev/null)
      [ -n "$h" ] && hostname "$h"
      break
    fi
    umount /mnt/seed
  fi
done
chmod 700 /root/.ssh; chmod 600 /root/.ssh/authorized_keys 2>/dev/null
ip link set lo up
if ip link show eth0 >/dev/null 2>&1; then
  ip link set eth0 up
  udhcpc -q -n -t 5 -i eth0 -s /etc/udhcpc.script >/dev/null 2>&1
fi
dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1
dropbear -R -s -E -p 22 2>/var/log/dropbear.log
[ -f /etc/runcmd ] && sh /etc/runcmd > /var/log/runcmd.log 2>&1
echo PV-BOOT-OK
while true; do
  for c in /sys/devices/system/cpu/cpu[0-9]*; do
    [ -f "$c/online" ] && [ "$(cat $c/online)" = 0 ] && echo 1 > "$c/online"
  done
  cpus=$(grep -c ^processor /proc/cpuinfo)
  total=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)
  free=$(awk '/^MemFree:/{print $2}' /proc/meminfo)
  echo "PV-STATUS cpus=$cpus memtotal_kb=$total memfree_kb=$free"
  sleep 1
done
"""

_UDHCPC = r"""#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "$router" dev "$interface"
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
"""


@dataclass(frozen=True)
class TinyImage:
    """A kernel and initramfs pair, with the kernel command line to boot them."""

    kernel: Path
    initrd: Path
    cmdline: str = CMDLINE


def find_kernel(boot: Path = Path("/boot")) -> tuple[Path, str]:
    """The newest Debian cloud kernel on the host and its version."""
    kernels = sorted(boot.glob("vmlinuz-*-cloud-amd64"))
    if not kernels:
        raise ToolMissing(
            f"no cloud kernel in {boot} (Debian: apt-get install linux-image-cloud-amd64)"
        )
    kernel = kernels[-1]
    return kernel, kernel.name.removeprefix("vmlinuz-")


def _module_order(modules_dir: Path) -> list[tuple[str, Path]]:
    """The wanted modules and their dependencies, each after what it needs."""
    deps: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        name = Path(target).name.split(".ko")[0]
        paths[name] = target
        deps[name] = [Path(d).name.split(".ko")[0] for d in rest.split()]
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or name not in paths:
            return
        for dep in reversed(deps[name]):
            visit(dep)
        order.append(name)

    for module in MODULES:
        visit(module)
    return [(name, modules_dir / paths[name]) for name in order]


def _shared_libs(binary: str) -> list[Path]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/"):
                libs.append(Path(part))
                break
    return libs


def _newc(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A cpio archive in the kernel's "newc" format (directories implied by paths)."""
    out = io.BytesIO()
    dirs: set[str] = set()
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    entries = [(d, b"", stat.S_IFDIR | 0o755) for d in sorted(dirs)]
    entries += [(p, data, stat.S_IFREG | mode) for p, (data, mode) in sorted(files.items())]
    entries.append(("TRAILER!!!", b"", 0))
    for ino, (name, data, mode) in enumerate(entries, start=1):
        raw_name = name.encode() + b"\0"
        header = "070701" + "".join(
            f"{v:08x}" for v in (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw_name), 0)
        )
        out.write(header.encode() + raw_name)
        out.write(b"\0" * (-(110 + len(raw_name)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
    return out.getvalue()


def build_tiny_image(cache_dir: Path, *, boot: Path = Path("/boot")) -> TinyImage:
    """Build (or reuse from ``cache_dir``) the tiny image; needs busybox, dropbear, the kernel."""
    kernel, version = find_kernel(boot)
    busybox = find_tool("busybox")
    dropbear = shutil.which("dropbear") or shutil.which("dropbear", path="/usr/sbin")
    dropbearkey = shutil.which("dropbearkey")
    if dropbear is None or dropbearkey is None:
        raise ToolMissing("dropbear is not installed (Debian: apt-get install dropbear-bin)")
    modules = _module_order(Path("/lib/modules") / version)
    files: dict[str, tuple[bytes, int]] = {
        "init": (_INIT.encode(), 0o755),
        "etc/udhcpc.script": (_UDHCPC.encode(), 0o755),
        "etc/passwd": (b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
        "etc/group": (b"root:x:0:\n", 0o644),
        "etc/shells": (b"/bin/sh\n", 0o644),
        "etc/modules.order": ("\n".join(n for n, _ in modules).encode() + b"\n", 0o644),
        "bin/busybox": (Path(busybox).read_bytes(), 0o755),
        "usr/sbin/dropbear": (Path(dropbear).read_bytes(), 0o755),
        "usr/bin/dropbearkey": (Path(dropbearkey).read_bytes(), 0o755),
    }
    for name, module in modules:
        files[f"lib/modules/{name}.ko"] = (module.read_bytes(), 0o644)
    for binary in (dropbear, dropbearkey):
        for lib in _shared_libs(binary):
            real = lib.resolve()
            files[str(lib).lstrip("/")] = (real.read_bytes(), 0o755)
    digest = hashlib.sha256(kernel.read_bytes())
    for name, (data, mode) in sorted(files.items()):
        digest.update(f"{name}:{mode}:{len(data)}:".encode() + hashlib.sha256(data).digest())
    key = digest.hexdigest()[:16]
    out = cache_dir / f"tiny-{key}"
    image = TinyImage(kernel=out / "vmlinuz", initrd=out / "initrd.img")
    if image.kernel.exists() and image.initrd.exists():
        return image
    tmp = cache_dir / f".tiny-{key}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(kernel, tmp / "vmlinuz")
    (tmp / "initrd.img").write_bytes(gzip.compress(_newc(files), compresslevel=6, mtime=0))
    try:
        tmp.rename(out)
    except OSError:  # built concurrently by another process: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return image
