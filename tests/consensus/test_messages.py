"""Consensus messages: wire round trips, canonical decoding, refusal of bad bytes, signing bytes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import rlp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerverse.consensus.exceptions import ConsensusError, MalformedMessage
from powerverse.consensus.messages import (
    HASH_LEN,
    MAX_ROUND,
    NIL,
    Chain,
    Credential,
    Kind,
    Message,
    Priority,
    Proposal,
    Step,
    Vote,
    decode,
    encode,
)

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""No deadline: a loaded machine must not fail a test by being slow."""

U64 = 2**64 - 1
CHAIN = Chain(chain_id=31337, genesis_hash=b"\x11" * 32)
CRED = Credential(vrf_hash=b"\x22" * 64, proof=b"\x33" * 80, weight=7)
KEY = b"\x44" * 32
VALUE = b"\x55" * HASH_LEN
SIG = b"\x66" * 64
SEED_PROOF = b"\x77" * 80


def priority(**kw: Any) -> Priority:
    fields: dict[str, Any] = {
        "height": 5,
        "round": 2,
        "proposer": KEY,
        "credential": CRED,
        "signature": SIG,
    }
    return Priority(**(fields | kw))


def proposal(**kw: Any) -> Proposal:
    fields: dict[str, Any] = {
        "height": 5,
        "round": 2,
        "value": VALUE,
        "valid_round": -1,
        "proposer": KEY,
        "credential": CRED,
        "seed_proof": SEED_PROOF,
        "signature": SIG,
    }
    return Proposal(**(fields | kw))


def vote(**kw: Any) -> Vote:
    fields: dict[str, Any] = {
        "height": 5,
        "round": 2,
        "step": Step.PREVOTE,
        "value": VALUE,
        "voter": KEY,
        "credential": CRED,
        "signature": SIG,
    }
    return Vote(**(fields | kw))


def raw(kind: int, body: object, signature: object = SIG) -> bytes:
    """Wire bytes with an arbitrary RLP body (to build malformed messages)."""
    return bytes([kind]) + bytes(rlp.encode([body, signature]))


def cred_items(c: Credential = CRED) -> list[object]:
    return [c.vrf_hash, c.proof, c.weight]


def vote_body(**kw: object) -> list[object]:
    fields: dict[str, object] = {
        "height": 5,
        "round": 2,
        "step": 1,
        "value": VALUE,
        "voter": KEY,
        "credential": cred_items(),
    }
    return list((fields | kw).values())


def proposal_body(**kw: object) -> list[object]:
    fields: dict[str, object] = {
        "height": 5,
        "round": 2,
        "value": VALUE,
        "valid_round": 0,
        "proposer": KEY,
        "credential": cred_items(),
        "seed_proof": SEED_PROOF,
    }
    return list((fields | kw).values())


def priority_body(**kw: object) -> list[object]:
    fields: dict[str, object] = {
        "height": 5,
        "round": 2,
        "proposer": KEY,
        "credential": cred_items(),
    }
    return list((fields | kw).values())


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        priority(),
        priority(height=0, round=0),
        priority(height=U64, round=MAX_ROUND),
        proposal(),
        proposal(valid_round=0, round=1),
        proposal(valid_round=MAX_ROUND - 1, round=MAX_ROUND),
        vote(),
        vote(step=Step.PRECOMMIT),
        vote(value=NIL),
        vote(step=Step.PRECOMMIT, value=NIL, height=U64, round=MAX_ROUND),
        vote(credential=Credential(b"\x00" * 64, b"\x00" * 80, 0)),
        vote(credential=Credential(b"\xff" * 64, b"\xff" * 80, U64)),
    ],
    ids=repr,
)
def test_round_trip(msg: Message) -> None:
    data = encode(msg)
    assert decode(data) == msg
    assert encode(decode(data)) == data


def test_kind_byte_leads_the_encoding() -> None:
    assert encode(priority())[0] == Kind.PRIORITY
    assert encode(proposal())[0] == Kind.PROPOSAL
    assert encode(vote())[0] == Kind.VOTE


