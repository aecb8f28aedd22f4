"""Benchmarks of what a provider claims: CPU, memory bandwidth, disk throughput, GPU matmul.

Every run takes a seed (a verifier's challenge gives a fresh one). The CPU workload is a
SHA-256 hash chain per process, split into segments whose start mixes in the seed, the chain
and the segment number; the end of every segment is reported as a checkpoint. So the
checkpoints cannot be computed before the seed is known nor without doing every step, and a
verifier checks a few randomly chosen segments at the cost of one segment each
(:func:`verify_cpu_work`): a result that skipped a fraction of the work is caught with
probability growing with each sampled segment. Chain 0 runs alone (single-thread figure);
chains 1..N run at once in N processes (multi-thread figure; processes because the GIL holds
for small hashes).

Memory bandwidth: the best of several numpy copies of a large array, counting bytes read plus
bytes written. Disk: a file written and fsynced, then read back with ``O_DIRECT`` where the
filesystem allows it, else after ``posix_fadvise(DONTNEED)`` has dropped it from the page cache;
the result says which (tmpfs keeps files in memory whatever is asked: the result names the
filesystem too). GPU: fp16 matmul TFLOP/s per device when ``torch`` with CUDA is importable
(torch is not a dependency of the agent; without it the result says it was not measured).
Sizes are parameters: tests use tiny ones, ``pv provider init`` the defaults.
"""

from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import random
import secrets
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from powerverse.infra.exceptions import InfraError
from powerverse.infra.hardware import decode_json, to_jsonable

__all__ = [
    "BenchmarkError",
    "BenchmarkResults",
    "CpuResult",
    "DiskResult",
    "GpuResult",
    "MemoryResult",
    "Progress",
    "cpu_chain",
    "cpu_digest",
    "run_benchmarks",
    "verify_cpu_work",
]

Progress = Callable[[str], None]
_TAG = b"pv-cpu-bench-v1"
_BLOCK = 1 << 20


class BenchmarkError(InfraError):
    """A benchmark could not run (bad parameters, unwritable directory, a worker died)."""


# ---------------------------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True)
class CpuResult:
    """Hash-chain throughput and the seed-bound checkpoints proving the work.

    ``chains[0]`` is the single-thread chain, ``chains[1:]`` the ``processes`` parallel ones;
    each holds ``checkpoints`` hex digests (the last is the chain's result). ``digest`` is
    SHA-256 over every chain's last checkpoint.
    """

    rounds: int  # hashes per chain
    checkpoints: int
    processes: int
    single_ops_per_s: float
    multi_ops_per_s: float
    chains: tuple[tuple[str, ...], ...]
    digest: str

    @property
    def parallel_speedup(self) -> float:
        """Multi-thread over single-thread throughput (about the number of real cores)."""
        return self.multi_ops_per_s / self.single_ops_per_s if self.single_ops_per_s else 0.0


@dataclass(frozen=True, kw_only=True)
class MemoryResult:
    """Copy bandwidth in GB/s (10^9 bytes, read + write)."""

    gbps: float
    size_mib: int
    repeats: int


@dataclass(frozen=True, kw_only=True)
class DiskResult:
    """Sequential write (fsync included) and read throughput in MB/s (10^6 bytes)."""

    write_mbps: float
    read_mbps: float
    size_mib: int
    read_method: str  # "O_DIRECT" | "posix_fadvise(DONTNEED)" | "page cache"
    filesystem: str  # e.g. "ext4", "tmpfs" ("" when unknown)
    device: str  # the whole disk under the directory, e.g. "nvme0n1" ("" when unknown)


@dataclass(frozen=True, kw_only=True)
class GpuResult:
    """fp16 matmul throughput per CUDA device, or why it was not measured."""

    measured: bool
    tflops: tuple[float, ...] = ()
    size: int = 0
    note: str = ""

    @property
    def total_tflops(self) -> float:
        """Sum over the devices."""
        return sum(self.tflops)


@dataclass(frozen=True, kw_only=True)
class BenchmarkResults:
    """One run of every benchmark with one seed."""

    seed: str  # hex
    cpu: CpuResult
    memory: MemoryResult
    disk: DiskResult
    gpu: GpuResult
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        """A document of plain JSON types (``from_json`` reads it back)."""
        return to_jsonable(self)

    @classmethod
    def from_json(cls, data: Any) -> BenchmarkResults:
        """Parse ``to_json`` output; ValueError naming the first bad field."""
        return decode_json(cls, data, "results")


