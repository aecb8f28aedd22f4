"""The consensus write-ahead record: no second signature for a slot, the lock survives restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from powerverse.node.wal import ConsensusWal

A, B = b"\xaa" * 32, b"\xbb" * 32


def test_a_slot_signed_for_one_value_refuses_another_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "consensus-wal.json"
    wal = ConsensusWal(path)
    assert wal.may_sign(5, 0, 1, A)
    wal.record(5, 0, 1, A, locked=(None, -1), valid=(None, -1))
    again = ConsensusWal(path)  # a restarted node
    assert again.may_sign(5, 0, 1, A)  # the same vote may be sent again
    assert not again.may_sign(5, 0, 1, B)
    assert again.may_sign(5, 0, 2, B)  # another step
    assert again.may_sign(5, 1, 1, B)  # another round
    assert again.may_sign(6, 0, 1, B)  # another height


def test_the_lock_and_round_are_restored_for_the_same_height_only(tmp_path: Path) -> None:
    path = tmp_path / "wal.json"
    wal = ConsensusWal(path)
    wal.record(9, 0, 1, A, locked=(None, -1), valid=(None, -1))
    wal.record(9, 2, 2, A, locked=(A, 2), valid=(A, 2))
    saved = ConsensusWal(path).restore(9)
    assert saved is not None
    assert (saved.round, saved.locked, saved.valid) == (2, (A, 2), (A, 2))
    assert ConsensusWal(path).restore(10) is None
    assert ConsensusWal(tmp_path / "none.json").restore(9) is None


def test_a_decided_height_is_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "wal.json"
    wal = ConsensusWal(path)
    wal.record(3, 0, 2, A, locked=(A, 0), valid=(A, 0))
    wal.clear_below(4)
    assert ConsensusWal(path).restore(3) is None
    assert ConsensusWal(path).may_sign(3, 0, 2, B)
    wal.record(4, 0, 1, B, locked=(None, -1), valid=(None, -1))
    wal.clear_below(4)  # not below: the height in progress is kept
    assert not ConsensusWal(path).may_sign(4, 0, 1, A)


def test_an_unreadable_record_stops_the_node_rather_than_risk_double_signing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wal.json"
    path.write_text("{not json")
    with pytest.raises(RuntimeError, match="double signing"):
        ConsensusWal(path)
