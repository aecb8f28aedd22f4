"""web3.py against a dev node: deploy, transfer, logs, filters, reverts, fees and subscriptions.

Every transaction is signed locally and sent with eth_sendRawTransaction (the node holds no
keys). Tests wait for receipts instead of assuming a block per transaction, and compare balances
and logs relative to what they did, so they also pass against a long-running external node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import AsyncWeb3, Web3
from web3.contract import Contract
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    Web3RPCError,
)
from web3.providers.persistent import WebSocketProvider
from web3.types import RPCEndpoint, TxParams, TxReceipt
from web3.utils.address import get_create_address

from tests.e2e.conftest import CHAIN_ID, DevNode

pytestmark = pytest.mark.e2e

RECEIPT_TIMEOUT_S = 30.0
WS_TIMEOUT_S = 30.0
GWEI = 10**9
PRIORITY_FEE = 1 * GWEI
SUPPLY = 1_000_000 * 10**18
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
VALUE_CHANGED_TOPIC = "0x" + keccak(text="ValueChanged(uint256,uint256,address)").hex()
PANIC_SELECTOR = "0x4e487b71"
ERROR_STRING_SELECTOR = "0x08c379a0"


def addr_topic(address: str) -> str:
    """Return the 32-byte log topic that encodes an indexed address."""
    return "0x" + "00" * 12 + address[2:].lower()


def hex0x(value: bytes | str) -> str:
    """Normalise bytes or hex to a lower-case 0x-prefixed string."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


class Sender:
    """Signs transactions locally and sends them raw; fills nonce, chain id, fees and gas."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def fees(self, *, legacy: bool = False) -> dict[str, int]:
        """Fee fields that get a transaction into the next blocks."""
        if legacy:
            return {"gasPrice": self.w3.eth.gas_price}
        base = self.w3.eth.get_block("latest")["baseFeePerGas"]
        return {"maxFeePerGas": 2 * base + PRIORITY_FEE, "maxPriorityFeePerGas": PRIORITY_FEE}

    def sign(
        self,
        account: LocalAccount,
        tx: dict[str, Any],
        *,
        nonce: int | None = None,
        legacy: bool = False,
    ) -> Any:
        """Complete `tx` and sign it with `account`'s key."""
        full: dict[str, Any] = {"value": 0, "data": b"", **tx, "chainId": CHAIN_ID}
        full["from"] = account.address
        if nonce is None:
            nonce = self.w3.eth.get_transaction_count(account.address, "pending")
        full["nonce"] = nonce
        for key, value in self.fees(legacy=legacy).items():
            full.setdefault(key, value)
        if "gas" not in full:
            estimate = {k: full[k] for k in ("from", "to", "value", "data") if k in full}
            full["gas"] = self.w3.eth.estimate_gas(TxParams(**estimate)) * 6 // 5
        del full["from"]
        return account.sign_transaction(full)

    def send(self, account: LocalAccount, tx: dict[str, Any], **kw: Any) -> HexBytes:
        """Sign and send `tx`; return its hash."""
        signed = self.sign(account, tx, **kw)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        assert HexBytes(tx_hash) == HexBytes(signed.hash)
        return HexBytes(tx_hash)

    def wait(self, tx_hash: bytes) -> TxReceipt:
        """Wait for the receipt of `tx_hash`."""
        return self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=RECEIPT_TIMEOUT_S, poll_latency=0.05
        )

    def transact(self, account: LocalAccount, tx: dict[str, Any], **kw: Any) -> TxReceipt:
        """Send `tx` and wait for a successful receipt."""
        receipt = self.wait(self.send(account, tx, **kw))
        assert receipt["status"] == 1, receipt
        return receipt

    def call_tx(self, account: LocalAccount, contract: Contract, fn: str, *args: Any) -> TxReceipt:
        """Send a contract function call as a transaction and wait for success."""
        data = contract.encode_abi(fn, args=list(args))
        return self.transact(account, {"to": contract.address, "data": data})


@dataclass(frozen=True)
class Deployed:
    """The three test contracts deployed by account 0, with their deployment receipts."""

    token: Contract
    nft: Contract
    errors: Contract
    receipts: dict[str, TxReceipt]
    deploy_nonce: dict[str, int]


@pytest.fixture(scope="module")
def w3(dev_node: DevNode) -> Web3:
    """A web3 client over HTTP."""
    return Web3(Web3.HTTPProvider(dev_node.rpc_url, request_kwargs={"timeout": 30}))


