"""Errors raised by powerverse.crypto.

CryptoError
 ├── InvalidKey       a key has the wrong length or is not a usable key
 ├── InvalidAddress   text is not a 20-byte address (or fails its EIP-55 checksum)
 ├── InvalidProof     a VRF proof (or the key it is checked against) does not verify
 ├── InvalidSignature an ed25519 consensus signature does not verify
 └── KeystoreError    a keystore file is missing, duplicated, unreadable or locked
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by powerverse.crypto."""


class InvalidKey(CryptoError):
    """A key has the wrong length or is not a usable key."""


class InvalidAddress(CryptoError):
    """Text or bytes are not a 20-byte account address, or a mixed-case checksum is wrong."""


class InvalidProof(CryptoError):
    """A VRF proof is malformed or does not verify against the public key and input."""


class InvalidSignature(CryptoError):
    """An ed25519 consensus signature is malformed or does not verify."""


class KeystoreError(CryptoError):
    """A keystore operation failed: missing or duplicate key, bad file, wrong password."""
