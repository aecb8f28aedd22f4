"""The equivocation-evidence precompile, differential against the consensus layer's encoder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import rlp
from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.chain.blockchain import Blockchain, CallRequest
from powerverse.chain.evidence import EVIDENCE_GAS, EVIDENCE_PRECOMPILE, check_evidence
from powerverse.chain.genesis import dev_genesis
from powerverse.chain.store import LmdbStore
from powerverse.consensus.messages import (
    Chain,
    Credential,
    Priority,
    Proposal,
    Step,
    Vote,
    encode,
)
from powerverse.crypto.consensus_keys import ConsensusKey

CHAIN_ID = 31337
GENESIS = b"\x5a" * 32
KEY = ConsensusKey.from_seed(b"\x01" * 32)
OTHER = ConsensusKey.from_seed(b"\x02" * 32)
CRED = Credential(vrf_hash=b"\x07" * 64, proof=b"\x08" * 80, weight=3)
A, B = b"\xaa" * 32, b"\xbb" * 32
TEST_CHAIN = Chain(CHAIN_ID, GENESIS)


def _vote(
    value: bytes = A,
    *,
    key: ConsensusKey = KEY,
    chain: Chain = TEST_CHAIN,
    **over: object,
) -> Vote:
    vote = Vote(
        height=7, round=0, step=Step.PREVOTE, value=value, voter=key.public_key, credential=CRED
    )
    vote = replace(vote, **over)  # type: ignore[arg-type]
    return replace(vote, signature=key.sign(vote.signing_bytes(chain)))


def _proposal(value: bytes, key: ConsensusKey = KEY) -> Proposal:
    prop = Proposal(
        height=9,
        round=2,
        value=value,
        valid_round=-1,
        proposer=key.public_key,
        credential=CRED,
        seed_proof=b"\x09" * 80,
    )
    return replace(prop, signature=key.sign(prop.signing_bytes(Chain(CHAIN_ID, GENESIS))))


def _evidence(first: object, second: object) -> bytes:
    return bytes(rlp.encode([encode(first), encode(second)]))  # type: ignore[arg-type]


def _check(data: bytes) -> tuple[bytes, int] | None:
    return check_evidence(data, CHAIN_ID, GENESIS)


def test_two_prevotes_for_different_values_prove_equivocation() -> None:
    assert _check(_evidence(_vote(A), _vote(B))) == (KEY.public_key, 7)


def test_two_precommits_and_two_proposals_too() -> None:
    pre = Step.PRECOMMIT
    assert _check(_evidence(_vote(A, step=pre), _vote(B, step=pre))) == (KEY.public_key, 7)
    assert _check(_evidence(_proposal(A), _proposal(B))) == (KEY.public_key, 9)


@pytest.mark.parametrize(
    ("first", "second", "why"),
    [
        (_vote(A), _vote(A), "same value"),
        (_vote(A), _vote(B, key=OTHER), "two voters"),
        (_vote(A), _vote(B, round=1), "two rounds"),
        (_vote(A), _vote(B, height=8), "two heights"),
        (_vote(A), _vote(B, step=Step.PRECOMMIT), "prevote and precommit"),
        (_vote(A), _vote(B, chain=Chain(CHAIN_ID + 1, GENESIS)), "signed for another chain"),
        (_vote(A), _vote(B, chain=Chain(CHAIN_ID, b"\x00" * 32)), "another genesis"),
        (_proposal(A), _vote(B), "a proposal and a vote"),
    ],
)
def test_what_is_not_equivocation(first: object, second: object, why: str) -> None:
    assert _check(_evidence(first, second)) is None, why


def test_forged_signatures_and_priorities_are_refused() -> None:
    forged = replace(_vote(B), signature=b"\x00" * 64)
    assert _check(_evidence(_vote(A), forged)) is None
    stolen = replace(_vote(B), signature=_vote(A).signature)
    assert _check(_evidence(_vote(A), stolen)) is None
    prio = Priority(height=7, round=0, proposer=KEY.public_key, credential=CRED)
    prio = replace(prio, signature=KEY.sign(prio.signing_bytes(Chain(CHAIN_ID, GENESIS))))
    assert _check(_evidence(prio, prio)) is None


def test_garbage_and_oversized_input_are_refused() -> None:
    assert _check(b"") is None
    assert _check(b"\xc0") is None
    assert _check(rlp.encode([b"\x03", b"\x03"])) is None
    assert _check(b"\xff" * 10_000) is None
    deep = b"\xc1" * 2000 + b"\xc0"
    assert _check(deep) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_never_raise(data: bytes) -> None:
    assert _check(data) is None


def test_the_precompile_answers_inside_the_evm(tmp_path: Path) -> None:
    chain = Blockchain(LmdbStore(tmp_path), dev_genesis(1_700_000_000, []))
    try:
        real = Chain(CHAIN_ID, chain.genesis_hash)
        evidence = _evidence(_vote(A, chain=real), _vote(B, chain=real))
        comp = chain.execute_call(
            CallRequest(to=EVIDENCE_PRECOMPILE, data=evidence, gas=100_000), chain.head
        )
        assert not comp.is_error
        assert bytes(comp.output) == KEY.public_key + (7).to_bytes(32, "big")
        assert comp.get_gas_used() >= EVIDENCE_GAS
        # evidence signed for the test's made-up genesis is not evidence on this chain
        bad = chain.execute_call(
            CallRequest(to=EVIDENCE_PRECOMPILE, data=_evidence(_vote(A), _vote(B)), gas=100_000),
            chain.head,
        )
        assert not bad.is_error
        assert bytes(bad.output) == b""
    finally:
        chain.close()
