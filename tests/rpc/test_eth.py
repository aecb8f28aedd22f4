"""Ethereum JSON-RPC methods against a real in-process dev node on a real socket."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from powerverse.node.runner import NodeConfig
from powerverse.node.validator_key import ValidatorKey
from powerverse.rpc.eth import EthApi
from tests.rpc.conftest import ThreadedNode, run_threaded, stop_threaded

ARTIFACTS = Path(__file__).resolve().parents[1] / "contracts" / "artifacts"
OTHER = to_checksum_address("0x" + "77" * 20)
GWEI = 10**9


def sign(acct: LocalAccount, nonce: int, **over: Any) -> str:
    tx: dict[str, Any] = {
        "nonce": nonce,
        "to": OTHER,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 20 * GWEI,
        "maxPriorityFeePerGas": GWEI,
        "chainId": 31337,
        "type": 2,
    }
    tx.update(over)
    if tx.get("to") is None:
        tx.pop("to")
    if "gasPrice" in tx:
        tx.pop("maxFeePerGas")
        tx.pop("maxPriorityFeePerGas")
        tx.pop("type")
    return "0x" + bytes(acct.sign_transaction(tx).raw_transaction).hex()


def receipt(node: ThreadedNode, tx_hash: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = node.result("eth_getTransactionReceipt", tx_hash)
        if r is not None:
            return dict(r)
        time.sleep(0.02)
    raise AssertionError(f"{tx_hash} not mined")


def nonce_of(node: ThreadedNode, acct: LocalAccount) -> int:
    return int(node.result("eth_getTransactionCount", acct.address, "pending"), 16)


def deploy(node: ThreadedNode, acct: LocalAccount, name: str) -> str:
    art = json.loads((ARTIFACTS / f"{name}.json").read_text())
    raw = sign(acct, nonce_of(node, acct), to=None, value=0, gas=3_000_000, data=art["bytecode"])
    r = receipt(node, node.result("eth_sendRawTransaction", raw))
    assert r["status"] == "0x1"
    return str(r["contractAddress"])


def calldata(signature: str, types: list[str], args: list[Any]) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + abi_encode(types, args)).hex()


# ------------------------------------------------------------------------- basics


def test_chain_identity(shared_dev_node: ThreadedNode) -> None:
    n = shared_dev_node
    assert n.result("eth_chainId") == "0x7a69"
    assert n.result("net_version") == "31337"
    assert n.result("net_listening") is True
    assert n.result("net_peerCount") == "0x0"
    assert n.result("eth_syncing") is False
    assert n.result("eth_accounts") == []
    assert n.result("web3_clientVersion").startswith("PowerVerse/")
    assert n.result("web3_sha3", "0x68656c6c6f") == "0x" + keccak(b"hello").hex()
    info = n.result("pv_nodeInfo")
    assert info["dev"] is True and info["chainId"] == "0x7a69"


def test_dev_accounts_are_funded(
    shared_dev_node: ThreadedNode, accounts: list[LocalAccount]
) -> None:
    for acct in accounts:
        assert int(shared_dev_node.result("eth_getBalance", acct.address, "latest"), 16) == (
            10_000 * 10**18
        )


def test_transfer_mines_a_block_with_receipt(
    dev_node: ThreadedNode, accounts: list[LocalAccount]
) -> None:
    a = accounts[0]
    before = int(dev_node.result("eth_getBalance", OTHER), 16)
    h = dev_node.result("eth_sendRawTransaction", sign(a, 0, value=12345))
    r = receipt(dev_node, h)
    assert r["status"] == "0x1" and r["gasUsed"] == hex(21000) and r["from"] == a.address
    assert int(dev_node.result("eth_getBalance", OTHER), 16) == before + 12345
    block = dev_node.result("eth_getBlockByNumber", r["blockNumber"], True)
    assert block["transactions"][0]["hash"] == h
    assert "baseFeePerGas" in block
    assert dev_node.result("eth_getBlockByHash", block["hash"], False)["transactions"] == [h]
    assert dev_node.result("eth_getBlockTransactionCountByNumber", r["blockNumber"]) == "0x1"
    assert dev_node.result("eth_getBlockTransactionCountByHash", block["hash"]) == "0x1"
    tx = dev_node.result("eth_getTransactionByBlockNumberAndIndex", r["blockNumber"], "0x0")
    assert tx["hash"] == h and tx["from"] == a.address
    assert dev_node.result("eth_getTransactionByHash", h)["blockHash"] == block["hash"]
    # The fee recipient is the block's proposer: it earned the priority fee.
    miner = block["miner"]
    assert int(dev_node.result("eth_getBalance", miner), 16) == 21000 * GWEI


def test_many_pending_txs_go_into_few_blocks(
    dev_node: ThreadedNode, accounts: list[LocalAccount]
) -> None:
    batch = [
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "eth_sendRawTransaction",
            "params": [sign(accounts[i % 5], i // 5)],
        }
        for i in range(200)
    ]
    answers = dev_node.client.post(dev_node.url, json=batch).json()
    hashes = [a["result"] for a in answers]
    blocks = {receipt(dev_node, h)["blockNumber"] for h in hashes}
    assert len(blocks) < 20, "transactions were not batched into blocks"


def test_pending_nonce_and_queued_future_nonce(
    dev_node: ThreadedNode, accounts: list[LocalAccount]
) -> None:
    a = accounts[1]
    far = dev_node.result("eth_sendRawTransaction", sign(a, 2))
    status = dev_node.result("txpool_status")
    assert status == {"pending": "0x0", "queued": "0x1"}
    content = dev_node.result("txpool_content")
    assert content["queued"][a.address]["2"]["hash"] == far
    assert dev_node.result("eth_getTransactionByHash", far)["blockNumber"] is None
    assert nonce_of(dev_node, a) == 0
    dev_node.result("eth_sendRawTransaction", sign(a, 0))
    dev_node.result("eth_sendRawTransaction", sign(a, 1))
    assert receipt(dev_node, far)["status"] == "0x1"
    assert int(dev_node.result("eth_getTransactionCount", a.address, "latest"), 16) == 3


# ------------------------------------------------------------------------- refusals


def test_transaction_refusals_use_geth_messages(
    dev_node: ThreadedNode, accounts: list[LocalAccount]
) -> None:
    a, poor = accounts[2], accounts[3]
    h = dev_node.result("eth_sendRawTransaction", sign(a, 0))
    receipt(dev_node, h)
    err = dev_node.error("eth_sendRawTransaction", sign(a, 0))
    assert err["code"] == -32000 and err["message"].startswith("nonce too low")
    err = dev_node.error("eth_sendRawTransaction", sign(a, 1, chainId=1))
    assert "invalid chain id" in err["message"]
    err = dev_node.error("eth_sendRawTransaction", sign(poor, 0, value=10**40))
    assert err["message"].startswith("insufficient funds for gas * price + value")
    err = dev_node.error("eth_sendRawTransaction", sign(a, 1, gas=20_000))
    assert err["message"].startswith("intrinsic gas too low")
    err = dev_node.error("eth_sendRawTransaction", sign(a, 1, gas=10**9))
    assert err["message"] == "exceeds block gas limit"
    queued = sign(a, 5)
    dev_node.result("eth_sendRawTransaction", queued)
    assert dev_node.error("eth_sendRawTransaction", queued)["message"] == "already known"
    cheap_bump = sign(a, 5, maxFeePerGas=21 * GWEI, maxPriorityFeePerGas=GWEI + GWEI // 20)
    err = dev_node.error("eth_sendRawTransaction", cheap_bump)
    assert err["message"] == "replacement transaction underpriced"
    err = dev_node.error("eth_sendRawTransaction", "0x" + "ff" * 50)
    assert err["code"] == -32000
    err = dev_node.error("eth_sendRawTransaction", "0x" + "00" * (129 * 1024))
    assert err["message"].startswith("oversized data")
    err = dev_node.error("eth_sendRawTransaction", "not hex")
    assert err["code"] == -32602
    # Nothing was lost: the balance of `a` only paid for its one mined transaction.
    assert int(dev_node.result("eth_getTransactionCount", a.address, "latest"), 16) == 1


def test_tampered_signature_is_refused(
    dev_node: ThreadedNode, accounts: list[LocalAccount]
) -> None:
    raw = bytearray(bytes.fromhex(sign(accounts[0], 0)[2:]))
    raw[-5] ^= 0xFF  # inside s
    err = dev_node.error("eth_sendRawTransaction", "0x" + raw.hex())
    # Either the signature no longer recovers, or it recovers to an unfunded stranger.
    assert err["code"] == -32000
    assert "invalid sender" in err["message"] or "insufficient funds" in err["message"]


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("eth_getBalance", ["0x1234"]),
        ("eth_getBalance", [OTHER, "0xzz"]),
        ("eth_getBalance", []),
        ("eth_getBlockByNumber", ["latest", "yes"]),
        ("eth_getStorageAt", [OTHER, "slot"]),
        ("eth_call", ["not an object"]),
        ("eth_call", [{"to": OTHER, "bogus": 1}]),
        ("eth_call", [{"to": OTHER, "data": "0x01", "input": "0x02"}]),
        ("eth_getLogs", [{"fromBlock": "0x2", "toBlock": "0x1"}]),
        ("eth_getTransactionByHash", ["0x1234"]),
        ("eth_feeHistory", ["0x1", "latest", [90, 10]]),
        ("eth_chainId", [1, 2]),
    ],
)
def test_bad_params_get_invalid_params(
    shared_dev_node: ThreadedNode, method: str, params: list[Any]
) -> None:
    assert shared_dev_node.error(method, *params)["code"] == -32602


def test_unknown_blocks_and_transactions_are_null(shared_dev_node: ThreadedNode) -> None:
    n = shared_dev_node
    assert n.result("eth_getBlockByNumber", "0xffffff", False) is None
    assert n.result("eth_getBlockByHash", "0x" + "ab" * 32, False) is None
    assert n.result("eth_getTransactionByHash", "0x" + "ab" * 32) is None
    assert n.result("eth_getTransactionReceipt", "0x" + "ab" * 32) is None
    err = n.error("eth_getBalance", OTHER, "0xffffff")
    assert "header not found" in err["message"]


# ------------------------------------------------------------------------- execution


def test_call_revert_shapes_and_historical_state(
    dev_node: ThreadedNode, accounts: list[LocalAccount]
) -> None:
    a = accounts[0]
    addr = deploy(dev_node, a, "CustomErrors")
    set1 = sign(
        a,
        nonce_of(dev_node, a),
        to=addr,
        value=0,
        gas=100_000,
        data=calldata("setValue(uint256)", ["uint256"], [7]),
    )
    block_7 = receipt(dev_node, dev_node.result("eth_sendRawTransaction", set1))["blockNumber"]
    set2 = sign(
        a,
        nonce_of(dev_node, a),
        to=addr,
        value=0,
        gas=100_000,
        data=calldata("setValue(uint256)", ["uint256"], [9]),
    )
    receipt(dev_node, dev_node.result("eth_sendRawTransaction", set2))
    get = {"to": addr, "data": calldata("value()", [], [])}
    assert int(dev_node.result("eth_call", get, "latest"), 16) == 9
    assert int(dev_node.result("eth_call", get, block_7), 16) == 7
    # A custom error: code 3, "execution reverted", the ABI-encoded error as data.
    err = dev_node.error(
        "eth_call",
        {
            "from": a.address,
            "to": addr,
            "data": calldata("requireBalance(uint256)", ["uint256"], [5]),
        },
    )
    assert err["code"] == 3 and "execution reverted" in err["message"]
    data = bytes.fromhex(err["data"][2:])
    assert data[:4] == function_signature_to_4byte_selector(
        "InsufficientBalance(address,uint256,uint256)"
    )
    assert abi_decode(["address", "uint256", "uint256"], data[4:]) == (a.address.lower(), 0, 5)
    # A reason string is decoded into the message.
    err = dev_node.error(
        "eth_call", {"to": addr, "data": calldata("requireOk(bool)", ["bool"], [False])}
    )
    assert err["code"] == 3 and "CustomErrors: not ok" in err["message"]
    # estimateGas of a reverting call is the same revert.
    err = dev_node.error("eth_estimateGas", {"to": addr, "data": calldata("empty()", [], [])})
    assert err["code"] == 3
    gas = int(
        dev_node.result(
            "eth_estimateGas",
            {
                "from": a.address,
                "to": addr,
                "data": calldata("setValue(uint256)", ["uint256"], [11]),
            },
        ),
        16,
    )
    tx = sign(
        a,
        nonce_of(dev_node, a),
        to=addr,
        value=0,
        gas=gas,
        data=calldata("setValue(uint256)", ["uint256"], [11]),
    )
    assert receipt(dev_node, dev_node.result("eth_sendRawTransaction", tx))["status"] == "0x1"
    assert (
        int(
            dev_node.result("eth_estimateGas", {"from": a.address, "to": OTHER, "value": "0x1"}), 16
        )
        == 21000
    )
    code = dev_node.result("eth_getCode", addr, "latest")
    assert len(code) > 100
    slot0 = dev_node.result("eth_getStorageAt", addr, "0x0", "latest")
    assert int(slot0, 16) == 11


def test_logs_and_filters(dev_node: ThreadedNode, accounts: list[LocalAccount]) -> None:
    a = accounts[0]
    addr = deploy(dev_node, a, "CustomErrors")
    topic = "0x" + keccak(text="ValueChanged(uint256,uint256,address)").hex()
    log_filter = dev_node.result(
        "eth_newFilter", {"fromBlock": "0x0", "address": addr, "topics": [topic]}
    )
    block_filter = dev_node.result("eth_newBlockFilter")
    for v in (1, 2, 3):
        tx = sign(
            a,
            nonce_of(dev_node, a),
            to=addr,
            value=0,
            gas=100_000,
            data=calldata("setValue(uint256)", ["uint256"], [v]),
        )
        receipt(dev_node, dev_node.result("eth_sendRawTransaction", tx))
    logs = dev_node.result("eth_getLogs", {"fromBlock": "0x0", "address": addr, "topics": [topic]})
    assert len(logs) == 3
    old_value_is_2 = "0x" + (2).to_bytes(32, "big").hex()
    only = dev_node.result("eth_getLogs", {"fromBlock": "0x0", "topics": [topic, old_value_is_2]})
    assert len(only) == 1 and only[0]["topics"][1] == old_value_is_2
    assert dev_node.result("eth_getLogs", {"fromBlock": "0x0", "address": OTHER}) == []
    assert len(dev_node.result("eth_getFilterChanges", log_filter)) == 3
    assert dev_node.result("eth_getFilterChanges", log_filter) == []
    assert len(dev_node.result("eth_getFilterLogs", log_filter)) == 3
    assert len(dev_node.result("eth_getFilterChanges", block_filter)) >= 3
    assert dev_node.result("eth_uninstallFilter", log_filter) is True
    assert dev_node.error("eth_getFilterChanges", log_filter)["message"] == "filter not found"
    r = receipt(dev_node, logs[0]["transactionHash"])
    assert r["logs"][0]["logIndex"] == logs[0]["logIndex"]
    by_hash = dev_node.result("eth_getLogs", {"blockHash": logs[0]["blockHash"]})
    assert by_hash == [logs[0]]


def test_log_range_cap_has_a_clear_error(
    dev_node: ThreadedNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(EthApi, "max_log_range", 2)
    for _ in range(3):
        dev_node.result("evm_mine")
    assert dev_node.result("eth_getLogs", {"fromBlock": "0x2", "toBlock": "latest"}) == []
    err = dev_node.error("eth_getLogs", {"fromBlock": "0x0", "toBlock": hex(10**6)})
    assert err["code"] == -32005 and "max block range 2" in err["message"]


def test_fee_history_and_gas_price(dev_node: ThreadedNode, accounts: list[LocalAccount]) -> None:
    receipt(dev_node, dev_node.result("eth_sendRawTransaction", sign(accounts[0], 0)))
    hist = dev_node.result("eth_feeHistory", "0x2", "latest", [25, 75])
    assert len(hist["baseFeePerGas"]) == 3 and len(hist["gasUsedRatio"]) == 2
    assert hist["reward"][-1] == [hex(GWEI), hex(GWEI)]
    gas_price = int(dev_node.result("eth_gasPrice"), 16)
    assert gas_price == int(hist["baseFeePerGas"][-1], 16) + int(
        dev_node.result("eth_maxPriorityFeePerGas"), 16
    )


# ------------------------------------------------------------------------- dev controls


def test_time_controls_snapshot_and_revert(
    dev_node: ThreadedNode, accounts: list[LocalAccount]
) -> None:
    head = dev_node.result("eth_getBlockByNumber", "latest", False)
    t0 = int(head["timestamp"], 16)
    assert int(dev_node.result("evm_increaseTime", 3600)) >= 3600
    dev_node.result("evm_mine")
    t1 = int(dev_node.result("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    assert t1 >= t0 + 3600
    assert dev_node.result("evm_setNextBlockTimestamp", hex(t1 + 10_000)) is True
    dev_node.result("evm_mine")
    assert int(dev_node.result("eth_getBlockByNumber", "latest", False)["timestamp"], 16) == (
        t1 + 10_000
    )
    assert dev_node.error("evm_setNextBlockTimestamp", t1)["code"] == -32602
    snap = dev_node.result("evm_snapshot")
    height = dev_node.result("eth_blockNumber")
    h = dev_node.result("eth_sendRawTransaction", sign(accounts[0], 0, value=5))
    receipt(dev_node, h)
    assert int(dev_node.result("eth_getBalance", OTHER), 16) == 5
    assert dev_node.result("evm_revert", snap) is True
    assert dev_node.result("eth_blockNumber") == height
    assert int(dev_node.result("eth_getBalance", OTHER), 16) == 0
    assert dev_node.result("eth_getTransactionReceipt", h) is None
    assert dev_node.result("evm_revert", snap) is False
    # The chain goes on from the reverted head, and the reverted tx can be sent again.
    h2 = dev_node.result("eth_sendRawTransaction", sign(accounts[0], 0, value=5))
    assert receipt(dev_node, h2)["status"] == "0x1"


def test_single_validator_chain_mines_to_its_validator(
    tmp_path: Path, accounts: list[LocalAccount]
) -> None:
    from dataclasses import replace

    from powerverse.chain.genesis import DEFAULT_STAKE, Validator, dev_genesis

    vkey = ValidatorKey.generate()
    funded = bytes.fromhex(accounts[0].address[2:])
    genesis = dev_genesis(
        int(time.time()),
        [funded],
        Validator(vkey.address, vkey.consensus.public_key, DEFAULT_STAKE),
    )
    gpath = tmp_path / "genesis.json"
    replace(genesis, chain_id=4242).dump(gpath)
    node = run_threaded(
        NodeConfig(data_dir=tmp_path / "d", genesis_file=gpath, validator_key=vkey, rpc_port=0)
    )
    try:
        assert node.result("eth_chainId") == hex(4242)
        assert node.result("pv_nodeInfo")["dev"] is False
        for method in ("evm_mine", "evm_snapshot", "evm_increaseTime", "evm_revert"):
            err = node.error(method, 1) if method != "evm_mine" else node.error(method)
            assert err["code"] == -32601 and "dev" in err["message"]
        # A dev-chain transaction (chain id 31337) is refused here; one for 4242 is mined.
        assert "chain id" in node.error("eth_sendRawTransaction", sign(accounts[0], 0))["message"]
        r = receipt(node, node.result("eth_sendRawTransaction", sign(accounts[0], 0, chainId=4242)))
        block = node.result("eth_getBlockByNumber", r["blockNumber"], False)
        assert block["miner"].lower() == "0x" + vkey.address.hex()
    finally:
        stop_threaded(node)


async def _ws_subscriptions(url: str, raw: str) -> dict[str, Any]:
    import websockets

    seen: dict[str, Any] = {}
    async with websockets.connect(url.replace("http://", "ws://") + "/") as ws:
        ids = {}
        for i, kind in enumerate(("newHeads", "newPendingTransactions")):
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "id": i, "method": "eth_subscribe", "params": [kind]})
            )
            ids[json.loads(await ws.recv())["result"]] = kind
        await ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": 9, "method": "eth_sendRawTransaction", "params": [raw]}
            )
        )
        async with asyncio.timeout(20):
            while len(seen) < 3:
                msg = json.loads(await ws.recv())
                if msg.get("id") == 9:
                    seen["sent"] = msg["result"]
                elif msg.get("method") == "eth_subscription":
                    params = msg["params"]
                    seen.setdefault(ids[params["subscription"]], params["result"])
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 10,
                    "method": "eth_unsubscribe",
                    "params": [next(iter(ids))],
                }
            )
        )
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("id") == 10:
                seen["unsubscribed"] = msg["result"]
                break
    return seen


def test_websocket_pending_and_new_heads(
    dev_node: ThreadedNode, accounts: list[LocalAccount]
) -> None:
    raw = sign(accounts[4], 0)
    seen = asyncio.run(_ws_subscriptions(dev_node.url, raw))
    assert seen["newPendingTransactions"] == seen["sent"]
    assert int(seen["newHeads"]["number"], 16) >= 1
    assert seen["unsubscribed"] is True
    err = dev_node.error("eth_subscribe", "newHeads")
    assert err["code"] == -32601 and "notifications not supported" in err["message"]
