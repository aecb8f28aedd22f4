"""Block executors: in-process and in a child process over the same LMDB environment."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from eth_account import Account

from powerverse.chain.blockchain import Blockchain
from powerverse.chain.executor import (
    ExecutorError,
    LocalExecutor,
    ProcessExecutor,
    pooled_from_raw,
)
from powerverse.chain.genesis import Genesis, dev_genesis
from powerverse.chain.store import LmdbStore
from powerverse.chain.txpool import PooledTx, TxPool

KEYS = [Account.from_key(bytes([i + 1]) * 32) for i in range(3)]
TO = "0x" + "22" * 20


def _genesis() -> Genesis:
    return dev_genesis(1_700_000_000, [bytes.fromhex(k.address[2:]) for k in KEYS])


def _raw(key: int, nonce: int) -> bytes:
    tx = {
        "nonce": nonce,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 1,
        "to": "0x" + "22" * 20,
        "value": 5,
        "chainId": 31337,
        "type": 2,
    }
    return bytes(KEYS[key].sign_transaction(tx).raw_transaction)


def _candidates(chain: Blockchain, count: int) -> list[PooledTx]:
    pool = TxPool(chain_id=31337)

    class State:
        def get_nonce(self, a: bytes) -> int:
            return chain.get_nonce(a)

        def get_balance(self, a: bytes) -> int:
            return chain.get_balance(a)

    for n in range(count):
        pool.add_raw(_raw(n % 3, n // 3), State(), base_fee=10**9, block_gas_limit=30_000_000)
    return pool.select(10**9)


def test_pooled_from_raw_reuses_the_checked_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    import coincurve.keys

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the sender was recovered again")

    monkeypatch.setattr(coincurve.keys.PublicKey, "from_signature_and_message", refuse)
    sender = bytes.fromhex(KEYS[0].address[2:])
    ptx = pooled_from_raw(_raw(0, 0), sender)
    assert bytes(ptx.tx.sender) == sender and ptx.nonce == 0


def test_local_executor_builds_and_rewinds(tmp_path: Path) -> None:
    chain = Blockchain(LmdbStore(tmp_path), _genesis())
    executor = LocalExecutor(chain)
    result = executor.build(_candidates(chain, 6), timestamp=1_700_000_100, coinbase=b"\x01" * 20)
    assert result.number == 1 and result.rejected == ()
    assert chain.get_balance(bytes.fromhex(TO[2:])) == 30
    # A stale transaction between fresh ones is left out; the others still go in.
    fresh = pooled_from_raw(_raw(1, 2), bytes.fromhex(KEYS[1].address[2:]))
    mixed = executor.build(
        [*stale_from(chain), fresh], timestamp=1_700_000_200, coinbase=b"\x01" * 20
    )
    assert [r[0] for r in mixed.rejected] == [p.hash for p in stale_from(chain)]
    assert chain.height == 2 and chain.get_nonce(bytes.fromhex(KEYS[1].address[2:])) == 3
    executor.rewind(0)
    assert chain.height == 0 and chain.get_balance(bytes.fromhex(TO[2:])) == 0
    chain.close()


def stale_from(chain: Blockchain) -> list[PooledTx]:
    """Key 0's nonce-0 transaction, already included."""
    return [pooled_from_raw(_raw(0, 0), bytes.fromhex(KEYS[0].address[2:]))]


def test_process_executor_commits_what_the_parent_then_reads(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path, sole_writer=False)
    chain = Blockchain(store, _genesis(), writer=False)
    executor = ProcessExecutor(tmp_path, _genesis())
    try:
        candidates = _candidates(chain, 9)
        result = executor.build(candidates, timestamp=1_700_000_100, coinbase=b"\x01" * 20)
        assert result.number == 1 and chain.height == 1
        bundle = chain.bundle(chain.head)
        assert [bytes(tx.hash) for tx in bundle.block.transactions] == [c.hash for c in candidates]
        assert len(bundle.receipts) == 9 and bundle.receipts[-1].gas_used == 9 * 21_000
        # The roots in the header are Ethereum's, as py-evm's own trie computes them.
        from eth.db.trie import make_trie_root_and_nodes

        header = bundle.block.header
        assert header.transaction_root == make_trie_root_and_nodes(bundle.block.transactions)[0]
        assert header.receipt_root == make_trie_root_and_nodes(bundle.receipts)[0]
        assert chain.get_balance(bytes.fromhex(TO[2:])) == 45
        # A stale candidate (nonce already used) is reported, not fatal.
        again = executor.build(candidates[:1], timestamp=1_700_000_200, coinbase=b"\x01" * 20)
        assert again.number == 2 and again.rejected[0][0] == candidates[0].hash
        executor.rewind(1)
        assert chain.height == 1
        with pytest.raises(Exception, match="read-only"):
            chain.build_block([], timestamp=1, coinbase=b"\x01" * 20)
    finally:
        executor.close()
        chain.close()


def test_a_dead_executor_is_replaced_and_the_chain_goes_on(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path, sole_writer=False)
    chain = Blockchain(store, _genesis(), writer=False)
    executor = ProcessExecutor(tmp_path, _genesis())
    try:
        executor.build(_candidates(chain, 3), timestamp=1_700_000_100, coinbase=b"\x01" * 20)
        pid = executor._proc.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while executor._proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = [pooled_from_raw(_raw(k, 1), bytes.fromhex(KEYS[k].address[2:])) for k in range(3)]
        result = executor.build(second, timestamp=1_700_000_200, coinbase=b"\x01" * 20)
        assert executor.restarts == 1 and executor._proc.pid != pid
        assert result.number == 2 and chain.height == 2 and result.tx_count == 3
    finally:
        executor.close()
        chain.close()


def test_an_executor_that_cannot_open_the_chain_is_a_clear_error(tmp_path: Path) -> None:
    other = dev_genesis(1_600_000_000, [])
    Blockchain(LmdbStore(tmp_path), _genesis()).close()
    with pytest.raises(ExecutorError, match="cannot open the chain"):
        ProcessExecutor(tmp_path, other)


def test_candidates_cross_to_the_executor_with_sender_and_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pickle

    import coincurve.keys

    sender = bytes.fromhex(KEYS[2].address[2:])
    sent = pooled_from_raw(_raw(2, 5), sender)
    received = pickle.loads(pickle.dumps(sent))

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the executor recovered a sender again")

    monkeypatch.setattr(coincurve.keys.PublicKey, "from_signature_and_message", refuse)
    assert bytes(received.tx.sender) == sender
    assert received.tx.hash == sent.tx.hash and received.tx.encode() == sent.raw
