"""Signed benchmark evidence: canonical bytes, EIP-191 signatures, the evidence hash that
ResourceNFT.verify records (on a real dev node), and refusal of tampered, foreign and malformed
evidence."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.crypto import keccak

from powerverse.infra.attestation import (
    BadSignature,
    BenchmarkReport,
    MalformedEvidence,
    SignedDoc,
    SignedReport,
    canonical,
    sign_doc,
    sign_report,
    verify_doc,
    verify_report,
)
from powerverse.infra.benchmark import run_benchmarks
from powerverse.infra.exceptions import AuthError
from powerverse.infra.hardware import discover
from powerverse.infra.scoring import perform_para, score
from powerverse.market.resources import Location, Ram, Resources
from tests.market.conftest import ClientFactory, client, dev_node, dev_signers  # noqa: F401

AGENT = Account.from_key(b"\x11" * 32)
OTHER = Account.from_key(b"\x12" * 32)
SEED = b"attestation-seed"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> BenchmarkReport:
    """This machine's evidence with tiny benchmarks."""
    hw = discover({"region": "test", "latitude": 48.85, "longitude": 2.35}, dmidecode=None)
    results = run_benchmarks(
        SEED, disk_dir=tmp_path_factory.mktemp("disk"), cpu_rounds=2000, cpu_checkpoints=4,
        threads=1, memory_mib=4, disk_mib=2, gpu=False,
    )  # fmt: skip
    return BenchmarkReport(
        hardware=hw,
        results=results,
        claimed=perform_para(hw, results, vcpus=1, memory_mib=256),
        agent=AGENT.address.lower(),  # normalised to the checksum form
        token_id=None,
        seed=SEED.hex(),
        timestamp=1_760_000_000,
    )


def test_a_signed_report_names_its_agent(report: BenchmarkReport) -> None:
    assert report.agent == AGENT.address
    signed = sign_report(AGENT, report)
    assert verify_report(report, signed.signature) == AGENT.address
    assert signed.verify(agent=AGENT.address.lower()) == AGENT.address
    # EIP-191 personal_sign over the canonical bytes: any Ethereum library can check it
    message = encode_defunct(canonical(report.to_json()))
    assert Account.recover_message(message, signature=signed.signature) == AGENT.address


def test_canonical_bytes_and_the_evidence_hash(report: BenchmarkReport) -> None:
    doc = report.to_json()
    raw = canonical(doc)
    assert raw.startswith(b'{"agent":"0x') and raw.isascii() and b"\n" not in raw
    assert len(raw) < len(json.dumps(doc))  # compact: no blanks after "," and ":"
    assert list(json.loads(raw)) == sorted(doc) and raw == canonical(json.loads(raw))
    signed = sign_report(AGENT, report)
    assert signed.evidence_hash == keccak(raw) == report.evidence_hash
    assert len(signed.evidence_hash) == 32
    with pytest.raises(MalformedEvidence, match="canonically"):
        canonical({"x": float("nan")})


def test_json_round_trip_keeps_signature_and_hash(report: BenchmarkReport) -> None:
    signed = sign_report(AGENT, report)
    text = json.dumps(signed.to_json(), indent=2)  # how evidence.json is written
    again = SignedReport.from_json(text)
    assert again == signed and again.evidence_hash == signed.evidence_hash
    assert again.verify() == AGENT.address
    assert SignedDoc.from_json(json.loads(text)).evidence_hash == signed.evidence_hash


def test_tampered_reports_are_refused(report: BenchmarkReport) -> None:
    signed = sign_report(AGENT, report)
    inflated = dataclasses.replace(report.claimed, ram=Ram(size_mib=10**6, frequency_mhz=9999))
    with pytest.raises(BadSignature, match="altered after signing"):
        verify_report(dataclasses.replace(report, claimed=inflated), signed.signature)

    doc = signed.to_json()
    doc["doc"]["results"]["disk"]["read_mbps"] *= 10  # edited in the JSON file
    with pytest.raises(BadSignature, match="altered after signing"):
        SignedReport.from_json(doc).verify()
    with pytest.raises(AuthError):  # the API layer maps every evidence refusal to 401
        SignedReport.from_json(doc).verify()