# ---------------------------------------------------------------------------------- CPU


def _bounds(rounds: int, checkpoints: int, k: int) -> int:
    """Hashes in segment ``k`` (segments differ by at most one)."""
    return (k + 1) * rounds // checkpoints - k * rounds // checkpoints


def _segment(seed: bytes, chain: int, k: int, prev: bytes, length: int) -> bytes:
    sha = hashlib.sha256
    value = sha(_TAG + seed + chain.to_bytes(4, "big") + k.to_bytes(4, "big") + prev).digest()
    for _ in range(length - 1):
        value = sha(value).digest()
    return value


def cpu_chain(seed: bytes, chain: int, rounds: int, checkpoints: int) -> tuple[bytes, ...]:
    """Chain ``chain``'s checkpoints: ``checkpoints`` segments, ``rounds`` hashes in all."""
    out, prev = [], b""
    for k in range(checkpoints):
        prev = _segment(seed, chain, k, prev, _bounds(rounds, checkpoints, k))
        out.append(prev)
    return tuple(out)


def cpu_digest(chains: Iterable[Iterable[str]]) -> str:
    """SHA-256 (hex) over every chain's last checkpoint."""
    return hashlib.sha256(b"".join(bytes.fromhex(list(c)[-1]) for c in chains)).hexdigest()


def verify_cpu_work(
    seed: bytes, cpu: CpuResult, *, samples: int | None = 8, rng: random.Random | None = None
) -> list[str]:
    """What is wrong with ``cpu`` as work for ``seed`` (empty: nothing found).

    Checks the shape and the digest, then recomputes ``samples`` randomly chosen segments
    (None: all of them, the full cost of the run)."""
    problems = []
    if len(cpu.chains) != cpu.processes + 1:
        problems.append(f"{len(cpu.chains)} chains for {cpu.processes} processes + 1")
    if cpu.checkpoints < 1 or cpu.rounds < cpu.checkpoints:
        problems.append(f"{cpu.rounds} rounds cannot fill {cpu.checkpoints} checkpoints")
    try:
        chains = [[bytes.fromhex(c) for c in chain] for chain in cpu.chains]
    except ValueError:
        return [*problems, "a checkpoint is not hex"]
    if any(len(c) != cpu.checkpoints or any(len(v) != 32 for v in c) for c in chains):
        problems.append(f"every chain must hold {cpu.checkpoints} checkpoints of 32 bytes")
    if problems:
        return problems
    if cpu_digest(cpu.chains) != cpu.digest:
        problems.append("the digest does not match the chains")
    segments = [(j, k) for j in range(len(chains)) for k in range(cpu.checkpoints)]
    if samples is not None:
        segments = (rng or random.Random(secrets.randbits(64))).sample(
            segments, min(samples, len(segments))
        )
    for j, k in sorted(segments):
        prev = chains[j][k - 1] if k else b""
        length = _bounds(cpu.rounds, cpu.checkpoints, k)
        if _segment(seed, j, k, prev, length) != chains[j][k]:
            problems.append(f"chain {j} segment {k} is not the hash chain of this seed")
    return problems


def _worker_main() -> None:
    """A CPU benchmark process: read the job, say ready, wait for go, run one chain."""
    job = json.loads(sys.stdin.readline())
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    seed = bytes.fromhex(job["seed"])
    start = time.perf_counter()  # CLOCK_MONOTONIC: comparable between processes
    chain = cpu_chain(seed, job["chain"], job["rounds"], job["checkpoints"])
    end = time.perf_counter()
    print(json.dumps({"start": start, "end": end, "chain": [c.hex() for c in chain]}), flush=True)


