"""ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite 0x03) on libsodium's edwards25519 primitives.

Keys are RFC 8032 ed25519 keys: the secret key is the 32-byte seed, the public key the
32-byte encoding of x*B. A proof is Gamma (32) || c (16) || s (32); its hash beta is 64 bytes.

verify() is in one respect stricter than RFC 9381: the public key and Gamma must lie in the
prime-order subgroup, because libsodium's scalar multiplication refuses any other point.
Honest keys and proofs always do, so no honestly made proof is ever rejected, and beta is
unaffected (it hashes cofactor*Gamma).
"""

from __future__ import annotations

import hashlib
import hmac

from nacl import bindings as sodium
from nacl import exceptions as sodium_errors

from powerverse.crypto._checks import exact_bytes
from powerverse.crypto.exceptions import CryptoError, InvalidKey
from powerverse.crypto.exceptions import InvalidProof as InvalidProof  # re-exported

__all__ = ["keypair", "proof_to_hash", "prove", "verify"]

SUITE = b"\x03"
SEED_LEN = 32
PK_LEN = 32
PROOF_LEN = 80
BETA_LEN = 64

_PT_LEN = 32
_C_LEN = 16
_Q_LEN = 32
# Order of the prime-order subgroup of edwards25519 (RFC 8032's L, RFC 9381's q).
_L = 2**252 + 27742317777372353535851937790883648493
_IDENTITY = (1).to_bytes(_PT_LEN, "little")
_ZERO_SCALAR = bytes(_Q_LEN)


def keypair(seed: bytes) -> tuple[bytes, bytes]:
    """Return (sk, pk) for a 32-byte seed; sk is the seed itself, as in RFC 8032."""
    sk = exact_bytes(seed, SEED_LEN, "VRF seed", InvalidKey)
    x, _ = _expand(sk)
    return sk, _mul_base(x)


def prove(sk: bytes, alpha: bytes) -> bytes:
    """Return the 80-byte proof pi that beta = VRF_sk(alpha) (RFC 9381 section 5.1)."""
    sk = exact_bytes(sk, SEED_LEN, "VRF secret key", InvalidKey)
    alpha = bytes(alpha)
    x, nonce_prefix = _expand(sk)
    pk = _mul_base(x)
    h = _encode_to_curve(pk, alpha)
    gamma = _mul(x, h)
    k = sodium.crypto_core_ed25519_scalar_reduce(hashlib.sha512(nonce_prefix + h).digest())
    c = _challenge(pk, h, gamma, _mul_base(k), _mul(k, h))
    s = sodium.crypto_core_ed25519_scalar_add(
        k, sodium.crypto_core_ed25519_scalar_mul(_scalar(c), x)
    )
    return gamma + c + s


def proof_to_hash(pi: bytes) -> bytes:
    """Return the 64-byte VRF output beta of a well-formed proof, without verifying it."""
    gamma, _, _ = _decode_proof(pi)
    return _gamma_to_hash(gamma)


def verify(pk: bytes, pi: bytes, alpha: bytes) -> bytes:
    """Return beta if pi proves VRF_pk(alpha), else raise InvalidProof (RFC 9381 section 5.3)."""
    pk = exact_bytes(pk, PK_LEN, "VRF public key", InvalidProof)
    alpha = bytes(alpha)
    _validate_key(pk)
    gamma, c, s = _decode_proof(pi)
    h = _encode_to_curve(pk, alpha)
    try:
        u = sodium.crypto_core_ed25519_sub(_mul_base(s), _mul(_scalar(c), pk))
        v = sodium.crypto_core_ed25519_sub(_mul(s, h), _mul(_scalar(c), gamma))
    except sodium_errors.RuntimeError as err:
        raise InvalidProof("public key or Gamma is outside the prime-order subgroup") from err
    if not hmac.compare_digest(_challenge(pk, h, gamma, u, v), c):
        raise InvalidProof("VRF proof does not verify for this public key and input")
    return _gamma_to_hash(gamma)


