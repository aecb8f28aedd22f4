"""Token buckets on the injected clock."""

from __future__ import annotations

import pytest

from powerverse.p2p.ratelimit import FrameLimiter, TokenBucket
from tests.p2p.conftest import FakeClock


def test_bucket_allows_a_burst_then_refills_with_time() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=5.0, clock=clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(1.0)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.advance(100.0)
    assert bucket.available() == 5.0  # capped at the burst


def test_a_refused_take_costs_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=10.0, clock=clock)
    assert not bucket.take(11)
    assert bucket.take(10)


def test_bucket_ignores_a_clock_going_backwards() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=2.0, clock=clock)
    assert bucket.take(2)
    clock.advance(-50)
    assert not bucket.take()


def test_bad_bucket_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, clock=FakeClock())
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=-1, clock=FakeClock())


def test_frame_limiter_needs_both_message_and_byte_budget() -> None:
    clock = FakeClock()
    limiter = FrameLimiter(
        messages_per_s=1, messages_burst=3, bytes_per_s=100, bytes_burst=1000, clock=clock
    )
    assert limiter.allow(900)
    assert not limiter.allow(200)  # bytes exhausted; the message token is not spent
    assert limiter.allow(100)
    assert limiter.allow(0)
    assert not limiter.allow(0)  # messages exhausted
    clock.advance(1.0)
    assert limiter.allow(100)
