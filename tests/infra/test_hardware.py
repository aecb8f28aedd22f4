"""Hardware discovery: fixture /proc and /sys trees (good, missing and garbled files), this real
machine, NVML (absent here; a stand-in for the vendor library checks the arithmetic), memory
speed from SMBIOS tables and from a real dmidecode-like command, and the JSON round trip."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from powerverse.infra.config import LocationConfig
from powerverse.infra.exceptions import ConfigError
from powerverse.infra.hardware import (
    HostHardware,
    HostLocation,
    cuda_cores_per_sm,
    discover,
    parse_dmidecode_memory,
    parse_smbios_memory,
)

CPUINFO = "".join(
    f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU 9000 @ 3.00GHz\n"
    f"physical id\t: 0\ncore id\t: {i // 2}\ncpu MHz\t\t: {2900 + 100 * i}.500\n"
    "flags\t\t: fpu sse2 vmx avx2\n\n"
    for i in range(4)
)  # 2 cores with 2 threads each


def _smbios17(*, size: int = 16384, speed: int = 3200, configured: int = 0) -> bytes:
    raw = bytearray(0x5C)
    raw[0], raw[1] = 17, len(raw)
    raw[0x0C:0x0E] = size.to_bytes(2, "little")
    raw[0x15:0x17] = speed.to_bytes(2, "little")
    raw[0x20:0x22] = configured.to_bytes(2, "little")
    return bytes(raw)


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def _block(sys: Path, name: str, *, size: str, rot: str | None = "0", **device: str) -> Path:
    dev = sys / "block" / name
    _write(dev / "size", size)
    if rot is not None:
        _write(dev / "queue/rotational", rot)
    for key, value in device.items():
        if key == "driver":
            (dev / "device").mkdir(parents=True, exist_ok=True)
            target = sys / "bus/virtio/drivers" / value
            target.mkdir(parents=True, exist_ok=True)
            (dev / "device/driver").symlink_to(target)
        else:
            _write(dev / "device" / key, value + "\n")
    return dev


def _tree(root: Path) -> tuple[Path, Path]:
    proc, sys = root / "proc", root / "sys"
    _write(proc / "cpuinfo", CPUINFO)
    _write(proc / "meminfo", "MemTotal:       65836032 kB\nMemFree:         1000 kB\n")
    for i in range(4):
        _write(sys / f"devices/system/cpu/cpu{i}/cpufreq/cpuinfo_max_freq", "4500000\n")
        _write(sys / f"devices/system/cpu/cpu{i}/cpufreq/scaling_cur_freq", "3000000\n")
    _write(sys / "firmware/dmi/entries/17-0/raw", _smbios17(speed=3200, configured=2933))
    _write(sys / "firmware/dmi/entries/17-1/raw", _smbios17(size=0))  # empty slot
    _block(sys, "nvme0n1", size="3907029168", model="Samsung SSD 990 PRO 2TB")
    _block(sys, "sda", size="15628053168", rot="1", vendor="ATA", model="WDC WD80EFAX")
    _block(sys, "sdb", size="1953525168", rot="0", vendor="ATA", model="CT1000MX500")
    _block(sys, "sdc", size="209715200", rot="1", vendor="QEMU", model="QEMU HARDDISK")
    _block(sys, "vda", size="536870912", rot="1", driver="virtio_blk")
    _block(sys, "xyz0", size="2048", rot=None)  # no rotational flag: kind unknown
    for skipped in ("loop0", "zram0", "dm-0", "sr0", "ram0", "md0"):
        _block(sys, skipped, size="1000000")
    _block(sys, "sdz", size="0")  # no medium
    _block(sys, "sdy", size="garbage")
    (sys / "block/sdx").mkdir()  # no files at all
    return proc, sys


def test_discovery_reads_a_fixture_tree(tmp_path: Path) -> None:
    proc, sys = _tree(tmp_path)
    hw = discover(
        {"region": "eu-west", "latitude": 52.52, "longitude": 13.4},
        procfs=proc, sysfs=sys, nvml=None, dmidecode=None, network=False,
    )  # fmt: skip
    cpu = hw.cpu
    assert cpu.model == "Test CPU 9000 @ 3.00GHz"
    assert (cpu.cores, cpu.threads) == (2, 4)
    assert cpu.max_mhz == 4500 and cpu.current_mhz == 3050  # mean of cpuinfo's "cpu MHz"
    assert cpu.virtualization == ("vmx",) and not cpu.hypervisor
    assert hw.memory.size_mib == 65836032 // 1024
    assert hw.memory.speed_mhz == 2933  # the configured speed wins over the rated 3200
    kinds = {d.name: d.kind for d in hw.disks}
    assert kinds == {
        "nvme0n1": "nvme", "sda": "hdd", "sdb": "ssd", "sdc": "virtual", "vda": "virtual",
        "xyz0": "unknown",
    }  # fmt: skip
    disks = {d.name: d for d in hw.disks}
    assert disks["nvme0n1"].size_gb == 2000 and disks["nvme0n1"].size_bytes == 3907029168 * 512
    assert disks["sda"].model == "ATA WDC WD80EFAX" and disks["sda"].rotational is True
    assert disks["vda"].model == "" and disks["xyz0"].rotational is None
    assert hw.gpus == () and hw.gpu_count == 0 and hw.nics == ()
    assert hw.location == HostLocation(region="eu-west", latitude=52.52, longitude=13.4)


def test_missing_and_garbled_files_give_unknowns_not_errors(tmp_path: Path) -> None:
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    proc.mkdir()
    empty = discover(procfs=proc, sysfs=sys, nvml=None, dmidecode=None, network=False)
    assert empty.cpu.model == "unknown" and empty.cpu.max_mhz is None
    assert empty.cpu.threads == psutil.cpu_count()  # no cpuinfo: the running machine's count
    assert empty.memory.size_mib == psutil.virtual_memory().total >> 20
    assert empty.memory.speed_mhz is None and empty.disks == () and empty.location is None

    _write(proc / "cpuinfo", "\x00\x01 garbage\nprocessor: x\ncpu MHz: fast\n\n")
    _write(proc / "meminfo", "MemTotal: lots\n")
    _write(sys / "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "n/a")
    _write(sys / "firmware/dmi/entries/17-0/raw", b"\x11")  # truncated structure
    (sys / "block").mkdir()
    garbled = discover(procfs=proc, sysfs=sys, nvml=None, dmidecode=None, network=False)
    assert garbled.cpu.model == "unknown" and garbled.cpu.threads == 1
    assert garbled.cpu.max_mhz is None and garbled.cpu.current_mhz is None
    assert garbled.memory.speed_mhz is None


def test_clock_falls_back_to_cpuinfo_without_cpufreq(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _write(proc / "cpuinfo", CPUINFO.replace("vmx", "svm hypervisor"))
    hw = discover(procfs=proc, sysfs=tmp_path / "sys", nvml=None, dmidecode=None, network=False)
    assert hw.cpu.max_mhz == 3200 and hw.cpu.current_mhz == 3050
    assert hw.cpu.virtualization == ("svm",) and hw.cpu.hypervisor


def test_arm_cpuinfo_without_core_ids(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _write(proc / "cpuinfo", "".join(
        f"processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd aes\nCPU part\t: 0xd40\n\n"
        for i in range(3)
    ) + "Hardware\t: Test SoC\n")  # fmt: skip
    hw = discover(procfs=proc, sysfs=tmp_path / "sys", nvml=None, dmidecode=None, network=False)
    assert (hw.cpu.cores, hw.cpu.threads) == (3, 3) and hw.cpu.virtualization == ()
    assert hw.cpu.max_mhz is None and hw.cpu.model == "unknown"


def test_discovery_on_this_machine() -> None:
    hw = discover({"region": "here", "latitude": 0, "longitude": 0})
    assert hw.cpu.threads == len(os.sched_getaffinity(0)) or hw.cpu.threads == os.cpu_count()
    assert 1 <= hw.cpu.cores <= hw.cpu.threads and hw.cpu.model
    assert hw.memory.size_mib == psutil.virtual_memory().total >> 20
    assert all(d.kind in {"nvme", "ssd", "hdd", "virtual", "unknown"} for d in hw.disks)
    assert all(not d.name.startswith(("loop", "zram", "ram")) and d.size_bytes for d in hw.disks)
    assert all(n.name != "lo" for n in hw.nics)
    assert {n.name for n in hw.nics} <= set(psutil.net_if_addrs())
    for gpu in hw.gpus:  # none on a machine without an NVIDIA driver: that is not an error
        assert gpu.memory_mib > 0 and gpu.compute_capability
    assert HostHardware.from_json(json.loads(json.dumps(hw.to_json()))) == hw


def test_no_nvml_library_means_no_gpus() -> None:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    hw = discover(nvml=pynvml, dmidecode=None, network=False)  # the real binding, no library
    assert hw.gpus == ()


@dataclass
class _Memory:
    total: int


@dataclass
class _Attributes:
    multiprocessorCount: int  # NVML's field name


@dataclass
class _Pci:
    busId: str  # NVML's field name


class _NotSupported(Exception):
    pass


class StandInNvml:
    """The NVML calls discovery makes, answering for a list of devices (no GPU on this
    machine, so the vendor library itself cannot be exercised here)."""

    def __init__(self, devices: list[dict[str, Any]], *, fail_init: bool = False) -> None:
        self.devices, self.fail_init, self.shut = devices, fail_init, False

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise _NotSupported("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        return self.devices[index]

    def nvmlDeviceGetName(self, h: dict[str, Any]) -> bytes:
        return str(h["name"]).encode()

    def nvmlDeviceGetMemoryInfo(self, h: dict[str, Any]) -> _Memory:
        return _Memory(h["memory"])

    def nvmlDeviceGetCudaComputeCapability(self, h: dict[str, Any]) -> tuple[int, int]:
        if h.get("broken"):
            raise _NotSupported("GPU is lost")
        return tuple(h["cc"])

    def nvmlDeviceGetAttributes_v2(self, h: dict[str, Any]) -> _Attributes:
        if "sms" not in h:
            raise _NotSupported("Not Supported")
        return _Attributes(h["sms"])

    def nvmlDeviceGetNumGpuCores(self, h: dict[str, Any]) -> int:
        if "cores" not in h:
            raise _NotSupported("Not Supported")
        return int(h["cores"])

    def nvmlDeviceGetPciInfo(self, h: dict[str, Any]) -> _Pci:
        return _Pci(f"00000000:{h['bus']:02X}:00.0")

    def nvmlDeviceGetUUID(self, h: dict[str, Any]) -> str:
        return f"GPU-{h['bus']}"


def test_gpus_cuda_cores_from_sms_times_cores_per_sm() -> None:
    nvml = StandInNvml(
        [
            {"name": "NVIDIA H200", "memory": 143771 << 20, "cc": (9, 0), "sms": 132, "bus": 1},
            {"name": "NVIDIA A100", "memory": 81920 << 20, "cc": (8, 0), "cores": 6912, "bus": 2},
            {"name": "Future GPU", "memory": 1 << 30, "cc": (99, 0), "sms": 10, "bus": 3},
        ]
    )
    hw = discover(nvml=nvml, dmidecode=None, network=False)
    h200, a100, future = hw.gpus
    assert (h200.model, h200.memory_mib, h200.sm_count) == ("NVIDIA H200", 143771, 132)
    assert h200.cuda_cores == 132 * 128 and h200.compute_capability == "9.0"
    assert h200.pci_bus_id == "00000000:01:00.0" and h200.uuid == "GPU-1"
    assert a100.sm_count is None and a100.cuda_cores == 6912  # NVML's own count as fallback
    assert future.cuda_cores == 0  # unknown architecture and no NVML count: not guessed
    assert hw.gpu_count == 3 and nvml.shut


def test_gpu_failures_are_no_gpus_not_errors() -> None:
    assert discover(nvml=StandInNvml([], fail_init=True), network=False).gpus == ()
    lost = StandInNvml([{"name": "x", "memory": 1, "cc": (8, 0), "bus": 1, "broken": True}])
    assert discover(nvml=lost, dmidecode=None, network=False).gpus == () and lost.shut


def test_cores_per_sm_by_compute_capability() -> None:
    assert [cuda_cores_per_sm(*cc) for cc in ((3, 5), (6, 0), (6, 1), (7, 5), (8, 0), (8, 6))] == [
        192, 64, 128, 64, 64, 128,
    ]  # fmt: skip
    assert cuda_cores_per_sm(9, 0) == 128 and cuda_cores_per_sm(1, 0) is None


DMIDECODE = """# dmidecode 3.4
Handle 0x0011, DMI type 17, 92 bytes
Memory Device
\tSize: 32 GB
\tSpeed: 4800 MT/s
\tConfigured Memory Speed: 4400 MT/s

