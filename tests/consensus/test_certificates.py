"""Finality certificates: a quorum of precommits verifies; anything less or off does not."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import rlp
from eth_hash.auto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerverse.consensus.certificates import (
    MAX_CERTIFICATE_VOTES,
    Certificate,
    verify_certificate,
)
from powerverse.consensus.committee import Committee
from powerverse.consensus.exceptions import InvalidCertificate
from powerverse.consensus.messages import MAX_ROUND, NIL, Chain, Step, Vote, encode
from tests.consensus.test_checks import (
    ALL,
    HEIGHT,
    OUTSIDER,
    SIGNERS,
    STAKE,
    VALUE,
    checker,
    make_committee,
    priority,
    proposal,
    vote,
    vote_cred,
)

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""No deadline: a loaded machine must not fail a test by being slow."""

ROUND = 2


def precommits(committee: Committee, n: int = 4, **kw: Any) -> tuple[Vote, ...]:
    fields: dict[str, Any] = {"round": ROUND, "step": Step.PRECOMMIT, "value": VALUE} | kw
    return tuple(vote(s, committee, **fields) for s in SIGNERS[:n])


def cert(votes: tuple[Vote, ...], height: int = HEIGHT, value: bytes = VALUE) -> Certificate:
    return Certificate(height, ROUND, value, votes)


def invalid(c: Certificate, committee: Committee, match: str | None = None) -> None:
    with pytest.raises(InvalidCertificate, match=match):
        verify_certificate(c, checker(), committee)


# --- verification ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 4])
def test_quorum_of_full_stake_votes_verifies(n: int) -> None:
    committee = make_committee(tau_committee=ALL)  # expected weight 4000: quorum > 2666
    c = cert(precommits(committee, n))
    assert c.weight == n * STAKE
    verify_certificate(c, checker(), committee)


def test_two_of_four_is_not_a_quorum() -> None:
    committee = make_committee(tau_committee=ALL)
    invalid(cert(precommits(committee, 2)), committee, "2/3")


def test_empty_certificate() -> None:
    committee = make_committee()
    invalid(cert(()), committee, "2/3")


def test_sortition_weights_with_smaller_tau() -> None:
    committee = make_committee(tau_committee=2000)  # expected weight 2000: quorum > 1333
    votes = precommits(committee)
    weights = [v.credential.weight for v in votes]
    assert all(0 < w < STAKE for w in weights)
    assert sum(weights) > 1334
    verify_certificate(cert(votes), checker(), committee)
    assert sum(weights[:2]) <= 1333  # two members weigh about 1000
    invalid(cert(votes[:2]), committee, "2/3")


def test_a_nil_quorum_is_not_a_certificate() -> None:
    """A quorum of nil precommits decides nothing, so it certifies nothing."""
    committee = make_committee()
    c = cert(precommits(committee, value=NIL), value=NIL)
    invalid(c, committee, "not nil")
    invalid(replace(c, value=VALUE), committee, "not a precommit for its value")


def test_prevote_among_them() -> None:
    committee = make_committee()
    votes = (*precommits(committee, 3), vote(SIGNERS[3], committee, round=ROUND))
    verify_certificate(cert(votes[:3]), checker(), committee)
    prevote = vote(SIGNERS[3], committee, round=ROUND, step=Step.PREVOTE)
    invalid(cert((*votes[:3], prevote)), committee, "precommit")
    invalid(cert((prevote, *votes[:3])), committee, "precommit")


@pytest.mark.parametrize(
    "change",
    [{"value": NIL}, {"value": keccak(b"other")}, {"round": ROUND + 1}, {"height": HEIGHT + 1}],
    ids=["nil", "other-value", "other-round", "other-height"],
)
def test_vote_for_something_else(change: dict[str, object]) -> None:
    committee = make_committee()
    fields: dict[str, Any] = {"round": ROUND} | change
    other_committee = make_committee(height=HEIGHT + 1) if "height" in change else committee
    odd = vote(SIGNERS[3], other_committee, **fields)
    verify_certificate(cert(precommits(committee, 3)), checker(), committee)
    invalid(cert((*precommits(committee, 3), odd)), committee, "precommit")


