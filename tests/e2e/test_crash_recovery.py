"""kill -9 a loaded node at random moments, many times: nothing committed is lost or torn."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from web3 import Web3

from tests.e2e.nodeproc import NodeProcess, rpc

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SENDERS = [Account.from_key(bytes([i + 1]) * 32) for i in range(8)]
RECIPIENT = "0x" + "5a" * 20
RECIPIENT_CS = Web3.to_checksum_address(RECIPIENT)
ROUNDS = 8

# The dev chain funds Hardhat's accounts; these test keys are funded by account 0 first.
FUNDER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def _signed(acct: Account, nonce: int, to: str, value: int) -> str:
    tx = {
        "nonce": nonce,
        "to": to,
        "value": value,
        "gas": 21_000,
        "maxFeePerGas": 50 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "chainId": 31337,
        "type": 2,
    }
    return "0x" + bytes(acct.sign_transaction(tx).raw_transaction).hex()


def _wait_receipt(url: str, tx_hash: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        receipt = rpc(url, "eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            return receipt
        time.sleep(0.05)
    raise AssertionError(f"transaction {tx_hash} was not included within {timeout} s")


def _fund(url: str) -> None:
    funder = Account.from_key(FUNDER_KEY)
    hashes = [
        rpc(url, "eth_sendRawTransaction", [_signed(funder, i, s.address, 10**20)])
        for i, s in enumerate(SENDERS)
    ]
    for h in hashes:
        assert _wait_receipt(url, h)["status"] == "0x1"


class Ledger:
    """What the checked blocks so far add up to."""

    def __init__(self, url: str) -> None:
        self.height = 0
        self.parent = rpc(url, "eth_getBlockByNumber", ["0x0", False])["hash"]
        self.sent_by: dict[str, int] = {}
        self.transfers = 0


def _check_consistency(url: str, ledger: Ledger | None = None) -> int:
    """Every block up to the head is whole; state agrees with the blocks; returns tx count."""
    ledger = ledger or Ledger(url)
    head = int(rpc(url, "eth_blockNumber"), 16)
    sent_by = ledger.sent_by
    transfers = ledger.transfers
    parent = ledger.parent
    for n in range(ledger.height + 1, head + 1):
        block = rpc(url, "eth_getBlockByNumber", [hex(n), True])
        assert block is not None, f"block {n} of {head} is missing"
        assert block["parentHash"] == parent, f"block {n} does not link to its parent"
        parent = block["hash"]
        receipts = rpc(url, "eth_getBlockReceipts", [hex(n)])
        assert len(receipts) == len(block["transactions"]), f"block {n} lost receipts"
        for tx, receipt in zip(block["transactions"], receipts, strict=True):
            assert receipt["transactionHash"] == tx["hash"]
            assert receipt["status"] == "0x1"
            sender = tx["from"].lower()
            sent_by[sender] = sent_by.get(sender, 0) + 1
            if tx["to"] and tx["to"].lower() == RECIPIENT:
                transfers += 1
    ledger.height, ledger.parent, ledger.transfers = head, parent, transfers
    for sender, count in sent_by.items():
        assert int(rpc(url, "eth_getTransactionCount", [sender, "latest"]), 16) == count
    assert int(rpc(url, "eth_getBalance", [RECIPIENT, "latest"]), 16) == transfers
    return transfers


def _load(url: str, stop: threading.Event) -> None:
    """Send transfers to RECIPIENT from every sender until stopped or the node dies."""
    client = httpx.Client(timeout=5)
    try:
        nonces = {
            s.address: int(rpc(url, "eth_getTransactionCount", [s.address, "latest"]), 16)
            for s in SENDERS
        }
        while not stop.is_set():
            batch = []
            for s in SENDERS:
                raw = _signed(s, nonces[s.address], RECIPIENT_CS, 1)
                nonces[s.address] += 1
                batch.append(
                    {
                        "jsonrpc": "2.0",
                        "id": len(batch),
                        "method": "eth_sendRawTransaction",
                        "params": [raw],
                    }
                )
            client.post(url, json=batch)
    except httpx.HTTPError:
        return  # the node was killed
    finally:
        client.close()


def test_kill_minus_nine_during_block_commits(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    node = NodeProcess(tmp_path / "data")
    node.start()
    assert node.executor_pid(), "the node runs its block executor in a child process"
    try:
        _fund(node.url)
        last_height = 0
        last_transfers = 0
        ledger = Ledger(node.url)
        for _round in range(ROUNDS):
            stop = threading.Event()
            sender = threading.Thread(target=_load, args=(node.url, stop), daemon=True)
            sender.start()
            time.sleep(rng.uniform(0.3, 2.0))
            node.kill9()
            stop.set()
            sender.join(timeout=10)
            node.start()
            height = int(rpc(node.url, "eth_blockNumber"), 16)
            assert height >= last_height, "a committed block disappeared after kill -9"
            assert height >= ledger.height
            transfers = _check_consistency(node.url, ledger)
            assert transfers >= last_transfers
            last_height, last_transfers = height, transfers
        assert last_transfers > 0, "the load never got a transfer committed"
        # The node goes on: a new transaction is included after the last restart.
        s = SENDERS[0]
        nonce = int(rpc(node.url, "eth_getTransactionCount", [s.address, "pending"]), 16)
        h = rpc(node.url, "eth_sendRawTransaction", [_signed(s, nonce, RECIPIENT_CS, 1)])
        assert _wait_receipt(node.url, h)["status"] == "0x1"
        assert _check_consistency(node.url) == last_transfers + 1
    finally:
        node.stop()


def test_node_replaces_a_killed_block_executor(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data")
    node.start()
    try:
        funder = Account.from_key(FUNDER_KEY)
        first = rpc(node.url, "eth_sendRawTransaction", [_signed(funder, 0, RECIPIENT_CS, 1)])
        assert _wait_receipt(node.url, first)["status"] == "0x1"
        executor = node.executor_pid()
        os.kill(executor, signal.SIGKILL)
        second = rpc(node.url, "eth_sendRawTransaction", [_signed(funder, 1, RECIPIENT_CS, 1)])
        assert _wait_receipt(node.url, second)["status"] == "0x1"
        assert node.executor_pid() != executor
        assert _check_consistency(node.url) == 2
    finally:
        node.stop()