@pytest.fixture(scope="module")
def sender(w3: Web3) -> Sender:
    """The local signer/sender."""
    return Sender(w3)


@pytest.fixture(scope="module")
def accts(dev_accounts: list[LocalAccount]) -> list[LocalAccount]:
    """Accounts 0-4 (the ethers test uses 5-9)."""
    return dev_accounts[:5]


@pytest.fixture(scope="module")
def deployed(
    w3: Web3, sender: Sender, accts: list[LocalAccount], artifacts: dict[str, dict[str, Any]]
) -> Deployed:
    """Deploy PVTestToken, PVTestNFT and CustomErrors back to back, then wait for all three."""
    deployer = accts[0]
    first_nonce = w3.eth.get_transaction_count(deployer.address, "pending")
    plan = [("PVTestToken", [SUPPLY]), ("PVTestNFT", []), ("CustomErrors", [])]
    hashes: dict[str, HexBytes] = {}
    nonces: dict[str, int] = {}
    for offset, (name, args) in enumerate(plan):
        factory = w3.eth.contract(abi=artifacts[name]["abi"], bytecode=artifacts[name]["bytecode"])
        data = factory.constructor(*args).data_in_transaction
        nonces[name] = first_nonce + offset
        hashes[name] = sender.send(
            deployer, {"data": data, "gas": 3_000_000}, nonce=first_nonce + offset
        )
    receipts = {name: sender.wait(h) for name, h in hashes.items()}
    for name, receipt in receipts.items():
        assert receipt["status"] == 1, (name, receipt)

    def at(name: str) -> Contract:
        address = receipts[name]["contractAddress"]
        assert address is not None
        return w3.eth.contract(address=address, abi=artifacts[name]["abi"])

    return Deployed(
        token=at("PVTestToken"),
        nft=at("PVTestNFT"),
        errors=at("CustomErrors"),
        receipts=receipts,
        deploy_nonce=nonces,
    )


# --- basics ----------------------------------------------------------------------------------


