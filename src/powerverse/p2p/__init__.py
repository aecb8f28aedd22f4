"""PowerVerse p2p layer: authenticated encrypted sessions, gossip, request/response, discovery.

The public API is `__all__`; everything else is internal.
"""

from __future__ import annotations

from powerverse.p2p.address import PeerAddress
from powerverse.p2p.config import P2PConfig
from powerverse.p2p.connection import Direction
from powerverse.p2p.exceptions import (
    ConnectionClosed,
    DecryptionFailed,
    DialFailed,
    FrameTooLarge,
    HandshakeError,
    HandshakeRefused,
    HandshakeTimeout,
    HostNotRunning,
    InvalidAddress,
    MalformedMessage,
    P2PError,
    PayloadTooLarge,
    PeerBanned,
    PeerDisconnected,
    PeerNotConnected,
    ProtocolViolation,
    RemoteError,
    RequestBusy,
    RequestError,
    RequestFailed,
    RequestTimeout,
    UnknownRequestKind,
)
from powerverse.p2p.gossip import GossipMessage, GossipStats, Verdict, message_id
from powerverse.p2p.handshake import PROTOCOL_VERSION, RefuseCode
from powerverse.p2p.host import HandshakeFailure, Host, PeerInfo, RequestHandler
from powerverse.p2p.peers import Ban

__all__ = [
    "PROTOCOL_VERSION",
    "Ban",
    "ConnectionClosed",
    "DecryptionFailed",
    "DialFailed",
    "Direction",
    "FrameTooLarge",
    "GossipMessage",
    "GossipStats",
    "HandshakeError",
    "HandshakeFailure",
    "HandshakeRefused",
    "HandshakeTimeout",
    "Host",
    "HostNotRunning",
    "InvalidAddress",
    "MalformedMessage",
    "P2PConfig",
    "P2PError",
    "PayloadTooLarge",
    "PeerAddress",
    "PeerBanned",
    "PeerDisconnected",
    "PeerInfo",
    "PeerNotConnected",
    "ProtocolViolation",
    "RefuseCode",
    "RemoteError",
    "RequestBusy",
    "RequestError",
    "RequestFailed",
    "RequestHandler",
    "RequestTimeout",
    "UnknownRequestKind",
    "Verdict",
    "message_id",
]
