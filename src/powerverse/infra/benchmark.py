"""Benchmarks of what a provider claims: CPU, memory bandwidth, disk throughput, GPU matmul.

Each run takes a seed. The CPU benchmark is a SHA-256 hash chain started from the seed, so its
digest proves the work was done for that seed (a verifier recomputes it cheaply for a short
chain, see :func:`cpu_digest`); the other figures are measured rates. Sizes are parameters:
tests use tiny ones, ``pv provider init`` the defaults. GPU TFLOP/s is measured only when
``torch`` with CUDA is importable (torch is not a dependency of the agent).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BenchmarkResults", "cpu_digest", "run_benchmarks"]

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class BenchmarkResults:
    """Measured figures (rates per second) and the seed-bound proof of the CPU work."""

    seed: str
    cpu_single_hashes_per_s: float
    cpu_multi_hashes_per_s: float
    cpu_threads: int
    cpu_rounds: int
    cpu_digest: str
    memory_gbps: float
    disk_write_mbps: float
    disk_read_mbps: float
    disk_method: str  # how the page cache was kept out of the read figure
    gpu_tflops: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly document."""
        return asdict(self)


def cpu_digest(seed: bytes, rounds: int) -> bytes:
    """The SHA-256 chain of ``rounds`` steps from ``seed`` (the CPU benchmark's work)."""
    value = seed
    for _ in range(rounds):
        value = hashlib.sha256(value).digest()
    return value


def _chain(args: tuple[bytes, int]) -> bytes:
    return cpu_digest(*args)


def _cpu(seed: bytes, rounds: int, threads: int) -> tuple[float, float, bytes]:
    start = time.perf_counter()
    digest = cpu_digest(seed, rounds)
    single = rounds / (time.perf_counter() - start)
    with ProcessPoolExecutor(max_workers=threads) as pool:
        start = time.perf_counter()
        list(pool.map(_chain, [(seed + bytes([i]), rounds) for i in range(threads)]))
        multi = threads * rounds / (time.perf_counter() - start)
    return single, multi, digest


def _memory(size_mib: int, repeats: int) -> float:
    src = np.ones(size_mib << 17, dtype=np.float64)  # size_mib MiB of 8-byte floats
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9  # read + write


def _disk(directory: Path, size_mib: int) -> tuple[float, float, str]:
    path = directory / f".pv-bench-{os.getpid()}"
    block = os.urandom(1 << 20)
    try:
        start = time.perf_counter()
        with open(path, "wb") as f:
            for _ in range(size_mib):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        write = size_mib / (time.perf_counter() - start)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # drop it from the page cache
            start = time.perf_counter()
            while os.read(fd, 1 << 20):
                pass
            read = size_mib / (time.perf_counter() - start)
        finally:
            os.close(fd)
        return write, read, "fsync + posix_fadvise(DONTNEED)"
    finally:
        path.unlink(missing_ok=True)


def _gpu(size: int = 4096, repeats: int = 10) -> float | None:
    try:
        import torch  # not a dependency: measured only where it is installed with CUDA
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    a = torch.randn(size, size, device="cuda", dtype=torch.float16)
    b = torch.randn(size, size, device="cuda", dtype=torch.float16)
    torch.matmul(a, b)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    return float(2 * size**3 * repeats / (time.perf_counter() - start) / 1e12)


def run_benchmarks(
    seed: bytes,
    *,
    disk_dir: Path,
    cpu_rounds: int = 2_000_000,
    memory_mib: int = 256,
    disk_mib: int = 256,
    threads: int | None = None,
    progress: Progress | None = None,
) -> BenchmarkResults:
    """Run every benchmark once with ``seed``."""
    say = progress or (lambda _: None)
    threads = threads or os.cpu_count() or 1
    say("cpu")
    single, multi, digest = _cpu(seed, cpu_rounds, threads)
    say("memory")
    memory = _memory(memory_mib, 3)
    say("disk")
    write, read, method = _disk(disk_dir, disk_mib)
    say("gpu")
    gpu = _gpu()
    return BenchmarkResults(
        seed=seed.hex(),
        cpu_single_hashes_per_s=single,
        cpu_multi_hashes_per_s=multi,
        cpu_threads=threads,
        cpu_rounds=cpu_rounds,
        cpu_digest=digest.hex(),
        memory_gbps=memory,
        disk_write_mbps=write,
        disk_read_mbps=read,
        disk_method=method,
        gpu_tflops=gpu,
    )