def test_chain_id_and_funded_dev_accounts(w3: Web3, accts: list[LocalAccount]) -> None:
    assert w3.eth.chain_id == CHAIN_ID
    assert int(w3.net.version) == CHAIN_ID
    assert accts[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    for account in accts:
        assert w3.eth.get_balance(account.address) > 10**18


def test_deploy_receipts_and_code(
    w3: Web3, deployed: Deployed, accts: list[LocalAccount], artifacts: dict[str, Any]
) -> None:
    for name, receipt in deployed.receipts.items():
        expected = get_create_address(accts[0].address, deployed.deploy_nonce[name])
        assert receipt["contractAddress"] == expected
        assert receipt["to"] is None
        assert receipt["from"] == accts[0].address
        assert 21_000 < receipt["gasUsed"] <= 3_000_000
        assert receipt["cumulativeGasUsed"] >= receipt["gasUsed"]
        assert receipt["effectiveGasPrice"] > 0
        assert receipt["type"] == 2
        code = w3.eth.get_code(expected)
        assert hex0x(code) == artifacts[name]["deployedBytecode"].lower()
        tx = w3.eth.get_transaction(receipt["transactionHash"])
        assert tx["blockHash"] == receipt["blockHash"]
        assert tx["transactionIndex"] == receipt["transactionIndex"]
    assert w3.eth.get_code(accts[4].address) == b""


def test_token_metadata_and_initial_supply(
    w3: Web3, deployed: Deployed, accts: list[LocalAccount]
) -> None:
    token = deployed.token
    assert token.functions.name().call() == "PV Test Token"
    assert token.functions.symbol().call() == "PVT"
    assert token.functions.decimals().call() == 18
    assert token.functions.totalSupply().call() == SUPPLY
    assert token.functions.balanceOf(accts[0].address).call() == SUPPLY
    block = deployed.receipts["PVTestToken"]["blockNumber"]
    assert token.functions.totalSupply().call(block_identifier=block) == SUPPLY
    assert w3.eth.get_code(token.address, block - 1) == b""  # not yet deployed back then


def test_erc20_transfer_balances_receipt_and_gas_accounting(
    w3: Web3, sender: Sender, deployed: Deployed, accts: list[LocalAccount]
) -> None:
    token, a0, a1, a2 = deployed.token, accts[0], accts[1], accts[2]
    sender.call_tx(a0, token, "transfer", a1.address, 1_000)
    before = {a.address: token.functions.balanceOf(a.address).call() for a in (a1, a2)}
    receipt = sender.call_tx(a1, token, "transfer", a2.address, 250)
    assert token.functions.balanceOf(a1.address).call() == before[a1.address] - 250
    assert token.functions.balanceOf(a2.address).call() == before[a2.address] + 250

    assert receipt["to"] == token.address
    assert len(receipt["logs"]) == 1
    log = receipt["logs"][0]
    assert log["address"] == token.address
    assert [hex0x(t) for t in log["topics"]] == [
        TRANSFER_TOPIC,
        addr_topic(a1.address),
        addr_topic(a2.address),
    ]
    assert int.from_bytes(log["data"], "big") == 250
    assert log["transactionHash"] == receipt["transactionHash"]
    assert log["blockNumber"] == receipt["blockNumber"]
    assert log["blockHash"] == receipt["blockHash"]
    assert log["removed"] is False
    decoded = token.events.Transfer().process_receipt(receipt)
    assert decoded[0]["args"] == {"from": a1.address, "to": a2.address, "value": 250}

    # a1 sent nothing else in this block: its ETH balance fell by exactly gasUsed * price.
    n = receipt["blockNumber"]
    paid = w3.eth.get_balance(a1.address, n - 1) - w3.eth.get_balance(a1.address, n)
    assert paid == receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert (
        w3.eth.get_transaction_count(a1.address, n)
        == w3.eth.get_transaction_count(a1.address, n - 1) + 1
    )


def test_transfer_more_than_balance_reverts_with_custom_error(
    deployed: Deployed, accts: list[LocalAccount]
) -> None:
    token = deployed.token
    poor = accts[3].address
    have = token.functions.balanceOf(poor).call()
    with pytest.raises(ContractLogicError) as info:
        token.functions.transfer(accts[0].address, have + 1).call({"from": poor})
    name, args = decode_custom_error(token.abi, revert_data(info.value))
    assert name == "ERC20InsufficientBalance"
    assert args == (poor, have, have + 1)


# --- logs --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transfers(
    sender: Sender, deployed: Deployed, accts: list[LocalAccount]
) -> dict[str, TxReceipt]:
    """Three token transfers (0→1, 0→2, 1→2) and one NFT mint (to 3), each waited for."""
    token, a = deployed.token, accts
    return {
        "0to1": sender.call_tx(a[0], token, "transfer", a[1].address, 11),
        "0to2": sender.call_tx(a[0], token, "transfer", a[2].address, 22),
        "1to2": sender.call_tx(a[1], token, "transfer", a[2].address, 3),
        "mint": sender.call_tx(a[0], deployed.nft, "mint", a[3].address, 7),
    }


def _tx_hashes(logs: list[Any]) -> set[str]:
    return {hex0x(log["transactionHash"]) for log in logs}


def test_get_logs_by_from_and_to_topic_positions(
    w3: Web3, deployed: Deployed, transfers: dict[str, TxReceipt], accts: list[LocalAccount]
) -> None:
    start = transfers["0to1"]["blockNumber"]
    end = transfers["mint"]["blockNumber"]
    base = {"address": deployed.token.address, "fromBlock": start, "toBlock": end}
    h = {k: hex0x(r["transactionHash"]) for k, r in transfers.items()}

    from0 = w3.eth.get_logs({**base, "topics": [TRANSFER_TOPIC, addr_topic(accts[0].address)]})
    assert _tx_hashes(from0) == {h["0to1"], h["0to2"]}
    to2 = w3.eth.get_logs({**base, "topics": [TRANSFER_TOPIC, None, addr_topic(accts[2].address)]})
    assert _tx_hashes(to2) == {h["0to2"], h["1to2"]}
    either = [addr_topic(accts[0].address), addr_topic(accts[1].address)]
    from01 = w3.eth.get_logs({**base, "topics": [TRANSFER_TOPIC, either]})
    assert _tx_hashes(from01) == {h["0to1"], h["0to2"], h["1to2"]}
    none = w3.eth.get_logs({**base, "topics": [TRANSFER_TOPIC, addr_topic(accts[4].address)]})
    assert none == []
    wrong_event = w3.eth.get_logs({**base, "topics": [VALUE_CHANGED_TOPIC]})
    assert wrong_event == []
    for log in from01:
        assert start <= log["blockNumber"] <= end
        assert log["address"] == deployed.token.address


