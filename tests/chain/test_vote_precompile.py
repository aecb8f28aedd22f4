"""The single-vote precompile (liveness proofs), differential against the consensus encoder."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.chain.blockchain import Blockchain, CallRequest
from powerverse.chain.evidence import VOTE_GAS, VOTE_PRECOMPILE, check_vote
from powerverse.chain.genesis import dev_genesis
from powerverse.chain.store import LmdbStore
from powerverse.consensus.messages import NIL, Chain, Step, encode
from tests.chain.test_evidence import CHAIN_ID, GENESIS, KEY, OTHER, TEST_CHAIN, _proposal, _vote

A = b"\xaa" * 32


def test_a_signed_vote_gives_its_fields() -> None:
    for step in (Step.PREVOTE, Step.PRECOMMIT):
        vote = _vote(A, step=step, height=12, round=3)
        assert check_vote(encode(vote), CHAIN_ID, GENESIS) == (KEY.public_key, 12, 3, int(step), A)
    nil = _vote(NIL, step=Step.PRECOMMIT)
    assert check_vote(encode(nil), CHAIN_ID, GENESIS) == (KEY.public_key, 7, 0, 2, NIL)


def test_what_is_not_a_signed_vote_of_this_chain() -> None:
    vote = encode(_vote(A))
    other_chain = encode(_vote(A, chain=Chain(CHAIN_ID + 1, GENESIS)))
    other_genesis = encode(_vote(A, chain=Chain(CHAIN_ID, b"\x01" * 32)))
    forged = bytearray(vote)
    forged[-1] ^= 1  # the signature's last byte
    stolen = encode(_vote(A, key=OTHER))[:-64] + vote[-64:]  # another key's vote, KEY's signature
    for bad in (
        other_chain,
        other_genesis,
        bytes(forged),
        stolen,
        encode(_proposal(A)),  # a proposal is not a vote
        b"",
        b"\x03",
        vote + b"\x00",
        b"\x03" + b"\xc0" * 2000,  # oversized
    ):
        assert check_vote(bad, CHAIN_ID, GENESIS) is None
    assert check_vote(vote, CHAIN_ID, GENESIS) is not None
    assert TEST_CHAIN.chain_id == CHAIN_ID


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_never_raise(data: bytes) -> None:
    assert check_vote(b"\x03" + data, CHAIN_ID, GENESIS) is None


def test_the_precompile_answers_inside_the_evm(tmp_path: Path) -> None:
    chain = Blockchain(LmdbStore(tmp_path), dev_genesis(1_700_000_000, []))
    try:
        real = Chain(CHAIN_ID, chain.genesis_hash)
        vote = _vote(A, chain=real, step=Step.PRECOMMIT)
        comp = chain.execute_call(
            CallRequest(to=VOTE_PRECOMPILE, data=encode(vote), gas=100_000), chain.head
        )
        assert not comp.is_error
        out = bytes(comp.output)
        assert out == (
            KEY.public_key
            + (7).to_bytes(32, "big")
            + (0).to_bytes(32, "big")
            + (2).to_bytes(32, "big")
            + A
        )
        assert comp.get_gas_used() >= VOTE_GAS
        foreign = chain.execute_call(
            CallRequest(to=VOTE_PRECOMPILE, data=encode(_vote(A)), gas=100_000), chain.head
        )
        assert not foreign.is_error and bytes(foreign.output) == b""
    finally:
        chain.close()
