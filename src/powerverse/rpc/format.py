"""Ethereum JSON shapes of blocks, transactions, receipts and logs."""

from __future__ import annotations

from typing import Any

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth_utils import keccak, to_checksum_address

from powerverse.rpc.params import hexd, hexq

ZERO_NONCE = "0x0000000000000000"
EMPTY_UNCLES = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"


def _addr(b: bytes) -> str:
    return to_checksum_address(bytes(b))


def header_json(header: BlockHeaderAPI) -> dict[str, Any]:
    """A header in the shape of eth_getBlockByNumber (without transactions)."""
    out: dict[str, Any] = {
        "number": hexq(header.block_number),
        "hash": hexd(header.hash),
        "parentHash": hexd(header.parent_hash),
        "nonce": hexd(header.nonce),
        "mixHash": hexd(header.mix_hash),
        "sha3Uncles": hexd(header.uncles_hash),
        "logsBloom": hexd(header.bloom.to_bytes(256, "big")),
        "transactionsRoot": hexd(header.transaction_root),
        "stateRoot": hexd(header.state_root),
        "receiptsRoot": hexd(header.receipt_root),
        "miner": _addr(header.coinbase),
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": hexd(header.extra_data),
        "gasLimit": hexq(header.gas_limit),
        "gasUsed": hexq(header.gas_used),
        "timestamp": hexq(header.timestamp),
        "baseFeePerGas": hexq(header.base_fee_per_gas),
    }
    for attr, key in (
        ("withdrawals_root", "withdrawalsRoot"),
        ("parent_beacon_block_root", "parentBeaconBlockRoot"),
        ("requests_hash", "requestsHash"),
    ):
        value = getattr(header, attr, None)
        if value is not None:
            out[key] = hexd(value)
    for attr, key in (("blob_gas_used", "blobGasUsed"), ("excess_blob_gas", "excessBlobGas")):
        value = getattr(header, attr, None)
        if value is not None:
            out[key] = hexq(value)
    return out


def block_json(
    block: BlockAPI,
    senders: tuple[bytes, ...],
    *,
    full: bool,
) -> dict[str, Any]:
    """A whole block; transactions as hashes or as objects."""
    header = block.header
    out = header_json(header)
    txs = block.transactions
    if full:
        out["transactions"] = [
            tx_json(tx, senders[i] if i < len(senders) else bytes(tx.sender), header, i)
            for i, tx in enumerate(txs)
        ]
    else:
        out["transactions"] = [hexd(tx.hash) for tx in txs]
    out["uncles"] = []
    out["withdrawals"] = []
    out["size"] = hexq(len(rlp.encode(block)))
    return out


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    """What each unit of gas cost: min(maxFee, baseFee + maxPriorityFee), or gasPrice."""
    if tx.type_id is None or tx.type_id in (0, 1):
        return int(tx.gas_price)
    return int(min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas))


