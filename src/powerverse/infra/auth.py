"""Signed requests to the agent API: every request carries its caller's EIP-712 signature.

The scheme, precisely enough to implement elsewhere (the web dashboard does, in JavaScript).

**Headers.** A signed request carries four headers (names are case-insensitive, each once):

=================  ===========================================================================
``X-PV-Address``   the signer's account, ``0x`` + 40 hex digits (any case)
``X-PV-Timestamp`` unix seconds when the request was signed, decimal ASCII digits (``1800000000``)
``X-PV-Nonce``     32 fresh random bytes, ``0x`` + 64 hex digits; never reuse one
``X-PV-Signature`` the 65-byte signature ``r ‖ s ‖ v``, ``0x`` + 130 hex digits (v 27/28 or 0/1)
=================  ===========================================================================

**What is signed.** The EIP-712 typed data (``eth_signTypedData_v4``; ethers'
``wallet.signTypedData(domain, {Request: [...]}, message)``)::

    types = {
      EIP712Domain: [{name: "name", type: "string"}, {name: "version", type: "string"},
                     {name: "chainId", type: "uint256"},
                     {name: "verifyingContract", type: "address"}],
      Request: [{name: "method", type: "string"}, {name: "path", type: "string"},
                {name: "bodyHash", type: "bytes32"}, {name: "timestamp", type: "uint64"},
                {name: "nonce", type: "bytes32"}],
    }
    primaryType = "Request"
    domain  = {name: "PowerVerse Agent", version: "1", chainId: <agent's chain id>,
               verifyingContract: <agent's address>}
    message = {method: "POST", path: "/v1/leases/3/actions", bodyHash: "0x<sha256 of body>",
               timestamp: <X-PV-Timestamp>, nonce: <X-PV-Nonce>}

- ``method``: the HTTP method in upper case.
- ``path``: the request target exactly as sent on the request line: the path with its
  percent-encoding untouched, then ``?`` and the query string when there is one
  (``/v1/leases/3/console?max_bytes=100``). Behind a proxy that rewrites paths, sign the path the
  agent receives.
- ``bodyHash``: SHA-256 of the raw body bytes as sent (of zero bytes when there is no body).
- ``chainId`` and ``verifyingContract`` name the agent (both are in ``GET /v1/agent`` under
  ``signing.domain``), so a request signed for one agent, or one chain, is refused by any other.

**What the agent checks**, refusing with HTTP 401 and a message saying which check failed: all
four headers present once and well-formed; the timestamp within :data:`MAX_SKEW` seconds of the
agent's clock (in either direction); the signature recovers, over the typed data rebuilt from the
request the agent received, to ``X-PV-Address``; and the nonce unused by that address (nonces are
remembered until well after their timestamp leaves the window, in SQLite, so a restarted agent
still refuses a replay). The recovered public key is what the agent encrypts credentials to
(:mod:`powerverse.infra.credentials`).

**Test vector.** Key ``0x4646…46`` (32 bytes of 0x46, address
``0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F``), chain 31337, agent
``0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf``, ``POST /v1/leases/3/actions`` with body
``{"action":"reboot"}``, timestamp 1800000000, nonce 32 bytes of 0x11. The EIP-712 digest is
``0x8f48b9389343167f8594faf2b633183bfd4cdedc9720312746fb19bc580f61a0`` and the signature
``0x3762bc84761afd1a7675bbe8eaf359c8117013762d5b9e5615b0e3b514092d3b``
``32816ee91492556bc113046366c76f8714620e8ce00b6ef7a5af13b42aad6a041c`` (r ‖ s ‖ v, one string).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PublicKey
from eth_keys.exceptions import BadSignature
from eth_keys.main import KeyAPI
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError as KeyValidationError

from powerverse.infra.exceptions import AuthError

__all__ = [
    "ADDRESS_HEADER",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "HEADERS",
    "MAX_SKEW",
    "NONCE_HEADER",
    "REQUEST_TYPES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "MemoryNonceStore",
    "NonceStore",
    "SqliteNonceStore",
    "Verified",
    "request_digest",
    "sign_request",
    "typed_request",
    "verify_request",
]

MAX_SKEW: Final = 300
"""Seconds a signature's timestamp may be off the agent's clock, either way."""

ADDRESS_HEADER: Final = "X-PV-Address"
TIMESTAMP_HEADER: Final = "X-PV-Timestamp"
NONCE_HEADER: Final = "X-PV-Nonce"
SIGNATURE_HEADER: Final = "X-PV-Signature"
HEADERS: Final = (ADDRESS_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)

DOMAIN_NAME: Final = "PowerVerse Agent"
DOMAIN_VERSION: Final = "1"
REQUEST_TYPES: Final[dict[str, list[dict[str, str]]]] = {
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

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"0x[0-9a-fA-F]{64}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_KEYS: Final = KeyAPI("eth_keys.backends.CoinCurveECCBackend")
_KEEP_NONCES: Final = 2  # nonces are kept this many windows past the later of timestamp and now


# ---------------------------------------------------------------------- nonces


class NonceStore(Protocol):
    """Remembers which nonces each signer used, until they expire."""

    def use(self, signer: str, nonce: str, expires: float) -> bool:
        """Record ``signer``'s ``nonce`` until ``expires`` (unix s); False if already used."""
        ...


