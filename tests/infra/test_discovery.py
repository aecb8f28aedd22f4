"""Discovery on fixture trees and this machine, benchmarks with tiny sizes, the score formula
against the real ResourceNFT contract, and signed evidence and challenges."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.infra.attestation import Challenge, SignedDoc, evaluate, sign_doc, verify_doc
from powerverse.infra.benchmark import cpu_digest, run_benchmarks
from powerverse.infra.exceptions import AuthError
from powerverse.infra.hardware import cuda_cores_per_sm, discover
from powerverse.infra.scoring import perform_para, score
from powerverse.market.resources import Cpu, Disk, Gpu, PerformPara, Ram, Resources, Weights
from tests.market.conftest import ClientFactory, client, dev_node, dev_signers  # noqa: F401

AGENT = Account.from_key(b"\x11" * 32)
VERIFIER = Account.from_key(b"\x12" * 32)


def _tree(root: Path) -> tuple[Path, Path]:
    proc, sys = root / "proc", root / "sys"
    proc.mkdir()
    (proc / "cpuinfo").write_text(
        "processor\t: 0\nmodel name\t: Test CPU 9000\nphysical id\t: 0\ncore id\t: 0\n"
        "cpu MHz\t\t: 3000.000\nflags\t\t: fpu sse2 vmx avx2\n\n"
        "processor\t: 1\nmodel name\t: Test CPU 9000\nphysical id\t: 0\ncore id\t: 1\n"
        "cpu MHz\t\t: 3000.000\nflags\t\t: fpu sse2 vmx avx2\n\n"
    )
    for name, rot, size in (
        ("nvme0n1", "0", 2_000_000_000),
        ("sda", "1", 8_000_000_000),
        ("sdb", "0", 1_000_000),
        ("loop0", "0", 10),
        ("vdb", "0", 100),
    ):
        dev = sys / "block" / name
        (dev / "queue").mkdir(parents=True)
        (dev / "size").write_text(str(size))
        (dev / "queue" / "rotational").write_text(rot)
    (sys / "block" / "broken").mkdir()  # no size file: skipped
    return proc, sys


def test_discovery_on_a_fixture_tree(tmp_path: Path) -> None:
    proc, sys = _tree(tmp_path)
    hw = discover({"region": "eu-west"}, procfs=proc, sysfs=sys)
    assert hw.cpu.model == "Test CPU 9000" and hw.cpu.virtualization == ("vmx",)
    assert hw.cpu.max_mhz == 3000
    kinds = {d.name: d.kind for d in hw.disks}
    assert kinds == {"nvme0n1": "nvme", "sda": "hdd", "sdb": "ssd", "vdb": "virtual"}
    assert {d.name: d.size_gb for d in hw.disks}["nvme0n1"] == 1024  # 2e9 sectors x 512 B
    assert hw.location == {"region": "eu-west"}
    assert hw.to_json()["cpu"]["model"] == "Test CPU 9000"


def test_discovery_on_this_machine() -> None:
    hw = discover()
    assert hw.cpu.threads >= 1 and hw.cpu.cores >= 1 and hw.memory_mib > 0
    assert hw.cpu.model
    assert all(g.memory_mib > 0 for g in hw.gpus)  # none here; NVML absent is not an error
    assert cuda_cores_per_sm(8, 0) == 64 and cuda_cores_per_sm(8, 6) == 128


def test_benchmarks_measure_and_prove_the_cpu_work(tmp_path: Path) -> None:
    steps: list[str] = []
    results = run_benchmarks(
        b"seed-1", disk_dir=tmp_path, cpu_rounds=30_000, memory_mib=8, disk_mib=4,
        threads=2, progress=steps.append,
    )  # fmt: skip
    assert steps == ["cpu", "memory", "disk", "gpu"]
    assert results.cpu_digest == cpu_digest(b"seed-1", 30_000).hex()
    assert results.cpu_single_hashes_per_s > 0 and results.cpu_multi_hashes_per_s > 0
    assert results.memory_gbps > 0 and results.disk_read_mbps > 0 and results.disk_write_mbps > 0
    assert list(tmp_path.iterdir()) == []  # the disk benchmark cleans up
    assert results.gpu_tflops is None or results.gpu_tflops > 0


def test_perform_para_uses_measured_disk_speeds(tmp_path: Path) -> None:
    proc, sys = _tree(tmp_path)
    hw = discover(procfs=proc, sysfs=sys)
    results = run_benchmarks(b"s", disk_dir=tmp_path, cpu_rounds=20_000, memory_mib=8, disk_mib=4)
    para = perform_para(hw, results, vcpus=1, memory_mib=512)
    assert para.cpu.cores == 1 and para.ram.size_mib == 512
    assert para.disk.kind == "hdd" and para.disk.size_gb == 4096  # the largest disk
    assert para.disk.read_mbps == int(results.disk_read_mbps)


paras = st.builds(
    PerformPara,
    cpu=st.builds(Cpu, model=st.just("c"), clock_speed_mhz=st.integers(0, 10_000),
                  cores=st.integers(0, 512)),
    gpu=st.builds(Gpu, model=st.just("g"), memory_mib=st.integers(0, 200_000),
                  cuda_cores=st.integers(0, 30_000), count=st.integers(0, 16)),
    ram=st.builds(Ram, size_mib=st.integers(0, 4_000_000), frequency_mhz=st.integers(0, 10_000)),
    disk=st.builds(Disk, kind=st.just("nvme"), size_gb=st.integers(0, 100_000),
                   read_mbps=st.integers(0, 20_000), write_mbps=st.integers(0, 20_000)),
)  # fmt: skip
weights = st.builds(Weights, **{f: st.integers(0, 10_000) for f in (
    "cpu_clock_speed", "cpu_cores", "gpu_memory", "gpu_cuda_cores", "gpu_count", "ram_size",
    "ram_frequency", "disk_size", "disk_read_speed", "disk_write_speed")})  # fmt: skip


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(para=paras, w=weights)
def test_score_equals_the_contracts(client: ClientFactory, para: PerformPara, w: Weights) -> None:  # noqa: F811
    nft = Resources(client(0))  # the dev foundation holds the governance role
    nft.set_weights(w)
    expected = int(nft.client.call(nft.contract.functions.score(para.to_abi())))
    assert score(para, w) == expected


def test_signed_evidence_names_its_agent_and_its_hash_is_stable() -> None:
    signed = sign_doc(AGENT, {"results": {"x": 1}, "tokenId": 7})
    assert verify_doc(signed) == AGENT.address
    again = SignedDoc.from_json(signed.to_json())
    assert again.evidence_hash == signed.evidence_hash and len(signed.evidence_hash) == 32
    tampered = SignedDoc({"results": {"x": 2}, "tokenId": 7}, signed.signature)
    assert verify_doc(tampered) != AGENT.address
    with pytest.raises(AuthError):
        verify_doc(SignedDoc({"a": 1}, "0x1234"))
    with pytest.raises(AuthError):
        SignedDoc.from_json(["not", "a", "doc"])


def _respond(challenge: Challenge, results: dict[str, object]) -> SignedDoc:
    return sign_doc(
        AGENT, {"challenge": "0x" + challenge.signed.evidence_hash.hex(), "results": results}
    )


def test_challenges_pass_flag_or_are_refused(tmp_path: Path) -> None:
    now = int(time.time())
    seed = b"\x42" * 16
    challenge = Challenge.issue(VERIFIER, token_id=7, seed=seed, deadline=now + 60, issued_at=now)
    assert challenge.check(now) == seed
    measured = run_benchmarks(
        seed, disk_dir=tmp_path, cpu_rounds=20_000, memory_mib=8, disk_mib=4
    ).to_json()
    honest = _respond(challenge, measured)
    claim = {"disk_read_mbps": int(measured["disk_read_mbps"])}  # type: ignore[call-overload]
    verdict = evaluate(challenge, honest, agent=AGENT.address, claimed=claim, now=now)
    assert verdict.ok and verdict.evidence_hash == honest.evidence_hash

    inflated = {"disk_read_mbps": 10 * int(measured["disk_read_mbps"]) + 10}  # type: ignore[call-overload]
    flagged = evaluate(challenge, honest, agent=AGENT.address, claimed=inflated, now=now)
    assert not flagged.ok and "disk_read_mbps" in flagged.reason

    faked = _respond(challenge, {**measured, "cpu_digest": "00" * 32})
    assert "digest" in evaluate(challenge, faked, agent=AGENT.address, claimed={}, now=now).reason

    other = Challenge.issue(
        VERIFIER, token_id=7, seed=b"\x01" * 16, deadline=now + 60, issued_at=now
    )
    with pytest.raises(AuthError, match="another challenge"):
        evaluate(other, honest, agent=AGENT.address, claimed={}, now=now)
    with pytest.raises(AuthError, match="deadline"):
        evaluate(challenge, honest, agent=AGENT.address, claimed={}, now=now + 61)
    with pytest.raises(AuthError, match="agent"):
        evaluate(challenge, honest, agent=VERIFIER.address, claimed={}, now=now)
    wrong_seed = _respond(challenge, {**measured, "seed": "00"})
    with pytest.raises(AuthError, match="seed"):
        evaluate(challenge, wrong_seed, agent=AGENT.address, claimed={}, now=now)
    forged = Challenge(
        SignedDoc({**challenge.signed.doc, "deadline": now + 999}, challenge.signed.signature)
    )
    with pytest.raises(AuthError, match="verifier"):
        forged.check(now)
