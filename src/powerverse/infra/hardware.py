"""What this machine has: CPU, GPUs (NVML), memory, disks, network interfaces, and its location.

Files are read under injectable roots (``procfs``, ``sysfs``) so tests run on fixture trees as
well as on the real machine; a missing or garbled file gives an unknown value (None, "", or the
item left out), never an error. Sources:

- CPU: ``/proc/cpuinfo`` (model, threads, physical cores, clock, ``vmx``/``svm`` flags) and
  ``/sys/devices/system/cpu/*/cpufreq`` for the maximum clock; psutil only when cpuinfo names
  no processors at all.
- GPUs: NVML through ``pynvml``; no library, no driver or no device is an empty list. CUDA
  cores are SMs × cores-per-SM of the compute capability.
- Memory: ``/proc/meminfo``; its speed from the SMBIOS type-17 tables (sysfs, root only) or
  ``dmidecode -t memory``, else None (virtual machines usually do not tell). SMBIOS gives
  MT/s, the figure sold as "DDR4-3200"; the market calls it MHz.
- Disks: ``/sys/block`` (loop, ram, zram, device-mapper, md, optical and nbd devices left out);
  kind from the name, the virtio driver or a hypervisor's vendor string, then the rotational
  flag. A virtual disk's kind says little, which is why the benchmark measures its speed.
- Network interfaces: psutil. Location: the provider's configuration.

:func:`decode_json` is the strict decoder of this package's JSON records (also used by the
benchmark results and the signed evidence): unknown or missing keys and wrong types are
errors naming the field.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import socket
import subprocess
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psutil

from powerverse.infra.exceptions import ConfigError

__all__ = [
    "CpuInfo",
    "DiskInfo",
    "GpuInfo",
    "HostHardware",
    "HostLocation",
    "MemoryInfo",
    "NicInfo",
    "Nvml",
    "cuda_cores_per_sm",
    "decode_json",
    "discover",
    "parse_dmidecode_memory",
    "parse_smbios_memory",
]

T = TypeVar("T")

# ---------------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True)
class CpuInfo:
    """The host CPU(s): model, physical cores, hardware threads, clocks and VM extensions."""

    model: str
    cores: int
    threads: int
    max_mhz: int | None
    current_mhz: int | None
    virtualization: tuple[str, ...]  # "vmx" (Intel VT-x), "svm" (AMD-V); empty: none exposed
    hypervisor: bool  # this machine is itself a virtual machine


@dataclass(frozen=True, kw_only=True)
class GpuInfo:
    """One GPU as NVML reports it."""

    index: int
    model: str
    memory_mib: int
    sm_count: int | None
    cuda_cores: int  # 0 when neither the SM count nor NVML's core count is known
    compute_capability: str  # "major.minor"
    pci_bus_id: str
    uuid: str


@dataclass(frozen=True, kw_only=True)
class MemoryInfo:
    """Main memory: size, and speed where the machine tells (MT/s, sold as "MHz")."""

    size_mib: int
    speed_mhz: int | None


@dataclass(frozen=True, kw_only=True)
class DiskInfo:
    """One whole block device."""

    name: str  # kernel name, e.g. "nvme0n1", "sda", "vda"
    model: str
    kind: str  # "nvme" | "ssd" | "hdd" | "virtual" | "unknown"
    size_bytes: int
    rotational: bool | None

    @property
    def size_gb(self) -> int:
        """Size in (decimal) GB, the market's unit."""
        return self.size_bytes // 10**9


@dataclass(frozen=True, kw_only=True)
class NicInfo:
    """One network interface (loopback left out)."""

    name: str
    mac: str
    addresses: tuple[str, ...]  # IPv4 and IPv6
    speed_mbps: int | None  # None: the driver does not say (common for virtual NICs)
    mtu: int
    up: bool


@dataclass(frozen=True, kw_only=True)
class HostLocation:
    """Where the machine is, from the provider's configuration (decimal degrees)."""

    region: str
    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        # floats always, so a report's canonical bytes survive a JSON round trip
        object.__setattr__(self, "latitude", float(self.latitude))
        object.__setattr__(self, "longitude", float(self.longitude))
        if not -90 <= self.latitude <= 90 or not -180 <= self.longitude <= 180:
            raise ConfigError(
                f"location ({self.latitude}, {self.longitude}) is off the globe: latitude is "
                "-90..90 and longitude -180..180 degrees"
            )