def test_valid_round_minus_one_is_distinct_from_zero() -> None:
    fresh, locked = proposal(valid_round=-1), proposal(valid_round=0)
    assert encode(fresh) != encode(locked)
    assert decode(encode(fresh)) == fresh
    assert decode(encode(locked)) == locked


hashes = st.binary(min_size=HASH_LEN, max_size=HASH_LEN)
keys = st.binary(min_size=32, max_size=32)
credentials = st.builds(
    Credential,
    vrf_hash=st.binary(min_size=64, max_size=64),
    proof=st.binary(min_size=80, max_size=80),
    weight=st.integers(0, U64),
)
signatures = st.binary(min_size=64, max_size=64)
heights = st.integers(0, U64)
rounds = st.integers(0, MAX_ROUND)


@st.composite
def proposals(draw: st.DrawFn) -> Proposal:
    rnd = draw(rounds)
    return Proposal(
        height=draw(heights),
        round=rnd,
        value=draw(hashes),
        valid_round=draw(st.integers(-1, max(-1, rnd - 1))),
        proposer=draw(keys),
        credential=draw(credentials),
        seed_proof=draw(st.binary(min_size=80, max_size=80)),
        signature=draw(signatures),
    )


messages = st.one_of(
    st.builds(
        Priority,
        height=heights,
        round=rounds,
        proposer=keys,
        credential=credentials,
        signature=signatures,
    ),
    proposals(),
    st.builds(
        Vote,
        height=heights,
        round=rounds,
        step=st.sampled_from(Step),
        value=st.one_of(st.just(NIL), hashes),
        voter=keys,
        credential=credentials,
        signature=signatures,
    ),
)


@given(messages)
@settings(FUZZ)
def test_round_trip_property(msg: Message) -> None:
    data = encode(msg)
    decoded = decode(data)
    assert decoded == msg
    assert type(decoded) is type(msg)


# --- refusing bad bytes ----------------------------------------------------------------------


@given(st.binary(max_size=600))
@settings(FUZZ)
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    try:
        msg = decode(data)
    except MalformedMessage:
        return
    assert encode(msg) == data  # whatever decodes is canonical: one encoding per message