def test_get_logs_address_filter_separates_same_event_signature(
    w3: Web3, deployed: Deployed, transfers: dict[str, TxReceipt]
) -> None:
    span = {"fromBlock": transfers["0to1"]["blockNumber"], "toBlock": "latest"}
    nft_logs = w3.eth.get_logs({**span, "address": deployed.nft.address})
    mint_hash = hex0x(transfers["mint"]["transactionHash"])
    assert mint_hash in _tx_hashes(nft_logs)
    mint_log = next(log for log in nft_logs if hex0x(log["transactionHash"]) == mint_hash)
    assert len(mint_log["topics"]) == 4  # ERC-721 Transfer indexes the token id too
    assert int.from_bytes(mint_log["topics"][3], "big") == 7
    assert hex0x(mint_log["topics"][1]) == "0x" + "00" * 32  # minted from address(0)
    both = w3.eth.get_logs(
        {
            **span,
            "address": [deployed.token.address, deployed.nft.address],
            "topics": [TRANSFER_TOPIC],
        }
    )
    assert {log["address"] for log in both} == {deployed.token.address, deployed.nft.address}
    assert _tx_hashes(both) >= {hex0x(r["transactionHash"]) for r in transfers.values()}
    anywhere = w3.eth.get_logs({**span, "topics": [TRANSFER_TOPIC]})
    assert _tx_hashes(anywhere) >= _tx_hashes(both)


def test_get_logs_block_range_and_block_hash(
    w3: Web3, deployed: Deployed, transfers: dict[str, TxReceipt]
) -> None:
    r = transfers["0to2"]
    n = r["blockNumber"]
    only = w3.eth.get_logs({"address": deployed.token.address, "fromBlock": n, "toBlock": n})
    assert hex0x(r["transactionHash"]) in _tx_hashes(only)
    assert all(log["blockNumber"] == n for log in only)
    before = w3.eth.get_logs(
        {"address": deployed.token.address, "fromBlock": n - 1, "toBlock": n - 1}
    )
    assert hex0x(r["transactionHash"]) not in _tx_hashes(before)
    by_hash = w3.eth.get_logs({"address": deployed.token.address, "blockHash": r["blockHash"]})
    assert _tx_hashes(by_hash) == _tx_hashes(only)
    events = deployed.token.events.Transfer().get_logs(from_block=n, to_block=n)
    assert _tx_hashes(list(events)) == _tx_hashes(only)


def test_get_logs_decoded_with_argument_filters(
    deployed: Deployed, transfers: dict[str, TxReceipt], accts: list[LocalAccount]
) -> None:
    events = deployed.token.events.Transfer().get_logs(
        argument_filters={"from": accts[1].address},
        from_block=transfers["0to1"]["blockNumber"],
        to_block=transfers["mint"]["blockNumber"],
    )
    assert [dict(e["args"]) for e in events] == [
        {"from": accts[1].address, "to": accts[2].address, "value": 3}
    ]
    assert events[0]["event"] == "Transfer"
    assert events[0]["logIndex"] == transfers["1to2"]["logs"][0]["logIndex"]


# --- state at past blocks ------------------------------------------------------------------------


def test_eth_call_at_past_block_reads_old_value(
    w3: Web3, sender: Sender, deployed: Deployed, accts: list[LocalAccount]
) -> None:
    c = deployed.errors
    start = c.functions.value().call()
    r1 = sender.call_tx(accts[0], c, "setValue", start + 1)
    r2 = sender.call_tx(accts[1], c, "setValue", start + 2)
    assert c.functions.value().call() == start + 2
    assert c.functions.value().call(block_identifier=r2["blockNumber"]) == start + 2
    assert c.functions.value().call(block_identifier=r1["blockNumber"]) == start + 1
    assert c.functions.value().call(block_identifier=r1["blockNumber"] - 1) == start
    assert c.functions.value().call(block_identifier=r1["blockHash"]) == start + 1
    (event,) = c.events.ValueChanged().process_receipt(r2)
    assert dict(event["args"]) == {
        "oldValue": start + 1,
        "newValue": start + 2,
        "by": accts[1].address,
    }
    assert [hex0x(t) for t in r2["logs"][0]["topics"]] == [
        VALUE_CHANGED_TOPIC,
        "0x" + (start + 1).to_bytes(32, "big").hex(),
        addr_topic(accts[1].address),
    ]
    slot0_then = w3.eth.get_storage_at(c.address, 0, r1["blockNumber"])
    assert int.from_bytes(slot0_then, "big") == start + 1