@dataclass(frozen=True, kw_only=True)
class HostHardware:
    """Everything discovered, plus the configured location."""

    cpu: CpuInfo
    memory: MemoryInfo
    gpus: tuple[GpuInfo, ...] = ()
    disks: tuple[DiskInfo, ...] = ()
    nics: tuple[NicInfo, ...] = ()
    location: HostLocation | None = None
    hostname: str = ""

    @property
    def gpu_count(self) -> int:
        """Number of GPUs."""
        return len(self.gpus)

    def to_json(self) -> dict[str, Any]:
        """A document of plain JSON types (``from_json`` reads it back)."""
        return to_jsonable(self)

    @classmethod
    def from_json(cls, data: Any) -> HostHardware:
        """Parse ``to_json`` output; ValueError naming the first bad field."""
        return decode_json(cls, data, "hardware")


# ---------------------------------------------------------------------------------- JSON


def to_jsonable(record: Any) -> dict[str, Any]:
    """A dataclass record as plain JSON types (tuples become lists)."""
    out = dataclasses.asdict(record)
    return typing.cast(dict[str, Any], _lists(out))


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


def decode_json(cls: type[T], data: Any, where: str = "") -> T:
    """Build the frozen dataclass ``cls`` from JSON ``data``, strictly (ValueError names the
    field: ``where.field[2].name``)."""
    return typing.cast(T, _decode(cls, data, where or cls.__name__))