def _expand(sk: bytes) -> tuple[bytes, bytes]:
    """Secret scalar x (reduced mod L) and nonce prefix from the seed (RFC 8032 5.1.5)."""
    digest = hashlib.sha512(sk).digest()
    clamped = bytearray(digest[:32])
    clamped[0] &= 248
    clamped[31] &= 127
    clamped[31] |= 64
    # x*P is the same for x and x mod L on the prime-order subgroup, where all our
    # multiplications happen; libsodium wants scalars below L.
    x = sodium.crypto_core_ed25519_scalar_reduce(bytes(clamped) + bytes(32))
    return x, digest[32:]


def _decode_point(data: bytes) -> bytes | None:
    """Return data if it is the canonical encoding of a curve point (RFC 8032 5.1.3), else None."""
    # libsodium decodes leniently (y >= p, or x = 0 with the sign bit set); its encoder is
    # canonical, so a point survives the round trip through P + identity only if it was.
    try:
        again = sodium.crypto_core_ed25519_add(data, _IDENTITY)
    except sodium_errors.RuntimeError:
        return None
    return data if again == data else None


def _times_cofactor(point: bytes) -> bytes:
    """Return 8*point for any curve point, small-order and mixed-order ones included."""
    for _ in range(3):
        point = sodium.crypto_core_ed25519_add(point, point)
    return point


def _mul(scalar: bytes, point: bytes) -> bytes:
    """Return scalar*point for a reduced scalar and a point of the prime-order subgroup."""
    if scalar == _ZERO_SCALAR:
        return _IDENTITY
    return sodium.crypto_scalarmult_ed25519_noclamp(scalar, point)


def _mul_base(scalar: bytes) -> bytes:
    """Return scalar*B for a reduced scalar."""
    if scalar == _ZERO_SCALAR:
        return _IDENTITY
    return sodium.crypto_scalarmult_ed25519_base_noclamp(scalar)


def _scalar(c: bytes) -> bytes:
    """Widen a 16-byte challenge to a 32-byte little-endian scalar."""
    return c + bytes(_Q_LEN - len(c))


def _validate_key(pk: bytes) -> None:
    """Reject a public key that is not a canonical point or has small order (RFC 9381 5.4.5)."""
    y = _decode_point(pk)
    if y is None:
        raise InvalidProof("VRF public key is not a canonical edwards25519 point")
    if _times_cofactor(y) == _IDENTITY:
        raise InvalidProof("VRF public key has small order")


def _decode_proof(pi: bytes) -> tuple[bytes, bytes, bytes]:
    """Split pi into (Gamma, c, s), rejecting a non-canonical Gamma or s >= L (RFC 9381 5.4.4)."""
    pi = exact_bytes(pi, PROOF_LEN, "VRF proof", InvalidProof)
    gamma = _decode_point(pi[:_PT_LEN])
    if gamma is None:
        raise InvalidProof("VRF proof's Gamma is not a canonical edwards25519 point")
    c = pi[_PT_LEN : _PT_LEN + _C_LEN]
    s = pi[_PT_LEN + _C_LEN :]
    if int.from_bytes(s, "little") >= _L:
        raise InvalidProof("VRF proof's scalar s is not reduced modulo L")
    return gamma, c, s


def _encode_to_curve(salt: bytes, alpha: bytes) -> bytes:
    """Hash (salt, alpha) to a prime-order point by try-and-increment (RFC 9381 5.4.1.1)."""
    for ctr in range(256):
        digest = hashlib.sha512(SUITE + b"\x01" + salt + alpha + bytes([ctr]) + b"\x00").digest()
        point = _decode_point(digest[:_PT_LEN])
        if point is not None:
            h = _times_cofactor(point)
            if h != _IDENTITY:
                return h
    raise CryptoError("encode_to_curve found no point in 256 tries")  # probability ~2^-256


def _challenge(*points: bytes) -> bytes:
    """Return the 16-byte challenge c over the given encoded points (RFC 9381 5.4.3)."""
    digest = hashlib.sha512(SUITE + b"\x02" + b"".join(points) + b"\x00").digest()
    return digest[:_C_LEN]


def _gamma_to_hash(gamma: bytes) -> bytes:
    """Return beta = SHA-512(suite || 0x03 || 8*Gamma || 0x00) (RFC 9381 5.2)."""
    return hashlib.sha512(SUITE + b"\x03" + _times_cofactor(gamma) + b"\x00").digest()