def test_certificate_of_another_height() -> None:
    committee = make_committee()
    later = make_committee(height=HEIGHT + 1)
    c = cert(precommits(later), height=HEIGHT + 1)
    verify_certificate(c, checker(), later)
    invalid(c, committee, "height")


def test_duplicate_voter() -> None:
    committee = make_committee()
    votes = precommits(committee, 2)
    assert not committee.is_quorum(2 * STAKE)
    assert committee.is_quorum(3 * STAKE)  # counting one voter twice would make a quorum
    invalid(cert((*votes, votes[0])), committee, "two votes")
    prevote_twin = vote(SIGNERS[0], committee, round=ROUND, step=Step.PREVOTE)
    invalid(cert((*votes, replace(prevote_twin, step=Step.PRECOMMIT))), committee, "two votes")


def test_tampered_vote() -> None:
    committee = make_committee()
    votes = list(precommits(committee))
    votes[1] = replace(
        votes[1], signature=bytes([votes[1].signature[0] ^ 1]) + votes[1].signature[1:]
    )
    invalid(cert(tuple(votes)), committee, "signature")


def test_vote_signed_for_another_chain() -> None:
    committee = make_committee()
    foreign = vote(SIGNERS[3], committee, chain=Chain(1, NIL), round=ROUND)
    invalid(cert((*precommits(committee, 3), foreign)), committee, "signature")


def test_invalid_credentials() -> None:
    committee = make_committee(tau_committee=2000)
    votes = precommits(committee, 3)
    good = votes[2].credential
    for cred in (
        replace(good, weight=good.weight + 500),  # inflating one's weight
        vote_cred(SIGNERS[2], committee, height=HEIGHT + 1),
        replace(good, proof=bytes(80)),
    ):
        bad = vote(SIGNERS[2], committee, round=ROUND, credential=cred)
        invalid(cert((*votes[:2], bad, *precommits(committee)[3:])), committee, "credential")


def test_inflated_weight_cannot_fake_a_quorum() -> None:
    committee = make_committee(tau_committee=ALL)
    votes = precommits(committee, 2)
    fat = vote(
        SIGNERS[0], committee, round=ROUND, credential=replace(votes[0].credential, weight=3000)
    )
    c = cert((fat, votes[1]))
    assert committee.is_quorum(c.weight)  # the claimed weight would be a quorum
    invalid(c, committee, "weight")


def test_non_validator_vote() -> None:
    committee = make_committee()
    invalid(cert((*precommits(committee, 3), vote(OUTSIDER, committee, round=ROUND))), committee)


# --- encoding --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 4])
def test_round_trip(n: int) -> None:
    committee = make_committee(tau_committee=2000)
    c = cert(precommits(committee, n))
    data = c.encode()
    assert Certificate.decode(data) == c
    assert Certificate.decode(data).encode() == data


def test_decoded_certificate_verifies() -> None:
    committee = make_committee()
    c = Certificate.decode(cert(precommits(committee)).encode())
    verify_certificate(c, checker(), committee)


def test_round_trip_extremes() -> None:
    committee = make_committee()
    v = vote(SIGNERS[0], committee, round=MAX_ROUND)
    c = Certificate(2**64 - 1, MAX_ROUND, NIL, (v,))
    assert Certificate.decode(c.encode()) == c


def raw_cert(height: object, round_: object, value: object, votes: object) -> bytes:
    return bytes(rlp.encode([height, round_, value, votes]))


def nested(depth: int) -> bytes:
    data = b"\xc0"
    for _ in range(depth - 1):
        n = len(data)
        if n <= 55:
            data = bytes([0xC0 + n]) + data
        else:
            size = n.to_bytes((n.bit_length() + 7) // 8, "big")
            data = bytes([0xF7 + len(size)]) + size + data
    return data


def good_vote_bytes() -> bytes:
    return encode(vote(SIGNERS[0], make_committee(), round=ROUND))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80",
        b"\xc0",
        b"\x01\x02\x03",
        nested(4),
        nested(50),
        nested(100_000),
        bytes(rlp.encode([HEIGHT, ROUND, VALUE])),
        bytes(rlp.encode([HEIGHT, ROUND, VALUE, [], b""])),
        raw_cert(HEIGHT, ROUND, VALUE, b"not a list"),
        raw_cert(b"\x00\x03", ROUND, VALUE, []),
        raw_cert(b"\x01" * 9, ROUND, VALUE, []),
        raw_cert([HEIGHT], ROUND, VALUE, []),
        raw_cert(HEIGHT, MAX_ROUND + 1, VALUE, []),
        raw_cert(HEIGHT, ROUND, VALUE[:31], []),
        raw_cert(HEIGHT, ROUND, VALUE + b"\x00", []),
        raw_cert(HEIGHT, ROUND, VALUE, [b""]),
        raw_cert(HEIGHT, ROUND, VALUE, [b"\x03garbage"]),
        raw_cert(HEIGHT, ROUND, VALUE, [[b"\x03"]]),
        raw_cert(HEIGHT, ROUND, VALUE, [[]]),
    ],
    ids=lambda d: d[:12].hex() or "empty",
)
def test_malformed_bytes(data: bytes) -> None:
    with pytest.raises(InvalidCertificate):
        Certificate.decode(data)


