"""Choosing QEMU's accelerator by trying: KVM ("type1") when a trial boot works, else TCG ("type2").

The KVM device can exist and a KVM boot still fail: hang without a word (nested virtualization
without support) or abort (a host that refuses the CPU model's MSRs). So the only reliable test
is a boot: the tiny image is started under KVM, with the CPU model the QEMU driver uses, and
must print its boot marker on the serial console within a timeout (a working KVM boots it in
about a second, TCG in about five; the default 20 s leaves room for a loaded host). The verdict
is cached in a small JSON file with the host's fingerprint (kernel release, QEMU binary), so an
agent pays for the trial once per host and again after a kernel or QEMU update (or ``force``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from powerverse.infra.tinyimage import BOOT_MARKER, TinyImage
from powerverse.infra.tools import find_tool

__all__ = [
    "ACCELS",
    "KVM_DEVICE",
    "cpu_model",
    "detect_accel",
    "host_fingerprint",
    "kvm_boots",
    "trial_boot",
]

KVM_DEVICE = Path("/dev/kvm")
ACCELS = ("kvm", "tcg")


def cpu_model(accel: str) -> str:
    """The ``-cpu`` model for ``accel``: the host's own CPU under KVM, QEMU's fullest under TCG."""
    return "host" if accel == "kvm" else "max"


def trial_boot(image: TinyImage, *, accel: str, timeout: float) -> bool:
    """Whether the tiny image prints its boot marker under ``accel`` within ``timeout`` s."""
    if accel not in ACCELS:
        raise ValueError(f"accel must be one of {ACCELS}, not {accel!r}")
    qemu = find_tool("qemu-system-x86_64")
    with tempfile.TemporaryDirectory(prefix=f"pv-{accel}-trial-") as tmp:
        console = Path(tmp) / "console.log"
        proc = subprocess.Popen(
            [qemu, "-machine", f"pc,accel={accel}", "-cpu", cpu_model(accel),
             "-m", "128", "-smp", "1",
             "-kernel", str(image.kernel), "-initrd", str(image.initrd),
             "-append", image.cmdline, "-display", "none", "-no-reboot",
             "-serial", f"file:{console}", "-monitor", "none", "-nic", "none"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if console.exists() and BOOT_MARKER in console.read_text(errors="replace"):
                    return True
                time.sleep(0.2)
            return False
        finally:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def kvm_boots(image: TinyImage, *, timeout: float = 20.0, device: Path = KVM_DEVICE) -> bool:
    """Whether the tiny image boots under KVM; False at once without a usable KVM device."""
    if not device.exists() or not os.access(device, os.R_OK | os.W_OK):
        return False
    return trial_boot(image, accel="kvm", timeout=timeout)


def host_fingerprint(device: Path = KVM_DEVICE) -> str:
    """What the verdict depends on: the host kernel, the QEMU binary and the KVM device."""
    qemu = Path(find_tool("qemu-system-x86_64")).resolve()
    st = qemu.stat()
    return f"{os.uname().release}|{qemu}:{st.st_size}:{int(st.st_mtime)}|{device.exists()}"


def detect_accel(
    cache_file: Path,
    image: TinyImage,
    *,
    timeout: float = 20.0,
    force: bool = False,
    device: Path = KVM_DEVICE,
    clock: Callable[[], float] = time.time,
) -> str:
    """ "kvm" or "tcg": the cached verdict for this host, or a trial boot's (then cached)."""
    fingerprint = host_fingerprint(device)
    if not force:
        try:
            cached = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cached = None
        if (
            isinstance(cached, dict)
            and cached.get("accel") in ACCELS
            and cached.get("host") == fingerprint
        ):
            return str(cached["accel"])
    accel = "kvm" if kvm_boots(image, timeout=timeout, device=device) else "tcg"
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"accel": accel, "host": fingerprint, "checked_at": int(clock())}))
    tmp.replace(cache_file)
    return accel
