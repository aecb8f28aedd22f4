"""Our airdrop MerkleTree against OpenZeppelin's own StandardMerkleTree (@openzeppelin/merkle-tree,
pinned in package.json, run under Node.js): the same root and the same proof for every member,
for trees of many sizes and random members, so a root published with either tool works with the
other's proofs."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from powerverse.market.tokenomics import MerkleTree

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("oz_merkle.mjs")


def _oz(accounts: list[str]) -> dict[str, object]:
    node = shutil.which("node")
    if node is None or not (REPO / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir():
        pytest.fail("Node.js and the npm packages are needed: run ./scripts/setup")
    done = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps(accounts), capture_output=True, text=True,
        cwd=REPO, timeout=60, check=True,
    )  # fmt: skip
    doc: dict[str, object] = json.loads(done.stdout)
    return doc


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 16, 33, 100])
def test_same_root_and_proofs_as_openzeppelin(size: int) -> None:
    rng = random.Random(size)
    accounts = [to_checksum_address(rng.randbytes(20)) for _ in range(size)]
    ours = MerkleTree(accounts)
    theirs = _oz(accounts)
    assert "0x" + ours.root.hex() == theirs["root"]
    proofs = theirs["proofs"]
    assert isinstance(proofs, dict)
    for account in accounts:
        assert ["0x" + p.hex() for p in ours.proof(account)] == proofs[account]
