"""Token buckets limiting what one peer may make us process."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["FrameLimiter", "TokenBucket"]


class TokenBucket:
    """Holds up to `burst` tokens, refilled at `rate` per second of the injected clock."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._updated = clock()

    def available(self) -> float:
        """Tokens there now (after refilling for the time since the last call)."""
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated = now
        return self._tokens

    def take(self, amount: float = 1.0) -> bool:
        """Remove amount tokens and return True, or return False and leave the bucket as is."""
        if self.available() < amount:
            return False
        self._tokens -= amount
        return True


class FrameLimiter:
    """Inbound frames of one peer: a frame passes only if both messages/s and bytes/s allow it."""

    def __init__(
        self,
        *,
        messages_per_s: float,
        messages_burst: float,
        bytes_per_s: float,
        bytes_burst: float,
        clock: Callable[[], float],
    ) -> None:
        self._messages = TokenBucket(messages_per_s, messages_burst, clock)
        self._bytes = TokenBucket(bytes_per_s, bytes_burst, clock)

    def allow(self, size: int) -> bool:
        """Charge one frame of `size` bytes; False (and nothing charged) if over either limit."""
        if self._messages.available() < 1 or self._bytes.available() < size:
            return False
        self._messages.take(1)
        self._bytes.take(size)
        return True
