"""When the next height may start: the head's timestamp, or earlier with transactions waiting."""

from __future__ import annotations

import pytest

from powerverse.node.bft import EARLY_START, MAX_FUTURE_DRIFT, slot_delay


def test_an_idle_chain_waits_for_the_heads_timestamp() -> None:
    assert slot_delay(100, 99.25, pending=False) == pytest.approx(0.75)
    assert slot_delay(100, 100.0, pending=False) == 0.0


def test_a_head_in_the_past_starts_the_height_at_once() -> None:
    assert slot_delay(100, 250.5, pending=False) == 0.0
    assert slot_delay(100, 250.5, pending=True) == 0.0


def test_pending_transactions_start_the_height_up_to_the_lead_early() -> None:
    assert slot_delay(100, 99.25, pending=True, lead=1.0) == 0.0
    assert slot_delay(100, 98.5, pending=True, lead=1.0) == pytest.approx(0.5)
    assert slot_delay(100, 98.5, pending=True, lead=0.0) == pytest.approx(1.5)


def test_the_lead_keeps_block_times_within_what_validators_accept() -> None:
    # A height starts at the earliest EARLY_START before its parent's timestamp; its block's
    # timestamp is at most the parent's + 1: never further ahead of the clock than this.
    assert EARLY_START + 1 < MAX_FUTURE_DRIFT
    for now in (99.0, 99.4, 99.99):
        if slot_delay(100, now, pending=True) == 0.0:
            assert 100 + 1 - now <= EARLY_START + 1
