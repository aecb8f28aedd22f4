"""Benchmarks with tiny sizes on this machine: the seed-bound CPU work and its sampled
verification, memory and disk figures (real files, page cache kept out), GPU not measured
without torch, the JSON round trip, and refused parameters."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import random
from pathlib import Path

import pytest

from powerverse.infra.benchmark import (
    BenchmarkError,
    BenchmarkResults,
    CpuResult,
    Progress,
    cpu_chain,
    cpu_digest,
    run_benchmarks,
    verify_cpu_work,
)

SEED = b"\x42" * 16


def _run(
    disk_dir: Path,
    *,
    seed: bytes = SEED,
    threads: int = 1,
    gpu: bool = False,
    progress: Progress | None = None,
    sizes: dict[str, int] | None = None,
) -> BenchmarkResults:
    """A tiny run (4,000 hashes in 8 segments per chain, 4 MiB of memory, 2 MiB of disk)."""
    sizes = sizes or {}
    return run_benchmarks(
        seed,
        disk_dir=disk_dir,
        threads=threads,
        gpu=gpu,
        progress=progress,
        cpu_rounds=sizes.get("cpu_rounds", 4000),
        cpu_checkpoints=sizes.get("cpu_checkpoints", 8),
        memory_mib=sizes.get("memory_mib", 4),
        disk_mib=sizes.get("disk_mib", 2),
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> BenchmarkResults:
    """One tiny run with two CPU processes."""
    return _run(tmp_path_factory.mktemp("disk"), threads=2, gpu=True)


def test_a_run_reports_every_figure(tmp_path: Path) -> None:
    stages: list[str] = []
    run = _run(tmp_path, threads=2, gpu=True, progress=stages.append)
    assert stages == [
        "cpu single-thread",
        "cpu multi-thread (2 processes)",
        "memory",
        "disk",
        "gpu",
    ]
    assert run.seed == SEED.hex()
    assert run.cpu.single_ops_per_s > 0 and run.cpu.multi_ops_per_s > 0
    assert (run.cpu.rounds, run.cpu.checkpoints, run.cpu.processes) == (4000, 8, 2)
    assert len(run.cpu.chains) == 3 and all(len(c) == 8 for c in run.cpu.chains)
    assert run.memory.gbps > 0 and run.memory.size_mib == 4
    assert run.disk.write_mbps > 0 and run.disk.read_mbps > 0 and run.disk.size_mib == 2
    assert run.disk.read_method in {"O_DIRECT", "posix_fadvise(DONTNEED)"}
    assert run.disk.filesystem  # the filesystem under tmp_path is named
    assert list(tmp_path.iterdir()) == []  # the test file is gone
    assert run.duration_s > 0


def test_cpu_work_is_deterministic_per_seed_and_chain(results: BenchmarkResults) -> None:
    assert results.cpu.chains[0] == tuple(c.hex() for c in cpu_chain(SEED, 0, 4000, 8))
    assert results.cpu.chains[2] == tuple(c.hex() for c in cpu_chain(SEED, 2, 4000, 8))
    assert results.cpu.digest == cpu_digest(results.cpu.chains)
    assert cpu_chain(SEED, 1, 4000, 8) != cpu_chain(b"\x43" * 16, 1, 4000, 8)
    assert cpu_chain(SEED, 1, 4000, 8) != cpu_chain(SEED, 2, 4000, 8)
    # checkpoints split the same number of hashes differently: a different chain
    assert cpu_chain(SEED, 0, 4000, 8)[-1] != cpu_chain(SEED, 0, 4000, 4)[-1]


def test_honest_work_verifies_in_full_and_by_samples(results: BenchmarkResults) -> None:
    assert verify_cpu_work(SEED, results.cpu, samples=None) == []
    assert verify_cpu_work(SEED, results.cpu, samples=3, rng=random.Random(1)) == []


def _with_chain(cpu: CpuResult, index: int, chain: tuple[str, ...]) -> CpuResult:
    chains = list(cpu.chains)
    chains[index] = chain
    return dataclasses.replace(cpu, chains=tuple(chains), digest=cpu_digest(chains))


def test_skipped_or_foreign_work_is_caught(results: BenchmarkResults) -> None:
    cpu = results.cpu
    other_seed = verify_cpu_work(b"\x43" * 16, cpu, samples=None)
    assert len(other_seed) == 3 * 8  # precomputed for another seed: every segment fails

    forged = list(cpu.chains[1])
    forged[4] = "00" * 32  # one segment skipped (and the next starts from a made-up value)
    tampered = _with_chain(cpu, 1, tuple(forged))
    assert verify_cpu_work(SEED, tampered, samples=None) == [
        "chain 1 segment 4 is not the hash chain of this seed",
        "chain 1 segment 5 is not the hash chain of this seed",
    ]
    # sampling finds it once one of the two bad segments is drawn
    caught = [bool(verify_cpu_work(SEED, tampered, samples=6, rng=random.Random(s)))
              for s in range(40)]  # fmt: skip
    assert any(caught) and not all(caught)

    assert verify_cpu_work(SEED, dataclasses.replace(cpu, digest="00" * 32), samples=0) == [
        "the digest does not match the chains"
    ]


def test_malformed_cpu_results_are_reported_not_raised(results: BenchmarkResults) -> None:
    cpu = results.cpu
    assert "3 chains for 5 processes + 1" in verify_cpu_work(
        SEED, dataclasses.replace(cpu, processes=5)
    )
    assert verify_cpu_work(SEED, _with_chain(cpu, 0, cpu.chains[0][:-1])) == [
        "every chain must hold 8 checkpoints of 32 bytes"
    ]
    not_hex = dataclasses.replace(cpu, chains=(("zz",) * 8, *cpu.chains[1:]))
    assert verify_cpu_work(SEED, not_hex) == ["a checkpoint is not hex"]
    assert "cannot fill" in verify_cpu_work(SEED, dataclasses.replace(cpu, rounds=3))[0]


def test_results_json_round_trip(results: BenchmarkResults) -> None:
    doc = json.loads(json.dumps(results.to_json()))
    assert doc == results.to_json() and BenchmarkResults.from_json(doc) == results
    doc["cpu"]["chains"] = "not a list"
    with pytest.raises(ValueError, match=r"results\.cpu\.chains: expected a list"):
        BenchmarkResults.from_json(doc)
    with pytest.raises(ValueError, match="missing field 'disk'"):
        BenchmarkResults.from_json({k: v for k, v in results.to_json().items() if k != "disk"})


def test_disk_reads_bypass_the_page_cache_or_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shm = Path("/dev/shm")
    if shm.is_dir():  # tmpfs: the filesystem is named, so a verifier knows it measured memory
        run = _run(shm)
        assert run.disk.filesystem == "tmpfs" and run.disk.device == ""
    monkeypatch.delattr(os, "O_DIRECT")  # a platform without it: the fadvise fallback
    run = _run(tmp_path)
    assert run.disk.read_method == "posix_fadvise(DONTNEED)" and run.disk.read_mbps > 0
    assert list(tmp_path.iterdir()) == []


def test_gpu_is_not_measured_without_torch_and_cuda(results: BenchmarkResults) -> None:
    if importlib.util.find_spec("torch") is None:
        assert not results.gpu.measured and results.gpu.tflops == ()
        assert results.gpu.note == "not measured: torch is not installed"
    else:  # a machine with torch: measured only when it sees a CUDA device
        assert results.gpu.measured == bool(results.gpu.tflops)
    disabled = _run(Path("/tmp"))
    assert disabled.gpu.note == "not measured: disabled" and disabled.gpu.total_tflops == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cpu_rounds": 4}, r"cpu_rounds \(4\) must be >= cpu_checkpoints \(8\)"),
        ({"threads": -1}, "threads must be >= 1"),
        ({"memory_mib": 0}, "memory_mib and memory_repeats must be >= 1"),
        ({"disk_mib": 0}, "disk_mib must be >= 1"),
    ],
)
def test_bad_parameters_are_refused(tmp_path: Path, change: dict[str, int], message: str) -> None:
    sizes = dict(change)
    with pytest.raises(BenchmarkError, match=message):
        _run(tmp_path, threads=sizes.pop("threads", 1), sizes=sizes)


def test_bad_seed_or_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="seed is empty"):
        _run(tmp_path, seed=b"")
    with pytest.raises(BenchmarkError, match="does not exist"):
        _run(tmp_path / "nope")
    with pytest.raises(BenchmarkError, match="cannot benchmark the disk in /proc"):
        _run(Path("/proc"))
