"""Every limit, timeout and penalty of the p2p layer, in one frozen record."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["AEAD_OVERHEAD", "FRAME_HEADER_LEN", "P2PConfig"]

FRAME_HEADER_LEN = 4
AEAD_OVERHEAD = 16
# Session message header: type byte plus the largest fixed fields (request id, kind/status).
MESSAGE_OVERHEAD = 1 + 8 + 2
MiB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class P2PConfig:
    """Limits and timeouts. Durations in seconds; rates per second; scores are negative-bad.

    Bans, scores, rate limits and the gossip seen-cache run on the host's injected clock;
    network timeouts (handshake, request, dial, ping) on the event loop's clock.
    """

    # Framing
    max_frame_size: int = 8 * MiB
    max_send_buffer: int = 64 * MiB

    # Connections
    handshake_timeout: float = 10.0
    dial_timeout: float = 5.0
    max_pending_handshakes: int = 64
    target_peers: int = 8
    max_peers: int = 32
    ping_interval: float = 15.0
    idle_timeout: float = 60.0
    close_timeout: float = 2.0
    tick_interval: float = 0.25

    # Discovery
    pex_interval: float = 30.0
    pex_max_addresses: int = 32
    address_book_size: int = 1000
    dial_backoff_initial: float = 0.5
    dial_backoff_max: float = 30.0
    max_dial_failures: int = 8
    max_concurrent_dials: int = 8

    # Scores and bans
    ban_duration: float = 600.0
    ban_threshold: float = -100.0
    reject_penalty: float = 10.0
    rate_limit_penalty: float = 2.0
    queue_overflow_penalty: float = 2.0
    score_recovery_per_s: float = 0.5
    max_handshake_failures_kept: int = 100

    # Per-peer inbound rate limits (token buckets)
    rate_messages_per_s: float = 500.0
    rate_messages_burst: float = 1000.0
    rate_bytes_per_s: float = 16.0 * MiB
    rate_bytes_burst: float = 32.0 * MiB

    # Gossip
    seen_cache_size: int = 100_000
    seen_ttl: float = 600.0
    gossip_queue_size: int = 1024

    # Request/response
    request_timeout: float = 10.0
    max_outbound_requests: int = 16
    max_inbound_requests: int = 16
    handler_timeout: float = 30.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value <= 0 and f.name not in ("ban_threshold", "score_recovery_per_s"):
                raise ValueError(f"{f.name} must be positive, got {value}")
        if self.ban_threshold >= 0:
            raise ValueError("ban_threshold must be negative")
        if self.score_recovery_per_s < 0:
            raise ValueError("score_recovery_per_s must not be negative")
        if self.max_frame_size < 64 or self.max_frame_size >= 2**32:
            raise ValueError("max_frame_size must be in 64 .. 2**32 - 1")
        if self.rate_bytes_burst < self.max_frame_size + FRAME_HEADER_LEN:
            raise ValueError("rate_bytes_burst must admit one frame of max_frame_size")
        if self.rate_messages_burst < 1:
            raise ValueError("rate_messages_burst must admit one message")
        if self.target_peers > self.max_peers:
            raise ValueError("target_peers must not exceed max_peers")
        if self.pex_max_addresses > 255:
            raise ValueError("pex_max_addresses must be at most 255")

    @property
    def max_payload_size(self) -> int:
        """The largest gossip, request or response payload that fits one frame."""
        return self.max_frame_size - AEAD_OVERHEAD - MESSAGE_OVERHEAD
