"""The authenticated key exchange that opens every session.

    dialer                                   listener
    HELLO(v, chain, genesis, id, eph) ───▶   checks version, chain id, genesis, self, bans
                                      ◀───   HELLO_ACK(v, chain, genesis, id, eph, sig_L)
    checks the same, the expected id, sig_L
    AUTH(sig_D)                       ───▶   checks sig_D, admission
                                      ◀───   READY                     (or REFUSE(code, reason))

Either side may answer REFUSE(code, reason) instead of its next message, then close.
Both signatures cover the transcript hash of both HELLOs (chain id, genesis hash, protocol
version, both identities and both ephemeral X25519 keys), each with its role, so neither can
be replayed into another session or reflected. Session keys come from libsodium's crypto_kx
over the ephemeral keys (forward secrecy), bound to the transcript hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from nacl import bindings
from nacl import exceptions as sodium_errors

from powerverse.crypto.consensus_keys import ConsensusKey, verify
from powerverse.crypto.exceptions import InvalidSignature
from powerverse.p2p.address import MAX_HOST_LEN, short_id
from powerverse.p2p.cipher import SessionCipher
from powerverse.p2p.exceptions import (
    ConnectionClosed,
    HandshakeError,
    HandshakeRefused,
    HandshakeTimeout,
    MalformedMessage,
    ProtocolViolation,
)
from powerverse.p2p.frames import encode_frame, read_frame

__all__ = [
    "PROTOCOL_VERSION",
    "Admit",
    "Auth",
    "FrameWriter",
    "HandshakeResult",
    "Hello",
    "HelloAck",
    "LocalNode",
    "Ready",
    "Refusal",
    "Refuse",
    "RefuseCode",
    "decode_handshake_message",
    "encode_handshake_message",
    "initiate",
    "respond",
]

PROTOCOL_VERSION = 1
MAGIC = b"PVP2"
HANDSHAKE_MAX_FRAME = 1024
MAX_REASON_BYTES = 512
SIGNATURE_LEN = 64
_DOMAIN = b"powerverse/p2p/handshake/v1"

_HELLO, _HELLO_ACK, _AUTH, _READY, _REFUSE = 1, 2, 3, 4, 5
# magic, version, chain id, genesis hash, static key, ephemeral key, listen port, host length
_FIXED_HELLO_LEN = 4 + 2 + 8 + 32 + 32 + 32 + 2 + 1


class RefuseCode(enum.IntEnum):
    """Why a handshake was refused; sent on the wire with a human-readable reason."""

    OTHER = 0
    PROTOCOL = 1
    VERSION = 2
    CHAIN_ID = 3
    GENESIS = 4
    SELF = 5
    DUPLICATE = 6
    BANNED = 7
    TOO_MANY_PEERS = 8
    WRONG_IDENTITY = 9
    BAD_SIGNATURE = 10
    SHUTTING_DOWN = 11


Refusal = tuple[RefuseCode, str]
_BAD_EPHEMERAL: Refusal = (RefuseCode.PROTOCOL, "unusable ephemeral key")
Admit = Callable[[bytes], Refusal | None]


class FrameWriter(Protocol):
    """The half of a stream the handshake writes to (asyncio.StreamWriter is one)."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


@dataclass(frozen=True)
class LocalNode:
    """What this node claims in its HELLO."""

    key: ConsensusKey
    chain_id: int
    genesis_hash: bytes
    listen_port: int = 0
    advertise_host: str = ""


@dataclass(frozen=True)
class Hello:
    """The fields both HELLO and HELLO_ACK carry."""

    version: int
    chain_id: int
    genesis_hash: bytes
    static_key: bytes
    ephemeral_key: bytes
    listen_port: int
    listen_host: str

    def encode_fields(self) -> bytes:
        """The canonical bytes of these fields (what the transcript hashes)."""
        host = self.listen_host.encode("ascii")
        return b"".join(
            (
                MAGIC,
                self.version.to_bytes(2, "big"),
                self.chain_id.to_bytes(8, "big"),
                self.genesis_hash,
                self.static_key,
                self.ephemeral_key,
                self.listen_port.to_bytes(2, "big"),
                len(host).to_bytes(1, "big"),
                host,
            )
        )


