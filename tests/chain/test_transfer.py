"""Plain transfers applied directly give exactly what py-evm's full path gives.

Each example builds the same candidate transactions into two fresh chains, one with the
direct path for plain transfers and one sending everything through py-evm, and compares the
block hashes (state, transaction and receipt roots), the receipts and the refused transactions.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account as EthAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerverse.chain.blockchain import Blockchain
from powerverse.chain.executor import pooled_from_raw
from powerverse.chain.genesis import Account, dev_genesis
from powerverse.chain.store import LmdbStore
from powerverse.chain.transfer import TRANSFER_GAS, is_plain_transfer, transfer_receipt
from powerverse.chain.txdecode import decode_raw_transaction
from powerverse.chain.txpool import PooledTx

KEYS = [EthAccount.from_key(bytes([i + 1]) * 32) for i in range(3)]
ADDRS = [bytes.fromhex(k.address[2:]) for k in KEYS]
CONTRACT = b"\xcc" * 20  # has code: STOP
EMPTY = b"\xee" * 20  # exists in genesis with nothing in it (EIP-161 clears it when touched)
STORAGE_ONLY = b"\xdd" * 20  # storage but no code
FRESH = b"\xf0" * 20
PRECOMPILES = [(n).to_bytes(20, "big") for n in (1, 4, 9, 17)]
COINBASES = [b"\xc0" * 20, ADDRS[0], ADDRS[2], EMPTY]  # ADDRS[2]: a poor sender paid tips
BASE_FEE = 1_000_000_000

GENESIS = dev_genesis(1_700_000_000, ADDRS)
GENESIS = replace(
    GENESIS,
    alloc={
        **GENESIS.alloc,
        ADDRS[2]: Account(balance=25 * 10**15),  # runs out of funds within a few transfers
        CONTRACT: Account(code=b"\x00"),
        EMPTY: Account(),
        STORAGE_ONLY: Account(storage={1: 2}),
    },
)

recipients = st.sampled_from([*ADDRS, CONTRACT, EMPTY, STORAGE_ONLY, FRESH, *PRECOMPILES])


@st.composite
def transactions(draw: st.DrawFn) -> tuple[int, dict[str, object]]:
    key = draw(st.integers(0, len(KEYS) - 1))
    kind = draw(st.sampled_from(["legacy", "2930", "1559", "1559", "1559"]))
    tx: dict[str, object] = {
        "gas": draw(st.sampled_from([TRANSFER_GAS, TRANSFER_GAS, 30_000, TRANSFER_GAS - 1])),
        "to": draw(recipients),
        "value": draw(st.sampled_from([0, 1, 10**15, 10**16, 10**22])),
        "chainId": 31337,
    }
    if draw(st.booleans()) and kind != "legacy":
        tx["accessList"] = [{"address": "0x" + "ab" * 20, "storageKeys": []}]
    if draw(st.integers(0, 9)) == 0:
        tx["data"] = b"\x01"
    price = draw(st.sampled_from([BASE_FEE - 1, BASE_FEE, 2 * BASE_FEE, 10**11]))
    if kind == "legacy":
        tx["gasPrice"] = price
    else:
        tx["type"] = 1 if kind == "2930" else 2
        if kind == "2930":
            tx["gasPrice"] = price
            tx.setdefault("accessList", [])
        else:
            tx["maxFeePerGas"] = price
            tx["maxPriorityFeePerGas"] = draw(st.sampled_from([0, 1, 10**9, price + 1]))
    return key, tx


def _sign(plan: list[tuple[int, dict[str, object]]], nonce_skew: list[int]) -> list[PooledTx]:
    nonces = [0] * len(KEYS)
    out = []
    for (key, tx), skew in zip(plan, nonce_skew, strict=False):
        signed = dict(tx, nonce=max(0, nonces[key] + skew))
        if skew == 0:
            nonces[key] += 1
        raw = bytes(KEYS[key].sign_transaction(signed).raw_transaction)
        out.append(pooled_from_raw(raw, ADDRS[key]))
    return out


def _build(ptxs: list[PooledTx], coinbase: bytes, *, fast: bool) -> tuple[object, ...]:
    with tempfile.TemporaryDirectory() as tmp:
        chain = Blockchain(LmdbStore(Path(tmp)), GENESIS, fast_transfers=fast)
        try:
            first = chain.build_block(ptxs, timestamp=1_700_000_012, coinbase=coinbase)
            # A second block on top: balances, nonces and cleared accounts carry over.
            again = chain.build_block(ptxs, timestamp=1_700_000_024, coinbase=coinbase)
            return (
                bytes(first.block.hash),
                [r.encode() for r in first.receipts],
                first.rejected,
                bytes(again.block.hash),
                again.rejected,
                chain.get_balance(EMPTY),
                chain.state_at(chain.head).account_exists(EMPTY),
            )
        finally:
            chain.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.lists(transactions(), min_size=1, max_size=14),
    skew=st.lists(st.sampled_from([0, 0, 0, 0, 1, -1]), min_size=14, max_size=14),
    coinbase=st.sampled_from(COINBASES),
)
def test_direct_transfers_match_py_evm(
    plan: list[tuple[int, dict[str, object]]], skew: list[int], coinbase: bytes
) -> None:
    ptxs = _sign(plan, skew)
    assert _build(ptxs, coinbase, fast=True) == _build(ptxs, coinbase, fast=False)


def test_a_block_of_plain_transfers_matches_py_evm() -> None:
    plan = [
        (
            i % 2,
            {
                "gas": TRANSFER_GAS,
                "to": FRESH,
                "value": 5,
                "chainId": 31337,
                "maxFeePerGas": 2 * BASE_FEE,
                "maxPriorityFeePerGas": 10**9,
                "type": 2,
            },
        )
        for i in range(40)
    ]
    ptxs = _sign(plan, [0] * 40)
    fast = _build(ptxs, COINBASES[0], fast=True)
    assert fast == _build(ptxs, COINBASES[0], fast=False)
    assert len(fast[1]) == 40 and fast[2] == ()


@pytest.mark.parametrize("to", [FRESH, CONTRACT], ids=["transfer", "contract-call"])
def test_a_fee_recipient_can_spend_the_tips_of_earlier_transfers(to: bytes) -> None:
    """The direct path credits tips once per block; a fee recipient that sends (a transfer,
    or a call on py-evm's path) must still see every earlier tip in its balance."""
    rich_tip = 10**13  # 0.21 PVC of tip per transfer
    plan: list[tuple[int, dict[str, object]]] = [
        (
            0,
            {
                "gas": TRANSFER_GAS,
                "to": FRESH,
                "value": 1,
                "chainId": 31337,
                "maxFeePerGas": rich_tip + BASE_FEE,
                "maxPriorityFeePerGas": rich_tip,
                "type": 2,
            },
        )
        for _ in range(5)
    ]
    # ADDRS[2] holds 0.025 PVC: this costs more than that, less than that plus the tips.
    spend = {
        "gas": TRANSFER_GAS if to == FRESH else 30_000,
        "to": to,
        "value": 5 * 10**17,
        "chainId": 31337,
        "maxFeePerGas": BASE_FEE,
        "maxPriorityFeePerGas": 0,
        "type": 2,
    }
    ptxs = _sign([*plan, (2, spend)], [0] * 6)
    fast = _build(ptxs, ADDRS[2], fast=True)
    assert fast == _build(ptxs, ADDRS[2], fast=False)
    assert len(fast[1]) == 6 and fast[2] == ()  # all six applied, the last one too


def test_touched_empty_accounts_are_cleared_only_when_not_credited() -> None:
    """EIP-161 on the direct path: a transfer of 0 to an empty account, and a fee recipient
    that is empty and gets no tip, remove the account; a credited one stays."""

    def plain(value: int, tip: int) -> dict[str, object]:
        return {
            "gas": TRANSFER_GAS,
            "to": EMPTY,
            "value": value,
            "chainId": 31337,
            "maxFeePerGas": 2 * BASE_FEE,
            "maxPriorityFeePerGas": tip,
            "type": 2,
        }

    for value, tip, coinbase, cleared in (
        (0, 10**9, COINBASES[0], True),  # the recipient is touched and empty
        (0, 0, EMPTY, True),  # the same account as recipient and untipped fee recipient
        (5, 0, COINBASES[0], False),  # credited: no longer empty
        (5, 10**9, EMPTY, False),
    ):
        ptxs = _sign([(0, plain(value, tip))], [0])
        fast = _build(ptxs, coinbase, fast=True)
        assert fast == _build(ptxs, coinbase, fast=False)
        assert fast[2] == ()  # applied
        assert fast[-1] is not cleared  # does EMPTY still exist after the block?


def _tx(**over: object) -> bytes:
    tx: dict[str, object] = {
        "nonce": 0,
        "gas": TRANSFER_GAS,
        "to": FRESH,
        "value": 1,
        "chainId": 31337,
        "maxFeePerGas": BASE_FEE,
        "maxPriorityFeePerGas": 1,
        "type": 2,
    }
    tx.update(over)
    signed = {key: value for key, value in tx.items() if value is not None}  # None drops it
    return bytes(KEYS[0].sign_transaction(signed).raw_transaction)


def test_what_counts_as_a_plain_transfer() -> None:
    from eth.vm.forks.prague.computation import PragueComputation

    pre = PragueComputation.get_precompiles()

    def plain(raw: bytes) -> bool:
        return is_plain_transfer(decode_raw_transaction(raw), pre)

    assert plain(_tx())
    assert plain(_tx(gas=100_000))
    assert not plain(_tx(data=b"\x00"))
    assert not plain(_tx(to=None, data=b"\x00"))
    assert not plain(_tx(to=PRECOMPILES[0]))
    assert not plain(_tx(gas=TRANSFER_GAS - 1))
    assert not plain(_tx(accessList=[{"address": "0x" + "ab" * 20, "storageKeys": []}]))


@pytest.mark.parametrize("kind", ["legacy", "2930", "1559"])
def test_transfer_receipt_is_py_evm_s(kind: str) -> None:
    no_1559 = {"maxFeePerGas": None, "maxPriorityFeePerGas": None, "gasPrice": BASE_FEE}
    over: dict[str, object] = {
        "legacy": {**no_1559, "type": None},
        "2930": {**no_1559, "type": 1, "accessList": []},
        "1559": {},
    }[kind]
    tx = decode_raw_transaction(_tx(**over))
    for gas_used in (21_000, 2**40):
        mine = transfer_receipt(tx, gas_used)
        theirs = tx.make_receipt(b"\x01", gas_used, ())
        assert type(mine) is type(theirs)
        assert mine == theirs
        assert mine.encode() == theirs.encode()
        assert mine.bloom == theirs.bloom == 0
