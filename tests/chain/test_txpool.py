"""Tests of the transaction pool: admission rules, ordering, head updates and limits."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any

import pytest
import rlp
from eth.constants import SECPK1_N
from eth.vm.forks.prague import PragueVM
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys import keys
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from powerverse.chain.txpool import PooledTx, TxPool, TxPoolConfig, decode_raw_transaction
from powerverse.chain.txpool_errors import (
    AccountLimitExceededError,
    AlreadyKnownError,
    EmptyAuthListError,
    FeeCapVeryHighError,
    FloorDataGasTooLowError,
    GasLimitExceededError,
    InsufficientFundsError,
    IntrinsicGasTooLowError,
    InvalidChainIdError,
    InvalidSenderError,
    InvalidTransactionEncodingError,
    MaxInitCodeSizeExceededError,
    NonceMaxError,
    NonceTooHighError,
    NonceTooLowError,
    NotReplayProtectedError,
    OversizedDataError,
    ReplacementUnderpricedError,
    SetCodeTxCreateError,
    TipAboveFeeCapError,
    TipVeryHighError,
    TxPoolError,
    TxPoolOverflowError,
    TxTypeNotSupportedError,
    UnderpricedError,
)

CHAIN_ID = 31337
GWEI = 10**9
ETHER = 10**18
GAS_LIMIT = 30_000_000
TO = "0x" + "22" * 20
KEYS: list[LocalAccount] = [Account.from_key((i + 1).to_bytes(32, "big")) for i in range(6)]
ADDR: list[bytes] = [bytes.fromhex(k.address[2:]) for k in KEYS]
BUILDER = PragueVM.get_transaction_builder()


@dataclass
class FakeState:
    """A dict-backed StateView."""

    nonces: dict[bytes, int] = field(default_factory=dict)
    balances: dict[bytes, int] = field(default_factory=dict)

    def get_nonce(self, address: bytes) -> int:
        return self.nonces.get(bytes(address), 0)

    def get_balance(self, address: bytes) -> int:
        return self.balances.get(bytes(address), 0)


def rich_state() -> FakeState:
    return FakeState(balances={a: 1000 * ETHER for a in ADDR})


@functools.cache
def sign(
    key: int = 0,
    nonce: int = 0,
    *,
    kind: str = "1559",
    fee: int = 2 * GWEI,
    tip: int = 1 * GWEI,
    gas: int = 21_000,
    value: int = 0,
    data: bytes = b"",
    to: str = TO,
    chain_id: int | None = CHAIN_ID,
) -> bytes:
    """Signs a transaction with eth-account and returns its raw bytes."""
    tx: dict[str, Any] = {"nonce": nonce, "gas": gas, "to": to, "value": value, "data": data}
    if chain_id is not None:
        tx["chainId"] = chain_id
    if kind == "legacy":
        tx["gasPrice"] = fee
    elif kind == "access_list":
        tx.update(
            type=1, gasPrice=fee, accessList=[{"address": TO, "storageKeys": ["0x" + "00" * 32]}]
        )
    else:
        tx.update(type=2, maxFeePerGas=fee, maxPriorityFeePerGas=tip)
    return bytes(KEYS[key].sign_transaction(tx).raw_transaction)


def evm_key(key: int = 0) -> keys.PrivateKey:
    return keys.PrivateKey((key + 1).to_bytes(32, "big"))


def add(pool: TxPool, raw: bytes, state: FakeState, base_fee: int = 0) -> PooledTx:
    return pool.add_raw(raw, state, base_fee=base_fee, block_gas_limit=GAS_LIMIT)


def refused(pool: TxPool, raw: bytes, state: FakeState, base_fee: int = 0) -> TxPoolError:
    with pytest.raises(TxPoolError) as info:
        add(pool, raw, state, base_fee)
    return info.value


def refused_tx(pool: TxPool, tx: Any, state: FakeState) -> TxPoolError:
    with pytest.raises(TxPoolError) as info:
        pool.add(tx, state, base_fee=0, block_gas_limit=GAS_LIMIT)
    return info.value


def nonces(pool: TxPool, which: str, key: int) -> list[int]:
    return list(pool.content()[which].get(ADDR[key], {}))


# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize("kind", ["legacy", "access_list", "1559"])
def test_add_raw_accepts_each_transaction_kind(kind: str) -> None:
    pool = TxPool(chain_id=CHAIN_ID)
    raw = sign(kind=kind, gas=30_000)
    ptx = add(pool, raw, rich_state())
    assert ptx.sender == ADDR[0]
    assert ptx.nonce == 0
    assert ptx.raw == raw and ptx.size == len(raw)
    assert ptx.hash == decode_raw_transaction(raw).hash
    assert pool.get(ptx.hash) is ptx
    assert pool.status() == (1, 0) and len(pool) == 1


def test_hash_matches_eth_account() -> None:
    signed = KEYS[1].sign_transaction(
        {"type": 2, "nonce": 0, "maxFeePerGas": GWEI, "maxPriorityFeePerGas": 1, "gas": 21_000}
        | {"to": TO, "value": 1, "chainId": CHAIN_ID}
    )
    ptx = add(TxPool(chain_id=CHAIN_ID), bytes(signed.raw_transaction), rich_state())
    assert ptx.hash == bytes(signed.hash)


def test_set_code_transaction_is_accepted() -> None:
    auth = KEYS[1].sign_authorization({"chainId": CHAIN_ID, "address": TO, "nonce": 0})
    signed = KEYS[0].sign_transaction(
        {"type": 4, "nonce": 0, "maxFeePerGas": GWEI, "maxPriorityFeePerGas": 1, "gas": 100_000}
        | {"to": TO, "value": 0, "chainId": CHAIN_ID, "authorizationList": [auth]}
    )
    ptx = add(TxPool(chain_id=CHAIN_ID), bytes(signed.raw_transaction), rich_state())
    assert ptx.tx.type_id == 4


def test_received_numbers_increase() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    first = add(pool, sign(0), state)
    second = add(pool, sign(1), state)
    assert second.received > first.received


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        (b"", InvalidTransactionEncodingError, "typed transaction too short"),
        (b"\x02", InvalidTransactionEncodingError, "typed transaction too short"),
        (b"\x00\xc0", TxTypeNotSupportedError, "transaction type not supported"),
        (b"\x03\xc0", TxTypeNotSupportedError, "transaction type not supported"),
        (b"\x05\xc0", TxTypeNotSupportedError, "transaction type not supported"),
        (b"\x7f\xc0", TxTypeNotSupportedError, "transaction type not supported"),
        (b"\x85hello", InvalidTransactionEncodingError, None),
        (b"\xc0", InvalidTransactionEncodingError, None),
        (b"\x02\xc0", InvalidTransactionEncodingError, None),
        (b"\xff" * 40, InvalidTransactionEncodingError, None),
    ],
)
def test_decode_rejects_garbage(raw: bytes, error: type[TxPoolError], message: str | None) -> None:
    with pytest.raises(error) as info:
        decode_raw_transaction(raw)
    if message is not None:
        assert info.value.message == message
    else:
        assert info.value.message.startswith("rlp: ")
    assert str(info.value) == info.value.message


def test_decode_rejects_trailing_bytes() -> None:
    for raw in (sign(kind="legacy"), sign()):
        with pytest.raises(InvalidTransactionEncodingError):
            decode_raw_transaction(raw + b"\x00")


def test_decode_rejects_non_canonical_integers() -> None:
    fields = rlp.decode(sign(kind="legacy"))
    fields[0] = b"\x00"  # nonce 0 must be encoded as the empty string
    with pytest.raises(InvalidTransactionEncodingError):
        decode_raw_transaction(rlp.encode(fields))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_raises_only_pool_errors(raw: bytes) -> None:
    with contextlib.suppress(TxPoolError):
        decode_raw_transaction(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["legacy", "access_list", "1559"]),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 3),
)
def test_add_raw_of_mangled_transactions_raises_only_pool_errors(
    kind: str, edits: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(sign(kind=kind, gas=40_000))
    for index, byte in edits:
        raw[index % len(raw)] = byte
    mangled = bytes(raw[: len(raw) - cut])
    with contextlib.suppress(TxPoolError):
        add(TxPool(chain_id=CHAIN_ID), mangled, rich_state())


# ---------------------------------------------------------------- stateless rules


def test_oversized_data() -> None:
    pool = TxPool(chain_id=CHAIN_ID)
    raw = sign(gas=3_000_000, data=b"\x01" * (128 * 1024))
    error = refused(pool, raw, rich_state())
    assert isinstance(error, OversizedDataError)
    assert error.message == f"oversized data: transaction size {len(raw)}, limit 131072"


def test_oversized_data_is_checked_before_decoding() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(max_tx_size=10))
    error = refused(pool, b"\xff" * 11, rich_state())
    assert isinstance(error, OversizedDataError)


def test_blob_transaction_is_refused() -> None:
    unsigned = BUILDER.new_unsigned_blob_transaction(
        chain_id=CHAIN_ID,
        nonce=0,
        max_priority_fee_per_gas=1,
        max_fee_per_gas=GWEI,
        gas=21_000,
        to=b"\x11" * 20,
        value=0,
        data=b"",
        access_list=[],
        max_fee_per_blob_gas=1,
        blob_versioned_hashes=[b"\x01" + b"\x00" * 31],
    )
    blob_tx = unsigned.as_signed_transaction(evm_key())
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    for error in (refused(pool, blob_tx.encode(), state), refused_tx(pool, blob_tx, state)):
        assert isinstance(error, TxTypeNotSupportedError)
        assert error.message == "transaction type not supported"


def test_unprotected_legacy_is_refused() -> None:
    error = refused(TxPool(chain_id=CHAIN_ID), sign(kind="legacy", chain_id=None), rich_state())
    assert isinstance(error, NotReplayProtectedError)
    assert error.message == "only replay-protected (EIP-155) transactions allowed over RPC"


@pytest.mark.parametrize("kind", ["legacy", "access_list", "1559"])
def test_wrong_chain_id_is_refused(kind: str) -> None:
    error = refused(
        TxPool(chain_id=CHAIN_ID), sign(kind=kind, chain_id=1, gas=30_000), rich_state()
    )
    assert isinstance(error, InvalidChainIdError)
    assert isinstance(error, InvalidSenderError)
    assert error.message == "invalid sender: invalid chain id for signer"


def test_high_s_signature_is_refused() -> None:
    tx = decode_raw_transaction(sign())
    malleated = tx.copy(s=SECPK1_N - tx.s, y_parity=1 - tx.y_parity)
    assert bytes(malleated.sender) == ADDR[0]  # still recovers: only the range rule refuses it
    error = refused_tx(TxPool(chain_id=CHAIN_ID), malleated, rich_state())
    assert isinstance(error, InvalidSenderError)
    assert error.message == "invalid sender: invalid transaction v, r, s values"


@pytest.mark.parametrize("overrides", [{"r": 0}, {"s": 0}, {"r": SECPK1_N}, {"y_parity": 2}])
def test_out_of_range_signature_values_are_refused(overrides: dict[str, int]) -> None:
    tx = decode_raw_transaction(sign()).copy(**overrides)
    error = refused_tx(TxPool(chain_id=CHAIN_ID), tx, rich_state())
    assert error.message == "invalid sender: invalid transaction v, r, s values"


def test_unrecoverable_signature_is_refused() -> None:
    tx = decode_raw_transaction(sign())
    for r in range(1, 1000):
        candidate = tx.copy(r=r)
        try:
            candidate.sender  # noqa: B018 - looking for an r with no curve point
        except BadSignature:
            break
    else:
        pytest.fail("no unrecoverable r found")
    error = refused_tx(TxPool(chain_id=CHAIN_ID), tx.copy(r=r), rich_state())
    assert isinstance(error, InvalidSenderError)
    assert error.message == "invalid sender: recovery failed"


def test_gas_above_block_limit_is_refused() -> None:
    pool = TxPool(chain_id=CHAIN_ID)
    raw = sign(gas=GAS_LIMIT + 1)
    error = refused(pool, raw, rich_state())
    assert isinstance(error, GasLimitExceededError)
    assert error.message == "exceeds block gas limit"
    assert add(pool, sign(gas=GAS_LIMIT), rich_state()).tx.gas == GAS_LIMIT


def test_tip_above_fee_cap_is_refused() -> None:
    error = refused(TxPool(chain_id=CHAIN_ID), sign(fee=GWEI, tip=GWEI + 1), rich_state())
    assert isinstance(error, TipAboveFeeCapError)
    assert error.message == "max priority fee per gas higher than max fee per gas"


def test_fee_cap_of_2_256_is_refused() -> None:
    unsigned = BUILDER.create_unsigned_transaction(
        nonce=0, gas_price=2**256, gas=21_000, to=b"\x11" * 20, value=0, data=b""
    )
    tx = unsigned.as_signed_transaction(evm_key(), chain_id=CHAIN_ID)
    error = refused(TxPool(chain_id=CHAIN_ID), tx.encode(), rich_state())
    assert isinstance(error, FeeCapVeryHighError)
    assert error.message == "max fee per gas higher than 2^256-1"


def test_tip_of_2_256_is_refused() -> None:
    unsigned = BUILDER.new_unsigned_dynamic_fee_transaction(
        chain_id=CHAIN_ID,
        nonce=0,
        max_priority_fee_per_gas=2**256,
        max_fee_per_gas=1,
        gas=21_000,
        to=b"\x11" * 20,
        value=0,
        data=b"",
        access_list=[],
    )
    tx = unsigned.as_signed_transaction(evm_key())
    error = refused(TxPool(chain_id=CHAIN_ID), tx.encode(), rich_state())
    assert isinstance(error, TipVeryHighError)
    assert error.message == "max priority fee per gas higher than 2^256-1"


def test_max_nonce_is_refused() -> None:
    error = refused(TxPool(chain_id=CHAIN_ID), sign(nonce=2**64 - 1), rich_state())
    assert isinstance(error, NonceMaxError)
    assert error.message == "nonce has max value"


def test_intrinsic_gas_too_low() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    error = refused(pool, sign(gas=20_999), state)
    assert type(error) is IntrinsicGasTooLowError
    assert error.message == "intrinsic gas too low: gas 20999, minimum needed 21000"
    error = refused(pool, sign(kind="access_list", gas=25_299), state)
    assert error.message == "intrinsic gas too low: gas 25299, minimum needed 25300"
    assert add(pool, sign(kind="access_list", gas=25_300), state).tx.gas == 25_300


def test_intrinsic_gas_of_contract_creation_counts_initcode_words() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    data = b"\x60" * 100  # 21000 + 32000 + 100 * 16 + 4 words * 2
    error = refused(pool, sign(to="", data=data, gas=54_607), state)
    assert error.message == "intrinsic gas too low: gas 54607, minimum needed 54608"
    assert add(pool, sign(to="", data=data, gas=54_608), state).tx.to == b""


def test_initcode_too_large_is_refused() -> None:
    raw = sign(to="", data=b"\x60" * 49_153, gas=10_000_000)
    error = refused(TxPool(chain_id=CHAIN_ID), raw, rich_state())
    assert isinstance(error, MaxInitCodeSizeExceededError)
    assert error.message == "max initcode size exceeded: code size 49153, limit 49152"


def test_calldata_floor_gas() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    data = b"\x01" * 1000  # intrinsic 37000; EIP-7623 floor 21000 + 10 * 4000 = 61000
    error = refused(pool, sign(data=data, gas=60_999), state)
    assert isinstance(error, FloorDataGasTooLowError)
    assert isinstance(error, IntrinsicGasTooLowError)
    assert error.message == (
        "insufficient gas for floor data gas cost: gas 60999, minimum needed 61000"
    )
    assert add(pool, sign(data=data, gas=61_000), state).tx.gas == 61_000


def test_tip_below_minimum_is_underpriced() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(min_priority_fee=GWEI))
    error = refused(pool, sign(tip=GWEI // 2), rich_state())
    assert isinstance(error, UnderpricedError)
    assert (
        error.message == "transaction underpriced: tip needed 1000000000, tip permitted 500000000"
    )
    legacy = refused(pool, sign(kind="legacy", fee=GWEI - 1), rich_state())
    assert legacy.message.startswith("transaction underpriced")


def test_fee_cap_below_base_fee_is_accepted_but_not_selected() -> None:
    pool = TxPool(chain_id=CHAIN_ID)
    ptx = add(pool, sign(fee=GWEI, tip=GWEI), rich_state(), base_fee=5 * GWEI)
    assert pool.get(ptx.hash) is ptx and pool.status() == (1, 0)
    assert pool.select(5 * GWEI) == []
    assert pool.select(GWEI) == [ptx]


def _set_code_tx(*, to: bytes, authorizations: list[Any]) -> Any:
    unsigned = BUILDER.new_unsigned_set_code_transaction(
        chain_id=CHAIN_ID,
        nonce=0,
        max_priority_fee_per_gas=1,
        max_fee_per_gas=GWEI,
        gas=100_000,
        to=to,
        value=0,
        data=b"",
        access_list=[],
        authorization_list=authorizations,
    )
    return unsigned.as_signed_transaction(evm_key())


def test_set_code_transaction_without_authorizations_is_refused() -> None:
    tx = _set_code_tx(to=b"\x11" * 20, authorizations=[])
    error = refused(TxPool(chain_id=CHAIN_ID), tx.encode(), rich_state())
    assert isinstance(error, EmptyAuthListError)
    assert error.message == "EIP-7702 transaction with empty auth list"


def test_set_code_transaction_creating_a_contract_is_refused() -> None:
    auth = {"chain_id": CHAIN_ID, "address": b"\x11" * 20, "nonce": 0, "y_parity": 0}
    tx = _set_code_tx(to=b"", authorizations=[auth | {"r": 1, "s": 1}])
    error = refused(TxPool(chain_id=CHAIN_ID), tx.encode(), rich_state())
    assert isinstance(error, SetCodeTxCreateError)
    assert error.message == "EIP-7702 transaction cannot be used to create contract"


# ---------------------------------------------------------------- stateful rules


def test_already_known() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    add(pool, sign(), state)
    error = refused(pool, sign(), state)
    assert isinstance(error, AlreadyKnownError)
    assert error.message == "already known"


def test_nonce_too_low() -> None:
    state = rich_state()
    state.nonces[ADDR[0]] = 5
    error = refused(TxPool(chain_id=CHAIN_ID), sign(nonce=3), state)
    assert isinstance(error, NonceTooLowError)
    address = to_checksum_address(ADDR[0])
    assert error.message == f"nonce too low: address {address}, tx: 3 state: 5"


def test_nonce_too_high() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    state.nonces[ADDR[0]] = 2
    error = refused(pool, sign(nonce=2 + 1025), state)
    assert isinstance(error, NonceTooHighError)
    address = to_checksum_address(ADDR[0])
    assert error.message == f"nonce too high: address {address}, tx: 1027 state: 2"
    add(pool, sign(nonce=2 + 1024), state)
    assert pool.status() == (0, 1)


def test_insufficient_funds() -> None:
    state = FakeState(balances={ADDR[0]: 21_000 * 2 * GWEI + 9})
    raw = sign(fee=2 * GWEI, value=10)
    error = refused(TxPool(chain_id=CHAIN_ID), raw, state)
    assert isinstance(error, InsufficientFundsError)
    address = to_checksum_address(ADDR[0])
    want = 21_000 * 2 * GWEI + 10
    assert error.message == (
        f"insufficient funds for gas * price + value: address {address} have {want - 1} want {want}"
    )


def test_insufficient_funds_counts_pending_transactions() -> None:
    cost = 21_000 * 2 * GWEI
    pool, state = TxPool(chain_id=CHAIN_ID), FakeState(balances={ADDR[0]: 2 * cost - 1})
    add(pool, sign(nonce=0), state)
    error = refused(pool, sign(nonce=1), state)
    assert isinstance(error, InsufficientFundsError)
    assert error.message == (
        "insufficient funds for gas * price + value: "
        f"balance {2 * cost - 1}, queued cost {cost}, tx cost {cost}, overshot 1"
    )


def test_replacement_may_spend_what_the_replaced_transaction_would_have() -> None:
    cost = 21_000 * 10 * GWEI
    pool, state = TxPool(chain_id=CHAIN_ID), FakeState(balances={ADDR[0]: cost})
    add(pool, sign(nonce=0, fee=5 * GWEI, tip=GWEI), state)
    new = add(pool, sign(nonce=0, fee=10 * GWEI, tip=2 * GWEI), state)
    assert pool.content()["pending"][ADDR[0]] == {0: new}


# ---------------------------------------------------------------- replacement


@pytest.mark.parametrize("pending", [True, False])
def test_replacement_needs_ten_percent_more(pending: bool) -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    nonce = 0 if pending else 3
    old = add(pool, sign(nonce=nonce, fee=100 * GWEI, tip=10 * GWEI), state)
    which = "pending" if pending else "queued"

    for fee, tip in [
        (109 * GWEI, 11 * GWEI),
        (110 * GWEI, 10_900_000_000),
        (100 * GWEI, 10 * GWEI + 1),
    ]:
        error = refused(pool, sign(nonce=nonce, fee=fee, tip=tip), state)
        assert isinstance(error, ReplacementUnderpricedError)
        assert error.message == "replacement transaction underpriced"
    assert pool.get(old.hash) is old

    new = add(pool, sign(nonce=nonce, fee=110 * GWEI, tip=11 * GWEI), state)
    assert pool.get(old.hash) is None
    assert pool.content()[which][ADDR[0]] == {nonce: new}
    assert len(pool) == 1


def test_replacement_bump_rounds_up() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    add(pool, sign(kind="legacy", fee=15), state)  # 15 * 1.1 = 16.5
    assert isinstance(
        refused(pool, sign(kind="legacy", fee=16), state), ReplacementUnderpricedError
    )
    assert add(pool, sign(kind="legacy", fee=17), state).tip_cap == 17


def test_replacement_of_zero_price_needs_a_positive_price() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    add(pool, sign(fee=0, tip=0), state)
    assert isinstance(
        refused(pool, sign(fee=0, tip=0, value=1), state), ReplacementUnderpricedError
    )
    assert add(pool, sign(fee=1, tip=1), state).fee_cap == 1


def test_replacement_across_transaction_kinds() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    add(pool, sign(kind="legacy", fee=10 * GWEI), state)
    error = refused(pool, sign(fee=20 * GWEI, tip=10 * GWEI), state)
    assert isinstance(error, ReplacementUnderpricedError)  # tip not bumped
    assert add(pool, sign(fee=20 * GWEI, tip=11 * GWEI), state).tx.type_id == 2


# ---------------------------------------------------------------- pending and queued


def test_future_nonce_is_queued_then_promoted() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    add(pool, sign(nonce=1), state)
    add(pool, sign(nonce=2), state)
    assert pool.status() == (0, 2)
    assert pool.pending_nonce(ADDR[0], state) == 0
    add(pool, sign(nonce=0), state)
    assert pool.status() == (3, 0)
    assert nonces(pool, "pending", 0) == [0, 1, 2]
    assert pool.pending_nonce(ADDR[0], state) == 3


def test_pending_nonce_of_unknown_account_is_state_nonce() -> None:
    state = rich_state()
    state.nonces[ADDR[3]] = 7
    assert TxPool(chain_id=CHAIN_ID).pending_nonce(ADDR[3], state) == 7


def test_on_new_head_drops_included_and_promotes() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    for nonce in (0, 1, 3, 4):
        add(pool, sign(nonce=nonce), state)
    assert pool.status() == (2, 2)
    state.nonces[ADDR[0]] = 3  # nonces 0..2 included (2 by another node's block)
    pool.on_new_head(state, base_fee=0)
    assert nonces(pool, "pending", 0) == [3, 4]
    assert pool.content()["queued"] == {}
    assert pool.status() == (2, 0) and len(pool) == 2
    assert pool.pending_nonce(ADDR[0], state) == 5


def test_on_new_head_drops_unaffordable_and_demotes_behind_the_gap() -> None:
    cost = 21_000 * 2 * GWEI
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    add(pool, sign(nonce=0), state)
    big = add(pool, sign(nonce=1, value=ETHER), state)
    add(pool, sign(nonce=2), state)
    state.balances[ADDR[0]] = 10 * cost  # can no longer pay nonce 1's value
    pool.on_new_head(state, base_fee=0)
    assert pool.get(big.hash) is None
    assert nonces(pool, "pending", 0) == [0]
    assert nonces(pool, "queued", 0) == [2]
    assert pool.status() == (1, 1)


def test_on_new_head_drops_accounts_that_emptied() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    add(pool, sign(nonce=0), state)
    state.nonces[ADDR[0]] = 1
    pool.on_new_head(state, base_fee=0)
    assert len(pool) == 0
    assert pool.content() == {"pending": {}, "queued": {}}


def test_add_rebases_a_sender_whose_nonce_moved_before_on_new_head() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    old = add(pool, sign(nonce=0), state)
    add(pool, sign(nonce=2), state)
    state.nonces[ADDR[0]] = 1  # nonce 0 was included; on_new_head not called yet
    add(pool, sign(nonce=1), state)
    assert pool.get(old.hash) is None
    assert nonces(pool, "pending", 0) == [1, 2]


def test_remove_queues_the_senders_later_transactions() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    txs = [add(pool, sign(nonce=n), state) for n in range(3)]
    pool.remove(txs[1].hash)
    assert nonces(pool, "pending", 0) == [0]
    assert nonces(pool, "queued", 0) == [2]
    pool.remove(b"\x00" * 32)  # unknown: no effect
    assert pool.status() == (1, 1)
    add(pool, sign(nonce=1, fee=3 * GWEI), state)
    assert nonces(pool, "pending", 0) == [0, 1, 2]


# ---------------------------------------------------------------- selection


def test_select_orders_by_nonce_then_tip() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    a0 = add(pool, sign(0, 0, fee=10 * GWEI, tip=1 * GWEI), state)
    a1 = add(pool, sign(0, 1, fee=10 * GWEI, tip=5 * GWEI), state)
    b0 = add(pool, sign(1, 0, fee=10 * GWEI, tip=2 * GWEI), state)
    c0 = add(pool, sign(2, 0, kind="legacy", fee=4 * GWEI), state)  # tip = 4 - base fee
    assert pool.select(base_fee=1 * GWEI) == [c0, b0, a0, a1]
    assert pool.select(base_fee=5 * GWEI // 2) == [b0, c0, a0, a1]  # c0 tip: 1.5 gwei


def test_select_skips_fee_cap_below_base_fee_and_the_senders_later_nonces() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    add(pool, sign(0, 0, fee=1 * GWEI, tip=1 * GWEI), state)
    add(pool, sign(0, 1, fee=50 * GWEI, tip=1 * GWEI), state)
    b0 = add(pool, sign(1, 0, fee=3 * GWEI, tip=1), state)
    assert pool.select(base_fee=2 * GWEI) == [b0]


def test_select_breaks_ties_by_arrival() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    first = add(pool, sign(3), state)
    second = add(pool, sign(1), state)
    third = add(pool, sign(2), state)
    assert pool.select(base_fee=0) == [first, second, third]


def test_select_does_not_return_queued() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    add(pool, sign(nonce=1), state)
    assert pool.select(base_fee=0) == []


# ---------------------------------------------------------------- limits


def test_account_limit() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(account_slots=3))
    state = rich_state()
    for nonce in range(3):
        add(pool, sign(nonce=nonce), state)
    error = refused(pool, sign(nonce=3), state)
    assert isinstance(error, AccountLimitExceededError)
    assert error.message == "account limit exceeded: pooled 3 txs"
    add(pool, sign(nonce=2, fee=3 * GWEI, tip=2 * GWEI), state)  # replacements still allowed
    assert pool.status() == (3, 0)


def test_account_limit_lets_a_gap_filler_displace_the_furthest_queued() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(account_slots=3))
    state = rich_state()
    queued = [add(pool, sign(nonce=n), state) for n in (1, 2, 5)]
    add(pool, sign(nonce=0), state)
    assert pool.get(queued[2].hash) is None
    assert nonces(pool, "pending", 0) == [0, 1, 2]
    assert pool.status() == (3, 0)


def test_full_pending_evicts_the_cheapest_other_senders_tail() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(global_slots=3))
    state = rich_state()
    b0 = add(pool, sign(1, 0, fee=GWEI, tip=GWEI), state)
    b1 = add(pool, sign(1, 1, fee=GWEI, tip=GWEI), state)
    c0 = add(pool, sign(2, 0, fee=5 * GWEI, tip=5 * GWEI), state)
    a0 = add(pool, sign(0, 0, fee=2 * GWEI, tip=2 * GWEI), state)
    assert pool.get(b1.hash) is None  # the tail, not b0: no gap for sender 1
    assert {p.hash for p in pool.select(0)} == {b0.hash, c0.hash, a0.hash}
    assert pool.status() == (3, 0)


def test_full_pending_refuses_a_transaction_not_paying_more() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(global_slots=2))
    state = rich_state()
    add(pool, sign(1, 0, fee=2 * GWEI, tip=2 * GWEI), state)
    add(pool, sign(2, 0, fee=3 * GWEI, tip=3 * GWEI), state)
    error = refused(pool, sign(0, 0, fee=2 * GWEI, tip=2 * GWEI), state)
    assert isinstance(error, TxPoolOverflowError)
    assert error.message == "txpool is full"
    assert pool.status() == (2, 0)


def test_full_pending_never_evicts_the_senders_own_transactions() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(global_slots=2))
    state = rich_state()
    add(pool, sign(0, 0, fee=GWEI, tip=GWEI), state)
    add(pool, sign(0, 1, fee=GWEI, tip=GWEI), state)
    error = refused(pool, sign(0, 2, fee=9 * GWEI, tip=9 * GWEI), state)
    assert isinstance(error, TxPoolOverflowError)


def test_eviction_prefers_the_latest_among_equally_cheap() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(global_slots=2))
    state = rich_state()
    early = add(pool, sign(1, 0, fee=GWEI, tip=GWEI), state)
    late = add(pool, sign(2, 0, fee=GWEI, tip=GWEI), state)
    add(pool, sign(0, 0, fee=2 * GWEI, tip=2 * GWEI), state)
    assert pool.get(late.hash) is None and pool.get(early.hash) is early


def test_eviction_uses_the_tip_at_the_current_base_fee() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(global_slots=1))
    state = rich_state()
    add(pool, sign(1, 0, fee=3 * GWEI, tip=3 * GWEI), state, base_fee=2 * GWEI)  # tip 1 gwei
    new = add(pool, sign(0, 0, fee=10 * GWEI, tip=2 * GWEI), state, base_fee=2 * GWEI)
    assert pool.select(2 * GWEI) == [new]


def test_full_queue_evicts_the_cheapest_other_senders_furthest_nonce() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(global_queue=2))
    state = rich_state()
    b2 = add(pool, sign(1, 2, fee=GWEI, tip=GWEI), state)
    b5 = add(pool, sign(1, 5, fee=GWEI, tip=GWEI), state)
    error = refused(pool, sign(0, 3, fee=GWEI, tip=GWEI), state)
    assert isinstance(error, TxPoolOverflowError)
    add(pool, sign(0, 3, fee=2 * GWEI, tip=2 * GWEI), state)
    assert pool.get(b5.hash) is None and pool.get(b2.hash) is b2
    assert pool.status() == (0, 2)


def test_promotion_stops_at_the_pending_limit() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(global_slots=2))
    state = rich_state()
    for nonce in (1, 2, 3):
        add(pool, sign(nonce=nonce), state)
    add(pool, sign(nonce=0), state)
    assert nonces(pool, "pending", 0) == [0, 1]
    assert nonces(pool, "queued", 0) == [2, 3]
    state.nonces[ADDR[0]] = 1
    pool.on_new_head(state, base_fee=0)
    assert nonces(pool, "pending", 0) == [1, 2]
    assert nonces(pool, "queued", 0) == [3]


def test_demotion_keeps_the_queue_within_its_limit() -> None:
    pool = TxPool(chain_id=CHAIN_ID, config=TxPoolConfig(global_queue=1))
    state = rich_state()
    txs = [add(pool, sign(nonce=n), state) for n in range(4)]
    pool.remove(txs[1].hash)
    assert pool.status() == (1, 1)
    assert nonces(pool, "queued", 0) == [2]


def test_config_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="global_slots"):
        TxPoolConfig(global_slots=0)
    with pytest.raises(ValueError, match="price_bump_percent"):
        TxPoolConfig(price_bump_percent=-1)


# ---------------------------------------------------------------- subscriptions


def test_subscribers_see_every_accepted_transaction() -> None:
    pool, state = TxPool(chain_id=CHAIN_ID), rich_state()
    seen: list[PooledTx] = []
    pool.subscribe(seen.append)
    first = add(pool, sign(nonce=0), state)
    refused(pool, sign(nonce=0), state)
    replacement = add(pool, sign(nonce=0, fee=3 * GWEI, tip=2 * GWEI), state)
    queued = add(pool, sign(nonce=4), state)
    assert seen == [first, replacement, queued]
    pool.unsubscribe(seen.append)
    add(pool, sign(nonce=1), state)
    assert len(seen) == 3


def test_add_without_raw_encodes_the_transaction() -> None:
    raw = sign(kind="legacy")
    pool = TxPool(chain_id=CHAIN_ID)
    ptx = pool.add(decode_raw_transaction(raw), rich_state(), base_fee=0, block_gas_limit=GAS_LIMIT)
    assert ptx.raw == raw and ptx.size == len(raw)


# ---------------------------------------------------------------- invariants


SMALL = TxPoolConfig(account_slots=4, global_slots=5, global_queue=3, max_nonce_gap=6)
FEES = [(GWEI, GWEI), (2 * GWEI, GWEI), (3 * GWEI, 2 * GWEI), (5 * GWEI, 5 * GWEI), (GWEI, 0)]


def check_invariants(pool: TxPool, state: FakeState, base_fee: int) -> None:
    content = pool.content()
    pending, queued = content["pending"], content["queued"]
    pending_count = sum(len(txs) for txs in pending.values())
    queued_count = sum(len(txs) for txs in queued.values())
    assert pool.status() == (pending_count, queued_count)
    assert len(pool) == pending_count + queued_count
    assert pending_count <= SMALL.global_slots and queued_count <= SMALL.global_queue
    for account in pool._accounts.values():  # the running cost total used by the funds check
        assert account.pending.total_cost == sum(p.cost for p in account.pending.values())
    hashes: set[bytes] = set()
    for which in (pending, queued):
        for sender, txs in which.items():
            for nonce, ptx in txs.items():
                assert ptx.sender == sender and ptx.nonce == nonce
                assert ptx.hash not in hashes  # never both pending and queued
                hashes.add(ptx.hash)
                assert pool.get(ptx.hash) is ptx
                assert ptx.cost <= state.get_balance(sender)
    for sender in set(pending) | set(queued):
        start = state.get_nonce(sender)
        run = list(pending.get(sender, {}))
        assert run == list(range(start, start + len(run)))  # gapless from the state nonce
        later = list(queued.get(sender, {}))
        assert all(n >= start + len(run) for n in later)
        if start + len(run) in later:  # executable but left queued only when pending is full
            assert pending_count == SMALL.global_slots
        assert len(run) + len(later) <= SMALL.account_slots
        assert pool.pending_nonce(sender, state) == start + len(run)
    selected = pool.select(base_fee)
    assert len({p.hash for p in selected}) == len(selected)
    per_sender: dict[bytes, list[int]] = {}
    for ptx in selected:
        assert ptx.fee_cap >= base_fee
        assert ptx.hash in {p.hash for p in pending[ptx.sender].values()}
        per_sender.setdefault(ptx.sender, []).append(ptx.nonce)
    for sender, got in per_sender.items():
        start = state.get_nonce(sender)
        assert got == list(range(start, start + len(got)))


class PoolMachine(RuleBasedStateMachine):
    """Random adds, heads and removals against a small pool; invariants checked after each."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = TxPool(chain_id=CHAIN_ID, config=SMALL)
        self.state = FakeState(balances={a: 100 * ETHER for a in ADDR})
        self.base_fee = 0

    @rule(
        key=st.integers(0, 3),
        offset=st.one_of(st.just(-1), st.just(-1), st.integers(0, 7)),  # -1: the pending nonce
        fees=st.sampled_from(FEES),
        kind=st.sampled_from(["legacy", "1559"]),
        value=st.sampled_from([0, 0, ETHER]),
    )
    def add_tx(self, key: int, offset: int, fees: tuple[int, int], kind: str, value: int) -> None:
        sender = ADDR[key]
        if offset < 0:
            nonce = self.pool.pending_nonce(sender, self.state)
        else:
            nonce = self.state.get_nonce(sender) + offset
        raw = sign(key, nonce, kind=kind, fee=fees[0], tip=fees[1], value=value)
        with contextlib.suppress(TxPoolError):
            ptx = add(self.pool, raw, self.state, self.base_fee)
            assert self.pool.get(ptx.hash) is ptx

    @rule(
        key=st.integers(0, 3),
        advance=st.integers(0, 3),
        balance=st.sampled_from([None, None, 0, ETHER // 2, 100 * ETHER]),
        base_fee=st.sampled_from([0, GWEI, 3 * GWEI]),
    )
    def new_head(self, key: int, advance: int, balance: int | None, base_fee: int) -> None:
        sender = ADDR[key]
        self.state.nonces[sender] = self.state.get_nonce(sender) + advance
        if balance is not None:
            self.state.balances[sender] = balance
        self.base_fee = base_fee
        self.pool.on_new_head(self.state, base_fee=base_fee)

    @rule(index=st.integers(0, 50))
    def remove_tx(self, index: int) -> None:
        content = self.pool.content()
        pooled = [p for which in content.values() for txs in which.values() for p in txs.values()]
        if pooled:
            self.pool.remove(pooled[index % len(pooled)].hash)

    @invariant()
    def holds(self) -> None:
        check_invariants(self.pool, self.state, self.base_fee)


PoolMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_invariants_hold_for_any_sequence = PoolMachine.TestCase


def test_clear_empties_the_pool() -> None:
    pool = TxPool(chain_id=CHAIN_ID)
    state = rich_state()
    for nonce in (0, 1, 3):
        add(pool, sign(0, nonce), state)
    assert pool.status() == (2, 1)
    pool.clear()
    assert pool.status() == (0, 0)
    assert len(pool) == 0
    assert pool.select(1) == []


def test_a_list_where_an_integer_belongs_is_an_encoding_error() -> None:
    import rlp as pyrlp

    fields: list[object] = [31337, [1], 1, 1, 21_000, bytes(20), 0, b"", [], 0, 1, 1]
    raw = b"\x02" + pyrlp.encode(fields)  # the nonce is a list: found by the fuzz test
    with pytest.raises(TxPoolError, match="rlp"):
        add(TxPool(chain_id=CHAIN_ID), raw, rich_state())
