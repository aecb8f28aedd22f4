"""Credentials for a renter, encrypted to the renter's secp256k1 key (ECIES, ``eciespy``).

Only the holder of the renter's key can read what the agent sends back (the VM's SSH
endpoint, user, password, host key fingerprint), even over plain HTTP. The agent encrypts to:

- the public key recovered from the renter's own signed request
  (:attr:`powerverse.infra.auth.Verified.public_key`): the renter's account key; or
- the renter's DID document key (``did:pv:<address>``), when the renter asks for it and has one:
  an ``EcdsaSecp256k1VerificationKey2019`` key with the ``keyAgreement`` purpose
  (:func:`did_encryption_key`), so a wallet that cannot decrypt can leave it to another key.

**Ciphertext format** (eciespy 0.4 and eciesjs with their default settings), ``0x``-hex::

    ephemeral public key (65 bytes, uncompressed, 0x04 ‖ x ‖ y)
    ‖ AES-GCM nonce (16 bytes) ‖ AES-GCM tag (16 bytes) ‖ AES-256-GCM ciphertext

The AES key is HKDF-SHA256 (no salt, no info, 32 bytes) of ``ephemeral public key (65 bytes)
‖ shared point (65 bytes, uncompressed: the recipient's public key times the ephemeral secret)``.
The plaintext is UTF-8 JSON (an object).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import ecies
from coincurve import PublicKey as CurvePoint
from ecies.config import Config

from powerverse.infra.exceptions import AuthError
from powerverse.market.did import KEY_AGREEMENT, PublicKey

__all__ = [
    "DID_KEY_TYPE",
    "SCHEME",
    "RecipientKey",
    "compress_public_key",
    "decrypt_credentials",
    "did_encryption_key",
    "encrypt_credentials",
]

SCHEME: Final = "ecies-secp256k1-aes256gcm"
"""The name API responses give the ciphertext format above."""

DID_KEY_TYPE: Final = "EcdsaSecp256k1VerificationKey2019"
"""The DID key type credentials can be encrypted to (33-byte compressed secp256k1 keys)."""

# Pinned explicitly: eciespy's module-level default is mutable, and the format is an interface.
_CONFIG: Final = Config(
    elliptic_curve="secp256k1",
    is_ephemeral_key_compressed=False,
    is_hkdf_key_compressed=False,
    symmetric_algorithm="aes-256-gcm",
    symmetric_nonce_length=16,
)
_OVERHEAD: Final = 65 + 16 + 16


@dataclass(frozen=True, kw_only=True)
class RecipientKey:
    """The key credentials are encrypted to, and where the agent found it."""

    public_key: bytes  # 33 bytes, compressed
    source: Literal["signer", "did"]
    key_id: str | None = None  # the DID key's id (``did:pv:0x…#key-1``) for source "did"


def compress_public_key(public_key: bytes) -> bytes:
    """A secp256k1 public key (64 raw, 65 uncompressed or 33 compressed bytes), compressed."""
    raw = b"\x04" + public_key if len(public_key) == 64 else public_key
    try:
        return bytes(CurvePoint(raw).format(compressed=True))
    except ValueError as exc:
        raise AuthError(
            f"not a secp256k1 public key ({len(public_key)} bytes): {exc}; give 64 raw, "
            "65 uncompressed or 33 compressed bytes of a point on the curve"
        ) from None


def encrypt_credentials(public_key: bytes, credentials: Mapping[str, Any]) -> str:
    """0x-hex ECIES ciphertext of the JSON ``credentials`` for ``public_key``."""
    plain = json.dumps(dict(credentials), sort_keys=True, separators=(",", ":")).encode()
    return "0x" + ecies.encrypt(compress_public_key(public_key), plain, _CONFIG).hex()


def decrypt_credentials(private_key: bytes, ciphertext: str) -> dict[str, Any]:
    """The credentials, for the holder of ``private_key`` (:class:`AuthError` for anyone else)."""
    if len(private_key) != 32:
        raise AuthError(f"a secp256k1 private key is 32 bytes, not {len(private_key)}")
    try:
        blob = bytes.fromhex(ciphertext.removeprefix("0x"))
    except ValueError:
        raise AuthError("the credentials' ciphertext is not 0x-hex") from None
    if len(blob) <= _OVERHEAD:
        raise AuthError(f"the credentials' ciphertext is too short ({len(blob)} bytes)")
    try:
        plain = ecies.decrypt(private_key, blob, _CONFIG)
    except ValueError:  # AES-GCM's tag check: another key, or altered bytes
        raise AuthError(
            "these credentials were not encrypted to this key, or they were altered"
        ) from None
    try:
        doc = json.loads(plain)
    except ValueError:
        raise AuthError("the decrypted credentials are not JSON") from None
    if not isinstance(doc, dict):
        raise AuthError("the decrypted credentials are not a JSON object")
    return doc


def did_encryption_key(keys: Iterable[PublicKey], *, did: str, now: int) -> RecipientKey | None:
    """The first unexpired ``keyAgreement`` secp256k1 key among a DID document's ``keys``.

    ``keys`` are the registry's rows (:meth:`powerverse.market.did.DidRegistry.keys`); keys of
    other types or purposes, expired ones and bytes that are not a curve point are passed over.
    """
    for key in keys:
        if key.key_type != DID_KEY_TYPE or not key.purposes & KEY_AGREEMENT:
            continue
        if key.valid_to and key.valid_to <= now:
            continue
        if len(key.public_key) != 33:
            continue
        try:
            point = compress_public_key(key.public_key)
        except AuthError:
            continue
        return RecipientKey(public_key=point, source="did", key_id=f"{did}#{key.key_id}")
    return None
