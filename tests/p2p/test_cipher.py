"""Session encryption: every tampered, replayed or reordered frame fails."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.p2p.cipher import SessionCipher
from powerverse.p2p.exceptions import DecryptionFailed

K1, K2 = os.urandom(32), os.urandom(32)


def _pair() -> tuple[SessionCipher, SessionCipher]:
    return SessionCipher(K1, K2), SessionCipher(K2, K1)


def _split(frame: bytes) -> tuple[bytes, bytes]:
    return frame[:4], frame[4:]


def test_frames_round_trip_in_order() -> None:
    alice, bob = _pair()
    for i in range(5):
        header, body = _split(alice.seal(b"msg %d" % i))
        assert int.from_bytes(header, "big") == len(body)
        assert bob.open(header, body) == b"msg %d" % i
    assert alice.open(*_split(bob.seal(b"back"))) == b"back"


def test_same_plaintext_encrypts_differently_each_time() -> None:
    alice, _ = _pair()
    assert alice.seal(b"same") != alice.seal(b"same")


@pytest.mark.parametrize("position", [0, 3, 4, 10, -1])
def test_a_flipped_byte_fails(position: int) -> None:
    alice, bob = _pair()
    frame = bytearray(alice.seal(b"hello world"))
    frame[position] ^= 0x01
    with pytest.raises(DecryptionFailed):
        bob.open(*_split(bytes(frame)))


def test_replayed_frame_fails() -> None:
    alice, bob = _pair()
    frame = alice.seal(b"pay 10")
    assert bob.open(*_split(frame)) == b"pay 10"
    with pytest.raises(DecryptionFailed):
        bob.open(*_split(frame))


def test_reordered_frames_fail() -> None:
    alice, bob = _pair()
    first, second = alice.seal(b"1"), alice.seal(b"2")
    with pytest.raises(DecryptionFailed):
        bob.open(*_split(second))
    assert bob.open(*_split(first)) == b"1"  # a failed frame does not advance the counter


def test_own_frames_and_wrong_keys_fail() -> None:
    alice, _ = _pair()
    with pytest.raises(DecryptionFailed):
        alice.open(*_split(alice.seal(b"reflected")))
    stranger = SessionCipher(os.urandom(32), os.urandom(32))
    with pytest.raises(DecryptionFailed):
        stranger.open(*_split(alice.seal(b"x")))


def test_short_frames_fail_and_bad_keys_are_refused() -> None:
    _, bob = _pair()
    with pytest.raises(DecryptionFailed):
        bob.open(b"\x00\x00\x00\x03", b"abc")
    with pytest.raises(ValueError):
        SessionCipher(b"short", K1)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_decrypt(data: bytes) -> None:
    _, bob = _pair()
    with pytest.raises(DecryptionFailed):
        bob.open(len(data).to_bytes(4, "big"), data)