# --- reverts -------------------------------------------------------------------------------------


def revert_data(exc: ContractLogicError) -> str:
    """The raw revert data of a failed call, from either error shape nodes use.

    Geth puts the hex string in error.data (web3 then raises the specific subclass); Hardhat 2
    nests it as error.data.data.
    """
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    assert isinstance(data, str), f"no revert data in {exc!r}"
    return data.lower()


def decode_custom_error(abi: list[dict[str, Any]], data: str) -> tuple[str, tuple[Any, ...]]:
    """Decode revert data against the custom errors declared in `abi`."""
    for item in abi:
        if item["type"] != "error":
            continue
        types = [i["type"] for i in item["inputs"]]
        selector = "0x" + keccak(text=f"{item['name']}({','.join(types)})")[:4].hex()
        if data[:10] == selector:
            values = abi_decode(types, bytes.fromhex(data[10:]))
            return item["name"], tuple(
                to_checksum_address(v) if t == "address" else v
                for t, v in zip(types, values, strict=True)
            )
    raise AssertionError(f"revert data {data} matches no error in the ABI")


def expect_revert(fn: Callable[[], Any]) -> ContractLogicError:
    """Run `fn`, which must revert; return the web3 error."""
    with pytest.raises(ContractLogicError) as info:
        fn()
    return info.value


def test_custom_error_with_arguments(deployed: Deployed, accts: list[LocalAccount]) -> None:
    c, me = deployed.errors, accts[2].address
    exc = expect_revert(lambda: c.functions.requireBalance(5).call({"from": me}))
    if isinstance(exc.data, str):
        assert isinstance(exc, ContractCustomError)
    assert decode_custom_error(c.abi, revert_data(exc)) == ("InsufficientBalance", (me, 0, 5))

    exc = expect_revert(lambda: c.functions.onlyFrom(accts[0].address).call({"from": me}))
    assert decode_custom_error(c.abi, revert_data(exc)) == ("Unauthorized", (me,))

    exc = expect_revert(lambda: c.functions.empty().call())
    assert revert_data(exc) == "0x" + keccak(text="Empty()")[:4].hex()
    assert decode_custom_error(c.abi, revert_data(exc)) == ("Empty", ())


def test_custom_error_after_state_change(
    sender: Sender, deployed: Deployed, accts: list[LocalAccount]
) -> None:
    c, a = deployed.errors, accts[3]
    sender.call_tx(a, c, "deposit", 40)
    have = c.functions.balanceOf(a.address).call()
    exc = expect_revert(lambda: c.functions.withdraw(have + 2).call({"from": a.address}))
    assert decode_custom_error(c.abi, revert_data(exc)) == (
        "InsufficientBalance",
        (a.address, have, have + 2),
    )


def test_estimate_gas_of_reverting_call_reports_revert(
    deployed: Deployed, accts: list[LocalAccount]
) -> None:
    c, me = deployed.errors, accts[2].address
    exc = expect_revert(lambda: c.functions.withdraw(1).estimate_gas({"from": me}))
    assert decode_custom_error(c.abi, revert_data(exc)) == ("InsufficientBalance", (me, 0, 1))


def test_revert_reason_string(deployed: Deployed) -> None:
    c = deployed.errors
    assert c.functions.requireOk(True).call() is True
    exc = expect_revert(lambda: c.functions.requireOk(False).call())
    assert "CustomErrors: not ok" in str(exc.message)
    data = revert_data(exc)
    assert data[:10] == ERROR_STRING_SELECTOR
    assert abi_decode(["string"], bytes.fromhex(data[10:])) == ("CustomErrors: not ok",)


@pytest.mark.parametrize(
    ("call", "code"),
    [(lambda c: c.functions.divide(1, 0), 0x12), (lambda c: c.functions.assertOk(False), 0x01)],
    ids=["division-by-zero", "assert"],
)
def test_panic(deployed: Deployed, call: Callable[[Contract], Any], code: int) -> None:
    exc = expect_revert(lambda: call(deployed.errors).call())
    data = revert_data(exc)
    if isinstance(exc.data, str):
        assert isinstance(exc, ContractPanicError)
    assert data == PANIC_SELECTOR + code.to_bytes(32, "big").hex()
    assert deployed.errors.functions.divide(7, 2).call() == 3


