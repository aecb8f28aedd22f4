"""Signed benchmark evidence: what the host is, what it measured, what it claims.

A :class:`BenchmarkReport` is encoded canonically — sorted-key compact JSON, ASCII only, no
NaN or infinity — and signed by the agent's secp256k1 account key with **EIP-191**
(``personal_sign``, ``encode_defunct`` over the canonical bytes). EIP-191 rather than EIP-712:
the report is a nested, open-ended document (discovered hardware, benchmark chains) that has no
fixed typed schema, and any Ethereum wallet or library can check a personal_sign signature.

The **evidence hash** is keccak256 of the same canonical bytes: the ``bytes32`` a verifier passes
to ``ResourceNFT.verify`` (and ``flag``), so the certificate on chain names exactly the evidence
that was checked. Floats are written as Python's shortest round-trip repr; a verifier in
another language must hash the canonical bytes it received, not a re-encoding of its own.

:class:`SignedDoc`, :func:`sign_doc` and :func:`verify_doc` are the generic layer (any JSON
document) the report is built on.

Errors (all :class:`~powerverse.infra.exceptions.AuthError`, so the API answers 401):

    EvidenceError
     ├── MalformedEvidence   not JSON, wrong shape, bad field (named)
     └── BadSignature        tampered after signing, or signed by another key
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from powerverse.infra.benchmark import BenchmarkResults
from powerverse.infra.exceptions import AuthError
from powerverse.infra.hardware import HostHardware
from powerverse.infra.scoring import para_from_json, para_to_json
from powerverse.market.resources import PerformPara

__all__ = [
    "REPORT_KIND",
    "BadSignature",
    "BenchmarkReport",
    "EvidenceError",
    "MalformedEvidence",
    "SignedDoc",
    "SignedReport",
    "canonical",
    "evidence_hash",
    "sign_doc",
    "sign_report",
    "verify_doc",
    "verify_report",
]

REPORT_KIND = "pv-benchmark-report"
REPORT_VERSION = 1


class EvidenceError(AuthError):
    """Signed evidence (or a challenge) was refused."""


class MalformedEvidence(EvidenceError):
    """The evidence is not JSON, or not the expected document."""


class BadSignature(EvidenceError):
    """The signature does not verify for the signer the document names."""


def canonical(doc: Any) -> bytes:
    """Sorted-key compact ASCII JSON: one byte string per document (MalformedEvidence for
    NaN, infinity or values JSON cannot hold)."""
    try:
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MalformedEvidence(f"the document cannot be encoded canonically: {exc}") from None
    return text.encode("ascii")


def evidence_hash(doc: Any) -> bytes:
    """keccak256 of the canonical document (what ResourceNFT.verify records)."""
    return keccak(canonical(doc))


def _signature_bytes(signature: str | bytes) -> bytes:
    try:
        raw = (
            signature
            if isinstance(signature, bytes)
            else bytes.fromhex(signature.removeprefix("0x"))
        )
    except ValueError:
        raise BadSignature(f"the signature {signature!r:.80} is not hex") from None
    if len(raw) != 65:
        raise BadSignature(f"a signature is 65 bytes (r, s, v), got {len(raw)}")
    return raw


def _recover(doc: Any, signature: str | bytes) -> str:
    raw = _signature_bytes(signature)
    try:
        return str(Account.recover_message(encode_defunct(canonical(doc)), signature=raw))
    except EvidenceError:
        raise
    except Exception as exc:  # eth_keys raises BadSignature/ValidationError for invalid r, s, v
        raise BadSignature(f"the signature is invalid: {exc}") from None


# ---------------------------------------------------------------------------------- generic


@dataclass(frozen=True)
class SignedDoc:
    """A JSON document and its signer's EIP-191 signature (0x hex)."""

    doc: dict[str, Any]
    signature: str

    @property
    def evidence_hash(self) -> bytes:
        """keccak256 of the canonical document."""
        return evidence_hash(self.doc)

    def to_json(self) -> dict[str, Any]:
        """``{"doc": {...}, "signature": "0x..."}``."""
        return {"doc": self.doc, "signature": self.signature}

    @classmethod
    def from_json(cls, data: Any) -> SignedDoc:
        """Parse ``to_json`` output (MalformedEvidence if it is not that shape)."""
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("doc"), dict)
            or not isinstance(data.get("signature"), str)
        ):
            raise MalformedEvidence('a signed document is {"doc": {...}, "signature": "0x..."}')
        return cls(dict(data["doc"]), data["signature"])


def sign_doc(account: LocalAccount, doc: dict[str, Any]) -> SignedDoc:
    """Sign a document (EIP-191 over its canonical bytes)."""
    signed = account.sign_message(encode_defunct(canonical(doc)))
    return SignedDoc(doc, "0x" + bytes(signed.signature).hex())


def verify_doc(signed: SignedDoc) -> str:
    """The address that signed the document (BadSignature if the signature is malformed;
    a tampered document recovers some other address: compare it with the expected signer)."""
    return _recover(signed.doc, signed.signature)


# ---------------------------------------------------------------------------------- report