@dataclass(frozen=True)
class HelloAck:
    """The listener's HELLO plus its signature over the transcript."""

    hello: Hello
    signature: bytes


@dataclass(frozen=True)
class Auth:
    """The dialer's signature over the transcript."""

    signature: bytes


@dataclass(frozen=True)
class Ready:
    """The listener admits the session; encrypted frames follow."""


@dataclass(frozen=True)
class Refuse:
    """The sender refuses the session and closes."""

    code: RefuseCode
    reason: str


HandshakeMessage = Hello | HelloAck | Auth | Ready | Refuse


@dataclass(frozen=True)
class HandshakeResult:
    """An authenticated session: who the peer is, its HELLO, and the session cipher."""

    peer_id: bytes
    remote: Hello
    cipher: SessionCipher


def _decode_hello(data: bytes) -> tuple[Hello, bytes]:
    if len(data) < _FIXED_HELLO_LEN or data[:4] != MAGIC:
        raise MalformedMessage("not a PowerVerse p2p hello")
    host_len = data[_FIXED_HELLO_LEN - 1]
    end = _FIXED_HELLO_LEN + host_len
    if len(data) < end:
        raise MalformedMessage("hello shorter than its host field")
    try:
        host = data[_FIXED_HELLO_LEN:end].decode("ascii")
    except UnicodeDecodeError as err:
        raise MalformedMessage("hello host is not ascii") from err
    if host_len > MAX_HOST_LEN or not host.isprintable() or any(c in host for c in "@ /"):
        raise MalformedMessage("bad hello host")
    hello = Hello(
        version=int.from_bytes(data[4:6], "big"),
        chain_id=int.from_bytes(data[6:14], "big"),
        genesis_hash=data[14:46],
        static_key=data[46:78],
        ephemeral_key=data[78:110],
        listen_port=int.from_bytes(data[110:112], "big"),
        listen_host=host,
    )
    return hello, data[end:]


def decode_handshake_message(body: bytes) -> HandshakeMessage:
    """Parse one handshake frame body; MalformedMessage if it is not one."""
    if not body:
        raise MalformedMessage("empty handshake frame")
    kind, rest = body[0], body[1:]
    if kind == _HELLO:
        hello, tail = _decode_hello(rest)
        if tail:
            raise MalformedMessage("trailing bytes after hello")
        return hello
    if kind == _HELLO_ACK:
        hello, tail = _decode_hello(rest)
        if len(tail) != SIGNATURE_LEN:
            raise MalformedMessage("hello-ack signature must be 64 bytes")
        return HelloAck(hello, tail)
    if kind == _AUTH:
        if len(rest) != SIGNATURE_LEN:
            raise MalformedMessage("auth signature must be 64 bytes")
        return Auth(rest)
    if kind == _READY:
        if rest:
            raise MalformedMessage("trailing bytes after ready")
        return Ready()
    if kind == _REFUSE:
        if not rest or len(rest) > 1 + MAX_REASON_BYTES:
            raise MalformedMessage("bad refuse length")
        code = RefuseCode(rest[0]) if rest[0] in RefuseCode._value2member_map_ else RefuseCode.OTHER
        return Refuse(code, rest[1:].decode("utf-8", errors="replace"))
    raise MalformedMessage(f"unknown handshake message type {kind}")


def encode_handshake_message(message: HandshakeMessage) -> bytes:
    """The frame body of one handshake message."""
    if isinstance(message, Hello):
        return bytes([_HELLO]) + message.encode_fields()
    if isinstance(message, HelloAck):
        return bytes([_HELLO_ACK]) + message.hello.encode_fields() + message.signature
    if isinstance(message, Auth):
        return bytes([_AUTH]) + message.signature
    if isinstance(message, Ready):
        return bytes([_READY])
    reason = message.reason.encode("utf-8")[:MAX_REASON_BYTES]
    return bytes([_REFUSE, int(message.code)]) + reason