def test_revert_without_data(deployed: Deployed) -> None:
    exc = expect_revert(lambda: deployed.errors.functions.bareRevert().call())
    data = exc.data.get("data") if isinstance(exc.data, dict) else exc.data
    assert data in (None, "0x", "no data")  # "no data": web3's marker for an absent field


def test_mined_reverting_transaction_has_status_zero(
    w3: Web3, sender: Sender, deployed: Deployed, accts: list[LocalAccount]
) -> None:
    c, a = deployed.errors, accts[4]
    nonce = w3.eth.get_transaction_count(a.address, "pending")
    signed = sender.sign(
        a, {"to": c.address, "data": c.encode_abi("withdraw", args=[10**30]), "gas": 100_000}
    )
    # Hardhat's automine reports the revert on send, yet still mines the transaction.
    with contextlib.suppress(ContractLogicError, Web3RPCError):
        w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = sender.wait(signed.hash)
    assert receipt["status"] == 0
    assert receipt["logs"] == []
    assert 21_000 < receipt["gasUsed"] < 100_000
    assert w3.eth.get_transaction_count(a.address) == nonce + 1


def test_nft_owner_only_mint(
    sender: Sender, deployed: Deployed, transfers: dict[str, TxReceipt], accts: list[LocalAccount]
) -> None:
    nft = deployed.nft
    assert nft.functions.ownerOf(7).call() == accts[3].address
    assert nft.functions.balanceOf(accts[3].address).call() == 1
    assert nft.functions.owner().call() == accts[0].address
    exc = expect_revert(
        lambda: nft.functions.mint(accts[1].address, 8).call({"from": accts[1].address})
    )
    assert decode_custom_error(nft.abi, revert_data(exc)) == (
        "OwnableUnauthorizedAccount",
        (accts[1].address,),
    )
    exc = expect_revert(lambda: nft.functions.ownerOf(8).call())
    assert decode_custom_error(nft.abi, revert_data(exc)) == ("ERC721NonexistentToken", (8,))


# --- filters -------------------------------------------------------------------------------------


def test_log_filter_returns_new_logs_once(
    w3: Web3, sender: Sender, deployed: Deployed, accts: list[LocalAccount]
) -> None:
    token = deployed.token
    criteria = {
        "address": token.address,
        "topics": [TRANSFER_TOPIC, None, addr_topic(accts[4].address)],
    }
    changes = w3.eth.filter(criteria)
    # A separate filter for eth_getFilterLogs: Hardhat forgets logs already polled by changes.
    ranged = w3.eth.filter({**criteria, "fromBlock": w3.eth.block_number})
    try:
        assert changes.get_new_entries() == []
        receipt = sender.call_tx(accts[0], token, "transfer", accts[4].address, 5)
        sender.call_tx(accts[0], token, "transfer", accts[3].address, 5)  # filtered out by topic
        entries = changes.get_new_entries()
        assert _tx_hashes(entries) == {hex0x(receipt["transactionHash"])}
        assert entries[0]["address"] == token.address
        assert changes.get_new_entries() == []
        all_logs = w3.eth.get_filter_logs(ranged.filter_id)
        assert _tx_hashes(all_logs) == {hex0x(receipt["transactionHash"])}
    finally:
        assert w3.eth.uninstall_filter(changes.filter_id) is True
        assert w3.eth.uninstall_filter(ranged.filter_id) is True
    assert w3.eth.uninstall_filter(changes.filter_id) is False


def test_block_filter_reports_new_block_hashes(
    w3: Web3, sender: Sender, accts: list[LocalAccount]
) -> None:
    block_filter = w3.eth.filter("latest")
    try:
        receipt = sender.transact(accts[1], {"to": accts[2].address, "value": 1})
        hashes = [HexBytes(h) for h in block_filter.get_new_entries()]
        assert HexBytes(receipt["blockHash"]) in hashes
        assert HexBytes(receipt["blockHash"]) not in [
            HexBytes(h) for h in block_filter.get_new_entries()
        ]
    finally:
        w3.eth.uninstall_filter(block_filter.filter_id)


