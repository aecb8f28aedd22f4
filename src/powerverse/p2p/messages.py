"""Messages inside an encrypted session, and their byte encoding.

Each decrypted frame is one message: a type byte, then its fields (big-endian integers).
Payloads are opaque bytes; topics and request kinds are 16-bit integers chosen by upper layers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from powerverse.p2p.address import MAX_HOST_LEN, PEER_ID_LEN, PeerAddress
from powerverse.p2p.exceptions import InvalidAddress, MalformedMessage

__all__ = [
    "MAX_KIND",
    "Goodbye",
    "Gossip",
    "Message",
    "PexRequest",
    "PexResponse",
    "Ping",
    "Pong",
    "Request",
    "Response",
    "Status",
    "decode_message",
    "encode_message",
]

MAX_KIND = 0xFFFF
MAX_GOODBYE_BYTES = 512

_GOSSIP, _REQUEST, _RESPONSE, _PEX_REQUEST, _PEX_RESPONSE, _PING, _PONG, _GOODBYE = range(1, 9)


class Status(enum.IntEnum):
    """How a request ended, as the responder reports it."""

    OK = 0
    UNKNOWN_KIND = 1
    BUSY = 2
    ERROR = 3


@dataclass(frozen=True)
class Gossip:
    """A published message, relayed by every node that accepts it."""

    topic: int
    payload: bytes


@dataclass(frozen=True)
class Request:
    """A request the remote answers with one Response of the same id."""

    request_id: int
    kind: int
    payload: bytes


@dataclass(frozen=True)
class Response:
    """The answer to a Request: a status and a payload (an error message if not OK)."""

    request_id: int
    status: Status
    payload: bytes


@dataclass(frozen=True)
class PexRequest:
    """Asks the peer for addresses of other peers it knows."""


@dataclass(frozen=True)
class PexResponse:
    """Addresses of peers the sender is connected to."""

    addresses: tuple[PeerAddress, ...]


@dataclass(frozen=True)
class Ping:
    """Keep-alive; answered with a Pong carrying the same nonce."""

    nonce: int


@dataclass(frozen=True)
class Pong:
    """Answer to a Ping."""

    nonce: int


@dataclass(frozen=True)
class Goodbye:
    """The sender is closing the session, and why."""

    reason: str


Message = Gossip | Request | Response | PexRequest | PexResponse | Ping | Pong | Goodbye


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def _encode_address(address: PeerAddress) -> bytes:
    host = address.host.encode("ascii")
    return address.peer_id + _u(address.port, 2) + _u(len(host), 1) + host


def encode_message(message: Message) -> bytes:
    """The plaintext bytes of one session message."""
    match message:
        case Gossip(topic, payload):
            return bytes([_GOSSIP]) + _u(topic, 2) + payload
        case Request(request_id, kind, payload):
            return bytes([_REQUEST]) + _u(request_id, 8) + _u(kind, 2) + payload
        case Response(request_id, status, payload):
            return bytes([_RESPONSE]) + _u(request_id, 8) + _u(int(status), 1) + payload
        case PexRequest():
            return bytes([_PEX_REQUEST])
        case PexResponse(addresses):
            body = b"".join(_encode_address(a) for a in addresses)
            return bytes([_PEX_RESPONSE, len(addresses)]) + body
        case Ping(nonce):
            return bytes([_PING]) + _u(nonce, 8)
        case Pong(nonce):
            return bytes([_PONG]) + _u(nonce, 8)
        case Goodbye(reason):
            return bytes([_GOODBYE]) + reason.encode("utf-8")[:MAX_GOODBYE_BYTES]
    raise TypeError(f"not a session message: {message!r}")


def _need(data: bytes, length: int, what: str) -> None:
    if len(data) < length:
        raise MalformedMessage(f"{what} is truncated")


def _decode_addresses(data: bytes) -> tuple[PeerAddress, ...]:
    _need(data, 1, "peer exchange")
    count, pos, found = data[0], 1, []
    for _ in range(count):
        _need(data, pos + PEER_ID_LEN + 3, "peer exchange entry")
        peer_id = data[pos : pos + PEER_ID_LEN]
        port = int.from_bytes(data[pos + PEER_ID_LEN : pos + PEER_ID_LEN + 2], "big")
        host_len = data[pos + PEER_ID_LEN + 2]
        pos += PEER_ID_LEN + 3
        _need(data, pos + host_len, "peer exchange host")
        raw_host, pos = data[pos : pos + host_len], pos + host_len
        try:
            host = raw_host.decode("ascii")
            if host_len > MAX_HOST_LEN or not host.isprintable():
                raise MalformedMessage("bad host in peer exchange")
            found.append(PeerAddress(peer_id=peer_id, host=host, port=port))
        except (UnicodeDecodeError, InvalidAddress) as err:
            raise MalformedMessage(f"bad address in peer exchange: {err}") from err
    if pos != len(data):
        raise MalformedMessage("trailing bytes after peer exchange")
    return tuple(found)


def decode_message(data: bytes) -> Message:
    """Parse one decrypted frame; MalformedMessage if it is not a session message."""
    _need(data, 1, "message")
    kind, body = data[0], data[1:]
    if kind == _GOSSIP:
        _need(body, 2, "gossip")
        return Gossip(int.from_bytes(body[:2], "big"), body[2:])
    if kind == _REQUEST:
        _need(body, 10, "request")
        return Request(
            int.from_bytes(body[:8], "big"), int.from_bytes(body[8:10], "big"), body[10:]
        )
    if kind == _RESPONSE:
        _need(body, 9, "response")
        if body[8] not in Status._value2member_map_:
            raise MalformedMessage(f"unknown response status {body[8]}")
        return Response(int.from_bytes(body[:8], "big"), Status(body[8]), body[9:])
    if kind == _PEX_REQUEST:
        if body:
            raise MalformedMessage("trailing bytes after peer exchange request")
        return PexRequest()
    if kind == _PEX_RESPONSE:
        return PexResponse(_decode_addresses(body))
    if kind in (_PING, _PONG):
        if len(body) != 8:
            raise MalformedMessage("ping/pong nonce must be 8 bytes")
        nonce = int.from_bytes(body, "big")
        return Ping(nonce) if kind == _PING else Pong(nonce)
    if kind == _GOODBYE:
        if len(body) > MAX_GOODBYE_BYTES:
            raise MalformedMessage("goodbye reason too long")
        return Goodbye(body.decode("utf-8", errors="replace"))
    raise MalformedMessage(f"unknown message type {kind}")
