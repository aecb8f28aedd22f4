"""Re-verification: a verifier challenges a resource; the agent answers with fresh benchmarks.

1. The verifier issues a :class:`Challenge` — token id, a fresh random seed, benchmark sizes,
   ``issued_at`` and ``deadline`` (unix seconds), its own address — signed by its key (EIP-191
   over the canonical JSON, as evidence is, see :mod:`powerverse.infra.attestation`).
2. The agent calls :func:`respond`: it checks the verifier's signature, that the verifier is
   one it accepts, that the sizes are within its limits and that the deadline has not passed
   (injected clock), runs the benchmarks with the challenge's seed and returns a
   :class:`~powerverse.infra.attestation.SignedReport` bound to the challenge (the
   challenge's hash is in the report).
3. The verifier calls :func:`evaluate`. What cannot be attributed to the agent raises (a bad
   or foreign signature, an answer to another challenge). What the agent signed is judged:
   an answer after the deadline, work that does not match the seed (sampled hash-chain
   segments recomputed, see :func:`~powerverse.infra.benchmark.verify_cpu_work`), sizes other
   than asked, or figures far below the claim (under ``tolerance`` × claimed, default one
   half) give the verdict FLAG with one finding per field; otherwise OK.

The deadline is what bounds the speed a slow machine can fake: the hash chains are sequential
and seed-bound, so a verifier who sizes ``cpu_rounds`` to the claimed speed and sets a tight
deadline learns that the work was really done that fast. The on-chain ``ResourceNFT.flag`` is
sent by the verifier's own code with :attr:`Verdict.evidence_hash` and :attr:`Verdict.reason`.
"""

from __future__ import annotations

import enum
import json
import random
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address

from powerverse.infra.attestation import (
    BadSignature,
    BenchmarkReport,
    EvidenceError,
    MalformedEvidence,
    SignedDoc,
    SignedReport,
    evidence_hash,
    sign_doc,
    sign_report,
    verify_doc,
)
from powerverse.infra.benchmark import BenchmarkResults, Progress, run_benchmarks, verify_cpu_work
from powerverse.infra.hardware import HostHardware
from powerverse.market.resources import PerformPara

__all__ = [
    "CHALLENGE_KIND",
    "Challenge",
    "ChallengeExpired",
    "ChallengeLimits",
    "ChallengeMismatch",
    "ChallengeRefused",
    "Finding",
    "Status",
    "Verdict",
    "evaluate",
    "respond",
]

CHALLENGE_KIND = "pv-challenge"
MAX_REASON_BYTES = 512  # ResourceNFT.MAX_REASON_LENGTH
Clock = Callable[[], float]


class ChallengeExpired(EvidenceError):
    """The challenge's deadline has passed."""


class ChallengeMismatch(EvidenceError):
    """The response answers another challenge (or another token)."""


class ChallengeRefused(EvidenceError):
    """The agent will not run this challenge (unknown verifier, sizes over its limits)."""