def test_unknown_filter_id_is_an_error(w3: Web3) -> None:
    reply = w3.provider.make_request(RPCEndpoint("eth_getFilterChanges"), ["0xdeadbeef"])
    assert "error" in reply or reply["result"] is None  # geth: error; Hardhat: null


# --- transaction types, gas and fees --------------------------------------------------------------


def test_estimate_gas(
    w3: Web3, sender: Sender, deployed: Deployed, accts: list[LocalAccount]
) -> None:
    a0, a1 = accts[0].address, accts[1].address
    plain = w3.eth.estimate_gas({"from": a0, "to": a1, "value": 1})
    assert 21_000 <= plain <= 21_100  # geth says 21000; Hardhat's search stops at 21001
    data = deployed.token.encode_abi("transfer", args=[a1, 1])
    estimate = w3.eth.estimate_gas({"from": a0, "to": deployed.token.address, "data": data})
    assert 21_000 < estimate < 100_000
    receipt = sender.transact(
        accts[0], {"to": deployed.token.address, "data": data, "gas": estimate}
    )
    assert receipt["gasUsed"] <= estimate


def test_eip1559_transaction(w3: Web3, sender: Sender, accts: list[LocalAccount]) -> None:
    a, b = accts[1], accts[2]
    priority = w3.eth.max_priority_fee
    assert priority >= 0
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    max_fee = 3 * base + 2 * GWEI
    before = w3.eth.get_balance(b.address)
    receipt = sender.transact(
        a,
        {
            "to": b.address,
            "value": 12345,
            "type": 2,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": 2 * GWEI,
        },
    )
    assert w3.eth.get_balance(b.address) == before + 12345
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 2
    assert tx["maxFeePerGas"] == max_fee
    assert tx["maxPriorityFeePerGas"] == 2 * GWEI
    assert tx["chainId"] == CHAIN_ID
    assert tx["value"] == 12345
    assert tx["from"] == a.address and tx["to"] == b.address
    block_base = w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"]
    assert receipt["type"] == 2
    assert receipt["gasUsed"] == 21_000
    assert receipt["effectiveGasPrice"] == min(max_fee, block_base + 2 * GWEI)
    assert tx["gasPrice"] == receipt["effectiveGasPrice"]


def test_legacy_transaction(w3: Web3, sender: Sender, accts: list[LocalAccount]) -> None:
    a, b = accts[2], accts[3]
    gas_price = w3.eth.gas_price
    assert gas_price > 0
    receipt = sender.transact(a, {"to": b.address, "value": 7, "gasPrice": gas_price}, legacy=True)
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 0
    assert tx["gasPrice"] == gas_price
    assert tx["v"] in (CHAIN_ID * 2 + 35, CHAIN_ID * 2 + 36)  # EIP-155
    assert receipt["type"] == 0
    assert receipt["effectiveGasPrice"] == gas_price


def test_bad_raw_transactions_are_rejected(
    w3: Web3, sender: Sender, accts: list[LocalAccount]
) -> None:
    a = accts[4]
    sender.transact(a, {"to": a.address, "value": 1, "gas": 21_000})  # so nonce 0 is used up
    stale = sender.sign(a, {"to": a.address, "value": 1, "gas": 21_000}, nonce=0)
    with pytest.raises(Web3RPCError):
        w3.eth.send_raw_transaction(stale.raw_transaction)
    wrong_chain = a.sign_transaction(
        {
            "to": a.address,
            "value": 1,
            "gas": 21_000,
            "gasPrice": w3.eth.gas_price,
            "nonce": w3.eth.get_transaction_count(a.address),
            "chainId": CHAIN_ID + 1,
        }
    )
    with pytest.raises(Web3RPCError):
        w3.eth.send_raw_transaction(wrong_chain.raw_transaction)
    with pytest.raises(Web3RPCError):
        w3.eth.send_raw_transaction(b"\x02\xc0")


