"""Plain value transfers applied without building an EVM message.

A transaction that sends value to an account with no code, with no call data, no access
list and no authorizations, runs no EVM code: its whole effect is the sender paying
``21,000 * gas price`` and the value, the recipient receiving the value, the fee recipient
receiving the tip, and EIP-161 clearing of touched empty accounts. py-evm spends most of its
per-transaction time building the message and computation objects around that; this module
applies the same effect directly on py-evm's state, after py-evm's own validation.

Everything else goes through py-evm's ``apply_transaction``. The equivalence is tested
differentially (tests/chain/test_transfer.py): random mixes of transactions, including every
edge this module handles, give the same state roots, receipts and rejections either way.
"""

from __future__ import annotations

from typing import Any, cast

from eth.abc import BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, VirtualMachineAPI
from eth.constants import EMPTY_SHA3
from eth.rlp.accounts import Account
from eth.rlp.receipts import Receipt
from eth.vm.forks.byzantium.constants import EIP658_TRANSACTION_STATUS_CODE_SUCCESS
from eth_typing import Address
from rlp.sedes.serializable import BaseSerializable

TRANSFER_GAS = 21_000
"""Gas a plain transfer uses: the intrinsic cost, and the EIP-7623 floor with no call data."""

_TYPES = (None, 0, 1, 2)  # legacy, EIP-2930 and EIP-1559 transactions


def is_plain_transfer(tx: SignedTransactionAPI, precompiles: Any) -> bool:
    """Whether ``tx`` has the shape of a plain transfer (the recipient's code is checked later)."""
    to = tx.to
    return (
        len(to) == 20
        and not tx.data
        and tx.type_id in _TYPES
        and not getattr(tx, "access_list", ())
        and to not in precompiles
        and tx.gas >= TRANSFER_GAS
    )


def apply_plain_transfer(
    vm: VirtualMachineAPI,
    header: BlockHeaderAPI,
    tx: SignedTransactionAPI,
    *,
    owed_fees: list[int] | None = None,
) -> ReceiptAPI | None:
    """Apply ``tx`` as a plain transfer and return its receipt; None when it is not one.

    Raises py-evm's ``ValidationError`` for a transaction py-evm would refuse, having changed
    nothing. ``header`` carries the block's gas used so far, as for ``VM.apply_transaction``.

    With ``owed_fees``, a non-zero tip for a fee recipient that is neither the sender nor the
    recipient is appended there instead of credited: the caller credits the sum before
    anything else can look at the fee recipient (see ``BlockRun``). Crediting it once per
    block instead of once per transfer gives the same state.
    """
    state = vm.state
    to = Address(tx.to)
    sender = Address(tx.sender)
    if state.get_code_hash(to) != EMPTY_SHA3 or state.get_code_hash(sender) != EMPTY_SHA3:
        return None
    accounts = state._account_db  # type: ignore[attr-defined]
    coinbase = state.coinbase
    fee = TRANSFER_GAS * state.get_tip(tx)
    defer = owed_fees is not None and fee > 0 and coinbase != sender and coinbase != to
    if owed_fees and not defer:
        # This transfer looks at the fee recipient: pay it what it is owed first.
        credit(accounts, coinbase, sum(owed_fees))
        owed_fees.clear()
    vm.validate_transaction_against_header(header, tx)
    state.lock_changes()
    state.validate_transaction(tx)

    value = tx.value
    _pay(accounts, sender, TRANSFER_GAS * state.get_gas_price(tx) + value)
    if value:
        credit(accounts, to, value)
    if defer:
        owed_fees.append(fee)  # type: ignore[union-attr]
    else:
        credit(accounts, coinbase, fee)
    # EIP-161: the recipient and the fee recipient are touched; empty ones are removed. One
    # that was just credited (or is owed a fee) is not empty, so only the others need a look.
    for touched, credited in ((to, value), (coinbase, fee)):
        if not credited and state.account_exists(touched) and state.account_is_empty(touched):
            state.delete_account(touched)
    return transfer_receipt(tx, header.gas_used + TRANSFER_GAS)


def transfer_receipt(tx: SignedTransactionAPI, gas_used: int) -> ReceiptAPI:
    """``tx.make_receipt(success, gas_used, ())``: no logs, so an empty bloom; built with
    its fields in order (py-evm's constructor computes the bloom of no logs and passes the
    fields through keyword arguments, several times the cost)."""
    inner = Receipt.__new__(Receipt)  # type: ignore[type-abstract]
    BaseSerializable.__init__(inner, EIP658_TRANSACTION_STATUS_CODE_SUCCESS, gas_used, 0, ())
    if tx.type_id is None:
        return cast(ReceiptAPI, inner)
    typed: Any = tx
    return cast(ReceiptAPI, typed.receipt_builder.typed_receipt_class(tx.type_id, inner))


def credit(accounts: Any, address: Address, amount: int) -> None:
    """Add ``amount`` wei to ``address`` in py-evm's account database, touching it (as
    ``delta_balance`` does, without its copy of the account, which costs ten times a new one).
    """
    account = accounts._get_account(address)
    accounts._set_account(
        address,
        Account(account.nonce, account.balance + amount, account.storage_root, account.code_hash),
    )


def _pay(accounts: Any, sender: Address, cost: int) -> None:
    """Debit ``cost`` and increment the nonce in one account write (py-evm's delta_balance
    and increment_nonce would read, copy, encode and write the account twice).

    ``validate_transaction`` has checked that the balance covers the cost and the nonce.
    """
    account = accounts._get_account(sender)
    accounts._set_account(
        sender,
        Account(account.nonce + 1, account.balance - cost, account.storage_root, account.code_hash),
    )
