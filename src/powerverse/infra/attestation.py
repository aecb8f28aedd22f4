"""Signed benchmark evidence and re-verification challenges.

A :class:`BenchmarkReport` (what the host is, what it measured, what it claims, for which
token, with which seed) is encoded canonically (sorted-key compact JSON) and signed by the
agent's account key with EIP-191 (``personal_sign``); its **evidence hash** — keccak256 of the
canonical bytes — is the ``bytes32`` a verifier passes to ``ResourceNFT.verify``, so the
on-chain certificate names exactly the evidence that was checked.

Re-verification: a verifier sends a :class:`Challenge` (token id, fresh seed, deadline, signed
by the verifier); the agent runs the benchmarks with that seed and returns a report bound to the
challenge's hash. :func:`evaluate` checks the signatures, the binding, the deadline and the
seed-derived CPU digest (recomputed), and compares measured figures with the claim: far below
it (default: under half) gives the verdict FLAG with the reasons, which the verifier puts on
chain with ``ResourceNFT.flag``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from powerverse.infra.benchmark import cpu_digest
from powerverse.infra.exceptions import AuthError

__all__ = ["Challenge", "SignedDoc", "Verdict", "canonical", "evaluate", "sign_doc", "verify_doc"]

_CHECK_ROUNDS = 20_000  # a verifier recomputes this many hash-chain steps


def canonical(doc: dict[str, Any]) -> bytes:
    """Sorted-key compact JSON: one byte string per document."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignedDoc:
    """A document, its signer's signature and its evidence hash."""

    doc: dict[str, Any]
    signature: str

    @property
    def evidence_hash(self) -> bytes:
        """keccak256 of the canonical document (what ResourceNFT.verify records)."""
        return keccak(canonical(self.doc))

    def to_json(self) -> dict[str, Any]:
        """``{"doc": ..., "signature": "0x..."}``."""
        return {"doc": self.doc, "signature": self.signature}

    @classmethod
    def from_json(cls, data: Any) -> SignedDoc:
        """Parse ``to_json`` output (AuthError if malformed)."""
        if not isinstance(data, dict) or not isinstance(data.get("doc"), dict):
            raise AuthError("a signed document is {doc: {...}, signature: 0x...}")
        return cls(dict(data["doc"]), str(data.get("signature", "")))


def sign_doc(account: LocalAccount, doc: dict[str, Any]) -> SignedDoc:
    """Sign a document (EIP-191 over its canonical bytes)."""
    signed = account.sign_message(encode_defunct(canonical(doc)))
    return SignedDoc(doc, "0x" + bytes(signed.signature).hex())


def verify_doc(signed: SignedDoc) -> str:
    """The signer's address (AuthError if the signature is malformed)."""
    try:
        raw = bytes.fromhex(signed.signature.removeprefix("0x"))
        return str(Account.recover_message(encode_defunct(canonical(signed.doc)), signature=raw))
    except Exception as exc:
        raise AuthError(f"the signature does not verify: {exc}") from None


@dataclass(frozen=True)
class Challenge:
    """A verifier's request to re-run the benchmarks with a fresh seed before a deadline."""

    signed: SignedDoc

    @classmethod
    def issue(
        cls, verifier: LocalAccount, *, token_id: int, seed: bytes, deadline: int, issued_at: int
    ) -> Challenge:
        """A challenge signed by ``verifier``."""
        doc = {
            "kind": "pv-challenge",
            "tokenId": token_id,
            "seed": seed.hex(),
            "deadline": deadline,
            "issuedAt": issued_at,
            "verifier": verifier.address,
        }
        return cls(sign_doc(verifier, doc))

    def check(self, now: float) -> bytes:
        """The seed, if the challenge is well signed and not expired (AuthError otherwise)."""
        doc = self.signed.doc
        if doc.get("kind") != "pv-challenge":
            raise AuthError("not a challenge")
        if verify_doc(self.signed).lower() != str(doc.get("verifier", "")).lower():
            raise AuthError("the challenge is not signed by its verifier")
        if now > int(doc["deadline"]):
            raise AuthError("the challenge's deadline has passed")
        return bytes.fromhex(str(doc["seed"]))


@dataclass(frozen=True)
class Verdict:
    """The outcome of a re-verification."""

    ok: bool
    reasons: tuple[str, ...]
    evidence_hash: bytes

    @property
    def reason(self) -> str:
        """One line for ResourceNFT.flag."""
        return "; ".join(self.reasons) or "re-verification passed"


def evaluate(
    challenge: Challenge,
    response: SignedDoc,
    *,
    agent: str,
    claimed: dict[str, int],
    now: float,
    tolerance: float = 0.5,
) -> Verdict:
    """Check a challenge's response from ``agent`` against the claimed figures.

    ``claimed`` maps figure names of the results (e.g. ``disk_read_mbps``) to claimed values;
    a measured value under ``tolerance`` × claim is a reason to flag.
    """
    challenge.check(now)
    if verify_doc(response).lower() != agent.lower():
        raise AuthError("the response is not signed by the resource's agent")
    doc = response.doc
    if doc.get("challenge") != "0x" + challenge.signed.evidence_hash.hex():
        raise AuthError("the response answers another challenge")
    if now > int(challenge.signed.doc["deadline"]):
        raise AuthError("the response came after the deadline")
    results = doc.get("results", {})
    seed = bytes.fromhex(str(challenge.signed.doc["seed"]))
    if results.get("seed") != seed.hex():
        raise AuthError("the response's benchmarks did not use the challenge's seed")
    rounds = int(results.get("cpu_rounds", 0))
    reasons = []
    if rounds < _CHECK_ROUNDS or results.get("cpu_digest") != cpu_digest(seed, rounds).hex():
        reasons.append("the CPU benchmark's digest is wrong (the work was not done)")
    for name, claim in sorted(claimed.items()):
        measured = float(results.get(name, 0.0))
        if claim > 0 and measured < tolerance * claim:
            reasons.append(f"{name}: measured {measured:.0f}, claimed {claim}")
    return Verdict(not reasons, tuple(reasons), response.evidence_hash)