@dataclass(frozen=True, kw_only=True)
class BenchmarkReport:
    """The agent's evidence: host hardware, benchmark results, claimed parameters.

    ``token_id`` is None before the resource is minted; ``challenge`` is the hash (0x hex) of
    the re-verification challenge this report answers, None for the initial evidence.
    """

    hardware: HostHardware
    results: BenchmarkResults
    claimed: PerformPara
    agent: str
    token_id: int | None
    seed: str  # hex; the seed the benchmarks ran with
    timestamp: int  # unix seconds, the agent's clock
    challenge: str | None = None

    def __post_init__(self) -> None:
        if not is_address(self.agent):
            raise MalformedEvidence(f"agent {self.agent!r:.60} is not an address")
        object.__setattr__(self, "agent", to_checksum_address(self.agent))
        if self.seed != self.results.seed:
            raise MalformedEvidence(
                f"the report's seed {self.seed} is not the one its benchmarks ran with "
                f"({self.results.seed})"
            )
        if self.token_id is not None and self.token_id < 0:
            raise MalformedEvidence(f"token id {self.token_id} is negative")

    def to_json(self) -> dict[str, Any]:
        """The document that is signed and hashed."""
        return {
            "kind": REPORT_KIND,
            "version": REPORT_VERSION,
            "agent": self.agent,
            "token_id": self.token_id,
            "seed": self.seed,
            "timestamp": self.timestamp,
            "challenge": self.challenge,
            "hardware": self.hardware.to_json(),
            "results": self.results.to_json(),
            "claimed": para_to_json(self.claimed),
        }

    @classmethod
    def from_json(cls, data: Any) -> BenchmarkReport:
        """Parse ``to_json`` output (MalformedEvidence naming the bad field)."""
        if not isinstance(data, dict):
            raise MalformedEvidence(f"a report is a JSON object, got {type(data).__name__}")
        if data.get("kind") != REPORT_KIND or data.get("version") != REPORT_VERSION:
            raise MalformedEvidence(
                f"not a {REPORT_KIND} version {REPORT_VERSION} "
                f"(kind {data.get('kind')!r:.40}, version {data.get('version')!r:.10})"
            )
        expected = {"kind", "version", "agent", "token_id", "seed", "timestamp", "challenge",
                    "hardware", "results", "claimed"}  # fmt: skip
        if set(data) != expected:
            odd = sorted(set(data) ^ expected)
            raise MalformedEvidence(f"report: unknown or missing field {odd[0]!r}")
        try:
            return cls(
                hardware=HostHardware.from_json(data["hardware"]),
                results=BenchmarkResults.from_json(data["results"]),
                claimed=para_from_json(data["claimed"]),
                agent=_field(data, "agent", str),
                token_id=_field(data, "token_id", int, optional=True),
                seed=_field(data, "seed", str),
                timestamp=_field(data, "timestamp", int),
                challenge=_field(data, "challenge", str, optional=True),
            )
        except ValueError as exc:
            raise MalformedEvidence(f"report: {exc}") from None

    @property
    def evidence_hash(self) -> bytes:
        """keccak256 of the canonical report."""
        return evidence_hash(self.to_json())


def _field(data: dict[str, Any], key: str, kind: type, *, optional: bool = False) -> Any:
    value = data[key]
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{key}: expected {kind.__name__}, got {value!r:.60}")
    return value


@dataclass(frozen=True)
class SignedReport:
    """A report with the agent's EIP-191 signature over its canonical bytes."""

    report: BenchmarkReport
    signature: str  # 0x hex, 65 bytes

    @property
    def evidence_hash(self) -> bytes:
        """keccak256 of the canonical report (the bytes32 for ResourceNFT.verify/flag)."""
        return self.report.evidence_hash

    def verify(self, *, agent: str | None = None) -> str:
        """:func:`verify_report` on this report."""
        return verify_report(self.report, self.signature, agent=agent)

    def to_json(self) -> dict[str, Any]:
        """``{"doc": <report>, "signature": "0x..."}`` (the :class:`SignedDoc` shape)."""
        return SignedDoc(self.report.to_json(), self.signature).to_json()

    @classmethod
    def from_json(cls, data: Any) -> SignedReport:
        """Parse ``to_json`` output, or JSON text/bytes of it (MalformedEvidence)."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
                raise MalformedEvidence(f"the evidence is not JSON: {exc}") from None
        signed = SignedDoc.from_json(data)
        return cls(BenchmarkReport.from_json(signed.doc), signed.signature)


def sign_report(account: LocalAccount, report: BenchmarkReport) -> SignedReport:
    """Sign ``report`` with the agent's key (BadSignature if the report names another agent)."""
    if account.address != report.agent:
        raise BadSignature(
            f"the report names agent {report.agent}, but the signing key is {account.address}"
        )
    return SignedReport(report, sign_doc(account, report.to_json()).signature)


def verify_report(
    report: BenchmarkReport, signature: str | bytes, *, agent: str | None = None
) -> str:
    """The agent address that signed ``report``.

    BadSignature when the signature is malformed, when it was not made by the agent the report
    names (the report was changed after signing, or signed with another key), or when
    ``agent`` (e.g. the token's agent on chain) is given and the report names someone else.
    """
    signer = _recover(report.to_json(), signature)
    if signer != report.agent:
        raise BadSignature(
            f"the report names agent {report.agent} but the signature recovers {signer}: the "
            "report was altered after signing, or signed with another key"
        )
    if agent is not None and to_checksum_address(agent) != signer:
        raise BadSignature(
            f"the report is signed by {signer}, not by the resource's agent "
            f"{to_checksum_address(agent)}"
        )
    return signer
