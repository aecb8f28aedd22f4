"""Errors of the p2p layer.

P2PError
├── InvalidAddress          text is not "pubkeyhex@host:port"
├── HostNotRunning          the host was not started, or is stopping
├── PayloadTooLarge         a payload would not fit in one frame
├── DialFailed              no TCP connection to an address
├── PeerBanned              dialing a peer id that is banned here
├── ProtocolViolation       the remote broke the wire protocol
│   ├── FrameTooLarge         a length prefix above the limit
│   ├── MalformedMessage      bytes that do not parse
│   └── DecryptionFailed      a frame fails authentication (tampered, replayed, reordered)
├── ConnectionClosed        the stream ended
├── HandshakeError          the handshake did not complete
│   ├── HandshakeRefused      one side refused (carries code, reason and which side)
│   └── HandshakeTimeout      it took longer than the configured timeout
└── RequestError            a request/response exchange failed
    ├── PeerNotConnected      no session with that peer id
    ├── PeerDisconnected      the session closed before the response came
    ├── RequestTimeout        no response in time
    ├── UnknownRequestKind    the remote has no handler for that kind
    ├── RequestBusy           the remote has too many of our requests in flight
    └── RemoteError           the remote handler failed (RequestFailed there)
RequestFailed               raised by a request handler to send its message back
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from powerverse.p2p.handshake import RefuseCode


class P2PError(Exception):
    """Base class of every p2p-layer error."""


class InvalidAddress(P2PError, ValueError):
    """An address is not "pubkeyhex@host:port" with a 32-byte key and a valid port."""


class HostNotRunning(P2PError):
    """The host is not started, or is stopping."""


class PayloadTooLarge(P2PError, ValueError):
    """A payload is larger than the configured maximum frame allows."""


class DialFailed(P2PError, ConnectionError):
    """No TCP connection could be made to an address."""


class PeerBanned(P2PError):
    """The peer id is banned here, so it is neither dialed nor accepted."""


class ProtocolViolation(P2PError):
    """The remote sent something the protocol forbids; the session is closed."""


class FrameTooLarge(ProtocolViolation):
    """A frame's length prefix exceeds the maximum frame size."""


class MalformedMessage(ProtocolViolation):
    """Bytes that do not parse as a frame, handshake or session message."""


class DecryptionFailed(ProtocolViolation):
    """A frame failed AEAD authentication: tampered, replayed, reordered or garbage."""


class ConnectionClosed(P2PError, ConnectionError):
    """The stream ended (EOF or reset) while a frame was expected."""


class HandshakeError(P2PError):
    """The handshake did not complete."""


class HandshakeRefused(HandshakeError):
    """One side refused the handshake; `by_remote` tells which one."""

    def __init__(self, code: RefuseCode, reason: str, *, by_remote: bool) -> None:
        who = "refused by peer" if by_remote else "refused"
        super().__init__(f"{who}: {reason}")
        self.code = code
        self.reason = reason
        self.by_remote = by_remote


class HandshakeTimeout(HandshakeError, TimeoutError):
    """The handshake did not finish within the configured timeout."""


class RequestError(P2PError):
    """A request/response exchange failed."""


class PeerNotConnected(RequestError):
    """There is no session with that peer id."""


class PeerDisconnected(RequestError, ConnectionError):
    """The session closed before the response arrived."""


class RequestTimeout(RequestError, TimeoutError):
    """No response arrived within the timeout."""


class UnknownRequestKind(RequestError):
    """The remote has no handler registered for the request kind."""


class RequestBusy(RequestError):
    """The remote refused: too many of our requests are already in flight there."""


class RemoteError(RequestError):
    """The remote handler failed; the message is the one it chose to send."""


class RequestFailed(P2PError):
    """Raise in a request handler to answer with an error message instead of bytes."""
