"""A validator node proves an equivocation it saw on chain itself (real dev node, real EVM)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from eth_account import Account

from powerverse.chain.genesis import dev_genesis
from powerverse.crypto.keys import dev_accounts
from powerverse.market.client import ChainClient
from powerverse.market.staking import Staking
from powerverse.node.evidence_submit import submit_evidence
from powerverse.node.runner import NodeConfig, dev_validator
from tests.market.test_staking_evidence import _votes
from tests.rpc.conftest import ThreadedNode, run_threaded, stop_threaded

T = TypeVar("T")


def _in_loop(node: ThreadedNode, fn: Callable[[], T]) -> T:
    async def run() -> T:
        return fn()

    return asyncio.run_coroutine_threadsafe(run(), node.loop).result(30)


def _mined(node: ThreadedNode, tx_hash: bytes) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        receipt = node.result("eth_getTransactionReceipt", "0x" + tx_hash.hex())
        if receipt:
            return dict(receipt)
        time.sleep(0.05)
    raise AssertionError("evidence transaction not mined")


def test_the_node_submits_evidence_once(tmp_path: Path) -> None:
    node = run_threaded(NodeConfig(data_dir=tmp_path / "d", dev=True, rpc_port=0))
    try:
        key = dev_validator().consensus.public_key
        messages = [bytes.fromhex(m[2:]) for m in _votes(node, dev_validator().consensus, 4)]
        reporter = dev_accounts()[6].private_key
        sent = node.running.node

        def submit(account_key: bytes) -> bytes | None:
            return _in_loop(node, lambda: submit_evidence(sent, account_key, messages))

        # an account without funds for gas: the pool refuses it, logged, nothing raised
        assert submit(b"\x77" * 32) is None
        tx_hash = submit(reporter)
        assert tx_hash is not None
        assert _mined(node, tx_hash)["status"] == "0x1"
        staking = Staking(ChainClient(node.url, Account.from_key(reporter)))
        assert staking.validator_by_key(key).jailed
        # already proven: the dry run fails and nothing is sent (no gas spent)
        nonce = node.result("eth_getTransactionCount", Account.from_key(reporter).address)
        assert (
            _in_loop(node, lambda: submit_evidence(node.running.node, reporter, messages)) is None
        )
        assert node.result("eth_getTransactionCount", Account.from_key(reporter).address) == nonce
        # an account without funds for gas: skipped with a log line, nothing raised
        broke = b"\x77" * 32
        again = [bytes.fromhex(m[2:]) for m in _votes(node, dev_validator().consensus, 5)]
        assert _in_loop(node, lambda: submit_evidence(node.running.node, broke, again)) is None
    finally:
        stop_threaded(node)


def test_a_chain_without_staking_is_skipped(tmp_path: Path) -> None:
    genesis = tmp_path / "genesis.json"
    dev_genesis(int(time.time()), [a.address for a in dev_accounts()]).dump(genesis)
    node = run_threaded(
        NodeConfig(data_dir=tmp_path / "d", dev=True, genesis_file=genesis, rpc_port=0)
    )
    try:
        messages = [bytes.fromhex(m[2:]) for m in _votes(node, dev_validator().consensus, 4)]
        reporter = dev_accounts()[6].private_key
        assert (
            _in_loop(node, lambda: submit_evidence(node.running.node, reporter, messages)) is None
        )
    finally:
        stop_threaded(node)
