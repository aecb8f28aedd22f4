"""Credentials for a renter, encrypted to the renter's secp256k1 key (ECIES, ``eciespy``).

The agent learns the renter's public key from the renter's own signed request
(:func:`powerverse.infra.auth.verify_request` recovers it), so only the holder of the renter's
account key can read what the agent sends back: the VM's SSH endpoint, user and host key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import ecies

from powerverse.infra.exceptions import AuthError

__all__ = ["decrypt_credentials", "encrypt_credentials"]


def encrypt_credentials(public_key: bytes, credentials: Mapping[str, Any]) -> str:
    """0x-hex ECIES ciphertext of the JSON ``credentials`` for the 64-byte ``public_key``."""
    if len(public_key) != 64:
        raise ValueError("a secp256k1 public key is 64 bytes (uncompressed, no prefix)")
    plain = json.dumps(dict(credentials), sort_keys=True).encode()
    return "0x" + ecies.encrypt(b"\x04" + public_key, plain).hex()


def decrypt_credentials(private_key: bytes, ciphertext: str) -> dict[str, Any]:
    """The credentials, for the holder of ``private_key`` (AuthError for anyone else)."""
    try:
        plain = ecies.decrypt(private_key, bytes.fromhex(ciphertext.removeprefix("0x")))
    except Exception as exc:  # wrong key or tampered ciphertext: AES-GCM refuses
        raise AuthError(f"these credentials are not for this key: {exc}") from None
    doc: dict[str, Any] = json.loads(plain)
    return doc