class MemoryNonceStore:
    """Nonces in memory (tests, single-process use)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def use(self, signer: str, nonce: str, expires: float) -> bool:
        """Record ``signer``'s ``nonce``; False if it was already used."""
        key = (signer.lower(), nonce.lower())
        with self._lock:
            now = self._clock()
            self._seen = {k: e for k, e in self._seen.items() if e > now}
            if key in self._seen:
                return False
            self._seen[key] = expires
            return True

    def __len__(self) -> int:
        """How many nonces are remembered (expired ones go on the next use)."""
        return len(self._seen)


class SqliteNonceStore:
    """Nonces in SQLite, so an agent restarted within the window still refuses replays."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed agent, the case here
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS request_nonces (signer TEXT NOT NULL, nonce TEXT NOT NULL,"
            " expires REAL NOT NULL, PRIMARY KEY (signer, nonce)) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS request_nonces_expiry ON request_nonces (expires)"
        )
        self._clock = clock
        self._lock = threading.Lock()

    def use(self, signer: str, nonce: str, expires: float) -> bool:
        """Record ``signer``'s ``nonce``; False if it was already used."""
        with self._lock:
            self._db.execute("DELETE FROM request_nonces WHERE expires <= ?", (self._clock(),))
            try:
                self._db.execute(
                    "INSERT INTO request_nonces VALUES (?, ?, ?)",
                    (signer.lower(), nonce.lower(), expires),
                )
            except sqlite3.IntegrityError:
                return False
            return True

    def __len__(self) -> int:
        """How many nonces are remembered (expired ones go on the next use)."""
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM request_nonces").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


# ---------------------------------------------------------------------- signing


def typed_request(
    *,
    chain_id: int,
    agent: str,
    method: str,
    path: str,
    body: bytes,
    timestamp: int,
    nonce: bytes,
) -> dict[str, Any]:
    """The EIP-712 typed data a request's signature covers (``eth_signTypedData_v4`` input)."""
    return {
        "types": REQUEST_TYPES,
        "primaryType": "Request",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
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


def _signable(**request: Any) -> SignableMessage:
    return encode_typed_data(full_message=typed_request(**request))


def request_digest(
    *,
    chain_id: int,
    agent: str,
    method: str,
    path: str,
    body: bytes,
    timestamp: int,
    nonce: bytes,
) -> bytes:
    """The 32-byte EIP-712 digest a request's signature signs."""
    message = _signable(
        chain_id=chain_id,
        agent=agent,
        method=method,
        path=path,
        body=body,
        timestamp=timestamp,
        nonce=nonce,
    )
    return keccak(b"\x19" + message.version + message.header + message.body)


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
    clock: Callable[[], float] = time.time,
) -> dict[str, str]:
    """The four auth headers of one request, signed by ``account`` for ``agent`` on ``chain_id``.

    ``path`` is the request target as it will be sent (path and query); ``timestamp`` defaults
    to ``clock()`` and ``nonce`` to 32 fresh random bytes.
    """
    ts = int(clock()) if timestamp is None else timestamp
    nonce = secrets.token_bytes(32) if nonce is None else nonce
    if len(nonce) != 32:
        raise ValueError(f"a request nonce is 32 bytes, not {len(nonce)}")
    signed = account.sign_message(
        _signable(
            chain_id=chain_id,
            agent=agent,
            method=method,
            path=path,
            body=body,
            timestamp=ts,
            nonce=nonce,
        )
    )
    return {
        ADDRESS_HEADER: account.address,
        TIMESTAMP_HEADER: str(ts),
        NONCE_HEADER: "0x" + nonce.hex(),
        SIGNATURE_HEADER: "0x" + bytes(signed.signature).hex(),
    }