def test_block_by_number_and_hash(w3: Web3, sender: Sender, accts: list[LocalAccount]) -> None:
    receipt = sender.transact(accts[3], {"to": accts[0].address, "value": 1})
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    for key in (
        "hash",
        "parentHash",
        "stateRoot",
        "transactionsRoot",
        "receiptsRoot",
        "logsBloom",
        "miner",
        "gasLimit",
        "gasUsed",
        "timestamp",
        "baseFeePerGas",
    ):
        assert key in block, key
    assert block["number"] == receipt["blockNumber"]
    assert block["hash"] == receipt["blockHash"]
    assert block["baseFeePerGas"] > 0
    assert receipt["transactionHash"] in [tx["hash"] for tx in block["transactions"]]
    by_hash = w3.eth.get_block(receipt["blockHash"])
    assert by_hash["number"] == block["number"]
    assert receipt["transactionHash"] in by_hash["transactions"]
    parent = w3.eth.get_block(block["number"] - 1)
    assert block["parentHash"] == parent["hash"]
    assert block["timestamp"] >= parent["timestamp"]
    latest = w3.eth.get_block("latest")
    assert latest["number"] >= block["number"] == w3.eth.get_block(block["number"])["number"]
    assert w3.eth.block_number >= block["number"]


def test_fee_history_shape(w3: Web3) -> None:
    latest = w3.eth.block_number
    count = min(4, latest + 1)
    history = w3.eth.fee_history(count, "latest", [25, 75])
    assert history["oldestBlock"] == latest - count + 1
    assert len(history["baseFeePerGas"]) == count + 1
    assert all(fee > 0 for fee in history["baseFeePerGas"])
    assert len(history["gasUsedRatio"]) == count
    assert all(0 <= ratio <= 1 for ratio in history["gasUsedRatio"])
    assert len(history["reward"]) == count
    assert all(len(rewards) == 2 and rewards[0] <= rewards[1] for rewards in history["reward"])


# --- WebSocket subscriptions ---------------------------------------------------------------------


async def _next_matching(
    w3ws: AsyncWeb3[Any], subscription: str, match: Callable[[Any], bool]
) -> Any:
    """Return the first result of `subscription` for which `match` holds."""

    async def scan() -> Any:
        async for message in w3ws.socket.process_subscriptions():
            if message["subscription"] == subscription and match(message["result"]):
                return message["result"]
        raise AssertionError("subscription stream ended")

    return await asyncio.wait_for(scan(), WS_TIMEOUT_S)


async def test_ws_new_heads_after_transaction(
    dev_node: DevNode, sender: Sender, accts: list[LocalAccount]
) -> None:
    async with AsyncWeb3(WebSocketProvider(dev_node.ws_url)) as w3ws:
        assert await w3ws.eth.chain_id == CHAIN_ID
        sub = await w3ws.eth.subscribe("newHeads")
        signed = sender.sign(accts[0], {"to": accts[1].address, "value": 1, "gas": 21_000})
        tx_hash = await w3ws.eth.send_raw_transaction(signed.raw_transaction)
        receipt = sender.wait(tx_hash)
        head = await _next_matching(w3ws, sub, lambda h: h["number"] >= receipt["blockNumber"])
        assert head["number"] == receipt["blockNumber"]
        assert head["hash"] == receipt["blockHash"]
        for key in ("parentHash", "stateRoot", "timestamp", "gasUsed", "baseFeePerGas"):
            assert key in head, key
        assert await w3ws.eth.unsubscribe(sub) is True


async def test_ws_logs_subscription_receives_transfer(
    dev_node: DevNode, sender: Sender, deployed: Deployed, accts: list[LocalAccount]
) -> None:
    token = deployed.token
    async with AsyncWeb3(WebSocketProvider(dev_node.ws_url)) as w3ws:
        sub = await w3ws.eth.subscribe(
            "logs", {"address": token.address, "topics": [TRANSFER_TOPIC]}
        )
        signed = sender.sign(
            accts[0],
            {"to": token.address, "data": token.encode_abi("transfer", args=[accts[2].address, 9])},
        )
        await w3ws.eth.send_raw_transaction(signed.raw_transaction)
        log = await _next_matching(
            w3ws, sub, lambda entry: HexBytes(entry["transactionHash"]) == HexBytes(signed.hash)
        )
        assert log["address"] == token.address
        assert [hex0x(t) for t in log["topics"]] == [
            TRANSFER_TOPIC,
            addr_topic(accts[0].address),
            addr_topic(accts[2].address),
        ]
        assert int.from_bytes(HexBytes(log["data"]), "big") == 9
        receipt = sender.wait(signed.hash)
        assert log["blockHash"] == receipt["blockHash"]
        assert await w3ws.eth.unsubscribe(sub) is True