def tx_json(
    tx: SignedTransactionAPI,
    sender: bytes,
    header: BlockHeaderAPI | None,
    index: int | None,
) -> dict[str, Any]:
    """A transaction, mined (with block fields) or pending (with nulls)."""
    type_id = tx.type_id or 0
    out: dict[str, Any] = {
        "hash": hexd(tx.hash),
        "type": hexq(type_id),
        "nonce": hexq(tx.nonce),
        "from": _addr(sender),
        "to": _addr(tx.to) if tx.to else None,
        "value": hexq(tx.value),
        "gas": hexq(tx.gas),
        "input": hexd(tx.data),
        "blockHash": hexd(header.hash) if header is not None else None,
        "blockNumber": hexq(header.block_number) if header is not None else None,
        "transactionIndex": hexq(index) if index is not None else None,
        "r": hexq(tx.r),
        "s": hexq(tx.s),
    }
    if type_id == 0:
        out["gasPrice"] = hexq(tx.gas_price)
        v = tx.v if hasattr(tx, "v") else 27 + tx.y_parity
        out["v"] = hexq(v)
        if v >= 35:
            out["chainId"] = hexq((v - 35) // 2)
    else:
        out["chainId"] = hexq(tx.chain_id)
        out["v"] = hexq(tx.y_parity)
        out["yParity"] = hexq(tx.y_parity)
        out["accessList"] = [
            {"address": _addr(a), "storageKeys": [hexd(k.to_bytes(32, "big")) for k in keys]}
            for a, keys in tx.access_list
        ]
        if type_id == 1:
            out["gasPrice"] = hexq(tx.gas_price)
        else:
            out["maxFeePerGas"] = hexq(tx.max_fee_per_gas)
            out["maxPriorityFeePerGas"] = hexq(tx.max_priority_fee_per_gas)
            base = header.base_fee_per_gas if header is not None else None
            out["gasPrice"] = hexq(
                effective_gas_price(tx, base) if base is not None else tx.max_fee_per_gas
            )
    return out


def contract_address(sender: bytes, nonce: int) -> bytes:
    """Address of a contract created by `sender` with `nonce` (CREATE)."""
    return keccak(rlp.encode([sender, nonce]))[12:]


def log_json(
    log: Any,
    header: BlockHeaderAPI,
    tx_hash: bytes,
    tx_index: int,
    log_index: int,
    removed: bool = False,
) -> dict[str, Any]:
    """One log entry."""
    return {
        "address": _addr(log.address),
        "topics": [hexd(t.to_bytes(32, "big")) for t in log.topics],
        "data": hexd(log.data),
        "blockNumber": hexq(header.block_number),
        "blockHash": hexd(header.hash),
        "blockTimestamp": hexq(header.timestamp),
        "transactionHash": hexd(tx_hash),
        "transactionIndex": hexq(tx_index),
        "logIndex": hexq(log_index),
        "removed": removed,
    }


def block_logs_json(
    block: BlockAPI, receipts: tuple[ReceiptAPI, ...], removed: bool = False
) -> list[dict[str, Any]]:
    """Every log of a block, in order, with block-wide log indexes."""
    out = []
    log_index = 0
    for i, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=False)):
        for log in receipt.logs:
            out.append(log_json(log, block.header, bytes(tx.hash), i, log_index, removed))
            log_index += 1
    return out


def receipt_json(
    block: BlockAPI,
    receipts: tuple[ReceiptAPI, ...],
    senders: tuple[bytes, ...],
    index: int,
) -> dict[str, Any]:
    """The receipt of transaction `index` of `block`."""
    header = block.header
    tx = block.transactions[index]
    receipt = receipts[index]
    sender = senders[index] if index < len(senders) else bytes(tx.sender)
    prev_cumulative = receipts[index - 1].gas_used if index > 0 else 0
    first_log_index = sum(len(r.logs) for r in receipts[:index])
    created = contract_address(sender, tx.nonce) if not tx.to else None
    return {
        "transactionHash": hexd(tx.hash),
        "transactionIndex": hexq(index),
        "blockHash": hexd(header.hash),
        "blockNumber": hexq(header.block_number),
        "from": _addr(sender),
        "to": _addr(tx.to) if tx.to else None,
        "cumulativeGasUsed": hexq(receipt.gas_used),
        "gasUsed": hexq(receipt.gas_used - prev_cumulative),
        "contractAddress": _addr(created) if created else None,
        "logs": [
            log_json(log, header, bytes(tx.hash), index, first_log_index + j)
            for j, log in enumerate(receipt.logs)
        ],
        "logsBloom": hexd(receipt.bloom.to_bytes(256, "big")),
        "type": hexq(tx.type_id or 0),
        "status": "0x1" if receipt.state_root == b"\x01" else "0x0",
        "effectiveGasPrice": hexq(effective_gas_price(tx, int(header.base_fee_per_gas))),
    }
