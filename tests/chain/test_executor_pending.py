"""Pending blocks through the executors, in this process and across the process boundary."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from eth_account import Account

from powerverse.chain.blockchain import Blockchain
from powerverse.chain.blockcodec import decode_block
from powerverse.chain.exceptions import (
    BlockNotOnHead,
    InvalidBlock,
    UnknownPendingBlock,
)
from powerverse.chain.executor import (
    BlockExecutor,
    LocalExecutor,
    PendingResult,
    ProcessExecutor,
    pooled_from_raw,
)
from powerverse.chain.genesis import Genesis, dev_genesis
from powerverse.chain.store import LmdbStore
from powerverse.chain.txpool import PooledTx

KEYS = [Account.from_key(bytes([i + 1]) * 32) for i in range(3)]
ADDRS = [bytes.fromhex(k.address[2:]) for k in KEYS]
TO = b"\x22" * 20
T0 = 1_700_000_000


def _genesis() -> Genesis:
    return dev_genesis(T0, ADDRS)


def _candidates(nonce: int) -> list[PooledTx]:
    def raw(key: int) -> bytes:
        tx = {
            "nonce": nonce,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
            "to": "0x" + TO.hex(),
            "value": 5,
            "chainId": 31337,
            "type": 2,
        }
        return bytes(KEYS[key].sign_transaction(tx).raw_transaction)

    return [pooled_from_raw(raw(k), ADDRS[k]) for k in range(3)]


def _round(proposer: BlockExecutor, validator: BlockExecutor, nonce: int, ts: int) -> PendingResult:
    """One consensus round: propose, send over the wire, execute, commit both with a seal."""
    candidates = _candidates(nonce)
    proposal = proposer.propose(candidates, timestamp=ts, coinbase=b"\x01" * 20)
    header, payloads = decode_block(proposal.encoded())
    # The validator's pool knows these transactions: their senders go along as hints.
    known = {c.hash: c.sender for c in candidates}
    executed = validator.execute(header, payloads, known_senders=known)
    assert executed.block_hash == proposal.block_hash and executed.tx_payloads == payloads
    assert proposer.commit_pending(proposal.block_hash, b"seal").block_hash == proposal.block_hash
    assert validator.commit_pending(executed.block_hash, b"seal").number == proposal.number
    return proposal


def test_local_executors_agree_through_pending_blocks(tmp_path: Path) -> None:
    a = Blockchain(LmdbStore(tmp_path / "a"), _genesis())
    b = Blockchain(LmdbStore(tmp_path / "b"), _genesis())
    proposer, validator = LocalExecutor(a), LocalExecutor(b)
    try:
        for n in range(3):
            _round(proposer, validator, n, T0 + 1 + n)
        assert a.head == b.head and b.height == 3 and b.seal_of(b.head.hash) == b"seal"
        bad = proposer.propose(_candidates(3), timestamp=T0 + 9, coinbase=b"\x01" * 20)
        header = bad.decoded_header().copy(gas_used=1)
        with pytest.raises(InvalidBlock, match="gas used mismatch"):
            validator.execute(header, bad.tx_payloads)
        imported = validator.import_block(bad.decoded_header(), bad.tx_payloads, b"cert")
        assert imported.block_hash == bad.block_hash and b.seal_of(bad.block_hash) == b"cert"
        proposer.discard_pending()
        assert a.pending_hashes() == ()
    finally:
        a.close()
        b.close()


def _reader(path: Path) -> Blockchain:
    return Blockchain(LmdbStore(path, sole_writer=False), _genesis(), writer=False)


def test_pending_blocks_cross_the_process_boundary(tmp_path: Path) -> None:
    readers = [_reader(tmp_path / "a"), _reader(tmp_path / "b")]
    proposer = ProcessExecutor(tmp_path / "a", _genesis())
    validator = ProcessExecutor(tmp_path / "b", _genesis())
    try:
        first = _round(proposer, validator, 0, T0 + 1)
        assert readers[0].head == readers[1].head and readers[1].height == 1
        assert readers[1].seal_of(first.block_hash) == b"seal"
        assert readers[1].get_balance(TO) == 15
        # Chain errors arrive as themselves, with their message.
        second = proposer.propose(_candidates(1), timestamp=T0 + 2, coinbase=b"\x01" * 20)
        assert readers[0].height == 1  # pending, not committed
        tampered = second.decoded_header().copy(state_root=b"\x01" * 32)
        with pytest.raises(InvalidBlock, match="state root mismatch") as refused:
            validator.execute(tampered, second.tx_payloads)
        assert type(refused.value) is InvalidBlock
        with pytest.raises(BlockNotOnHead):
            validator.execute(second.decoded_header().copy(parent_hash=b"\x02" * 32), ())
        with pytest.raises(UnknownPendingBlock):
            validator.commit_pending(second.block_hash, b"seal")
        # Two competing blocks pending in the child; committing one drops the other.
        validator.execute(second.decoded_header(), second.tx_payloads)
        own = validator.propose([], timestamp=T0 + 3, coinbase=b"\x03" * 20)
        validator.commit_pending(own.block_hash, b"own seal")
        assert readers[1].head.hash == own.block_hash
        with pytest.raises(UnknownPendingBlock):
            validator.commit_pending(second.block_hash, b"seal")
        with pytest.raises(BlockNotOnHead):
            validator.execute(second.decoded_header(), second.tx_payloads)
        # Dev-mode building still works beside it, and drops what was pending.
        proposer.discard_pending()
        assert proposer.build(_candidates(1), timestamp=T0 + 4, coinbase=b"\x01" * 20).number == 2
    finally:
        proposer.close()
        validator.close()
        for reader in readers:
            reader.close()


def _kill(executor: ProcessExecutor) -> None:
    pid = executor._proc.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while executor._proc.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_killed_executor_loses_no_commit_and_the_node_goes_on(tmp_path: Path) -> None:
    source = Blockchain(LmdbStore(tmp_path / "a"), _genesis())
    proposer = LocalExecutor(source)
    reader = _reader(tmp_path / "b")
    validator = ProcessExecutor(tmp_path / "b", _genesis())
    try:
        proposal = proposer.propose(_candidates(0), timestamp=T0 + 1, coinbase=b"\x01" * 20)
        validator.execute(proposal.decoded_header(), proposal.tx_payloads)
        _kill(validator)
        # Killed between execute and commit: the head is still the previous block.
        assert reader.height == 0 and reader.get_balance(TO) == 0
        # Committing executes the block again in the new child, then commits it with its seal.
        result = validator.commit_pending(proposal.block_hash, b"after restart")
        assert validator.restarts == 1 and result.block_hash == proposal.block_hash
        assert reader.head.hash == proposal.block_hash
        assert reader.seal_of(proposal.block_hash) == b"after restart"
        proposer.commit_pending(proposal.block_hash, b"after restart")
        # ... and the next round goes on as usual.
        nxt = proposer.propose(_candidates(1), timestamp=T0 + 2, coinbase=b"\x01" * 20)
        validator.execute(nxt.decoded_header(), nxt.tx_payloads)
        _kill(validator)
        validator.discard_pending()  # nothing to execute again once discarded
        with pytest.raises(UnknownPendingBlock):
            validator.commit_pending(nxt.block_hash, b"seal")
        validator.import_block(nxt.decoded_header(), nxt.tx_payloads, b"seal 2")
        assert reader.height == 2 and reader.head.hash == nxt.block_hash
        assert reader.seal_of(nxt.block_hash) == b"seal 2"
        with pytest.raises(UnknownPendingBlock):
            validator.commit_pending(nxt.block_hash, b"again")
    finally:
        validator.close()
        reader.close()
        source.close()
