"""Bans and scores on the injected clock."""

from __future__ import annotations

import pytest

from powerverse.p2p.peers import BanList, Scores
from tests.p2p.conftest import FakeClock

A, B = b"a" * 32, b"b" * 32


def test_bans_expire_on_the_clock() -> None:
    clock = FakeClock()
    bans = BanList(clock)
    ban = bans.ban(A, 60, "spam")
    assert ban.until == clock() + 60 and ban.reason == "spam"
    assert bans.is_banned(A) and not bans.is_banned(B)
    clock.advance(59.9)
    assert bans.is_banned(A)
    clock.advance(0.1)
    assert not bans.is_banned(A)
    assert bans.active() == []


def test_a_shorter_ban_never_shortens_a_longer_one() -> None:
    clock = FakeClock()
    bans = BanList(clock)
    bans.ban(A, 100, "first")
    assert bans.ban(A, 10, "second").reason == "first"
    assert bans.ban(A, 1000, "third").reason == "third"


def test_active_bans_soonest_first_and_unban() -> None:
    clock = FakeClock()
    bans = BanList(clock)
    bans.ban(A, 100, "a")
    bans.ban(B, 10, "b")
    assert [b.peer_id for b in bans.active()] == [B, A]
    bans.unban(B)
    assert [b.peer_id for b in bans.active()] == [A]


def test_scores_drop_with_penalties_and_recover_to_neutral() -> None:
    clock = FakeClock()
    scores = Scores(clock, recovery_per_s=1.0)
    assert scores.get(A) == 0.0
    assert scores.penalize(A, 10) == -10
    assert scores.penalize(A, 5) == -15
    clock.advance(5)
    assert scores.get(A) == -10
    clock.advance(100)
    assert scores.get(A) == 0.0
    scores.penalize(B, 3)
    scores.reset(B)
    assert scores.get(B) == 0.0
    with pytest.raises(ValueError):
        scores.penalize(A, -1)


def test_scores_without_recovery_stay_down() -> None:
    clock = FakeClock()
    scores = Scores(clock, recovery_per_s=0.0)
    scores.penalize(A, 7)
    clock.advance(10_000)
    scores.prune()
    assert scores.get(A) == -7