def _decode(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _decode(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        (item, _) = typing.get_args(tp)
        return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return _decode_record(typing.cast(type, tp), value, where)
    return _decode_scalar(tp, value, where)


def _decode_record(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r}")
    missing = sorted(
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in value
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise ValueError(f"{where}: missing field {missing[0]!r}")
    kwargs = {k: _decode(hints[k], v, f"{where}.{k}") for k, v in value.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, ConfigError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _decode_scalar(tp: Any, value: Any, where: str) -> Any:
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    else:
        raise TypeError(f"{where}: no JSON decoding for {tp!r}")
    if not ok:
        raise ValueError(f"{where}: expected {tp.__name__}, got {value!r:.60}")
    return value


# ---------------------------------------------------------------------------------- CPU


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    block: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if "processor" in block:
                blocks.append(block)
            block = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            block[key.strip().lower()] = value.strip()
    return blocks


def _mhz(values: list[float]) -> int | None:
    return round(max(values)) if values else None


def _cpu(procfs: Path, sysfs: Path) -> CpuInfo:
    blocks = _cpuinfo_blocks(_read(procfs / "cpuinfo") or "")
    models = [b.get("model name") or b.get("cpu model") or b.get("hardware") for b in blocks]
    flags: set[str] = set()
    for b in blocks:
        flags |= set((b.get("flags") or b.get("features") or "").split())
    threads = len(blocks)
    # no "core id" (e.g. ARM): one thread per core
    cores = len({(b.get("physical id", "0"), b.get("core id", b["processor"])) for b in blocks})
    if not threads:  # no usable cpuinfo: the running machine's counts
        threads = psutil.cpu_count(logical=True) or 1
        cores = psutil.cpu_count(logical=False) or threads
    clocks: list[float] = []
    for b in blocks:
        with contextlib.suppress(KeyError, ValueError):
            clocks.append(float(b["cpu mhz"]))
    max_khz = [
        khz
        for path in sorted((sysfs / "devices/system/cpu").glob("cpu[0-9]*/cpufreq"))
        if (khz := _int(_read(path / "cpuinfo_max_freq")))
    ]
    cur_khz = [
        khz
        for path in sorted((sysfs / "devices/system/cpu").glob("cpu[0-9]*/cpufreq"))
        if (khz := _int(_read(path / "scaling_cur_freq")))
    ]
    current = round(sum(clocks) / len(clocks)) if clocks else _mhz([k / 1000 for k in cur_khz])
    return CpuInfo(
        model=next((m for m in models if m), "") or "unknown",
        cores=cores,
        threads=threads,
        max_mhz=_mhz([k / 1000 for k in max_khz]) or _mhz(clocks),
        current_mhz=current,
        virtualization=tuple(sorted(flags & {"vmx", "svm"})),
        hypervisor="hypervisor" in flags,
    )


# ---------------------------------------------------------------------------------- GPUs

# CUDA cores per streaming multiprocessor by compute capability (NVIDIA's published figures).
_CORES_PER_SM = {
    (3, 0): 192, (3, 2): 192, (3, 5): 192, (3, 7): 192,
    (5, 0): 128, (5, 2): 128, (5, 3): 128,
    (6, 0): 64, (6, 1): 128, (6, 2): 128,
    (7, 0): 64, (7, 2): 64, (7, 5): 64,
    (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128,
    (9, 0): 128, (10, 0): 128, (10, 1): 128, (10, 3): 128, (11, 0): 128,
    (12, 0): 128, (12, 1): 128,
}  # fmt: skip


def cuda_cores_per_sm(major: int, minor: int) -> int | None:
    """CUDA cores per SM for a compute capability; None for an unknown one."""
    return _CORES_PER_SM.get((major, minor))


class Nvml(Protocol):
    """The part of ``pynvml`` discovery uses (tests may pass a stand-in)."""

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any: ...
    def nvmlDeviceGetName(self, handle: Any) -> str | bytes: ...
    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any: ...
    def nvmlDeviceGetCudaComputeCapability(self, handle: Any) -> tuple[int, int]: ...
    def nvmlDeviceGetAttributes_v2(self, handle: Any) -> Any: ...
    def nvmlDeviceGetNumGpuCores(self, handle: Any) -> int: ...
    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any: ...
    def nvmlDeviceGetUUID(self, handle: Any) -> str | bytes: ...


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _optional(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except Exception:  # NVML raises NVMLError_NotSupported & co. for what a device lacks
        return None


def _gpu(nvml: Nvml, index: int) -> GpuInfo:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
    attributes = _optional(nvml.nvmlDeviceGetAttributes_v2, handle)
    sms = int(attributes.multiprocessorCount) if attributes is not None else None
    per_sm = cuda_cores_per_sm(major, minor)
    cores = sms * per_sm if sms and per_sm else _optional(nvml.nvmlDeviceGetNumGpuCores, handle)
    pci = _optional(nvml.nvmlDeviceGetPciInfo, handle)
    uuid = _optional(nvml.nvmlDeviceGetUUID, handle)
    return GpuInfo(
        index=index,
        model=_text(nvml.nvmlDeviceGetName(handle)),
        memory_mib=int(nvml.nvmlDeviceGetMemoryInfo(handle).total) >> 20,
        sm_count=sms or None,
        cuda_cores=int(cores or 0),
        compute_capability=f"{major}.{minor}",
        pci_bus_id=_text(pci.busId) if pci is not None else "",
        uuid=_text(uuid) if uuid is not None else "",
    )


def _load_nvml() -> Nvml | None:
    try:
        import pynvml
    except ImportError:
        return None
    return typing.cast(Nvml, pynvml)


def _gpus(nvml: Nvml | None) -> tuple[GpuInfo, ...]:
    if nvml is None:
        return ()
    try:
        nvml.nvmlInit()
    except Exception:  # no libnvidia-ml, no driver, driver/library mismatch: no NVIDIA GPUs
        return ()
    try:
        return tuple(_gpu(nvml, i) for i in range(nvml.nvmlDeviceGetCount()))
    except Exception:  # a device that fails mid-query (fallen off the bus): report none
        return ()
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


# ---------------------------------------------------------------------------------- memory


def _memory_mib(procfs: Path) -> int:
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB", _read(procfs / "meminfo") or "", re.M)
    if match:
        return int(match.group(1)) >> 10
    return int(psutil.virtual_memory().total) >> 20


def parse_smbios_memory(raw: bytes) -> int | None:
    """The speed (MT/s) of one SMBIOS type-17 "Memory Device" structure; None when unknown or
    the slot is empty. Prefers the configured speed over the rated one."""
    if len(raw) < 0x17 or raw[0] != 17:
        return None
    length = raw[1]
    size = int.from_bytes(raw[0x0C:0x0E], "little")
    if size == 0:  # no module in this slot
        return None

    def word_or_extended(offset: int, extended: int) -> int:
        if length < offset + 2:
            return 0
        value = int.from_bytes(raw[offset : offset + 2], "little")
        if value == 0xFFFF and length >= extended + 4:
            return int.from_bytes(raw[extended : extended + 4], "little")
        return 0 if value == 0xFFFF else value

    return word_or_extended(0x20, 0x58) or word_or_extended(0x15, 0x54) or None


def parse_dmidecode_memory(text: str) -> int | None:
    """The highest memory speed in ``dmidecode -t memory`` output (configured speed first);
    None when every module says Unknown."""
    configured = re.findall(r"Configured (?:Memory|Clock) Speed:\s*(\d+)\s*(?:MT/s|MHz)", text)
    rated = re.findall(r"^\s*Speed:\s*(\d+)\s*(?:MT/s|MHz)", text, re.M)
    speeds = [int(s) for s in configured or rated]
    return max(speeds) if speeds else None


def _memory_speed(sysfs: Path, dmidecode: str | None) -> int | None:
    speeds = []
    for entry in sorted((sysfs / "firmware/dmi/entries").glob("17-*")):
        with contextlib.suppress(OSError):
            speed = parse_smbios_memory((entry / "raw").read_bytes())
            if speed:
                speeds.append(speed)
    if speeds:
        return max(speeds)
    path = shutil.which(dmidecode) if dmidecode else None
    if path is None:
        return None
    try:
        done = subprocess.run(
            [path, "-t", "memory"], capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_dmidecode_memory(done.stdout) if done.returncode == 0 else None


# ---------------------------------------------------------------------------------- disks

_SKIPPED = ("loop", "ram", "zram", "dm-", "md", "sr", "nbd", "fd", "zd")
_HYPERVISOR_VENDORS = ("qemu", "vmware", "vbox", "virtual", "msft", "xen", "google", "amazon")


def _disk(dev: Path) -> DiskInfo | None:
    name = dev.name
    sectors = _int(_read(dev / "size"))
    if not sectors:
        return None
    flag = (_read(dev / "queue/rotational") or "").strip()
    rotational = {"1": True, "0": False}.get(flag)
    model = (_read(dev / "device/model") or "").strip()
    vendor = (_read(dev / "device/vendor") or "").strip()
    driver = ""
    with contextlib.suppress(OSError):
        driver = Path(os.readlink(dev / "device/driver")).name
    label = f"{vendor} {model}".lower()
    if (
        name.startswith(("vd", "xvd"))
        or driver.startswith("virtio")
        or any(v in label for v in _HYPERVISOR_VENDORS)
    ):
        kind = "virtual"
    elif name.startswith("nvme"):
        kind = "nvme"
    elif rotational is None:
        kind = "unknown"
    else:
        kind = "hdd" if rotational else "ssd"
    return DiskInfo(
        name=name,
        model=" ".join(p for p in (vendor, model) if p),
        kind=kind,
        size_bytes=sectors * 512,  # /sys/block/*/size counts 512-byte sectors whatever the LBA
        rotational=rotational,
    )


def _disks(sysfs: Path) -> tuple[DiskInfo, ...]:
    root = sysfs / "block"
    try:
        devices = sorted(root.iterdir())
    except OSError:
        return ()
    found = (_disk(d) for d in devices if not d.name.startswith(_SKIPPED))
    return tuple(d for d in found if d is not None)


# ---------------------------------------------------------------------------------- network


def _nics() -> tuple[NicInfo, ...]:
    stats = psutil.net_if_stats()
    found = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        st = stats.get(name)
        if st is not None and "loopback" in st.flags.split(","):
            continue
        ips = tuple(a.address for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6))
        mac = next((a.address for a in addrs if a.family == psutil.AF_LINK), "")
        found.append(
            NicInfo(
                name=name,
                mac=mac,
                addresses=ips,
                speed_mbps=(st.speed or None) if st else None,
                mtu=st.mtu if st else 0,
                up=bool(st.isup) if st else False,
            )
        )
    return tuple(found)


# ---------------------------------------------------------------------------------- discover

_AUTO: Any = object()


def _is_number(value: Any) -> typing.TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _location(location: Mapping[str, Any] | Any | None) -> HostLocation | None:
    if location is None or isinstance(location, HostLocation):
        return location
    get = location.get if isinstance(location, Mapping) else lambda k: getattr(location, k, None)
    region, lat, lon = get("region"), get("latitude"), get("longitude")
    if not (isinstance(region, str) and _is_number(lat) and _is_number(lon)):
        raise ConfigError(
            f"a location is {{region: str, latitude: degrees, longitude: degrees}}, got "
            f"{location!r:.120}"
        )
    return HostLocation(region=region, latitude=float(lat), longitude=float(lon))


def discover(
    location: Mapping[str, Any] | HostLocation | Any | None = None,
    *,
    procfs: Path = Path("/proc"),
    sysfs: Path = Path("/sys"),
    nvml: Nvml | None = _AUTO,
    dmidecode: str | None = "dmidecode",
    network: bool = True,
) -> HostHardware:
    """Discover this machine's hardware.

    ``location``: ``{region, latitude, longitude}`` (a mapping, a :class:`HostLocation`, or
    an object with those attributes such as ``config.LocationConfig``). ``nvml``: the NVML
    binding (default ``pynvml``; None: no GPU discovery). ``dmidecode``: the command used for
    the memory speed when SMBIOS is not readable (None: don't run it). ``network``: include
    the interfaces (they are the running machine's whatever the roots).
    """
    return HostHardware(
        cpu=_cpu(procfs, sysfs),
        memory=MemoryInfo(size_mib=_memory_mib(procfs), speed_mhz=_memory_speed(sysfs, dmidecode)),
        gpus=_gpus(_load_nvml() if nvml is _AUTO else nvml),
        disks=_disks(sysfs),
        nics=_nics() if network else (),
        location=_location(location),
        hostname=socket.gethostname(),
    )
