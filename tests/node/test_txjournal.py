"""The journal of client transactions: records survive reopening, torn tails are ignored."""

from __future__ import annotations

from pathlib import Path

from powerverse.node.txjournal import TxJournal


def test_records_survive_reopening_and_a_torn_tail_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "tx-journal.bin"
    journal = TxJournal(path)
    journal.append(b"\x02first")
    journal.append(b"\x02second")
    journal.close()  # (a kill -9 keeps what write() handed to the OS as well)
    with open(path, "ab") as f:
        f.write((100).to_bytes(4, "big") + b"torn")  # a record cut short by a crash
    again = TxJournal(path)
    assert again.read() == [b"\x02first", b"\x02second"]
    again.close()


def test_an_absurd_length_stops_reading(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    path.write_bytes((3).to_bytes(4, "big") + b"abc" + (2**31).to_bytes(4, "big") + b"x" * 10)
    journal = TxJournal(path)
    assert journal.read() == [b"abc"]
    journal.close()


def test_rewrite_and_compaction_keep_only_what_still_waits(tmp_path: Path) -> None:
    journal = TxJournal(tmp_path / "j.bin", max_bytes=20)
    for raw in (b"keep-1", b"drop-1", b"keep-2"):
        journal.append(raw)
    journal.compact_if_large(lambda raw: raw.startswith(b"keep"))
    assert journal.read() == [b"keep-1", b"keep-2"]
    journal.append(b"keep-3")  # appends go on after a rewrite
    assert journal.read() == [b"keep-1", b"keep-2", b"keep-3"]
    journal.rewrite([])
    assert journal.read() == [] and journal.size() == 0
    journal.close()
