"""bench/blockexec.py runs end to end: a small block built, re-executed to the same hash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_blockexec_reports_each_block() -> None:
    out = subprocess.run(
        [sys.executable, "bench/blockexec.py", "--count", "40", "--rounds", "2", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = json.loads(out.stdout)
    assert [row["transfers"] for row in rows] == [40, 40]
    for row in rows:
        assert row["build_us"] > 0 and row["execute_us"] > 0
        assert row["block_bytes"] > 40 * 100  # the 40 signed transfers are in the block
