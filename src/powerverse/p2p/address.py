"""Peer addresses: "pubkeyhex@host:port", the form bootnodes are given in."""

from __future__ import annotations

from dataclasses import dataclass

from powerverse.p2p.exceptions import InvalidAddress

__all__ = ["PEER_ID_LEN", "PeerAddress", "short_id"]

PEER_ID_LEN = 32
MAX_HOST_LEN = 253


@dataclass(frozen=True)
class PeerAddress:
    """Where a peer listens and which ed25519 public key (peer id) it must prove it holds."""

    peer_id: bytes
    host: str
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.peer_id, bytes) or len(self.peer_id) != PEER_ID_LEN:
            raise InvalidAddress("peer id must be 32 bytes")
        if not self.host or len(self.host) > MAX_HOST_LEN or any(c in self.host for c in "@ /"):
            raise InvalidAddress(f"bad host {self.host!r}")
        if not 0 < self.port < 65536:
            raise InvalidAddress(f"port must be 1..65535, got {self.port}")

    @classmethod
    def parse(cls, text: str) -> PeerAddress:
        """Parse "pubkeyhex@host:port" (IPv6 hosts in brackets: "key@[::1]:30303")."""
        key_hex, at, rest = text.strip().partition("@")
        host, colon, port_text = rest.rpartition(":")
        if not at or not colon or not port_text.isdigit():
            raise InvalidAddress(f"expected pubkeyhex@host:port, got {text!r}")
        try:
            peer_id = bytes.fromhex(key_hex)
        except ValueError as err:
            raise InvalidAddress(f"public key is not hex in {text!r}") from err
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return cls(peer_id=peer_id, host=host, port=int(port_text))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.peer_id.hex()}@{host}:{self.port}"


def short_id(peer_id: bytes) -> str:
    """A peer id abbreviated for logs and messages."""
    return peer_id.hex()[:12]
