"""What this machine has: CPU, GPUs (NVML), memory, disks, network interfaces, location.

Everything is read from ``/proc`` and ``/sys`` (injectable roots, so tests can use fixture
trees), psutil, and NVML through ``pynvml`` when an NVIDIA driver is present (no driver: no
GPUs, not an error). Memory speed comes from ``dmidecode`` where the machine tells (root, SMBIOS
present); virtual machines usually do not, and then it is None. Disk kinds are guessed from the
device name and the rotational flag; virtual disks report no truth, which is why the benchmark
measures disk speed instead of trusting the kind.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

__all__ = ["Cpu", "Disk", "Gpu", "HostHardware", "Nic", "cuda_cores_per_sm", "discover"]


@dataclass(frozen=True, kw_only=True)
class Cpu:
    """The host CPU."""

    model: str
    cores: int
    threads: int
    max_mhz: int
    virtualization: tuple[str, ...]  # "vmx" (Intel VT-x), "svm" (AMD-V)


@dataclass(frozen=True, kw_only=True)
class Gpu:
    """One GPU as NVML reports it."""

    model: str
    memory_mib: int
    cuda_cores: int
    compute_capability: str
    pci_bus_id: str = ""


@dataclass(frozen=True, kw_only=True)
class Disk:
    """One block device."""

    name: str
    model: str
    kind: str  # "nvme" | "ssd" | "hdd" | "virtual"
    size_gb: int


@dataclass(frozen=True, kw_only=True)
class Nic:
    """One network interface."""

    name: str
    addresses: tuple[str, ...]
    speed_mbps: int
    up: bool


@dataclass(frozen=True, kw_only=True)
class HostHardware:
    """Everything discovered, plus the configured location."""

    cpu: Cpu
    memory_mib: int
    memory_mhz: int | None
    gpus: tuple[Gpu, ...] = ()
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    location: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly document."""
        return asdict(self)


# CUDA cores per streaming multiprocessor by compute capability (NVIDIA's published figures).
_CORES_PER_SM = {
    (3, 0): 192, (3, 5): 192, (3, 7): 192, (5, 0): 128, (5, 2): 128, (5, 3): 128,
    (6, 0): 64, (6, 1): 128, (6, 2): 128, (7, 0): 64, (7, 2): 64, (7, 5): 64,
    (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128, (9, 0): 128,
    (10, 0): 128, (12, 0): 128,
}  # fmt: skip


def cuda_cores_per_sm(major: int, minor: int) -> int:
    """CUDA cores per SM for a compute capability (newest known figure for unknown ones)."""
    return _CORES_PER_SM.get((major, minor), 128)


def _cpu(procfs: Path, sysfs: Path) -> Cpu:
    model, flags, physical = "unknown", set(), set()
    try:
        text = (procfs / "cpuinfo").read_text()
    except OSError:
        text = ""
    core_ids = set()
    block: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if block:
                model = block.get("model name", model)
                flags |= set(block.get("flags", "").split())
                physical.add(block.get("physical id", "0"))
                core_ids.add(
                    (
                        block.get("physical id", "0"),
                        block.get("core id", block.get("processor", "0")),
                    )
                )
            block = {}
            continue
        key, _, value = line.partition(":")
        block[key.strip()] = value.strip()
    threads = psutil.cpu_count(logical=True) or max(1, len(core_ids))
    cores = psutil.cpu_count(logical=False) or max(1, len(core_ids))
    max_mhz = 0
    with contextlib.suppress(OSError, ValueError):
        khz = (sysfs / "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()
        max_mhz = int(khz) // 1000
    if not max_mhz:
        mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", text)
        freq = psutil.cpu_freq() if hasattr(psutil, "cpu_freq") else None
        max_mhz = int(float(mhz.group(1))) if mhz else int(freq.max or freq.current) if freq else 0
    return Cpu(
        model=model,
        cores=cores,
        threads=threads,
        max_mhz=max_mhz,
        virtualization=tuple(sorted(flags & {"vmx", "svm"})),
    )


def _gpus() -> tuple[Gpu, ...]:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, no library, no device: a host without NVIDIA GPUs
        return ()
    try:
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            sms = (
                pynvml.nvmlDeviceGetNumGpuCores(handle)
                if hasattr(pynvml, "nvmlDeviceGetNumGpuCores")
                else 0
            )
            found.append(
                Gpu(
                    model=name.decode() if isinstance(name, bytes) else str(name),
                    memory_mib=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total) >> 20,
                    cuda_cores=int(sms),
                    compute_capability=f"{major}.{minor}",
                    pci_bus_id=str(pynvml.nvmlDeviceGetPciInfo(handle).busId),
                )
            )
        return tuple(found)
    except Exception:
        return ()
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _memory_mhz() -> int | None:
    dmidecode = shutil.which("dmidecode")
    if dmidecode is None:
        return None
    try:
        out = subprocess.run(
            [dmidecode, "-t", "memory"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    speeds = [int(m) for m in re.findall(r"(?:Configured Memory |)Speed:\s*(\d+)\s*MT/s", out)]
    return max(speeds) if speeds else None


def _disks(sysfs: Path) -> tuple[Disk, ...]:
    found = []
    root = sysfs / "block"
    for dev in sorted(root.iterdir()) if root.is_dir() else []:
        name = dev.name
        if name.startswith(("loop", "ram", "zram", "dm-", "sr", "md")):
            continue
        try:
            sectors = int((dev / "size").read_text())
            rotational = (dev / "queue/rotational").read_text().strip() == "1"
        except (OSError, ValueError):
            continue
        model = ""
        with contextlib.suppress(OSError):
            model = (dev / "device/model").read_text().strip()
        if name.startswith("nvme"):
            kind = "nvme"
        elif name.startswith(("vd", "xvd")):
            kind = "virtual"
        else:
            kind = "hdd" if rotational else "ssd"
        found.append(Disk(name=name, model=model, kind=kind, size_gb=sectors * 512 // 10**9))
    return tuple(found)


def _nics() -> tuple[Nic, ...]:
    stats = psutil.net_if_stats()
    found = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        if name == "lo":
            continue
        st = stats.get(name)
        found.append(
            Nic(
                name=name,
                addresses=tuple(
                    a.address for a in addrs if a.family.name in ("AF_INET", "AF_INET6")
                ),
                speed_mbps=int(st.speed) if st else 0,
                up=bool(st.isup) if st else False,
            )
        )
    return tuple(found)


def discover(
    location: dict[str, Any] | None = None,
    *,
    procfs: Path = Path("/proc"),
    sysfs: Path = Path("/sys"),
) -> HostHardware:
    """Discover this machine's hardware."""
    return HostHardware(
        cpu=_cpu(procfs, sysfs),
        memory_mib=psutil.virtual_memory().total >> 20,
        memory_mhz=_memory_mhz(),
        gpus=_gpus(),
        disks=_disks(sysfs),
        nics=_nics(),
        location=dict(location or {}),
    )
