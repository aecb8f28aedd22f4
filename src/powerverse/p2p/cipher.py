"""Session encryption: ChaCha20-Poly1305 (IETF) with one key and one counter per direction.

Nonces are never sent: each side counts the frames it has sent and received, so a
replayed, dropped, reordered or altered frame fails authentication. The frame's length
prefix is the associated data, so it cannot be altered either.
"""

from __future__ import annotations

from nacl import bindings
from nacl import exceptions as sodium_errors

from powerverse.p2p.config import AEAD_OVERHEAD, FRAME_HEADER_LEN
from powerverse.p2p.exceptions import DecryptionFailed

__all__ = ["KEY_LEN", "SessionCipher"]

KEY_LEN = 32
_MAX_COUNTER = 2**64 - 1


def _nonce(counter: int) -> bytes:
    return bytes(4) + counter.to_bytes(8, "big")


class SessionCipher:
    """Seals outgoing frames and opens incoming ones for one session."""

    def __init__(self, send_key: bytes, recv_key: bytes) -> None:
        if len(send_key) != KEY_LEN or len(recv_key) != KEY_LEN:
            raise ValueError("session keys must be 32 bytes")
        self._send_key = bytes(send_key)
        self._recv_key = bytes(recv_key)
        self._send_counter = 0
        self._recv_counter = 0

    def seal(self, plaintext: bytes) -> bytes:
        """Return the complete frame (length prefix + ciphertext) carrying plaintext."""
        if self._send_counter >= _MAX_COUNTER:
            raise OverflowError("session nonce space exhausted")
        header = (len(plaintext) + AEAD_OVERHEAD).to_bytes(FRAME_HEADER_LEN, "big")
        nonce = _nonce(self._send_counter)
        self._send_counter += 1
        body = bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
            plaintext, header, nonce, self._send_key
        )
        return header + body

    def open(self, header: bytes, body: bytes) -> bytes:
        """Authenticate and decrypt the next incoming frame; DecryptionFailed if it is not."""
        if self._recv_counter >= _MAX_COUNTER:
            raise DecryptionFailed("session nonce space exhausted")
        if len(body) < AEAD_OVERHEAD:
            raise DecryptionFailed("frame shorter than the authentication tag")
        nonce = _nonce(self._recv_counter)
        try:
            plaintext = bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
                body, header, nonce, self._recv_key
            )
        except sodium_errors.CryptoError as err:
            raise DecryptionFailed("frame failed authentication") from err
        self._recv_counter += 1
        return plaintext
