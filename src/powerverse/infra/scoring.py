"""The market's view of this host: ``PerformPara`` from discovery and benchmarks, and its score.

Disk read and write speeds are the MEASURED ones (a virtual disk reports nothing true about its
speed); the disk kind is the discovered one. :func:`check_para` applies the contract's own
checks (``ResourceNFT._checkPerformPara`` and the uint32 fields) so a registration is not
reverted, and :func:`score` is exactly ``ResourceNFT.score``: Σ value × weight in integers,
GPU memory and CUDA cores counted over all cards, one floor division by ``WEIGHT_SCALE`` at the
end (differential test against the contract in tests/infra/test_scoring.py).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from powerverse.infra.benchmark import BenchmarkResults
from powerverse.infra.exceptions import InfraError
from powerverse.infra.hardware import DiskInfo, HostHardware, decode_json
from powerverse.market.resources import Cpu, Disk, Gpu, PerformPara, Ram, Weights

__all__ = [
    "MAX_MODEL_BYTES",
    "WEIGHT_SCALE",
    "InvalidPerformPara",
    "check_para",
    "para_from_json",
    "para_to_json",
    "perform_para",
    "score",
]

WEIGHT_SCALE = 1000  # ResourceNFT.WEIGHT_SCALE: weights are milli-points per unit
MAX_MODEL_BYTES = 64  # ResourceNFT.MAX_MODEL_LENGTH (model names and the disk kind)
_UINT32 = 2**32 - 1
_UINT64 = 2**64 - 1


class InvalidPerformPara(InfraError):
    """Parameters the contract would refuse (or could not encode)."""


def _truncate(text: str, limit: int = MAX_MODEL_BYTES) -> str:
    """At most ``limit`` UTF-8 bytes, cut on a character boundary."""
    return text.encode()[:limit].decode(errors="ignore")


def _disk_for(hw: HostHardware, bench: BenchmarkResults) -> DiskInfo | None:
    """The disk the benchmark measured, else the largest."""
    for disk in hw.disks:
        if disk.name == bench.disk.device:
            return disk
    return max(hw.disks, key=lambda d: d.size_bytes, default=None)


def perform_para(
    hw: HostHardware,
    bench: BenchmarkResults,
    *,
    vcpus: int | None = None,
    memory_mib: int | None = None,
    disk_gb: int | None = None,
    gpu_count: int | None = None,
) -> PerformPara:
    """What one resource of this host offers: a VM of ``vcpus``, ``memory_mib``, ``disk_gb``
    and ``gpu_count`` GPUs (each default: the whole machine), with the measured disk speeds.

    InvalidPerformPara when the result would be refused on chain (e.g. unknown clock)."""
    disk = _disk_for(hw, bench)
    gpus = hw.gpus[: hw.gpu_count if gpu_count is None else gpu_count]
    if gpus and len({g.model for g in gpus}) > 1:
        raise InvalidPerformPara(
            f"the offered GPUs are of different models ({', '.join(g.model for g in gpus)}): "
            "a resource offers one model; choose a count of one model"
        )
    para = PerformPara(
        cpu=Cpu(
            model=_truncate(hw.cpu.model),
            clock_speed_mhz=hw.cpu.max_mhz or hw.cpu.current_mhz or 0,
            cores=vcpus if vcpus is not None else hw.cpu.threads,
        ),
        gpu=Gpu(
            model=_truncate(gpus[0].model),
            memory_mib=gpus[0].memory_mib,
            cuda_cores=gpus[0].cuda_cores,
            count=len(gpus),
        )
        if gpus
        else Gpu(),
        ram=Ram(
            size_mib=memory_mib if memory_mib is not None else hw.memory.size_mib,
            frequency_mhz=hw.memory.speed_mhz or 0,
        ),
        disk=Disk(
            kind=disk.kind if disk else "unknown",
            size_gb=disk_gb if disk_gb is not None else disk.size_gb if disk else 0,
            read_mbps=int(bench.disk.read_mbps),
            write_mbps=int(bench.disk.write_mbps),
        ),
    )
    check_para(para)
    return para


def check_para(para: PerformPara) -> None:
    """InvalidPerformPara naming the field the contract would refuse."""
    _check_uint32(para)
    for name, text in (
        ("cpu.model", para.cpu.model),
        ("gpu.model", para.gpu.model),
        ("disk.kind", para.disk.kind),
    ):
        if len(text.encode()) > MAX_MODEL_BYTES:
            raise InvalidPerformPara(f"{name} is longer than {MAX_MODEL_BYTES} bytes")
    if para.cpu.cores == 0 or para.cpu.clock_speed_mhz == 0:
        raise InvalidPerformPara(
            "cpu: cores and clock speed must be > 0 (the clock is unknown on this machine? "
            "give it explicitly)"
        )
    if para.gpu.count == 0 and (para.gpu.memory_mib or para.gpu.cuda_cores or para.gpu.model):
        raise InvalidPerformPara("gpu: no GPUs (count 0) but a model, memory or cores given")
    if para.gpu.count and not para.gpu.memory_mib:
        raise InvalidPerformPara("gpu: GPUs offered with no memory size")
    if para.ram.size_mib == 0:
        raise InvalidPerformPara("ram: the memory size must be > 0")
    if para.disk.size_gb == 0:
        raise InvalidPerformPara("disk: the disk size must be > 0 GB")


def _check_uint32(para: PerformPara) -> None:
    for part in ("cpu", "gpu", "ram", "disk"):
        record = getattr(para, part)
        for f in fields(record):
            value = getattr(record, f.name)
            if isinstance(value, str):
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _UINT32:
                raise InvalidPerformPara(f"{part}.{f.name} = {value!r} is not a uint32")


def score(para: PerformPara, weights: Weights) -> int:
    """performPoints of ``para`` under ``weights``, exactly as ``ResourceNFT.score``."""
    for f in fields(weights):
        value = getattr(weights, f.name)
        if not isinstance(value, int) or not 0 <= value <= _UINT64:
            raise InvalidPerformPara(f"weight {f.name} = {value!r} is not a uint64")
    _check_uint32(para)
    c, g, r, d, w = para.cpu, para.gpu, para.ram, para.disk, weights
    total = (
        c.clock_speed_mhz * w.cpu_clock_speed
        + c.cores * w.cpu_cores
        + g.memory_mib * g.count * w.gpu_memory
        + g.cuda_cores * g.count * w.gpu_cuda_cores
        + g.count * w.gpu_count
        + r.size_mib * w.ram_size
        + r.frequency_mhz * w.ram_frequency
        + d.size_gb * w.disk_size
        + d.read_mbps * w.disk_read_speed
        + d.write_mbps * w.disk_write_speed
    )
    return total // WEIGHT_SCALE


def para_to_json(para: PerformPara) -> dict[str, Any]:
    """``{cpu: {...}, gpu: {...}, ram: {...}, disk: {...}}`` with the dataclasses' field names."""
    return asdict(para)


def para_from_json(data: Any) -> PerformPara:
    """Parse ``para_to_json`` output; ValueError naming the first bad field."""
    return decode_json(PerformPara, data, "claimed")
