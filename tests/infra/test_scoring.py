"""PerformPara from discovery and measured benchmarks, the contract's parameter checks, and the
score formula against the real ResourceNFT.score (eth_call on a dev node) under random
parameters and weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from powerverse.infra.benchmark import BenchmarkResults, run_benchmarks
from powerverse.infra.hardware import (
    CpuInfo,
    DiskInfo,
    GpuInfo,
    HostHardware,
    MemoryInfo,
    discover,
)
from powerverse.infra.scoring import (
    InvalidPerformPara,
    check_para,
    para_from_json,
    para_to_json,
    perform_para,
    score,
)
from powerverse.market.resources import Cpu, Disk, Gpu, PerformPara, Ram, Resources, Weights
from tests.market.conftest import ClientFactory, client, dev_node, dev_signers  # noqa: F401

UINT32 = 2**32 - 1
UINT64 = 2**64 - 1


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> BenchmarkResults:
    """A tiny real benchmark run."""
    return run_benchmarks(
        b"scoring-seed-000",
        disk_dir=tmp_path_factory.mktemp("disk"),
        cpu_rounds=2000, cpu_checkpoints=4, threads=1, memory_mib=4, disk_mib=2, gpu=False,
    )  # fmt: skip


def _gpu(index: int, model: str = "NVIDIA H100 80GB HBM3") -> GpuInfo:
    return GpuInfo(
        index=index, model=model, memory_mib=81559, sm_count=132, cuda_cores=16896,
        compute_capability="9.0", pci_bus_id=f"0:{index}", uuid=f"GPU-{index}",
    )  # fmt: skip


def _host(bench: BenchmarkResults, **changes: object) -> HostHardware:
    hw = HostHardware(
        cpu=CpuInfo(model="AMD EPYC 9654 96-Core Processor", cores=96, threads=192,
                    max_mhz=3700, current_mhz=2400, virtualization=("svm",), hypervisor=False),
        memory=MemoryInfo(size_mib=786432, speed_mhz=4800),
        gpus=(_gpu(0), _gpu(1)),
        disks=(
            DiskInfo(name="sda", model="big hdd", kind="hdd", size_bytes=16 * 10**12,
                     rotational=True),
            DiskInfo(name=bench.disk.device or "nvme0n1", model="fast", kind="nvme",
                     size_bytes=3_840 * 10**9, rotational=False),
        ),
    )  # fmt: skip
    return dataclasses.replace(hw, **changes)  # type: ignore[arg-type]


def test_perform_para_takes_measured_disk_speeds_and_discovered_kind(
    bench: BenchmarkResults,
) -> None:
    para = perform_para(_host(bench), bench)
    assert para.cpu == Cpu(model="AMD EPYC 9654 96-Core Processor", clock_speed_mhz=3700,
                           cores=192)  # fmt: skip
    assert para.gpu == Gpu(model="NVIDIA H100 80GB HBM3", memory_mib=81559, cuda_cores=16896,
                           count=2)  # fmt: skip
    assert para.ram == Ram(size_mib=786432, frequency_mhz=4800)
    # the disk the benchmark ran on (when known), not the largest; speeds as measured
    assert para.disk == Disk(kind="nvme", size_gb=3840, read_mbps=int(bench.disk.read_mbps),
                             write_mbps=int(bench.disk.write_mbps))  # fmt: skip


def test_a_resource_is_a_slice_of_the_host(bench: BenchmarkResults) -> None:
    para = perform_para(_host(bench), bench, vcpus=4, memory_mib=8192, disk_gb=100, gpu_count=1)
    assert (para.cpu.cores, para.ram.size_mib, para.disk.size_gb) == (4, 8192, 100)
    assert para.gpu.count == 1 and para.gpu.memory_mib == 81559
    no_gpu = perform_para(_host(bench), bench, gpu_count=0)
    assert no_gpu.gpu == Gpu()


def test_perform_para_on_this_machine(bench: BenchmarkResults, tmp_path: Path) -> None:
    hw = discover(dmidecode=None, network=False)
    para = perform_para(hw, bench, vcpus=1, memory_mib=256)
    check_para(para)
    assert para.disk.read_mbps == int(bench.disk.read_mbps)
    assert para.disk.kind in {d.kind for d in hw.disks} | {"unknown"}
    assert para.ram.frequency_mhz == (hw.memory.speed_mhz or 0)


def test_what_the_contract_would_refuse_is_refused_here(bench: BenchmarkResults) -> None:
    with pytest.raises(InvalidPerformPara, match="different models"):
        perform_para(_host(bench, gpus=(_gpu(0), _gpu(1, "NVIDIA A100"))), bench)
    unknown_clock = dataclasses.replace(_host(bench).cpu, max_mhz=None, current_mhz=None)
    with pytest.raises(InvalidPerformPara, match="clock"):
        perform_para(_host(bench, cpu=unknown_clock), bench)
    with pytest.raises(InvalidPerformPara, match="disk size"):
        perform_para(_host(bench, disks=()), bench)
    long_name = dataclasses.replace(_host(bench).cpu, model="Ω" * 40)  # 80 UTF-8 bytes
    assert perform_para(_host(bench, cpu=long_name), bench).cpu.model == "Ω" * 32

    good = perform_para(_host(bench), bench)

    def refused(match: str, **parts: object) -> None:
        with pytest.raises(InvalidPerformPara, match=match):
            check_para(dataclasses.replace(good, **parts))  # type: ignore[arg-type]

    refused("cpu: cores", cpu=dataclasses.replace(good.cpu, cores=0))
    refused("cpu.model is longer", cpu=dataclasses.replace(good.cpu, model="x" * 65))
    refused("gpu: no GPUs", gpu=Gpu(model="x"))
    refused("gpu: GPUs offered with no memory", gpu=Gpu(count=1))
    refused("ram", ram=Ram(size_mib=0, frequency_mhz=0))
    refused("disk.kind is longer", disk=dataclasses.replace(good.disk, kind="k" * 65))
    refused(r"ram.size_mib = 4294967296 is not a uint32", ram=Ram(size_mib=2**32, frequency_mhz=1))
    refused("cpu.cores = -1", cpu=dataclasses.replace(good.cpu, cores=-1))


def test_score_formula_by_hand() -> None:
    para = PerformPara(
        cpu=Cpu(model="c", clock_speed_mhz=3000, cores=16),
        gpu=Gpu(model="g", memory_mib=24576, cuda_cores=16384, count=2),
        ram=Ram(size_mib=65536, frequency_mhz=3200),
        disk=Disk(kind="nvme", size_gb=1000, read_mbps=3500, write_mbps=3001),
    )
    w = Weights(cpu_clock_speed=100, cpu_cores=50_000, gpu_memory=100, gpu_cuda_cores=200,
                gpu_count=500_000, ram_size=20, ram_frequency=50, disk_size=100,
                disk_read_speed=100, disk_write_speed=100)  # fmt: skip
    total = (3000 * 100 + 16 * 50_000 + 24576 * 2 * 100 + 16384 * 2 * 200 + 2 * 500_000
             + 65536 * 20 + 3200 * 50 + 1000 * 100 + 3500 * 100 + 3001 * 100)  # fmt: skip
    assert score(para, w) == total // 1000  # one floor division at the end
    with pytest.raises(InvalidPerformPara, match="weight ram_size"):
        score(para, dataclasses.replace(w, ram_size=2**64))
    with pytest.raises(InvalidPerformPara, match=r"gpu\.count"):
        score(dataclasses.replace(para, gpu=Gpu(count=-1)), w)


def test_para_json_round_trip(bench: BenchmarkResults) -> None:
    para = perform_para(_host(bench), bench)
    assert para_from_json(para_to_json(para)) == para
    with pytest.raises(ValueError, match=r"claimed\.disk\.size_gb: expected int"):
        para_from_json({**para_to_json(para), "disk": {**para_to_json(para)["disk"],
                                                        "size_gb": 1.5}})  # fmt: skip


u32 = st.integers(0, UINT32)
models = st.text(max_size=8)
paras = st.builds(
    PerformPara,
    cpu=st.builds(Cpu, model=models, clock_speed_mhz=u32, cores=u32),
    gpu=st.builds(Gpu, model=models, memory_mib=u32, cuda_cores=u32, count=u32),
    ram=st.builds(Ram, size_mib=u32, frequency_mhz=u32),
    disk=st.builds(Disk, kind=models, size_gb=u32, read_mbps=u32, write_mbps=u32),
)
weights = st.builds(
    Weights, **{f.name: st.integers(0, UINT64) for f in dataclasses.fields(Weights)}
)
MAX_PARA = PerformPara(
    cpu=Cpu(model="", clock_speed_mhz=UINT32, cores=UINT32),
    gpu=Gpu(memory_mib=UINT32, cuda_cores=UINT32, count=UINT32),
    ram=Ram(size_mib=UINT32, frequency_mhz=UINT32),
    disk=Disk(kind="", size_gb=UINT32, read_mbps=UINT32, write_mbps=UINT32),
)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(para=paras, w=weights)
@example(para=MAX_PARA, w=Weights(**{f.name: UINT64 for f in dataclasses.fields(Weights)}))
@example(para=MAX_PARA, w=Weights(**{f.name: 1 for f in dataclasses.fields(Weights)}))
def test_score_equals_the_contracts(
    client: ClientFactory,  # noqa: F811
    para: PerformPara,
    w: Weights,
) -> None:
    nft = Resources(client(0))  # the dev foundation holds the governance role
    nft.set_weights(w)
    assert nft.weights() == w
    assert score(para, w) == nft.score(para)  # eth_call of ResourceNFT.score
