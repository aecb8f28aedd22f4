"""Choosing QEMU's accelerator by trying: KVM ("type1") when a trial boot works, else TCG ("type2").

The KVM device can exist and a KVM boot still hang (nested virtualization without support, a
broken host module...), so the only reliable test is a boot: the tiny image is started under
KVM and must print its boot marker on the serial console within a timeout. The verdict is cached
in a small JSON file so an agent pays for the trial once per host (and again with ``force``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from powerverse.infra.tinyimage import BOOT_MARKER, TinyImage
from powerverse.infra.tools import find_tool

__all__ = ["KVM_DEVICE", "detect_accel", "kvm_boots"]

KVM_DEVICE = Path("/dev/kvm")


def kvm_boots(image: TinyImage, *, timeout: float = 30.0, device: Path = KVM_DEVICE) -> bool:
    """Whether the tiny image boots under KVM (prints its marker) within ``timeout`` seconds."""
    if not device.exists() or not os.access(device, os.R_OK | os.W_OK):
        return False
    qemu = find_tool("qemu-system-x86_64")
    with tempfile.TemporaryDirectory(prefix="pv-kvm-trial-") as tmp:
        console = Path(tmp) / "console.log"
        proc = subprocess.Popen(
            [qemu, "-machine", "pc,accel=kvm", "-cpu", "host", "-m", "128", "-smp", "1",
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
            proc.wait()


def detect_accel(
    cache_file: Path,
    image: TinyImage,
    *,
    timeout: float = 30.0,
    force: bool = False,
    device: Path = KVM_DEVICE,
) -> str:
    """ "kvm" or "tcg", from the cache or a trial boot (then cached)."""
    if not force and cache_file.exists():
        try:
            cached = json.loads(cache_file.read_text()).get("accel")
        except ValueError:
            cached = None
        if cached in ("kvm", "tcg"):
            return str(cached)
    accel = "kvm" if kvm_boots(image, timeout=timeout, device=device) else "tcg"
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps({"accel": accel, "checked_at": int(time.time())}))
    return accel