def _readline(proc: subprocess.Popen[bytes], deadline: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
    line = proc.stdout.readline() if ready else b""
    if not line:
        err = ""
        if proc.poll() is not None and proc.stderr is not None:
            err = proc.stderr.read().decode(errors="replace")[-500:]
        raise BenchmarkError(f"a CPU benchmark process failed or hung: {err or 'no answer'}")
    return line


def _parallel_chains(
    seed: bytes, rounds: int, checkpoints: int, processes: int, timeout: float
) -> tuple[float, list[tuple[str, ...]]]:
    """Run chains 1..processes at once, one Python process each; (wall seconds, chains).

    Plain subprocesses rather than multiprocessing: no fork of a threaded agent, and no
    re-import of the caller's main module."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
    }
    code = "from powerverse.infra.benchmark import _worker_main; _worker_main()"
    deadline = time.monotonic() + timeout
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for chain in range(1, processes + 1):
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
            workers.append(proc)
            job = {"seed": seed.hex(), "chain": chain, "rounds": rounds, "checkpoints": checkpoints}
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(job).encode() + b"\n")
            proc.stdin.flush()
        for proc in workers:  # every worker started and waiting: start them together
            _readline(proc, deadline)
        for proc in workers:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        rows = [json.loads(_readline(proc, deadline)) for proc in workers]
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    wall = max(r["end"] for r in rows) - min(r["start"] for r in rows)
    return wall, [tuple(r["chain"]) for r in rows]


def _cpu(seed: bytes, rounds: int, checkpoints: int, processes: int, say: Progress) -> CpuResult:
    if checkpoints < 1 or rounds < checkpoints:
        raise BenchmarkError(f"cpu_rounds ({rounds}) must be >= cpu_checkpoints ({checkpoints})")
    if processes < 1:
        raise BenchmarkError(f"threads must be >= 1, got {processes}")
    say("cpu single-thread")
    start = time.perf_counter()
    single = tuple(c.hex() for c in cpu_chain(seed, 0, rounds, checkpoints))
    single_s = time.perf_counter() - start
    say(f"cpu multi-thread ({processes} processes)")
    timeout = max(60.0, 20 * single_s)
    wall, parallel = _parallel_chains(seed, rounds, checkpoints, processes, timeout)
    chains = (single, *parallel)
    return CpuResult(
        rounds=rounds,
        checkpoints=checkpoints,
        processes=processes,
        single_ops_per_s=rounds / max(single_s, 1e-9),
        multi_ops_per_s=processes * rounds / max(wall, 1e-9),
        chains=chains,
        digest=cpu_digest(chains),
    )


# ---------------------------------------------------------------------------------- memory


def _memory(size_mib: int, repeats: int) -> MemoryResult:
    import numpy as np  # lazily: the CPU workers are spawned and should start light

    if size_mib < 1 or repeats < 1:
        raise BenchmarkError(f"memory_mib and memory_repeats must be >= 1 ({size_mib}, {repeats})")
    src = np.ones(size_mib << 17, dtype=np.float64)  # 2^17 doubles per MiB, pages touched
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats + 1):  # the first copy also faults dst's pages in: a warm-up
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return MemoryResult(
        gbps=2 * src.nbytes / max(best, 1e-9) / 1e9, size_mib=size_mib, repeats=repeats
    )


# ---------------------------------------------------------------------------------- disk


def _mount_of(directory: Path) -> tuple[str, str]:
    """(filesystem type, whole-disk name) of the mount holding ``directory``."""
    path = str(directory.resolve())
    best = None
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint.rstrip("/") or "/"
        inside = path == mount or path.startswith(mount + "/") or mount == "/"
        if inside and (best is None or len(mount) > len(best.mountpoint.rstrip("/") or "/")):
            best = part
    if best is None:
        return "", ""
    return best.fstype, _whole_disk(best.device)


def _whole_disk(device: str, sysfs: Path = Path("/sys")) -> str:
    if not device.startswith("/dev/"):
        return ""
    name = Path(os.path.realpath(device)).name
    node = sysfs / "class/block" / name
    if not node.exists():
        return ""
    slaves = sorted((node / "slaves").glob("*")) if (node / "slaves").is_dir() else []
    if slaves:  # device-mapper / md: the first disk under it
        return _whole_disk("/dev/" + slaves[0].name, sysfs)
    if (node / "partition").exists():
        return node.resolve().parent.name
    return name


def _write(path: Path, size_mib: int, seed: bytes) -> float:
    block = bytearray(random.Random(seed).randbytes(_BLOCK))  # incompressible
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        start = time.perf_counter()
        for i in range(size_mib):
            block[:8] = i.to_bytes(8, "big")  # no two blocks alike: nothing to deduplicate
            os.write(fd, block)
        os.fsync(fd)
        return time.perf_counter() - start
    finally:
        os.close(fd)


def _read_direct(path: Path) -> tuple[int, float] | None:
    """(bytes, seconds) read with O_DIRECT; None where the filesystem refuses it."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | flag)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise
    buf = mmap.mmap(-1, _BLOCK)  # page-aligned, as O_DIRECT needs
    try:
        total, start = 0, time.perf_counter()
        while n := os.readv(fd, [buf]):
            total += n
        return total, time.perf_counter() - start
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise
    finally:
        buf.close()
        os.close(fd)


def _read_cached(path: Path) -> tuple[int, float, str]:
    fd = os.open(path, os.O_RDONLY)
    try:
        method = "page cache"
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            method = "posix_fadvise(DONTNEED)"
        total, start = 0, time.perf_counter()
        while chunk := os.read(fd, _BLOCK):
            total += len(chunk)
        return total, time.perf_counter() - start, method
    finally:
        os.close(fd)


def _disk(directory: Path, size_mib: int, seed: bytes) -> DiskResult:
    if size_mib < 1:
        raise BenchmarkError(f"disk_mib must be >= 1, got {size_mib}")
    if not directory.is_dir():
        raise BenchmarkError(f"the disk benchmark directory {directory} does not exist")
    path = directory / f".pv-disk-bench-{secrets.token_hex(6)}"
    try:
        write_s = _write(path, size_mib, seed)
        direct = _read_direct(path)
        if direct is not None:
            total, read_s, method = *direct, "O_DIRECT"
        else:
            total, read_s, method = _read_cached(path)
    except OSError as exc:
        raise BenchmarkError(
            f"cannot benchmark the disk in {directory}: {exc.strerror or exc} "
            "(give a writable directory on the disk VMs will use)"
        ) from None
    finally:
        path.unlink(missing_ok=True)
    size = size_mib * _BLOCK
    if total != size:
        raise BenchmarkError(f"read back {total} of {size} bytes from {path}")
    fstype, device = _mount_of(directory)
    return DiskResult(
        write_mbps=size / max(write_s, 1e-9) / 1e6,
        read_mbps=size / max(read_s, 1e-9) / 1e6,
        size_mib=size_mib,
        read_method=method,
        filesystem=fstype,
        device=device,
    )


# ---------------------------------------------------------------------------------- GPU


def _gpu(seed: bytes, size: int, repeats: int) -> GpuResult:
    try:
        import torch  # not a dependency: measured only where it is installed with CUDA
    except ImportError:
        return GpuResult(measured=False, note="not measured: torch is not installed")
    if not torch.cuda.is_available():
        return GpuResult(measured=False, note="not measured: torch sees no CUDA device")
    rates = []
    for index in range(torch.cuda.device_count()):
        device = torch.device("cuda", index)
        gen = torch.Generator(device=device).manual_seed(int.from_bytes(seed[:8], "big"))
        a = torch.randn(size, size, device=device, dtype=torch.float16, generator=gen)
        b = torch.randn(size, size, device=device, dtype=torch.float16, generator=gen)
        torch.matmul(a, b)  # warm-up: kernel selection, clocks up
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.matmul(a, b)
        torch.cuda.synchronize(device)
        rates.append(2 * size**3 * repeats / (time.perf_counter() - start) / 1e12)
        del a, b
    return GpuResult(measured=True, tflops=tuple(rates), size=size, note="float16 matmul")


# ---------------------------------------------------------------------------------- run


def run_benchmarks(
    seed: bytes,
    *,
    disk_dir: Path,
    cpu_rounds: int = 2_000_000,
    cpu_checkpoints: int = 64,
    threads: int | None = None,
    memory_mib: int = 256,
    memory_repeats: int = 5,
    disk_mib: int = 256,
    gpu: bool = True,
    gpu_size: int = 8192,
    gpu_repeats: int = 20,
    progress: Progress | None = None,
) -> BenchmarkResults:
    """Run every benchmark once with ``seed``; ``progress`` hears each stage as it starts.

    ``threads``: processes of the multi-thread CPU run (default: the CPUs this process may
    use). ``disk_dir``: a directory on the disk to measure (a temporary file is written there
    and removed)."""
    if not seed:
        raise BenchmarkError("the benchmark seed is empty")
    say = progress or (lambda _: None)
    processes = threads or len(os.sched_getaffinity(0))
    start = time.perf_counter()
    cpu = _cpu(seed, cpu_rounds, cpu_checkpoints, processes, say)
    say("memory")
    memory = _memory(memory_mib, memory_repeats)
    say("disk")
    disk = _disk(disk_dir, disk_mib, seed)
    say("gpu")
    gpu_result = (
        _gpu(seed, gpu_size, gpu_repeats)
        if gpu
        else GpuResult(measured=False, note="not measured: disabled")
    )
    return BenchmarkResults(
        seed=seed.hex(),
        cpu=cpu,
        memory=memory,
        disk=disk,
        gpu=gpu_result,
        duration_s=time.perf_counter() - start,
    )