def test_trailing_and_truncated_bytes() -> None:
    data = cert(precommits(make_committee(), 3)).encode()
    with pytest.raises(InvalidCertificate):
        Certificate.decode(data + b"\x00")
    for cut in (1, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(InvalidCertificate):
            Certificate.decode(data[:cut])


def test_vote_with_bad_bytes_inside() -> None:
    good = good_vote_bytes()
    with pytest.raises(InvalidCertificate):
        Certificate.decode(raw_cert(HEIGHT, ROUND, VALUE, [good, good[:-1]]))
    with pytest.raises(InvalidCertificate):
        Certificate.decode(raw_cert(HEIGHT, ROUND, VALUE, [good, good + b"\x00"]))


def test_only_votes_in_a_certificate() -> None:
    committee = make_committee(tau_proposer=ALL)
    for other in (priority(SIGNERS[0], committee, 1), proposal(SIGNERS[0], committee, 1)):
        data = raw_cert(HEIGHT, ROUND, VALUE, [good_vote_bytes(), encode(other)])
        with pytest.raises(InvalidCertificate, match="only votes"):
            Certificate.decode(data)


def test_too_many_votes() -> None:
    with pytest.raises(InvalidCertificate, match="bounded"):
        Certificate.decode(raw_cert(HEIGHT, ROUND, VALUE, [b""] * (MAX_CERTIFICATE_VOTES + 1)))
    votes = [good_vote_bytes()] * (MAX_CERTIFICATE_VOTES + 1)
    with pytest.raises(InvalidCertificate, match="bounded"):
        Certificate.decode(raw_cert(HEIGHT, ROUND, VALUE, votes))


def test_many_votes_up_to_the_bound_decode() -> None:
    votes = [good_vote_bytes()] * 50
    c = Certificate.decode(raw_cert(HEIGHT, ROUND, VALUE, votes))
    assert len(c.votes) == 50
    with pytest.raises(InvalidCertificate, match="two votes"):
        verify_certificate(c, checker(), make_committee())


@given(st.binary(max_size=800))
@settings(FUZZ)
def test_arbitrary_bytes_raise_only_invalid_certificate(data: bytes) -> None:
    try:
        c = Certificate.decode(data)
    except InvalidCertificate:
        return
    assert c.encode() == data


rlp_items = st.recursive(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from([HEIGHT, ROUND, VALUE, NIL]).map(lambda x: rlp.encode(x)[1:] or b""),
    ),
    lambda children: st.lists(children, max_size=6),
    max_leaves=30,
)


@given(rlp_items)
@settings(FUZZ)
def test_arbitrary_rlp_raises_only_invalid_certificate(item: object) -> None:
    data = bytes(rlp.encode(item))
    try:
        c = Certificate.decode(data)
    except InvalidCertificate:
        return
    assert c.encode() == data


@given(st.data())
@settings(FUZZ, max_examples=50)
def test_byte_changes_to_a_good_certificate(data: st.DataObject) -> None:
    committee = make_committee()
    wire = bytearray(CERT_BYTES)
    i = data.draw(st.integers(0, len(wire) - 1))
    wire[i] ^= data.draw(st.integers(1, 255))
    try:
        c = Certificate.decode(bytes(wire))
    except InvalidCertificate:
        return
    with pytest.raises(InvalidCertificate):
        verify_certificate(c, checker(), committee)


CERT_BYTES = cert(precommits(make_committee(), 3)).encode()