# ---------------------------------------------------------------------- verifying


@dataclass(frozen=True, kw_only=True)
class Verified:
    """Who signed a request: the address and its secp256k1 public key."""

    address: str  # checksum address
    public_key: bytes  # 64 bytes, x ‖ y (no 0x04 prefix)
    timestamp: int
    nonce: str  # 0x-hex, lower case

    @property
    def compressed_public_key(self) -> bytes:
        """The public key in its 33-byte compressed form."""
        return _KEYS.PublicKey(self.public_key).to_compressed_bytes()


def _header_values(headers: Mapping[str, str]) -> tuple[str, str, str, str]:
    lower = {k.lower(): v for k, v in headers.items()}
    missing = [h for h in HEADERS if h.lower() not in lower]
    if missing:
        raise AuthError(
            f"unsigned request: missing header(s) {', '.join(missing)}; every request to a lease "
            "needs the four X-PV-* headers (EIP-712 signature, see /openapi.json)"
        )
    address, ts, nonce, signature = (lower[h.lower()].strip() for h in HEADERS)
    for name, value, pattern, form in (
        (ADDRESS_HEADER, address, _ADDRESS, "0x and 40 hex digits"),
        (TIMESTAMP_HEADER, ts, _TIMESTAMP, "unix seconds in decimal digits"),
        (NONCE_HEADER, nonce, _NONCE, "0x and 64 hex digits (32 random bytes)"),
        (SIGNATURE_HEADER, signature, _SIGNATURE, "0x and 130 hex digits (r, s, v)"),
    ):
        if not pattern.fullmatch(value):
            raise AuthError(f"malformed {name}: expected {form}, got {value[:80]!r}")
    return address, ts, nonce, signature


def _recover(digest: bytes, signature: bytes) -> PublicKey:
    v = signature[64] - 27 if signature[64] >= 27 else signature[64]
    if v not in (0, 1):
        raise AuthError(
            f"malformed {SIGNATURE_HEADER}: its v byte is {signature[64]}, not 27 or 28"
        )
    try:
        return _KEYS.Signature(signature[:64] + bytes([v])).recover_public_key_from_msg_hash(digest)
    except (BadSignature, KeyValidationError) as exc:
        raise AuthError(f"{SIGNATURE_HEADER} is not a valid signature: {exc}") from None


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
    max_skew: int = MAX_SKEW,
) -> Verified:
    """Check a request's signature, freshness and nonce; who signed it, or :class:`AuthError`.

    ``path`` is the request target as received (raw path, ``?`` and query when there is one).
    """
    address, ts_text, nonce_text, signature_text = _header_values(headers)
    timestamp, now = int(ts_text), clock()
    if now - timestamp > max_skew:
        raise AuthError(
            f"expired signature: signed {int(now - timestamp)} s ago, the agent accepts "
            f"{max_skew} s; sign the request again"
        )
    if timestamp - now > max_skew:
        raise AuthError(
            f"signature from the future: {TIMESTAMP_HEADER} is {int(timestamp - now)} s ahead "
            f"of the agent's clock (more than {max_skew} s); check the signer's clock"
        )
    nonce = bytes.fromhex(nonce_text[2:])
    digest = request_digest(
        chain_id=chain_id,
        agent=agent,
        method=method,
        path=path,
        body=body,
        timestamp=timestamp,
        nonce=nonce,
    )
    public = _recover(digest, bytes.fromhex(signature_text[2:]))
    signer = public.to_checksum_address()
    if signer.lower() != address.lower():
        raise AuthError(
            f"the signature is not by {ADDRESS_HEADER} {address}: the method, path or body was "
            f"changed after signing, or it was signed for another agent or chain (this is agent "
            f"{to_checksum_address(agent)} on chain {chain_id})"
        )
    expires = max(now, timestamp) + _KEEP_NONCES * max_skew
    if not nonces.use(signer, nonce_text.lower(), expires):
        raise AuthError(
            f"replayed request: {signer} already used nonce {nonce_text[:18]}…; "
            "sign every request with a fresh X-PV-Nonce"
        )
    return Verified(
        address=signer, public_key=public.to_bytes(), timestamp=timestamp, nonce=nonce_text.lower()
    )
