"""Block seals (certificate + seed proof): round trip and refusal of anything malformed."""

from __future__ import annotations

import contextlib

import pytest
import rlp
from hypothesis import given
from hypothesis import strategies as st

from powerverse.consensus.certificates import Certificate
from powerverse.consensus.exceptions import InvalidCertificate
from powerverse.consensus.messages import Credential, Step, Vote
from powerverse.node.bft import decode_seal, encode_seal


def _cert() -> Certificate:
    vote = Vote(7, 1, Step.PRECOMMIT, b"\x11" * 32, b"\x22" * 32,
                Credential(b"\x33" * 64, b"\x44" * 80, 5), b"\x55" * 64)  # fmt: skip
    return Certificate(7, 1, b"\x11" * 32, (vote,))


def test_seal_round_trip() -> None:
    cert, proof = decode_seal(encode_seal(_cert(), b"\x66" * 80))
    assert cert == _cert() and proof == b"\x66" * 80
    assert decode_seal(encode_seal(_cert(), b""))[1] == b""  # empty blocks have no seed proof


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", rlp.encode([]), rlp.encode([b"x"]), rlp.encode([[b"x"], b""]),
     rlp.encode([b"not a certificate", b""]), b"\xc1" * 1000],
)  # fmt: skip
def test_malformed_seals_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidCertificate):
        decode_seal(data)


@given(st.binary(max_size=300))
def test_any_bytes_give_a_seal_or_invalid_certificate(data: bytes) -> None:
    with contextlib.suppress(InvalidCertificate):
        decode_seal(data)
