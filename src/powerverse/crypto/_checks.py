"""Input checks shared by the crypto modules."""

from __future__ import annotations

from powerverse.crypto.exceptions import CryptoError


def exact_bytes(value: bytes, length: int, what: str, error: type[CryptoError]) -> bytes:
    """Return value as bytes if it is bytes-like of exactly `length` bytes, else raise `error`."""
    # bytes(n) of an int n would silently make n zero bytes, so refuse non-bytes outright.
    if not isinstance(value, bytes | bytearray | memoryview):
        raise error(f"{what} must be bytes, got {type(value).__name__}")
    data = bytes(value)
    if len(data) != length:
        raise error(f"{what} must be {length} bytes, got {len(data)}")
    return data
