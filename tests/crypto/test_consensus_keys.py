"""ed25519 validator keys: signing, verification, and VRF proofs from the same seed."""

from __future__ import annotations

import dataclasses

import pytest
from nacl.signing import SigningKey

from powerverse.crypto import vrf
from powerverse.crypto.consensus_keys import ConsensusKey, verify
from powerverse.crypto.exceptions import InvalidKey, InvalidSignature

SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def test_rfc8032_test_1() -> None:
    key = ConsensusKey.from_seed(SEED)
    assert key.public_key.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert key.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


def test_sign_and_verify() -> None:
    key = ConsensusKey.generate()
    signature = key.sign(b"vote block 7")
    assert len(signature) == 64
    verify(key.public_key, b"vote block 7", signature)
    assert SigningKey(key.seed).verify_key.encode() == key.public_key


def test_bad_signatures_are_rejected() -> None:
    key = ConsensusKey.from_seed(SEED)
    other = ConsensusKey.from_seed(bytes(32))
    signature = key.sign(b"msg")
    with pytest.raises(InvalidSignature):
        verify(key.public_key, b"msh", signature)
    with pytest.raises(InvalidSignature):
        verify(other.public_key, b"msg", signature)
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(InvalidSignature):
        verify(key.public_key, b"msg", tampered)
    with pytest.raises(InvalidSignature, match="signature must be 64 bytes"):
        verify(key.public_key, b"msg", signature[:63])
    with pytest.raises(InvalidSignature, match="public key must be 32 bytes"):
        verify(key.public_key[:31], b"msg", signature)
    with pytest.raises(InvalidSignature):
        verify(bytes(32), b"msg", signature)  # small-order key (y = 0)


def test_vrf_proof_uses_the_same_key() -> None:
    key = ConsensusKey.from_seed(SEED)
    assert vrf.keypair(SEED)[1] == key.public_key
    pi = key.vrf_prove(b"seed|round")
    assert vrf.verify(key.public_key, pi, b"seed|round") == vrf.proof_to_hash(pi)


def test_seed_must_be_32_bytes_and_stays_out_of_repr() -> None:
    for bad in (b"", bytes(31), bytes(33), 32, "a" * 32):
        with pytest.raises(InvalidKey):
            ConsensusKey.from_seed(bad)  # type: ignore[arg-type]
    key = ConsensusKey.from_seed(SEED)
    assert SEED.hex() not in repr(key)
    assert repr(SEED) not in repr(key)
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.seed = bytes(32)  # type: ignore[misc]
