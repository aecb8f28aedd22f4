"""Blocks we build are blocks py-evm's own import path accepts, with the same hash and state."""

from __future__ import annotations

import json
from pathlib import Path

from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth_account import Account

from powerverse.chain.blockchain import Blockchain, _chain_class, genesis_params, genesis_state
from powerverse.chain.executor import pooled_from_raw
from powerverse.chain.genesis import dev_genesis
from powerverse.chain.store import LmdbStore
from powerverse.chain.txpool import PooledTx

KEYS = [Account.from_key(bytes([i + 1]) * 32) for i in range(4)]
ARTIFACT = Path(__file__).resolve().parents[1] / "contracts" / "artifacts" / "CustomErrors.json"


def _raw(key: int, nonce: int, **over: object) -> bytes:
    tx: dict[str, object] = {
        "nonce": nonce,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "to": "0x" + "44" * 20,
        "value": 7,
        "chainId": 31337,
        "type": 2,
    }
    tx.update(over)
    if tx["to"] is None:
        del tx["to"]
    return bytes(KEYS[key].sign_transaction(tx).raw_transaction)


def _legacy(key: int, nonce: int) -> bytes:
    tx = {
        "nonce": nonce,
        "gas": 21_000,
        "gasPrice": 2 * 10**10,
        "to": "0x" + "44" * 20,
        "value": 1,
        "chainId": 31337,
    }
    return bytes(KEYS[key].sign_transaction(tx).raw_transaction)


def _ptx(key: int, raw: bytes) -> PooledTx:
    return pooled_from_raw(raw, bytes.fromhex(KEYS[key].address[2:]))


def test_built_blocks_import_into_a_fresh_py_evm_chain(tmp_path: Path) -> None:
    genesis = dev_genesis(1_700_000_000, [bytes.fromhex(k.address[2:]) for k in KEYS])
    ours = Blockchain(LmdbStore(tmp_path), genesis)
    code = json.loads(ARTIFACT.read_text())["bytecode"]
    blocks = []
    first = [
        _ptx(0, _raw(0, 0)),
        _ptx(1, _raw(1, 0, to=None, value=0, gas=1_000_000, data=code)),  # a contract
        _ptx(2, _raw(2, 0, gas=30_000, data="0x" + "ab" * 40)),  # calldata to an EOA
        _ptx(0, _raw(0, 0)),  # stale duplicate: left out
        _ptx(3, _legacy(3, 0)),  # a legacy EIP-155 transaction
    ]
    for candidates, ts in ((first, 1_700_000_012), ([_ptx(0, _raw(0, 1))], 1_700_000_024)):
        built = ours.build_block(candidates, timestamp=ts, coinbase=b"\x09" * 20)
        blocks.append(built.block)
    assert len(blocks[0].transactions) == 4

    reference = _chain_class(genesis.chain_id).from_genesis(
        AtomicDB(MemoryDB()), genesis_params(genesis), genesis_state(genesis)
    )
    for block in blocks:
        result = reference.import_block(block)  # full validation: roots, state, header rules
        assert result.imported_block.hash == block.hash
    assert reference.get_canonical_head().state_root == ours.head.state_root
    ours.close()
