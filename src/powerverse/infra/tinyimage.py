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
- reboots on Ctrl-Alt-Del (the QEMU driver's soft reboot), printing ``PV-REBOOT``;
- every second brings hot-plugged CPUs online and prints a status line
  ``PV-STATUS cpus=<online> memtotal_kb=<n> memfree_kb=<n> balloon_kb=<n>`` (the last is the
  memory the balloon driver holds, from ``/proc/vmstat``) so a test can see what the guest sees.

:func:`build_tiny_image` caches the result by content hash in a directory the caller chooses.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import stat
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from powerverse.infra.exceptions import ToolMissing
from powerverse.infra.tools import find_tool

__all__ = [
    "BOOT_MARKER",
    "MIN_MEMORY_MIB",
    "MODULES",
    "STATUS_PREFIX",
    "TinyImage",
    "build_tiny_image",
    "find_kernel",
    "module_order",
]

BOOT_MARKER = "PV-BOOT-OK"
STATUS_PREFIX = "PV-STATUS"
MODULES = (
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
    "virtio_balloon", "virtio_blk", "virtio_net", "cdrom", "isofs",
)  # fmt: skip
CMDLINE = "console=ttyS0 panic=-1 quiet"
MIN_MEMORY_MIB = 96  # measured: with 64 MiB the kernel dies before its first console line

_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mkdir -p /proc /sys /dev /tmp /run /root/.ssh /etc/dropbear /mnt/seed /var/log
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
# Ctrl-Alt-Del (QMP send-key, the driver's soft reboot) reaches PID 1 as SIGINT
trap 'echo PV-REBOOT; sync; reboot -f' INT
for m in $(cat /etc/modules.order); do
  insmod /lib/modules/$m.ko 2>/dev/null || echo "PV-MODULE-FAILED $m"
done
sleep 0.3
hostname pv-vm
# the items of a top-level list in the seed's user-data (the subset of YAML cloud-init writes)
yaml_list() {
  awk -v key="$1:" '$1==key{k=1;next} /^[^ -]/{k=0}
    k&&/^ *- /{sub(/^ *- */,"");gsub(/^"|"$/,"");print}' /mnt/seed/user-data
}
# cloud-init NoCloud seed: the ISO9660 volume labelled cidata
seed=$(findfs LABEL=cidata 2>/dev/null)
if [ -n "$seed" ] && mount -t iso9660 -o ro "$seed" /mnt/seed; then
  yaml_list ssh_authorized_keys > /root/.ssh/authorized_keys
  yaml_list runcmd > /etc/runcmd
  h=$(awk '/^local-hostname:/{print $2}' /mnt/seed/meta-data 2>/dev/null)
  [ -n "$h" ] && hostname "$h"
  echo "PV-SEED keys=$(grep -c . /root/.ssh/authorized_keys)"
fi
chmod 700 /root/.ssh; chmod 600 /root/.ssh/authorized_keys 2>/dev/null
ip link set lo up
if ip link show eth0 >/dev/null 2>&1; then
  ip link set eth0 up
  if [ -f /mnt/seed/network-config ]; then  # a routed lease network: a static address
    addr=$(awk '/^ *- [0-9.]+\/[0-9]+$/{print $2; exit}' /mnt/seed/network-config)
    gw=$(awk '$1=="via:"{print $2; exit}' /mnt/seed/network-config)
    ip addr add "$addr" dev eth0 && ip route add default via "$gw" dev eth0
    echo "PV-NET addr=$addr gw=$gw"
  else
    udhcpc -q -n -t 3 -T 1 -i eth0 -s /etc/udhcpc.script >/dev/null 2>&1
  fi
fi
dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1
dropbear -s -E -p 22 -r /etc/dropbear/dropbear_ed25519_host_key 2>/var/log/dropbear.log
[ -f /etc/runcmd ] && sh /etc/runcmd > /var/log/runcmd.log 2>&1
echo PV-BOOT-OK
while true; do
  for c in /sys/devices/system/cpu/cpu[0-9]*; do
    [ -f "$c/online" ] && [ "$(cat $c/online)" = 0 ] && echo 1 > "$c/online"
  done
  cpus=$(grep -c ^processor /proc/cpuinfo)
  mem=$(awk '/^MemTotal:/{t=$2} /^MemFree:/{f=$2} END{print "memtotal_kb=" t " memfree_kb=" f}' \
    /proc/meminfo)
  balloon=$(awk '/^balloon_inflate /{i=$2} /^balloon_deflate /{d=$2}
    END{if (i != "") print " balloon_kb=" (i-d)*4}' /proc/vmstat)
  echo "PV-STATUS cpus=$cpus $mem$balloon"
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


def _version_key(path: Path) -> tuple[tuple[int, str], ...]:
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.-]", path.name))


def find_kernel(boot: Path = Path("/boot")) -> tuple[Path, str]:
    """The newest Debian cloud kernel on the host and its version."""
    kernels = sorted(boot.glob("vmlinuz-*-cloud-amd64"), key=_version_key)
    if not kernels:
        raise ToolMissing(
            f"no cloud kernel in {boot} (Debian: apt-get install linux-image-cloud-amd64)"
        )
    kernel = kernels[-1]
    return kernel, kernel.name.removeprefix("vmlinuz-")


def _module_name(path: str) -> str:
    return Path(path).name.split(".ko")[0].replace("-", "_")


def module_order(modules_dir: Path) -> list[tuple[str, Path]]:
    """The wanted modules that the kernel has as modules (built-in ones need no loading) and
    their dependencies from ``modules.dep``, each after what it needs."""
    deps: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    try:
        lines = (modules_dir / "modules.dep").read_text().splitlines()
    except FileNotFoundError:
        raise ToolMissing(
            f"no {modules_dir}/modules.dep: the cloud kernel's modules are missing "
            "(Debian: apt-get install --reinstall linux-image-cloud-amd64)"
        ) from None
    for line in lines:
        target, _, rest = line.partition(":")
        name = _module_name(target)
        paths[name] = target
        deps[name] = [_module_name(d) for d in rest.split()]
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


def _module_bytes(path: Path) -> bytes:
    """A module's ELF object, decompressed (busybox ``insmod`` loads plain ``.ko`` files)."""
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(data)
    if path.name.endswith(".ko"):
        return data
    raise ToolMissing(f"cannot unpack kernel module {path} (only .ko, .ko.xz and .ko.gz)")


def _shared_libs(binary: str) -> list[Path]:
    """The shared libraries ``binary`` loads (the dynamic loader included), from ``ldd``."""
    done = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    libs = []
    for line in done.stdout.splitlines():
        for part in line.split():
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


def _static_busybox() -> str:
    busybox = find_tool("busybox")
    done = subprocess.run(["ldd", busybox], capture_output=True, text=True, check=False)
    if "=>" in done.stdout:
        raise ToolMissing(
            f"{busybox} is linked dynamically; the image needs a static one "
            "(Debian: apt-get install busybox-static)"
        )
    return busybox


def _image_entries(version: str, modules_root: Path) -> dict[str, tuple[bytes, int]]:
    busybox = _static_busybox()
    dropbear = shutil.which("dropbear") or shutil.which("dropbear", path="/usr/sbin")
    dropbearkey = shutil.which("dropbearkey") or shutil.which("dropbearkey", path="/usr/bin")
    if dropbear is None or dropbearkey is None:
        raise ToolMissing("dropbear is not installed (Debian: apt-get install dropbear-bin)")
    modules = module_order(modules_root / version)
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
        files[f"lib/modules/{name}.ko"] = (_module_bytes(module), 0o644)
    for binary in (dropbear, dropbearkey):
        for lib in _shared_libs(binary):
            files[str(lib).lstrip("/")] = (lib.resolve().read_bytes(), 0o755)
    return files


def build_tiny_image(
    cache_dir: Path, *, boot: Path = Path("/boot"), modules: Path = Path("/lib/modules")
) -> TinyImage:
    """Build (or reuse from ``cache_dir``) the tiny image from the host's kernel, busybox and
    dropbear; the cache key is a hash of everything that goes in, so a kernel or package
    update makes a new image and concurrent builders agree on the result."""
    kernel, version = find_kernel(boot)
    files = _image_entries(version, modules)
    digest = hashlib.sha256(kernel.read_bytes())
    for name, (data, mode) in sorted(files.items()):
        digest.update(f"{name}:{mode}:{len(data)}:".encode() + hashlib.sha256(data).digest())
    key = digest.hexdigest()[:16]
    out = cache_dir / f"tiny-{key}"
    image = TinyImage(kernel=out / "vmlinuz", initrd=out / "initrd.img")
    if image.kernel.exists() and image.initrd.exists():
        return image
    tmp = cache_dir / f".tiny-{key}.{os.getpid()}.{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        shutil.copyfile(kernel, tmp / "vmlinuz")
        (tmp / "initrd.img").write_bytes(gzip.compress(_newc(files), compresslevel=6, mtime=0))
        tmp.rename(out)
    except OSError:
        if not (image.kernel.exists() and image.initrd.exists()):
            raise  # not a concurrent build that got there first: a real failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return image
