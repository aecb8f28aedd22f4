"""The consensus write-ahead record: what this validator signed, and its lock.

Tendermint's safety assumes an honest validator never signs two values for one slot and keeps
its lock across rounds. A validator that crashes and restarts must therefore remember both.
Before a vote or proposal leaves the node its slot, value, lock and valid value are written
to a small JSON file with fsync and an atomic rename; on restart at the same height the
agreement resumes from them, and a conflicting signature is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Saved:
    """What the record holds for a height."""

    height: int
    round: int
    locked: tuple[bytes | None, int]
    valid: tuple[bytes | None, int]


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _unhex(value: Any) -> bytes | None:
    return None if value is None else bytes.fromhex(str(value))


class ConsensusWal:
    """Signed slots and the lock of the current height, in one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._doc: dict[str, Any] = {"height": 0, "round": 0, "slots": {}}
        if path.exists():
            try:
                doc = json.loads(path.read_text())
                if isinstance(doc, dict) and isinstance(doc.get("slots"), dict):
                    self._doc = doc
            except (OSError, ValueError):
                # A torn write cannot happen (atomic rename); anything else is not ours.
                raise RuntimeError(
                    f"{path} is unreadable; remove it only if this validator has not voted "
                    "at the current height (it guards against double signing)"
                ) from None

    def restore(self, height: int) -> Saved | None:
        """The saved state of ``height``, if this node already took part in it."""
        doc = self._doc
        if doc.get("height") != height or not doc.get("slots"):
            return None
        locked = doc.get("locked", [None, -1])
        valid = doc.get("valid", [None, -1])
        return Saved(
            height,
            int(doc.get("round", 0)),
            (_unhex(locked[0]), int(locked[1])),
            (_unhex(valid[0]), int(valid[1])),
        )

    def may_sign(self, height: int, round_: int, step: int, value: bytes) -> bool:
        """False if this slot was already signed for another value."""
        if self._doc.get("height") != height:
            return True
        signed = self._doc["slots"].get(f"{round_}/{step}")
        return signed is None or signed == value.hex()

    def record(
        self,
        height: int,
        round_: int,
        step: int,
        value: bytes,
        *,
        locked: tuple[bytes | None, int],
        valid: tuple[bytes | None, int],
    ) -> None:
        """Write the slot and the lock durably before the message is sent."""
        doc = self._doc
        if doc.get("height") != height:
            doc = {"height": height, "slots": {}}
        doc["round"] = max(int(doc.get("round", 0)), round_)
        doc["slots"][f"{round_}/{step}"] = value.hex()
        doc["locked"] = [_hex(locked[0]), locked[1]]
        doc["valid"] = [_hex(valid[0]), valid[1]]
        self._doc = doc
        self._write()

    def clear_below(self, height: int) -> None:
        """Forget heights below ``height`` (they are decided)."""
        if int(self._doc.get("height", 0)) < height:
            self._doc = {"height": height, "round": 0, "slots": {}}
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(self._doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
