"""Consensus stakes come from the Staking contract as of a given block (real EVM, real store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from powerverse.chain.blockchain import Blockchain
from powerverse.chain.executor import pooled_from_raw
from powerverse.chain.genesis import PVC, Genesis, Validator, dev_genesis
from powerverse.chain.store import LmdbStore
from powerverse.contracts.system import STAKING, dev_system_config, with_system_contracts
from powerverse.node.staking import ContractStakes, StakingReadError

T0 = 1_700_000_000
KEYS = [Account.from_key(bytes([i + 1]) * 32) for i in range(3)]
ADDRS = [bytes.fromhex(k.address[2:]) for k in KEYS]
GENESIS_KEY = b"\x11" * 32
NEW_KEY = b"\x22" * 32


def _genesis(with_staking: bool = True) -> Genesis:
    base = dev_genesis(T0, ADDRS, Validator(ADDRS[0], GENESIS_KEY, 1000 * PVC))
    return with_system_contracts(base, dev_system_config()) if with_staking else base


def _register_raw(nonce: int, key: bytes, stake: int) -> bytes:
    data = keccak(text="registerValidator(bytes32,uint16)")[:4] + key + (500).to_bytes(32, "big")
    tx = {
        "nonce": nonce,
        "gas": 1_000_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "to": "0x" + STAKING.hex(),
        "value": stake,
        "data": data,
        "chainId": 31337,
        "type": 2,
    }
    return bytes(KEYS[1].sign_transaction(tx).raw_transaction)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Blockchain]:
    c = Blockchain(LmdbStore(tmp_path / "db"), _genesis())
    yield c
    c.close()


def test_genesis_set_comes_from_the_contract(chain: Blockchain) -> None:
    stakes = ContractStakes(chain, chain.genesis).stakes_at(0)
    assert set(stakes) == {GENESIS_KEY}
    entry = stakes[GENESIS_KEY]
    assert (entry.account, entry.stake) == (ADDRS[0], 1000)  # whole PVC units


def test_a_validator_that_registers_counts_from_that_block_on(chain: Blockchain) -> None:
    source = ContractStakes(chain, chain.genesis)
    assert set(source.stakes_at(0)) == {GENESIS_KEY}
    raw = _register_raw(0, NEW_KEY, 250 * PVC + 7)  # the odd wei do not make a unit
    built = chain.build_block(
        [pooled_from_raw(raw, ADDRS[1])], timestamp=T0 + 1, coinbase=b"\x09" * 20
    )
    assert built.receipts[0].state_root == b"\x01", "registerValidator reverted"
    after = source.stakes_at(1)
    assert set(after) == {GENESIS_KEY, NEW_KEY}
    assert after[NEW_KEY].stake == 250
    assert after[NEW_KEY].account == ADDRS[1]
    assert set(source.stakes_at(0)) == {GENESIS_KEY}  # the past does not change


def test_heights_beyond_the_head_are_refused(chain: Blockchain) -> None:
    with pytest.raises(StakingReadError, match="beyond this node's head"):
        ContractStakes(chain, chain.genesis).stakes_at(1)


def test_a_chain_without_staking_keeps_the_genesis_set(tmp_path: Path) -> None:
    c = Blockchain(LmdbStore(tmp_path / "db"), _genesis(with_staking=False))
    try:
        stakes = ContractStakes(c, c.genesis).stakes_at(0)
        assert set(stakes) == {GENESIS_KEY}
        assert stakes[GENESIS_KEY].stake == 1000
    finally:
        c.close()
