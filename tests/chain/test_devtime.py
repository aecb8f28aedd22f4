"""Block timestamps under the injected clock and the dev time controls."""

from __future__ import annotations

from pathlib import Path

import pytest

from powerverse.chain.devtime import BlockTime, ManualClock


def test_follows_clock_and_stays_strictly_increasing() -> None:
    clock = ManualClock(1000.0)
    bt = BlockTime(clock)
    assert bt.next_timestamp(500) == 1000
    assert bt.next_timestamp(1000) == 1001
    clock.advance(10)
    assert bt.next_timestamp(1000) == 1010


def test_increase_time_accumulates() -> None:
    bt = BlockTime(ManualClock(1000.0))
    assert bt.increase(60) == 60
    assert bt.increase(40) == 100
    assert bt.next_timestamp(0) == 1100
    with pytest.raises(ValueError, match="forward"):
        bt.increase(-1)


def test_pinned_timestamp_applies_once_and_time_continues_from_it() -> None:
    clock = ManualClock(1000.0)
    bt = BlockTime(clock)
    bt.pin_next(5000, parent_timestamp=999)
    assert bt.next_timestamp(999) == 5000
    bt.block_committed()
    assert bt.next_timestamp(5000) == 5001
    clock.advance(5)
    assert bt.next_timestamp(5000) == 5005


def test_pin_must_be_after_parent() -> None:
    bt = BlockTime(ManualClock(1000.0))
    with pytest.raises(ValueError, match="lower than or equal"):
        bt.pin_next(999, parent_timestamp=999)


def test_clock_offsets_are_saved_and_loaded(tmp_path: Path) -> None:
    from powerverse.chain.devtime import load_clock_offset, save_clock_offset

    path = tmp_path / "dev-clock.json"
    assert load_clock_offset(None) == 0
    assert load_clock_offset(path) == 0  # no file yet
    save_clock_offset(path, 3600)
    assert load_clock_offset(path) == 3600
    assert not path.with_suffix(".tmp").exists()
    for bad in ("not json", '{"offset": -5}', '{"offset": "7"}', "{}", "[]"):
        path.write_text(bad)
        with pytest.raises(ValueError, match="dev-clock"):
            load_clock_offset(path)
