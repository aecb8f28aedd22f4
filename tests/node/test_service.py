"""The node service: dev block production and time controls, on a real chain in-process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from eth_account import Account

from powerverse.chain.blockchain import Blockchain, BuiltBlock
from powerverse.chain.devtime import BlockTime, ManualClock
from powerverse.chain.exceptions import DevModeOnly
from powerverse.chain.executor import LocalExecutor
from powerverse.chain.genesis import dev_genesis
from powerverse.chain.store import LmdbStore
from powerverse.chain.txpool import TxPool
from powerverse.node.service import DevProducer, Node

KEY = Account.from_key(b"\x07" * 32)


def _node(tmp_path: Path, *, dev: bool = True) -> Node:
    chain = Blockchain(
        LmdbStore(tmp_path), dev_genesis(1_700_000_000, [bytes.fromhex(KEY.address[2:])])
    )
    return Node(
        chain=chain,
        pool=TxPool(chain_id=31337),
        block_time=BlockTime(ManualClock(1_700_000_100.0)),
        coinbase=b"\x01" * 20,
        executor=LocalExecutor(chain),
        dev=dev,
    )


def _raw(nonce: int, max_fee: int, tip: int = 1) -> bytes:
    tx = {
        "nonce": nonce,
        "gas": 21_000,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": tip,
        "to": "0x" + "33" * 20,
        "value": 1,
        "chainId": 31337,
        "type": 2,
    }
    return bytes(KEY.sign_transaction(tx).raw_transaction)


async def _settle(node: Node, height: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while node.chain.height < height:
            await asyncio.sleep(0.01)


async def test_underpriced_txs_do_not_make_empty_blocks_forever(tmp_path: Path) -> None:
    node = _node(tmp_path)
    base = node.next_base_fee()
    node.submit_raw(_raw(0, base // 2))  # waits in the pool for a lower base fee
    task = asyncio.create_task(DevProducer().run(node))
    try:
        await asyncio.sleep(0.5)
        assert node.chain.height <= 1, "the producer spun on a transaction it cannot include"
        node.submit_raw(_raw(0, base * 4, tip=2))  # a replacement that pays enough
        await _settle(node, node.chain.height + 1)
        assert node.chain.get_nonce(bytes.fromhex(KEY.address[2:])) == 1
    finally:
        task.cancel()
        node.chain.close()


async def test_one_block_takes_every_pending_transaction(tmp_path: Path) -> None:
    node = _node(tmp_path)
    for n in range(50):
        node.submit_raw(_raw(n, 10**11))
    built = await node.build_block()
    assert len(built.block.transactions) == 50
    assert node.pool.status() == (0, 0)
    node.chain.close()


async def test_interval_producer_makes_blocks_without_transactions(tmp_path: Path) -> None:
    node = _node(tmp_path)
    task = asyncio.create_task(DevProducer(interval=0.05).run(node))
    try:
        await _settle(node, 3)
    finally:
        task.cancel()
        node.chain.close()


async def test_time_controls(tmp_path: Path) -> None:
    node = _node(tmp_path)
    node.increase_time(3600)
    built = await node.mine()
    assert built.block.header.timestamp == 1_700_000_100 + 3600
    await node.mine(timestamp=1_800_000_000)
    assert node.chain.head.timestamp == 1_800_000_000
    with pytest.raises(ValueError):
        await node.mine(timestamp=1_800_000_000)
    snap = node.snapshot()
    await node.mine()
    assert await node.revert(snap) and node.chain.height == 2
    assert not await node.revert(snap)
    node.chain.close()


async def test_dev_controls_refused_on_a_non_dev_node(tmp_path: Path) -> None:
    node = _node(tmp_path, dev=False)
    with pytest.raises(DevModeOnly):
        node.increase_time(1)
    with pytest.raises(DevModeOnly):
        await node.mine()
    with pytest.raises(DevModeOnly):
        node.snapshot()
    node.chain.close()


def test_only_about_a_block_of_candidates_goes_to_the_executor(tmp_path: Path) -> None:
    from powerverse.node.service import fill_block

    node = _node(tmp_path)
    for n in range(60):
        node.submit_raw(_raw(n, 10**11))
    candidates = node.pool.select(node.next_base_fee())
    assert len(fill_block(candidates, 21_000 * 40)) == 50  # a block of 40 transfers, plus a quarter
    assert fill_block(candidates, 30_000_000) == candidates
    node.chain.close()


async def test_blocks_reach_listeners_only_while_someone_listens(tmp_path: Path) -> None:
    node = _node(tmp_path)
    seen: list[int] = []

    async def listener(built: BuiltBlock) -> None:
        seen.append(int(built.block.number))

    listening = False
    node.block_listeners.append(listener)
    node.listening = lambda: listening
    try:
        node.submit_raw(_raw(0, 10**11))
        node.publish_later(await node.commit_block())  # nobody listens: not even loaded
        await node.drain_publications()
        assert seen == []
        listening = True
        node.submit_raw(_raw(1, 10**11))
        node.publish_later(await node.commit_block())
        await node.drain_publications()
        assert seen == [2]
        listening = False
        await node.build_block()  # a block made on request is always published
        assert seen == [2, 3]
    finally:
        node.chain.close()