Handle 0x0012, DMI type 17, 92 bytes
Memory Device
\tSize: No Module Installed
\tSpeed: Unknown
\tConfigured Memory Speed: Unknown
"""


def test_dmidecode_output_parsing() -> None:
    assert parse_dmidecode_memory(DMIDECODE) == 4400
    assert parse_dmidecode_memory(DMIDECODE.replace("Configured Memory", "X")) == 4800
    old = "Memory Device\n\tSpeed: 1600 MHz\n\tConfigured Clock Speed: 1333 MHz\n"
    assert parse_dmidecode_memory(old) == 1333
    assert parse_dmidecode_memory("Memory Device\n\tSpeed: Unknown\n") is None
    assert parse_dmidecode_memory("") is None


def test_smbios_memory_device_parsing() -> None:
    assert parse_smbios_memory(_smbios17(speed=3200)) == 3200
    assert parse_smbios_memory(_smbios17(speed=3200, configured=2666)) == 2666
    extended = bytearray(_smbios17(speed=0xFFFF))
    extended[0x54:0x58] = (70000).to_bytes(4, "little")
    assert parse_smbios_memory(bytes(extended)) == 70000
    assert parse_smbios_memory(_smbios17(size=0)) is None  # empty slot
    assert parse_smbios_memory(_smbios17(speed=0)) is None  # unknown
    assert parse_smbios_memory(b"\x10" + _smbios17()[1:]) is None  # not type 17
    assert parse_smbios_memory(_smbios17()[:0x10]) is None  # truncated


def _command(path: Path, script: str) -> str:
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_memory_speed_from_the_dmidecode_command(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text(DMIDECODE)
    ok = _command(tmp_path / "dmidecode", f'[ "$1 $2" = "-t memory" ] && cat {tmp_path}/out.txt\n')
    denied = _command(tmp_path / "denied", "echo '/dev/mem: Permission denied' >&2; exit 1\n")
    empty = tmp_path / "empty-sys"

    def speed(dmidecode: str | None) -> int | None:
        return discover(sysfs=empty, nvml=None, dmidecode=dmidecode, network=False).memory.speed_mhz

    assert speed(ok) == 4400
    assert speed(denied) is None
    assert speed(str(tmp_path / "not-installed")) is None
    assert speed(None) is None


def test_json_round_trip_and_malformed_documents(tmp_path: Path) -> None:
    proc, sys = _tree(tmp_path)
    hw = discover({"region": "r", "latitude": 1, "longitude": -2}, procfs=proc, sysfs=sys,
                  nvml=StandInNvml([{"name": "G", "memory": 1 << 30, "cc": (8, 6), "sms": 2,
                                     "bus": 1}]))  # fmt: skip
    doc = json.loads(json.dumps(hw.to_json()))
    assert doc == hw.to_json()  # plain JSON types already
    assert HostHardware.from_json(doc) == hw

    def broken(change: Any) -> str:
        bad = json.loads(json.dumps(doc))
        change(bad)
        with pytest.raises(ValueError) as err:
            HostHardware.from_json(bad)
        return str(err.value)

    assert "hardware.cpu.cores: expected int" in broken(lambda d: d["cpu"].update(cores="2"))
    assert "expected int" in broken(lambda d: d["cpu"].update(cores=True))
    assert "missing field 'model'" in broken(lambda d: d["cpu"].pop("model"))
    assert "unknown field 'extra'" in broken(lambda d: d["memory"].update(extra=1))
    assert "hardware.disks[1].kind" in broken(lambda d: d["disks"][1].update(kind=None))
    assert "expected a list" in broken(lambda d: d.update(gpus={}))
    assert "off the globe" in broken(lambda d: d["location"].update(latitude=91))
    with pytest.raises(ValueError, match="expected an object"):
        HostHardware.from_json([1, 2])


def test_location_from_config_forms() -> None:
    here = HostLocation(region="cn-east", latitude=31.23, longitude=121.47)
    config = LocationConfig(region="cn-east", latitude=31.23, longitude=121.47)
    for given in (here, config, {"region": "cn-east", "latitude": 31.23, "longitude": 121.47}):
        assert discover(given, nvml=None, dmidecode=None, network=False).location == here
    with pytest.raises(ConfigError, match="off the globe"):
        discover({"region": "x", "latitude": 0, "longitude": 181}, nvml=None, network=False)
    with pytest.raises(ConfigError, match="region"):
        discover({"region": "x", "lat": 1, "lon": 2}, nvml=None, network=False)
    with pytest.raises(ConfigError, match="region"):
        discover({"region": "x", "latitude": True, "longitude": 2}, nvml=None, network=False)