def _transcript_hash(dialer: Hello, listener: Hello) -> bytes:
    d, l_ = dialer.encode_fields(), listener.encode_fields()
    data = _DOMAIN + len(d).to_bytes(2, "big") + d + len(l_).to_bytes(2, "big") + l_
    return hashlib.blake2b(data, digest_size=32).digest()


def _session(
    dialer: bool, public: bytes, secret: bytes, peer_public: bytes, transcript: bytes
) -> SessionCipher | None:
    """The session cipher from crypto_kx, bound to the transcript; None for a bad peer key."""
    derive = (
        bindings.crypto_kx_client_session_keys if dialer else bindings.crypto_kx_server_session_keys
    )
    try:
        recv_key, send_key = derive(public, secret, peer_public)
    except sodium_errors.CryptoError:
        return None

    def bind(key: bytes) -> bytes:
        return hashlib.blake2b(transcript, key=key, digest_size=32).digest()

    return SessionCipher(bind(send_key), bind(recv_key))


def _check_hello(local: LocalNode, hello: Hello) -> Refusal | None:
    """The checks both sides make on the other's HELLO."""
    if hello.version != PROTOCOL_VERSION:
        return RefuseCode.VERSION, (
            f"protocol version mismatch: this node speaks {PROTOCOL_VERSION}, peer {hello.version}"
        )
    if hello.chain_id != local.chain_id:
        return RefuseCode.CHAIN_ID, (
            f"chain id mismatch: this node is on chain {local.chain_id}, peer on {hello.chain_id}"
        )
    if hello.genesis_hash != local.genesis_hash:
        return RefuseCode.GENESIS, (
            f"genesis hash mismatch: this node has 0x{local.genesis_hash.hex()}, "
            f"peer 0x{hello.genesis_hash.hex()}"
        )
    if hello.static_key == local.key.public_key:
        return RefuseCode.SELF, "connection to self"
    return None


def _check_signature(
    peer: bytes, role: bytes, transcript: bytes, signature: bytes
) -> Refusal | None:
    try:
        verify(peer, role + transcript, signature)
    except InvalidSignature:
        return RefuseCode.BAD_SIGNATURE, f"handshake signature of {short_id(peer)} does not verify"
    return None


def _local_hello(local: LocalNode, ephemeral_key: bytes) -> Hello:
    return Hello(
        version=PROTOCOL_VERSION,
        chain_id=local.chain_id,
        genesis_hash=local.genesis_hash,
        static_key=local.key.public_key,
        ephemeral_key=ephemeral_key,
        listen_port=local.listen_port,
        listen_host=local.advertise_host,
    )


async def _send(writer: FrameWriter, message: HandshakeMessage) -> None:
    writer.write(encode_frame(encode_handshake_message(message)))
    try:
        await writer.drain()
    except ConnectionError as err:
        raise ConnectionClosed(str(err) or type(err).__name__) from err


async def _refuse(writer: FrameWriter, refusal: Refusal) -> HandshakeRefused:
    """Tell the peer why, then return the error for the caller to raise."""
    code, reason = refusal
    with contextlib.suppress(ConnectionClosed):
        await _send(writer, Refuse(code, reason))
    return HandshakeRefused(code, reason, by_remote=False)


async def _receive(reader: asyncio.StreamReader) -> HandshakeMessage:
    _, body = await read_frame(reader, HANDSHAKE_MAX_FRAME)
    message = decode_handshake_message(body)
    if isinstance(message, Refuse):
        raise HandshakeRefused(message.code, message.reason, by_remote=True)
    return message


def _first(*refusals: Callable[[], Refusal | None]) -> Refusal | None:
    for check in refusals:
        found = check()
        if found is not None:
            return found
    return None


def _admit_all(_peer_id: bytes) -> Refusal | None:
    return None


async def _guard(
    coro: Coroutine[Any, Any, HandshakeResult], timeout: float | None
) -> HandshakeResult:
    try:
        async with asyncio.timeout(timeout):
            return await coro
    except TimeoutError as err:
        raise HandshakeTimeout(f"handshake did not finish within {timeout} s") from err
    except ConnectionClosed as err:
        raise HandshakeError(f"connection closed during handshake ({err})") from err
    except ProtocolViolation as err:
        raise HandshakeError(f"handshake protocol error: {err}") from err