rlp_items = st.recursive(
    st.one_of(
        st.binary(max_size=90),
        st.integers(0, 2**80).map(lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")),
    ),
    lambda children: st.lists(children, max_size=8),
    max_leaves=40,
)


@given(st.sampled_from([0, 1, 2, 3, 4, 255]), rlp_items)
@settings(FUZZ)
def test_arbitrary_rlp_raises_only_malformed(kind: int, item: object) -> None:
    data = bytes([kind]) + bytes(rlp.encode(item))
    try:
        msg = decode(data)
    except MalformedMessage:
        return
    assert encode(msg) == data


@given(messages, st.data())
@settings(FUZZ)
def test_any_single_byte_change_is_refused_or_canonical(msg: Message, data: st.DataObject) -> None:
    wire = bytearray(encode(msg))
    i = data.draw(st.integers(0, len(wire) - 1))
    wire[i] ^= data.draw(st.integers(1, 255))
    try:
        other = decode(bytes(wire))
    except MalformedMessage:
        return
    assert other != msg
    assert encode(other) == bytes(wire)


def test_malformed_is_a_consensus_error() -> None:
    assert issubclass(MalformedMessage, ConsensusError)


@pytest.mark.parametrize("kind", [0, 4, 5, 0x80, 0xC0, 255])
def test_unknown_kind_byte(kind: int) -> None:
    data = bytes([kind]) + encode(vote())[1:]
    with pytest.raises(MalformedMessage, match="kind"):
        decode(data)


@pytest.mark.parametrize("data", [b"", bytes([Kind.VOTE]), bytes([Kind.PROPOSAL]) + b"\xc0"])
def test_empty_or_bodyless(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(data)


@pytest.mark.parametrize("msg", [priority(), proposal(), vote()], ids=repr)
def test_truncated_encoding(msg: Message) -> None:
    data = encode(msg)
    for cut in range(len(data)):
        with pytest.raises(MalformedMessage):
            decode(data[:cut])


@pytest.mark.parametrize("msg", [priority(), proposal(), vote()], ids=repr)
@pytest.mark.parametrize("tail", [b"\x00", b"\x80", b"\xc0", SIG])
def test_trailing_bytes(msg: Message, tail: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(encode(msg) + tail)


def test_well_formed_raw_bodies_decode() -> None:
    """The raw builders make the real encodings, so each malformed case differs in one thing."""
    assert decode(raw(Kind.VOTE, vote_body())) == vote()
    assert decode(raw(Kind.PROPOSAL, proposal_body(valid_round=0))) == proposal()
    assert decode(raw(Kind.PRIORITY, priority_body())) == priority()


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (Kind.VOTE, vote_body()[:-1]),
        (Kind.VOTE, [*vote_body(), b""]),
        (Kind.VOTE, []),
        (Kind.PROPOSAL, proposal_body()[:-1]),
        (Kind.PROPOSAL, [*proposal_body(), b""]),
        (Kind.PRIORITY, priority_body()[:-1]),
        (Kind.PRIORITY, [*priority_body(), b""]),
        # a body of one kind under another kind's byte
        (Kind.PRIORITY, vote_body()),
        (Kind.PROPOSAL, vote_body()),
        (Kind.VOTE, proposal_body()),
        (Kind.VOTE, priority_body()),
        # a credential with too few or too many items, or not a list
        (Kind.VOTE, vote_body(credential=cred_items()[:2])),
        (Kind.VOTE, vote_body(credential=[*cred_items(), b""])),
        (Kind.VOTE, vote_body(credential=b"\x01" * 10)),
        (Kind.PRIORITY, priority_body(credential=[])),
        # a body that is a byte string
        (Kind.VOTE, b"\x01\x02"),
    ],
)
def test_wrong_number_of_fields(kind: int, body: object) -> None:
    with pytest.raises(MalformedMessage):
        decode(raw(kind, body))


@pytest.mark.parametrize(
    "outer",
    [[], [vote_body()], [vote_body(), SIG, b""], b"\x01"],
    ids=["empty", "no-signature", "extra", "not-a-list"],
)
def test_outer_list_shape(outer: object) -> None:
    with pytest.raises(MalformedMessage):
        decode(bytes([Kind.VOTE]) + bytes(rlp.encode(outer)))


NON_CANONICAL = [b"\x00", b"\x00\x05", b"\x01" * 9, [b"\x05"]]


@pytest.mark.parametrize("bad", NON_CANONICAL, ids=["zero-byte", "leading-zero", "9-bytes", "list"])
@pytest.mark.parametrize("field", ["height", "round", "step"])
def test_non_canonical_vote_integers(field: str, bad: object) -> None:
    with pytest.raises(MalformedMessage):
        decode(raw(Kind.VOTE, vote_body(**{field: bad})))


@pytest.mark.parametrize("bad", NON_CANONICAL, ids=["zero-byte", "leading-zero", "9-bytes", "list"])
@pytest.mark.parametrize("field", ["height", "round", "valid_round"])
def test_non_canonical_proposal_integers(field: str, bad: object) -> None:
    with pytest.raises(MalformedMessage):
        decode(raw(Kind.PROPOSAL, proposal_body(**{field: bad})))


@pytest.mark.parametrize("bad", NON_CANONICAL, ids=["zero-byte", "leading-zero", "9-bytes", "list"])
def test_non_canonical_credential_weight(bad: object) -> None:
    cred = [CRED.vrf_hash, CRED.proof, bad]
    with pytest.raises(MalformedMessage):
        decode(raw(Kind.PRIORITY, priority_body(credential=cred)))


def test_integer_limits() -> None:
    top = decode(raw(Kind.VOTE, vote_body(height=U64, round=MAX_ROUND)))
    assert isinstance(top, Vote)
    assert (top.height, top.round) == (U64, MAX_ROUND)
    with pytest.raises(MalformedMessage, match="round"):
        decode(raw(Kind.VOTE, vote_body(round=MAX_ROUND + 1)))
    with pytest.raises(MalformedMessage, match="round"):
        decode(raw(Kind.PRIORITY, priority_body(round=MAX_ROUND + 1)))
    with pytest.raises(MalformedMessage, match="round"):
        decode(raw(Kind.PROPOSAL, proposal_body(round=MAX_ROUND + 1)))
    with pytest.raises(MalformedMessage, match="valid round"):
        decode(raw(Kind.PROPOSAL, proposal_body(valid_round=MAX_ROUND + 1)))
    with pytest.raises(MalformedMessage, match="height"):
        decode(raw(Kind.VOTE, vote_body(height=2**64)))


@pytest.mark.parametrize("step", [0, 3, 255, U64])
def test_unknown_step(step: int) -> None:
    with pytest.raises(MalformedMessage, match="step"):
        decode(raw(Kind.VOTE, vote_body(step=step)))


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_length_fixed_fields(size: int) -> None:
    bad = b"\x01" * size
    cases = [
        raw(Kind.VOTE, vote_body(value=bad)),
        raw(Kind.VOTE, vote_body(voter=bad)),
        raw(Kind.PROPOSAL, proposal_body(value=bad)),
        raw(Kind.PROPOSAL, proposal_body(proposer=bad)),
        raw(Kind.PRIORITY, priority_body(proposer=bad)),
    ]
    for data in cases:
        with pytest.raises(MalformedMessage):
            decode(data)


@pytest.mark.parametrize("size", [0, 63, 65, 80])
def test_wrong_length_signature(size: int) -> None:
    for body, kind in (
        (vote_body(), Kind.VOTE),
        (proposal_body(), Kind.PROPOSAL),
        (priority_body(), Kind.PRIORITY),
    ):
        with pytest.raises(MalformedMessage, match="signature"):
            decode(raw(kind, body, signature=b"\x01" * size))
    with pytest.raises(MalformedMessage, match="signature"):
        decode(raw(Kind.VOTE, vote_body(), signature=[SIG]))


def test_unsigned_message_does_not_decode() -> None:
    with pytest.raises(MalformedMessage, match="signature"):
        decode(encode(vote(signature=b"")))


@pytest.mark.parametrize(
    "cred",
    [
        [b"\x01" * 63, CRED.proof, 1],
        [b"\x01" * 65, CRED.proof, 1],
        [CRED.vrf_hash, b"\x01" * 79, 1],
        [CRED.vrf_hash, b"\x01" * 81, 1],
        [[CRED.vrf_hash], CRED.proof, 1],
    ],
)
def test_wrong_length_credential(cred: list[object]) -> None:
    with pytest.raises(MalformedMessage, match="credential"):
        decode(raw(Kind.VOTE, vote_body(credential=cred)))


@pytest.mark.parametrize("size", [0, 79, 81])
def test_wrong_length_seed_proof(size: int) -> None:
    with pytest.raises(MalformedMessage, match="seed proof"):
        decode(raw(Kind.PROPOSAL, proposal_body(seed_proof=b"\x01" * size)))


def nested(depth: int) -> bytes:
    """``depth`` lists, each holding the next, built without recursion."""
    data = b"\xc0"
    for _ in range(depth - 1):
        n = len(data)
        if n <= 55:
            data = bytes([0xC0 + n]) + data
        else:
            size = n.to_bytes((n.bit_length() + 7) // 8, "big")
            data = bytes([0xF7 + len(size)]) + size + data
    return data


@pytest.mark.parametrize("depth", [5, 6, 20, 100_000])
def test_deeply_nested_rlp(depth: int) -> None:
    with pytest.raises(MalformedMessage):
        decode(bytes([Kind.VOTE]) + nested(depth))


def test_deeply_nested_inside_a_field() -> None:
    deep: object = b""
    for _ in range(10):
        deep = [deep]
    with pytest.raises(MalformedMessage):
        decode(raw(Kind.VOTE, vote_body(credential=[CRED.vrf_hash, CRED.proof, deep])))


def rlp_list(*encoded: bytes) -> bytes:
    """An RLP list of already-encoded items (so one item can be written non-canonically)."""
    payload = b"".join(encoded)
    return bytes(rlp.codec.length_prefix(len(payload), 0xC0)) + payload


def enc(item: object) -> bytes:
    return bytes(rlp.encode(item))


@pytest.mark.parametrize(
    ("step", "refused"),
    [(enc(1), False), (b"\x81\x01", True), (b"\xb8\x01\x01", True)],
    ids=["canonical", "short-string", "long-string"],
)
def test_non_canonical_rlp_length_prefix(step: bytes, refused: bool) -> None:
    body = rlp_list(enc(5), enc(2), step, enc(VALUE), enc(KEY), enc(cred_items()))
    data = bytes([Kind.VOTE]) + rlp_list(body, enc(SIG))
    if refused:
        with pytest.raises(MalformedMessage):
            decode(data)
    else:
        assert decode(data) == vote()


# --- signing bytes ---------------------------------------------------------------------------


def test_signing_bytes_start_with_the_chain_domain() -> None:
    for msg in (priority(), proposal(), vote()):
        assert msg.signing_bytes(CHAIN).startswith(CHAIN.domain())


def test_domain_names_chain_id_and_genesis() -> None:
    assert CHAIN.domain() != Chain(31338, CHAIN.genesis_hash).domain()
    assert CHAIN.domain() != Chain(CHAIN.chain_id, b"\x12" * 32).domain()
    assert CHAIN.domain() == Chain(31337, b"\x11" * 32).domain()


OTHER_CHAINS = [Chain(31338, CHAIN.genesis_hash), Chain(CHAIN.chain_id, b"\x12" * 32)]


@pytest.mark.parametrize("msg", [priority(), proposal(), vote()], ids=repr)
@pytest.mark.parametrize("other", OTHER_CHAINS, ids=["chain-id", "genesis"])
def test_signing_bytes_differ_across_chains(msg: Message, other: Chain) -> None:
    assert msg.signing_bytes(CHAIN) != msg.signing_bytes(other)


OTHER_CRED = Credential(b"\x99" * 64, CRED.proof, CRED.weight)

SIGNED_CHANGES: list[tuple[Message, dict[str, object]]] = [
    (priority(), {"height": 6}),
    (priority(), {"round": 3}),
    (priority(), {"proposer": b"\x45" * 32}),
    (priority(), {"credential": OTHER_CRED}),
    (proposal(), {"height": 6}),
    (proposal(), {"round": 3}),
    (proposal(), {"value": NIL}),
    (proposal(), {"valid_round": 0}),
    (proposal(), {"proposer": b"\x45" * 32}),
    (proposal(), {"credential": OTHER_CRED}),
    (proposal(), {"seed_proof": b"\x78" * 80}),
    (vote(), {"height": 6}),
    (vote(), {"round": 3}),
    (vote(), {"step": Step.PRECOMMIT}),
    (vote(), {"value": NIL}),
    (vote(), {"voter": b"\x45" * 32}),
]


@pytest.mark.parametrize(("msg", "change"), SIGNED_CHANGES, ids=repr)
def test_signing_bytes_cover_every_signed_field(msg: Message, change: dict[str, Any]) -> None:
    assert msg.signing_bytes(CHAIN) != replace(msg, **change).signing_bytes(CHAIN)


def test_signing_bytes_ignore_the_signature() -> None:
    for msg in (priority(), proposal(), vote()):
        assert msg.signing_bytes(CHAIN) == replace(msg, signature=b"").signing_bytes(CHAIN)


def test_signing_bytes_differ_across_kinds() -> None:
    signed = {priority().signing_bytes(CHAIN), proposal().signing_bytes(CHAIN)}
    signed |= {vote(step=s).signing_bytes(CHAIN) for s in Step}
    assert len(signed) == 4


def test_vote_slot() -> None:
    v = vote()
    assert v.slot == (5, 2, Step.PREVOTE, KEY)
    assert replace(v, value=NIL).slot == v.slot
    assert replace(v, step=Step.PRECOMMIT).slot != v.slot
    assert replace(v, round=3).slot != v.slot
