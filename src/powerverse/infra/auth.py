"""Signed requests to the agent API: every request carries its caller's EIP-712 signature.

A client signs the typed data below with its account key (any Ethereum wallet can:
``eth_signTypedData_v4``) and sends four headers:

``X-PV-Address``   the signer's address (0x, 40 hex digits)
``X-PV-Timestamp`` unix seconds when the request was signed (decimal)
``X-PV-Nonce``     32 random bytes, 0x-hex; never reused
``X-PV-Signature`` the 65-byte signature, 0x-hex

Typed data (EIP-712)::

    domain  = {name: "PowerVerse Agent", version: "1", chainId: <chain id>,
               verifyingContract: <the agent's address>}
    Request = [method: string, path: string, bodyHash: bytes32, timestamp: uint64,
               nonce: bytes32]

``method`` is upper case (``GET``), ``path`` the request path with its query string exactly as
sent (``/v1/leases/3/console?max_bytes=100``), ``bodyHash`` the SHA-256 of the raw body (of the
empty string for no body). Naming the agent's address and chain in the domain means a request
signed for one agent cannot be replayed at another. The agent refuses a request whose signature
does not recover to ``X-PV-Address``, whose timestamp is more than :data:`MAX_SKEW` seconds from
its clock, or whose nonce it has seen (nonces are kept past the window, so a replay is refused
for as long as the timestamp would still be accepted).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import Signature
from eth_utils.address import to_checksum_address

from powerverse.infra.exceptions import AuthError

__all__ = [
    "HEADERS",
    "MAX_SKEW",
    "MemoryNonceStore",
    "NonceStore",
    "SqliteNonceStore",
    "Verified",
    "sign_request",
    "verify_request",
]

MAX_SKEW = 300
HEADERS = ("X-PV-Address", "X-PV-Timestamp", "X-PV-Nonce", "X-PV-Signature")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NONCE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Request": [
        {"name": "method", "type": "string"},
        {"name": "path", "type": "string"},
        {"name": "bodyHash", "type": "bytes32"},
        {"name": "timestamp", "type": "uint64"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


class NonceStore(Protocol):
    """Remembers nonces until they expire."""

    def use(self, nonce: str, expires: float) -> bool:
        """Record ``nonce``; False if it was already used."""
        ...


class MemoryNonceStore:
    """Nonces in memory (tests, single-process use)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def use(self, nonce: str, expires: float) -> bool:
        with self._lock:
            now = self._clock()
            self._seen = {n: e for n, e in self._seen.items() if e > now}
            if nonce in self._seen:
                return False
            self._seen[nonce] = expires
            return True


class SqliteNonceStore:
    """Nonces in SQLite, so a restarted agent still refuses replays."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires REAL NOT NULL)"
        )
        self._clock = clock
        self._lock = threading.Lock()

    def use(self, nonce: str, expires: float) -> bool:
        with self._lock:
            self._db.execute("DELETE FROM nonces WHERE expires <= ?", (self._clock(),))
            try:
                self._db.execute("INSERT INTO nonces VALUES (?, ?)", (nonce, expires))
            except sqlite3.IntegrityError:
                return False
            return True


def _typed(
    chain_id: int, agent: str, method: str, path: str, body: bytes, timestamp: int, nonce: bytes
) -> dict[str, Any]:
    return {
        "types": _TYPES,
        "primaryType": "Request",
        "domain": {
            "name": "PowerVerse Agent",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(agent),
        },
        "message": {
            "method": method.upper(),
            "path": path,
            "bodyHash": hashlib.sha256(body).digest(),
            "timestamp": timestamp,
            "nonce": nonce,
        },
    }


def sign_request(
    account: LocalAccount,
    *,
    chain_id: int,
    agent: str,
    method: str,
    path: str,
    body: bytes = b"",
    timestamp: int | None = None,
    nonce: bytes | None = None,
) -> dict[str, str]:
    """The four auth headers for one request."""
    ts = int(time.time()) if timestamp is None else timestamp
    nonce = os.urandom(32) if nonce is None else nonce
    message = encode_typed_data(full_message=_typed(chain_id, agent, method, path, body, ts, nonce))
    signed = account.sign_message(message)
    return {
        "X-PV-Address": account.address,
        "X-PV-Timestamp": str(ts),
        "X-PV-Nonce": "0x" + nonce.hex(),
        "X-PV-Signature": "0x" + bytes(signed.signature).hex(),
    }


@dataclass(frozen=True)
class Verified:
    """Who signed a request: address and secp256k1 public key (64 bytes, for ECIES)."""

    address: str
    public_key: bytes


def verify_request(
    headers: Mapping[str, str],
    *,
    chain_id: int,
    agent: str,
    method: str,
    path: str,
    body: bytes,
    nonces: NonceStore,
    clock: Callable[[], float] = time.time,
) -> Verified:
    """Check a request's signature, freshness and nonce; who signed it, or AuthError."""
    lower = {k.lower(): v for k, v in headers.items()}
    values = [lower.get(h.lower()) for h in HEADERS]
    if any(v is None for v in values):
        missing = [h for h, v in zip(HEADERS, values, strict=True) if v is None]
        raise AuthError(f"unsigned request: missing header(s) {', '.join(missing)}")
    address, ts_text, nonce_text, signature = (str(v) for v in values)
    if not _ADDRESS.match(address):
        raise AuthError("X-PV-Address is not an address")
    if not ts_text.isdigit() or len(ts_text) > 12:
        raise AuthError("X-PV-Timestamp is not unix seconds")
    if not _NONCE.match(nonce_text):
        raise AuthError("X-PV-Nonce must be 32 bytes of 0x-hex")
    if not _SIGNATURE.match(signature):
        raise AuthError("X-PV-Signature must be 65 bytes of 0x-hex")
    timestamp, now = int(ts_text), clock()
    if abs(now - timestamp) > MAX_SKEW:
        raise AuthError(f"the signature is expired or from the future (more than {MAX_SKEW} s off)")
    nonce, raw_sig = bytes.fromhex(nonce_text[2:]), bytes.fromhex(signature[2:])
    message = encode_typed_data(
        full_message=_typed(chain_id, agent, method, path, body, timestamp, nonce)
    )
    try:
        signer = Account.recover_message(message, signature=raw_sig)
        v = raw_sig[64] - 27 if raw_sig[64] >= 27 else raw_sig[64]
        sig = Signature(raw_sig[:64] + bytes([v]))
        public = sig.recover_public_key_from_msg_hash(_hash_eip191_message(message))
    except Exception as exc:  # malformed signatures raise several eth-keys errors
        raise AuthError(f"the signature does not verify: {exc}") from None
    if signer.lower() != address.lower():
        raise AuthError("the signature is not by X-PV-Address (tampered or foreign request)")
    if not nonces.use(nonce_text.lower(), now + 2 * MAX_SKEW):
        raise AuthError("replayed request: this nonce was already used")
    return Verified(to_checksum_address(signer), public.to_bytes())