async def initiate(
    reader: asyncio.StreamReader,
    writer: FrameWriter,
    local: LocalNode,
    *,
    expected_peer: bytes | None = None,
    admit: Admit = _admit_all,
    timeout: float | None = None,
) -> HandshakeResult:
    """Run the dialer's side; return the session or raise a HandshakeError."""
    return await _guard(_initiate(reader, writer, local, expected_peer, admit), timeout)


async def respond(
    reader: asyncio.StreamReader,
    writer: FrameWriter,
    local: LocalNode,
    *,
    admit: Admit = _admit_all,
    timeout: float | None = None,
) -> HandshakeResult:
    """Run the listener's side; return the session or raise a HandshakeError."""
    return await _guard(_respond(reader, writer, local, admit), timeout)


def _expect(message: HandshakeMessage, kind: type[HandshakeMessage]) -> None:
    if not isinstance(message, kind):
        raise MalformedMessage(f"expected {kind.__name__}, got {type(message).__name__}")


async def _initiate(
    reader: asyncio.StreamReader,
    writer: FrameWriter,
    local: LocalNode,
    expected_peer: bytes | None,
    admit: Admit,
) -> HandshakeResult:
    eph_public, eph_secret = bindings.crypto_kx_keypair()
    mine = _local_hello(local, eph_public)
    await _send(writer, mine)
    ack = await _receive(reader)
    if not isinstance(ack, HelloAck):
        raise MalformedMessage(f"expected HelloAck, got {type(ack).__name__}")
    theirs = ack.hello
    peer = theirs.static_key
    transcript = _transcript_hash(mine, theirs)

    def identity() -> Refusal | None:
        if expected_peer is not None and peer != expected_peer:
            return RefuseCode.WRONG_IDENTITY, (
                f"wrong identity: dialed {short_id(expected_peer)}, peer is {short_id(peer)}"
            )
        return None

    refusal = _first(
        lambda: _check_hello(local, theirs),
        identity,
        lambda: _check_signature(peer, b"listener", transcript, ack.signature),
        lambda: admit(peer),
    )
    cipher = _session(True, eph_public, eph_secret, theirs.ephemeral_key, transcript)
    if refusal is not None or cipher is None:
        raise await _refuse(writer, refusal or _BAD_EPHEMERAL)
    await _send(writer, Auth(local.key.sign(b"dialer" + transcript)))
    _expect(await _receive(reader), Ready)
    return HandshakeResult(peer_id=peer, remote=theirs, cipher=cipher)


async def _respond(
    reader: asyncio.StreamReader, writer: FrameWriter, local: LocalNode, admit: Admit
) -> HandshakeResult:
    theirs = await _receive(reader)
    if not isinstance(theirs, Hello):
        raise MalformedMessage(f"expected Hello, got {type(theirs).__name__}")
    peer = theirs.static_key
    refusal = _first(lambda: _check_hello(local, theirs), lambda: admit(peer))
    if refusal is not None:
        raise await _refuse(writer, refusal)
    eph_public, eph_secret = bindings.crypto_kx_keypair()
    mine = _local_hello(local, eph_public)
    transcript = _transcript_hash(theirs, mine)
    cipher = _session(False, eph_public, eph_secret, theirs.ephemeral_key, transcript)
    if cipher is None:
        raise await _refuse(writer, _BAD_EPHEMERAL)
    await _send(writer, HelloAck(mine, local.key.sign(b"listener" + transcript)))
    auth = await _receive(reader)
    if not isinstance(auth, Auth):
        raise MalformedMessage(f"expected Auth, got {type(auth).__name__}")
    refusal = _first(
        lambda: _check_signature(peer, b"dialer", transcript, auth.signature),
        lambda: admit(peer),
    )
    if refusal is not None:
        raise await _refuse(writer, refusal)
    await _send(writer, Ready())
    return HandshakeResult(peer_id=peer, remote=theirs, cipher=cipher)