def test_foreign_signatures_are_refused(report: BenchmarkReport) -> None:
    with pytest.raises(BadSignature, match=f"names agent {AGENT.address}.*key is {OTHER.address}"):
        sign_report(OTHER, report)
    forged = sign_doc(OTHER, report.to_json()).signature  # another key over the same bytes
    with pytest.raises(BadSignature, match=f"recovers {OTHER.address}"):
        verify_report(report, forged)
    theirs = dataclasses.replace(report, agent=OTHER.address)
    signed = sign_report(OTHER, theirs)  # well signed, but not by the token's agent
    assert verify_report(theirs, signed.signature) == OTHER.address
    with pytest.raises(BadSignature, match=f"not by the resource's agent {AGENT.address}"):
        verify_report(theirs, signed.signature, agent=AGENT.address)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("0xzz", "not hex"),
        ("0x" + "11" * 64, "65 bytes"),
        ("0x" + "00" * 65, "invalid"),
        (b"\x01" * 64 + b"\x05", "invalid"),  # v must be 0, 1, 27 or 28
    ],
)
def test_malformed_signatures(
    report: BenchmarkReport, signature: str | bytes, message: str
) -> None:
    with pytest.raises(BadSignature, match=message):
        verify_report(report, signature)


def _doc(report: BenchmarkReport) -> dict[str, Any]:
    return sign_report(AGENT, report).to_json()


def test_malformed_evidence_is_named(report: BenchmarkReport) -> None:
    def refused(data: Any, match: str) -> None:
        with pytest.raises(MalformedEvidence, match=match):
            SignedReport.from_json(data)

    refused("{not json", "not JSON")
    refused(b"\xff\xfe", "not JSON")
    refused("[1, 2]", "signed document is")
    refused({"doc": {}, "signature": 7}, "signed document is")
    good = _doc(report)
    changes: list[tuple[Callable[[dict[str, Any]], object], str]] = [
        (lambda d: d.update(kind="something-else"), "not a pv-benchmark-report"),
        (lambda d: d.update(version=2), "version 1"),
        (lambda d: d.update(extra=1), "unknown or missing field 'extra'"),
        (lambda d: d.pop("timestamp"), "unknown or missing field 'timestamp'"),
        (lambda d: d.update(timestamp="yesterday"), "timestamp: expected int"),
        (lambda d: d.update(token_id=True), "token_id: expected int"),
        (lambda d: d.update(agent="0x1234"), "not an address"),
        (lambda d: d.update(seed="00"), "not the one its benchmarks ran with"),
        (lambda d: d["hardware"]["cpu"].update(threads="many"), r"hardware\.cpu\.threads"),
        (lambda d: d["results"].pop("cpu"), r"results: missing field 'cpu'"),
        (lambda d: d["claimed"]["ram"].update(size_mib=None), r"claimed\.ram\.size_mib"),
    ]
    for change, match in changes:
        bad = json.loads(json.dumps(good))
        change(bad["doc"])
        refused(bad, match)


def test_generic_signed_documents() -> None:
    signed = sign_doc(AGENT, {"b": 1, "a": [1.5, "x"]})
    assert verify_doc(signed) == AGENT.address
    assert verify_doc(SignedDoc({"b": 2, "a": [1.5, "x"]}, signed.signature)) != AGENT.address
    with pytest.raises(MalformedEvidence):
        SignedDoc.from_json({"doc": "not an object", "signature": "0x"})


@pytest.mark.slow
def test_the_contract_records_the_evidence_hash(
    report: BenchmarkReport,
    client: ClientFactory,  # noqa: F811
) -> None:
    provider, verifier = Resources(client(1)), Resources(client(0))  # 0: the verifier role
    signed = sign_report(AGENT, report)
    token = provider.register(
        "pv-evidence:0x" + signed.evidence_hash.hex(),
        report.claimed,
        Location.from_degrees("test", 48.85, 2.35),
        agent=AGENT.address,
    ).token_id
    # the verifier checks the evidence against the token's agent, then certifies it on chain
    assert SignedReport.from_json(signed.to_json()).verify(agent=provider.get(token).agent)
    verified = verifier.verify(token, signed.evidence_hash)
    assert verified.perform_points == score(report.claimed, verifier.weights())
    record = provider.get(token).verification
    assert record.evidence_hash == signed.evidence_hash and provider.is_verified(token)


def test_report_for_a_token_binds_the_token_id(report: BenchmarkReport) -> None:
    minted = dataclasses.replace(report, token_id=7)
    assert minted.evidence_hash != report.evidence_hash
    with pytest.raises(MalformedEvidence, match="negative"):
        dataclasses.replace(report, token_id=-1)
