"""ed25519 validator keys for consensus messages and VRF sortition, apart from account keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from nacl import exceptions as sodium_errors
from nacl.signing import SigningKey, VerifyKey

from powerverse.crypto import vrf
from powerverse.crypto._checks import exact_bytes
from powerverse.crypto.exceptions import InvalidKey, InvalidSignature

__all__ = ["PUBLIC_KEY_LEN", "SEED_LEN", "SIGNATURE_LEN", "ConsensusKey", "verify"]

SEED_LEN = 32
PUBLIC_KEY_LEN = 32
SIGNATURE_LEN = 64


@dataclass(frozen=True)
class ConsensusKey:
    """A validator's ed25519 key; the same 32-byte seed signs messages and makes VRF proofs."""

    seed: bytes = field(repr=False)
    public_key: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> ConsensusKey:
        """Build the key of a 32-byte seed (RFC 8032 secret key)."""
        seed = exact_bytes(seed, SEED_LEN, "consensus key seed", InvalidKey)
        return cls(seed=seed, public_key=bytes(SigningKey(seed).verify_key))

    @classmethod
    def generate(cls) -> ConsensusKey:
        """Make a fresh key from the OS's CSPRNG."""
        return cls.from_seed(secrets.token_bytes(SEED_LEN))

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte ed25519 signature of message."""
        return bytes(SigningKey(self.seed).sign(bytes(message)).signature)

    def vrf_prove(self, alpha: bytes) -> bytes:
        """Return the RFC 9381 VRF proof for alpha; check it with vrf.verify(public_key, ...)."""
        return vrf.prove(self.seed, alpha)


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise InvalidSignature unless signature is public_key's ed25519 signature of message."""
    public_key = exact_bytes(public_key, PUBLIC_KEY_LEN, "public key", InvalidSignature)
    signature = exact_bytes(signature, SIGNATURE_LEN, "signature", InvalidSignature)
    try:
        VerifyKey(public_key).verify(bytes(message), signature)
    except sodium_errors.BadSignatureError as err:
        raise InvalidSignature("ed25519 signature does not verify") from err
