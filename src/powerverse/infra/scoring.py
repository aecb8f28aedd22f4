"""The market's view of this host: ``PerformPara`` from discovery and benchmarks, and its score.

Disk speeds are the MEASURED ones (virtual disks report no truth about their kind or speed);
:func:`score` is exactly ``ResourceNFT.score`` (integer arithmetic, the same rounding), checked
against the contract by a differential test.
"""

from __future__ import annotations

from powerverse.infra.benchmark import BenchmarkResults
from powerverse.infra.hardware import HostHardware
from powerverse.market.resources import Cpu, Disk, Gpu, PerformPara, Ram, Weights

__all__ = ["WEIGHT_SCALE", "perform_para", "score"]

WEIGHT_SCALE = 1000


def perform_para(
    hw: HostHardware,
    bench: BenchmarkResults,
    *,
    vcpus: int | None = None,
    memory_mib: int | None = None,
) -> PerformPara:
    """What one resource of this host offers (a VM of ``vcpus`` and ``memory_mib``, or the whole
    machine), with the measured disk speeds."""
    disk = max(hw.disks, key=lambda d: d.size_gb, default=None)
    gpu = hw.gpus[0] if hw.gpus else None
    return PerformPara(
        cpu=Cpu(
            model=hw.cpu.model[:64], clock_speed_mhz=hw.cpu.max_mhz, cores=vcpus or hw.cpu.threads
        ),
        gpu=Gpu(
            model=gpu.model[:64], memory_mib=gpu.memory_mib, cuda_cores=gpu.cuda_cores,
            count=len(hw.gpus),
        ) if gpu else Gpu(),
        ram=Ram(size_mib=memory_mib or hw.memory_mib, frequency_mhz=hw.memory_mhz or 0),
        disk=Disk(
            kind=disk.kind if disk else "unknown",
            size_gb=disk.size_gb if disk else 0,
            read_mbps=int(bench.disk_read_mbps),
            write_mbps=int(bench.disk_write_mbps),
        ),
    )  # fmt: skip


def score(para: PerformPara, weights: Weights) -> int:
    """performPoints = Σ value × weight / 1000, exactly as ResourceNFT.score computes it."""
    gpus = para.gpu.count
    total = (
        para.cpu.clock_speed_mhz * weights.cpu_clock_speed
        + para.cpu.cores * weights.cpu_cores
        + para.gpu.memory_mib * gpus * weights.gpu_memory
        + para.gpu.cuda_cores * gpus * weights.gpu_cuda_cores
        + gpus * weights.gpu_count
        + para.ram.size_mib * weights.ram_size
        + para.ram.frequency_mhz * weights.ram_frequency
        + para.disk.size_gb * weights.disk_size
        + para.disk.read_mbps * weights.disk_read_speed
        + para.disk.write_mbps * weights.disk_write_speed
    )
    return total // WEIGHT_SCALE