@dataclass(frozen=True, kw_only=True)
class Challenge:
    """A verifier's signed request to re-run the benchmarks with a fresh seed."""

    token_id: int
    seed: str  # hex
    issued_at: int
    deadline: int
    verifier: str
    cpu_rounds: int
    cpu_checkpoints: int
    memory_mib: int
    disk_mib: int
    signature: str = ""  # 0x hex over the canonical body (everything but the signature)

    @classmethod
    def issue(
        cls,
        verifier: LocalAccount,
        *,
        token_id: int,
        issued_at: int,
        deadline: int,
        seed: bytes | None = None,
        cpu_rounds: int = 2_000_000,
        cpu_checkpoints: int = 64,
        memory_mib: int = 256,
        disk_mib: int = 256,
    ) -> Challenge:
        """A challenge signed by ``verifier``; ``seed`` defaults to 32 fresh random bytes."""
        unsigned = cls(
            token_id=token_id,
            seed=(seed if seed is not None else secrets.token_bytes(32)).hex(),
            issued_at=issued_at,
            deadline=deadline,
            verifier=verifier.address,
            cpu_rounds=cpu_rounds,
            cpu_checkpoints=cpu_checkpoints,
            memory_mib=memory_mib,
            disk_mib=disk_mib,
        )
        unsigned.check_shape()
        return replace(unsigned, signature=sign_doc(verifier, unsigned.body()).signature)

    def body(self) -> dict[str, Any]:
        """The signed document: every field but the signature, with its kind."""
        doc = asdict(self)
        del doc["signature"]
        return {"kind": CHALLENGE_KIND, **doc}

    @property
    def hash(self) -> str:
        """keccak256 of the canonical body, 0x hex (what a response is bound to)."""
        return "0x" + evidence_hash(self.body()).hex()

    @property
    def seed_bytes(self) -> bytes:
        """The seed."""
        return bytes.fromhex(self.seed)

    def check_shape(self) -> None:
        """MalformedEvidence naming the first impossible field."""
        try:
            seed = bytes.fromhex(self.seed)
        except ValueError:
            raise MalformedEvidence(f"challenge seed {self.seed!r:.80} is not hex") from None
        if len(seed) < 16:
            raise MalformedEvidence(f"a challenge seed is at least 16 bytes, got {len(seed)}")
        if not is_address(self.verifier):
            raise MalformedEvidence(f"challenge verifier {self.verifier!r:.60} is no address")
        if self.token_id < 1:
            raise MalformedEvidence(f"challenge token id {self.token_id} (ids start at 1)")
        if self.deadline <= self.issued_at:
            raise MalformedEvidence(
                f"the challenge's deadline {self.deadline} is not after it was issued "
                f"({self.issued_at})"
            )
        if not 1 <= self.cpu_checkpoints <= self.cpu_rounds:
            raise MalformedEvidence(
                f"cpu_rounds {self.cpu_rounds} cannot fill {self.cpu_checkpoints} checkpoints"
            )
        if self.memory_mib < 1 or self.disk_mib < 1:
            raise MalformedEvidence("memory_mib and disk_mib must be >= 1")

    def verify(self) -> str:
        """The verifier's address, if it signed this challenge (BadSignature otherwise)."""
        self.check_shape()
        signer = verify_doc(SignedDoc(self.body(), self.signature))
        if signer != to_checksum_address(self.verifier):
            raise BadSignature(
                f"the challenge names verifier {self.verifier} but is signed by {signer}: it "
                "was altered or forged"
            )
        return signer

    def to_json(self) -> dict[str, Any]:
        """The body with its signature."""
        return {**self.body(), "signature": self.signature}

    @classmethod
    def from_json(cls, data: Any) -> Challenge:
        """Parse ``to_json`` output, or its JSON text (MalformedEvidence naming the field)."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise MalformedEvidence(f"the challenge is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("kind") != CHALLENGE_KIND:
            raise MalformedEvidence(f'a challenge is a JSON object with "kind": "{CHALLENGE_KIND}"')
        fields = {k: v for k, v in data.items() if k != "kind"}
        names = set(cls.__dataclass_fields__)
        if set(fields) != names:
            odd = sorted(set(fields) ^ names)
            raise MalformedEvidence(f"challenge: unknown or missing field {odd[0]!r}")
        for name, value in fields.items():
            want = str if name in ("seed", "verifier", "signature") else int
            if not isinstance(value, want) or isinstance(value, bool):
                raise MalformedEvidence(f"challenge.{name}: expected {want.__name__}")
        challenge = cls(**fields)
        challenge.check_shape()
        return challenge


# ---------------------------------------------------------------------------------- agent


@dataclass(frozen=True, kw_only=True)
class ChallengeLimits:
    """The most an agent runs for one challenge (a challenge is not a way to wear a disk out)."""

    max_cpu_rounds: int = 20_000_000
    max_cpu_checkpoints: int = 1024  # each is 64 hex characters per chain in the report
    max_memory_mib: int = 4096
    max_disk_mib: int = 4096
    max_window_s: int = 3600  # deadline - issued_at


def respond(
    challenge: Challenge,
    *,
    account: LocalAccount,
    hardware: HostHardware,
    claimed: PerformPara,
    disk_dir: Path,
    verifiers: Collection[str] | None = None,
    token_ids: Collection[int] | None = None,
    limits: ChallengeLimits | None = None,
    clock: Clock = time.time,
    threads: int | None = None,
    gpu: bool = True,
    progress: Progress | None = None,
) -> SignedReport:
    """Run ``challenge`` and sign the report bound to it.

    ``verifiers``: addresses whose challenges this agent accepts (e.g. the chain's
    VERIFIER_ROLE holders; None: any correctly signed challenge). ``token_ids``: the resources
    this agent serves (None: any). Raises BadSignature, ChallengeRefused or ChallengeExpired
    before running anything."""
    verifier = challenge.verify()
    if verifiers is not None and verifier not in {to_checksum_address(v) for v in verifiers}:
        raise ChallengeRefused(f"{verifier} is not a verifier this agent accepts")
    if token_ids is not None and challenge.token_id not in token_ids:
        raise ChallengeRefused(f"token {challenge.token_id} is not served by this agent")
    _check_limits(challenge, limits or ChallengeLimits())
    now = clock()
    if now > challenge.deadline:
        raise ChallengeExpired(
            f"the challenge's deadline {challenge.deadline} has passed (now {int(now)})"
        )
    results = run_benchmarks(
        challenge.seed_bytes,
        disk_dir=disk_dir,
        cpu_rounds=challenge.cpu_rounds,
        cpu_checkpoints=challenge.cpu_checkpoints,
        memory_mib=challenge.memory_mib,
        disk_mib=challenge.disk_mib,
        threads=threads,
        gpu=gpu,
        progress=progress,
    )
    report = BenchmarkReport(
        hardware=hardware,
        results=results,
        claimed=claimed,
        agent=account.address,
        token_id=challenge.token_id,
        seed=challenge.seed,
        timestamp=int(clock()),
        challenge=challenge.hash,
    )
    return sign_report(account, report)


def _check_limits(challenge: Challenge, limits: ChallengeLimits) -> None:
    asked = (
        ("cpu_rounds", challenge.cpu_rounds, limits.max_cpu_rounds),
        ("cpu_checkpoints", challenge.cpu_checkpoints, limits.max_cpu_checkpoints),
        ("memory_mib", challenge.memory_mib, limits.max_memory_mib),
        ("disk_mib", challenge.disk_mib, limits.max_disk_mib),
        ("deadline - issued_at", challenge.deadline - challenge.issued_at, limits.max_window_s),
    )
    for name, value, most in asked:
        if value > most:
            raise ChallengeRefused(
                f"the challenge asks {name} = {value}; this agent runs <= {most}"
            )


# ---------------------------------------------------------------------------------- verifier


class Status(enum.Enum):
    """A re-verification's outcome."""

    OK = "ok"
    FLAG = "flag"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One reason to flag: the field, what was measured or found, what was claimed."""

    field: str
    measured: float | None
    claimed: float | None
    detail: str


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """What the verifier concluded, and what ResourceNFT.flag needs."""

    status: Status
    token_id: int
    findings: tuple[Finding, ...]
    evidence_hash: bytes  # keccak256 of the response's canonical report

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return self.status is Status.OK

    @property
    def reason(self) -> str:
        """The findings in one line, at most ResourceNFT.MAX_REASON_LENGTH bytes."""
        text = "; ".join(f.detail for f in self.findings) or "re-verification passed"
        raw = text.encode()
        if len(raw) <= MAX_REASON_BYTES:
            return text
        return raw[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


def _below(field: str, measured: float, claimed: float, tolerance: float, unit: str) -> Finding:
    return Finding(
        field=field,
        measured=measured,
        claimed=claimed,
        detail=f"{field}: measured {measured:.4g} {unit}, claimed {claimed:.4g} "
        f"(under {tolerance:.0%} of the claim)",
    )


def _cores(results: BenchmarkResults, hw: HostHardware) -> float:
    """Cores shown: the parallel speed-up, at most the threads the host has, at least the one
    the single-thread run used."""
    return max(1.0, min(results.cpu.parallel_speedup, float(hw.cpu.threads)))


def _claims(
    results: BenchmarkResults, hw: HostHardware, claimed: PerformPara
) -> list[tuple[str, float, float, str]]:
    """(field, measured or discovered, claimed, unit) for each claim there is something for."""
    rows: list[tuple[str, float, float, str]] = [
        ("disk.read_mbps", results.disk.read_mbps, claimed.disk.read_mbps, "MB/s"),
        ("disk.write_mbps", results.disk.write_mbps, claimed.disk.write_mbps, "MB/s"),
        ("cpu.cores", _cores(results, hw), claimed.cpu.cores, "cores (parallel speed-up)"),
        ("ram.size_mib", hw.memory.size_mib, claimed.ram.size_mib, "MiB"),
        ("gpu.count", hw.gpu_count, claimed.gpu.count, "GPUs"),
    ]  # fmt: skip
    if hw.cpu.max_mhz:
        rows.append(("cpu.clock_speed_mhz", hw.cpu.max_mhz, claimed.cpu.clock_speed_mhz, "MHz"))
    if claimed.gpu.count and hw.gpus:
        rows.append(
            ("gpu.memory_mib", min(g.memory_mib for g in hw.gpus), claimed.gpu.memory_mib, "MiB")
        )
    if hw.disks:
        rows.append(("disk.size_gb", max(d.size_gb for d in hw.disks), claimed.disk.size_gb, "GB"))
    return rows


def _against_baseline(
    results: BenchmarkResults, baseline: BenchmarkResults
) -> list[tuple[str, float, float, str]]:
    rows = [
        ("cpu.single_ops_per_s", results.cpu.single_ops_per_s, baseline.cpu.single_ops_per_s,
         "hashes/s"),
        ("cpu.multi_ops_per_s", results.cpu.multi_ops_per_s, baseline.cpu.multi_ops_per_s,
         "hashes/s"),
        ("memory.gbps", results.memory.gbps, baseline.memory.gbps, "GB/s"),
    ]  # fmt: skip
    if baseline.gpu.measured:
        rows.append(("gpu.tflops", results.gpu.total_tflops, baseline.gpu.total_tflops, "TFLOP/s"))
    return rows


def evaluate(
    challenge: Challenge,
    response: SignedReport,
    claimed: PerformPara,
    tolerance: float = 0.5,
    *,
    agent: str | None = None,
    baseline: BenchmarkResults | None = None,
    clock: Clock = time.time,
    samples: int | None = 8,
    rng: random.Random | None = None,
) -> Verdict:
    """Judge ``response`` to ``challenge`` against the ``claimed`` parameters.

    ``agent``: the token's agent on chain (the response must be signed by it). ``baseline``:
    the results of the evidence the resource was verified with (CPU, memory and GPU speeds are
    compared with it too). ``clock``: the verifier's clock, read as the time the response is
    received. ``samples``: hash-chain segments recomputed (None: all).

    Raises BadSignature (tampered or foreign response, altered challenge) and
    ChallengeMismatch (an answer to another challenge or token); everything the agent signed
    is judged in the verdict."""
    if not 0 < tolerance <= 1:
        raise ValueError(f"tolerance is a fraction of the claim in (0, 1], got {tolerance}")
    received_at = clock()
    challenge.verify()
    report = response.report
    response.verify(agent=agent)
    if report.challenge != challenge.hash:
        raise ChallengeMismatch(
            f"the response answers challenge {report.challenge}, not {challenge.hash}"
        )
    if report.token_id != challenge.token_id:
        raise ChallengeMismatch(
            f"the response is for token {report.token_id}, the challenge for {challenge.token_id}"
        )
    findings = []
    if received_at > challenge.deadline:
        findings.append(
            Finding(
                field="deadline",
                measured=received_at,
                claimed=challenge.deadline,
                detail=f"answered at {int(received_at)}, after the deadline {challenge.deadline}",
            )
        )
    findings += _work_findings(challenge, report.results, samples, rng)
    rows = _claims(report.results, report.hardware, claimed)
    if baseline is not None:
        rows += _against_baseline(report.results, baseline)
    for field, measured, claim, unit in rows:
        if claim > 0 and measured < tolerance * claim:
            findings.append(_below(field, float(measured), float(claim), tolerance, unit))
    return Verdict(
        status=Status.FLAG if findings else Status.OK,
        token_id=challenge.token_id,
        findings=tuple(findings),
        evidence_hash=response.evidence_hash,
    )


def _work_findings(
    challenge: Challenge, results: BenchmarkResults, samples: int | None, rng: random.Random | None
) -> list[Finding]:
    cpu = results.cpu
    asked = (
        ("cpu.rounds", cpu.rounds, challenge.cpu_rounds),
        ("cpu.checkpoints", cpu.checkpoints, challenge.cpu_checkpoints),
        ("memory.size_mib", results.memory.size_mib, challenge.memory_mib),
        ("disk.size_mib", results.disk.size_mib, challenge.disk_mib),
    )
    findings = [
        Finding(field=name, measured=ran, claimed=want,
                detail=f"{name}: ran {ran}, the challenge asked {want}")
        for name, ran, want in asked
        if ran != want
    ]  # fmt: skip
    if results.seed != challenge.seed:
        findings.append(
            Finding(field="cpu.digest", measured=None, claimed=None,
                    detail="the benchmarks ran with another seed than the challenge's")
        )  # fmt: skip
        return findings
    problems = verify_cpu_work(challenge.seed_bytes, cpu, samples=samples, rng=rng)
    if problems:
        findings.append(
            Finding(field="cpu.digest", measured=None, claimed=None,
                    detail="CPU work does not match the seed: " + ", ".join(problems[:3]))
        )  # fmt: skip
    return findings
