"""Re-verification challenges on this machine: a verifier's signed challenge, the agent's real
benchmark run bound to it, and the verdict — OK for an honest answer, FLAG with per-field
reasons for inflated claims, late answers or work that does not match the seed — and refusal of
forged, foreign, expired, mismatched and malformed input. Time is an injected clock."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from powerverse.infra.attestation import (
    BadSignature,
    MalformedEvidence,
    SignedReport,
    sign_doc,
    sign_report,
)
from powerverse.infra.benchmark import BenchmarkResults
from powerverse.infra.challenge import (
    Challenge,
    ChallengeExpired,
    ChallengeLimits,
    ChallengeMismatch,
    ChallengeRefused,
    Status,
    Verdict,
    evaluate,
    respond,
)
from powerverse.infra.hardware import HostHardware, discover
from powerverse.infra.scoring import perform_para
from powerverse.market.resources import Disk, PerformPara, Ram

AGENT = Account.from_key(b"\x21" * 32)
VERIFIER = Account.from_key(b"\x22" * 32)
OTHER = Account.from_key(b"\x23" * 32)
T0 = 1_760_000_000


class Clock:
    """A settable clock (unix seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _issue(account: Any = VERIFIER) -> Challenge:
    """A challenge for token 7 with a fresh random seed and tiny sizes."""
    return Challenge.issue(account, token_id=7, issued_at=T0, deadline=T0 + 600, cpu_rounds=3000,
                           cpu_checkpoints=6, memory_mib=4, disk_mib=2)  # fmt: skip


@pytest.fixture(scope="module")
def hardware() -> HostHardware:
    """This machine."""
    return discover({"region": "test", "latitude": 1.0, "longitude": 2.0}, dmidecode=None)


@pytest.fixture(scope="module")
def disk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the disk benchmark writes."""
    return tmp_path_factory.mktemp("disk")


def _answer(challenge: Challenge, hw: HostHardware, disk_dir: Path, **kw: Any) -> SignedReport:
    kw.setdefault("clock", Clock(T0 + 10))
    claim = PerformPara.from_abi((("cpu", 1000, 1), ("", 0, 0, 0), (256, 0), ("ssd", 1, 1, 1)))
    return respond(challenge, account=AGENT, hardware=hw, claimed=claim, disk_dir=disk_dir,
                   threads=1, gpu=False, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def challenge() -> Challenge:
    """A challenge for token 7 with a fresh random seed."""
    return _issue()


@pytest.fixture(scope="module")
def response(challenge: Challenge, hardware: HostHardware, disk_dir: Path) -> SignedReport:
    """The agent's honest answer, sent over JSON both ways."""
    received = Challenge.from_json(json.dumps(challenge.to_json()))
    assert received == challenge
    answer = _answer(received, hardware, disk_dir, verifiers=[VERIFIER.address], token_ids={7})
    return SignedReport.from_json(json.dumps(answer.to_json()))


def _honest_claim(hw: HostHardware, results: BenchmarkResults) -> PerformPara:
    """What the machine really offers, by the same measurements."""
    return perform_para(hw, results, vcpus=1, memory_mib=256)


def _judge(challenge: Challenge, response: SignedReport, claim: PerformPara, **kw: Any) -> Verdict:
    kw.setdefault("clock", Clock(T0 + 20))
    kw.setdefault("samples", None)  # every segment: deterministic
    return evaluate(challenge, response, claim, agent=AGENT.address, **kw)


def test_an_honest_answer_passes(
    challenge: Challenge, response: SignedReport, hardware: HostHardware
) -> None:
    report = response.report
    assert report.challenge == challenge.hash and report.token_id == 7
    assert report.seed == challenge.seed == report.results.seed
    assert report.results.cpu.rounds == 3000 and report.results.disk.size_mib == 2
    verdict = _judge(challenge, response, _honest_claim(hardware, report.results))
    assert verdict.status is Status.OK and verdict.ok and verdict.findings == ()
    assert verdict.evidence_hash == response.evidence_hash and verdict.token_id == 7
    assert verdict.reason == "re-verification passed"
    sampled = evaluate(challenge, response, _honest_claim(hardware, report.results),
                       clock=Clock(T0 + 20), samples=2, rng=random.Random(3))  # fmt: skip
    assert sampled.ok


def test_claims_far_above_the_measurements_are_flagged_per_field(
    challenge: Challenge, response: SignedReport, hardware: HostHardware
) -> None:
    results = response.report.results
    honest = _honest_claim(hardware, results)
    inflated = dataclasses.replace(
        honest,
        cpu=dataclasses.replace(honest.cpu, cores=hardware.cpu.threads * 40),
        ram=Ram(size_mib=hardware.memory.size_mib * 30, frequency_mhz=0),
        disk=Disk(kind=honest.disk.kind, size_gb=honest.disk.size_gb,
                  read_mbps=10 * int(results.disk.read_mbps) + 10,
                  write_mbps=10 * int(results.disk.write_mbps) + 10),
    )  # fmt: skip
    verdict = _judge(challenge, response, inflated)
    assert verdict.status is Status.FLAG and not verdict.ok
    fields = [f.field for f in verdict.findings]
    assert fields == ["disk.read_mbps", "disk.write_mbps", "cpu.cores", "ram.size_mib"]
    read = verdict.findings[0]
    assert read.claimed == inflated.disk.read_mbps and read.measured == results.disk.read_mbps
    assert "disk.read_mbps: measured" in verdict.reason and "under 50% of the claim" in read.detail
    assert verdict.evidence_hash == response.evidence_hash  # what Resources.flag needs
    assert len(verdict.reason.encode()) <= 512

    lenient = _judge(challenge, response, inflated, tolerance=0.05)  # configurable: 10x passes
    assert [f.field for f in lenient.findings] == ["cpu.cores", "ram.size_mib"]
    with pytest.raises(ValueError, match="tolerance"):
        _judge(challenge, response, inflated, tolerance=1.5)


def test_speeds_are_compared_with_the_verified_baseline(
    challenge: Challenge, response: SignedReport, hardware: HostHardware
) -> None:
    results = response.report.results
    baseline = dataclasses.replace(
        results, memory=dataclasses.replace(results.memory, gbps=results.memory.gbps * 10)
    )
    verdict = _judge(challenge, response, _honest_claim(hardware, results), baseline=baseline)
    assert [f.field for f in verdict.findings] == ["memory.gbps"]
    assert _judge(challenge, response, _honest_claim(hardware, results), baseline=results).ok


def test_a_late_answer_is_flagged(
    challenge: Challenge, response: SignedReport, hardware: HostHardware
) -> None:
    claim = _honest_claim(hardware, response.report.results)
    verdict = _judge(challenge, response, claim, clock=Clock(challenge.deadline + 1))
    assert [f.field for f in verdict.findings] == ["deadline"]
    assert f"after the deadline {challenge.deadline}" in verdict.reason


def test_an_expired_challenge_is_not_run(hardware: HostHardware, tmp_path: Path) -> None:
    challenge = _issue()
    with pytest.raises(ChallengeExpired, match="deadline"):
        _answer(challenge, hardware, tmp_path, clock=Clock(challenge.deadline + 1))
    assert list(tmp_path.iterdir()) == []


def _resign(response: SignedReport, **changes: Any) -> SignedReport:
    """What a dishonest agent would send: its own edits, signed with its own key."""
    return sign_report(AGENT, dataclasses.replace(response.report, **changes))


def test_work_that_does_not_match_the_seed_is_flagged(
    challenge: Challenge, response: SignedReport, hardware: HostHardware
) -> None:
    claim = _honest_claim(hardware, response.report.results)
    results = response.report.results
    chains = [list(c) for c in results.cpu.chains]
    chains[1][3] = "ab" * 32  # a segment skipped
    forged_cpu = dataclasses.replace(results.cpu, chains=tuple(tuple(c) for c in chains))
    forged = _resign(response, results=dataclasses.replace(results, cpu=forged_cpu))
    verdict = _judge(challenge, response=forged, claim=claim)
    assert [f.field for f in verdict.findings] == ["cpu.digest"]
    assert "chain 1 segment 3 is not the hash chain of this seed" in verdict.reason

    other_seed = "00" * 16  # the benchmarks of an old run, with its own seed
    stale = _resign(response, seed=other_seed,
                    results=dataclasses.replace(results, seed=other_seed))  # fmt: skip
    assert "ran with another seed" in _judge(challenge, stale, claim).reason

    short = _resign(response, results=dataclasses.replace(
        results, cpu=dataclasses.replace(results.cpu, rounds=2000)))  # fmt: skip
    verdict = _judge(challenge, short, claim)
    assert verdict.findings[0].detail == "cpu.rounds: ran 2000, the challenge asked 3000"


def test_an_answer_to_another_challenge_is_refused(
    challenge: Challenge, response: SignedReport, hardware: HostHardware
) -> None:
    claim = _honest_claim(hardware, response.report.results)
    other = _issue()  # same token, fresh seed
    with pytest.raises(ChallengeMismatch, match="answers challenge"):
        _judge(other, response, claim)
    wrong_token = _resign(response, token_id=8)
    with pytest.raises(ChallengeMismatch, match="for token 8, the challenge for 7"):
        _judge(challenge, wrong_token, claim)


def test_tampered_or_foreign_answers_are_refused(
    challenge: Challenge, response: SignedReport, hardware: HostHardware
) -> None:
    claim = _honest_claim(hardware, response.report.results)
    doc = response.to_json()
    doc["doc"]["results"]["disk"]["read_mbps"] *= 100  # edited on the way
    with pytest.raises(BadSignature, match="altered after signing"):
        _judge(challenge, SignedReport.from_json(doc), claim)
    by_other = SignedReport(response.report, sign_doc(OTHER, response.report.to_json()).signature)
    with pytest.raises(BadSignature, match=f"recovers {OTHER.address}"):
        _judge(challenge, by_other, claim)
    theirs = sign_report(OTHER, dataclasses.replace(response.report, agent=OTHER.address))
    with pytest.raises(BadSignature, match="not by the resource's agent"):
        _judge(challenge, theirs, claim)


def test_forged_or_unwanted_challenges_are_refused(
    challenge: Challenge, hardware: HostHardware, tmp_path: Path
) -> None:
    moved = dataclasses.replace(challenge, deadline=challenge.deadline + 3600)  # old signature
    with pytest.raises(BadSignature, match="altered or forged"):
        _answer(moved, hardware, tmp_path)
    stranger = _issue(account=OTHER)
    assert stranger.verify() == OTHER.address  # well signed, by someone else
    with pytest.raises(ChallengeRefused, match="not a verifier this agent accepts"):
        _answer(stranger, hardware, tmp_path, verifiers=[VERIFIER.address])
    with pytest.raises(ChallengeRefused, match="token 7 is not served"):
        _answer(challenge, hardware, tmp_path, token_ids={1, 2})
    with pytest.raises(ChallengeRefused, match="disk_mib = 2; this agent runs <= 1"):
        _answer(challenge, hardware, tmp_path, limits=ChallengeLimits(max_disk_mib=1))
    with pytest.raises(ChallengeRefused, match="cpu_checkpoints = 6; this agent runs <= 4"):
        _answer(challenge, hardware, tmp_path, limits=ChallengeLimits(max_cpu_checkpoints=4))
    assert list(tmp_path.iterdir()) == []  # nothing ran


def test_malformed_challenges_are_named(challenge: Challenge) -> None:
    good = challenge.to_json()

    def refused(data: Any, match: str) -> None:
        with pytest.raises(MalformedEvidence, match=match):
            Challenge.from_json(data)

    refused("{oops", "not JSON")
    refused([good], "kind")
    refused({**good, "kind": "pv-benchmark-report"}, "kind")
    changes: list[tuple[Callable[[dict[str, Any]], object], str]] = [
        (lambda d: d.pop("deadline"), "missing field 'deadline'"),
        (lambda d: d.update(extra=1), "unknown or missing field 'extra'"),
        (lambda d: d.update(token_id="7"), r"challenge\.token_id: expected int"),
        (lambda d: d.update(deadline=True), r"challenge\.deadline: expected int"),
        (lambda d: d.update(seed="xyz"), "not hex"),
        (lambda d: d.update(seed="00" * 8), "at least 16 bytes"),
        (lambda d: d.update(verifier="0x12"), "no address"),
        (lambda d: d.update(token_id=0), "ids start at 1"),
        (lambda d: d.update(deadline=T0), "not after it was issued"),
        (lambda d: d.update(cpu_checkpoints=10**9), "cannot fill"),
        (lambda d: d.update(disk_mib=0), "must be >= 1"),
    ]
    for change, match in changes:
        bad = dict(good)
        change(bad)
        refused(bad, match)
    with pytest.raises(MalformedEvidence, match="at least 16 bytes"):
        Challenge.issue(VERIFIER, token_id=1, issued_at=T0, deadline=T0 + 1, seed=b"short")


def test_malformed_responses_are_named(challenge: Challenge, response: SignedReport) -> None:
    with pytest.raises(MalformedEvidence, match="not JSON"):
        SignedReport.from_json('{"doc": ')
    doc = response.to_json()
    doc["doc"]["challenge"] = 12
    with pytest.raises(MalformedEvidence, match="challenge: expected str"):
        SignedReport.from_json(doc)
