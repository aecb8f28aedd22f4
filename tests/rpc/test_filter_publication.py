"""A filter poll reflects every block a client can already see, even while the node is still
publishing blocks in the background (a slow block listener holds the publication back)."""

from __future__ import annotations

import asyncio
import time

from eth_account import Account

from powerverse.crypto.keys import dev_accounts
from powerverse.node.service import BuiltBlock
from tests.rpc.conftest import ThreadedNode


def test_block_filter_sees_the_block_of_a_receipt_while_publication_lags(
    dev_node: ThreadedNode,
) -> None:
    node = dev_node

    async def slow_listener(built: BuiltBlock) -> None:
        await asyncio.sleep(1.5)

    listeners = node.running.node.block_listeners
    node.loop.call_soon_threadsafe(listeners.insert, 0, slow_listener)
    block_filter = node.result("eth_newBlockFilter")
    sender = Account.from_key(dev_accounts()[0].private_key)
    tx = sender.sign_transaction({
        "to": dev_accounts()[1].address, "value": 1, "gas": 21_000, "nonce": 0,
        "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1, "chainId": 31337,
    })  # fmt: skip
    tx_hash = node.result("eth_sendRawTransaction", "0x" + tx.raw_transaction.hex())
    receipt = None
    deadline = time.monotonic() + 30
    while receipt is None and time.monotonic() < deadline:
        receipt = node.result("eth_getTransactionReceipt", tx_hash)
    assert receipt is not None
    assert node.result("eth_getFilterChanges", block_filter) == [receipt["blockHash"]]
