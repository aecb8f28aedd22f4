"""The rules a block proposed by another node must meet, checked around executing it.

Before execution, the header against its parent (the current head): it extends the head,
its timestamp increases, its gas limit moves within the EIP-1559 bounds, its base fee is the
one the parent implies, its extra data is short, and every field a proposer does not choose
is what this node's own builder would put there. Each transaction must decode, be
replay-protected for this chain and have a recoverable sender. After execution, every field
the proposer computed (roots, gas used, bloom, state root) must equal what execution gave.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from eth.abc import BlockHeaderAPI, LegacyTransactionFieldsAPI, SignedTransactionAPI
from eth.chains.base import MiningChain
from eth.constants import SECPK1_N
from eth.validation import validate_gas_limit
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError

from powerverse.chain.exceptions import BlockNotOnHead, InvalidBlock
from powerverse.chain.txdecode import decode_raw_transaction, sender_of
from powerverse.chain.txpool_errors import TxPoolError

MAX_EXTRA_DATA: Final = 32
"""Longest extra data a header may carry, in bytes (as Ethereum)."""

_TIMESTAMP_LIMIT: Final = 2**64
_UNPROTECTED_V: Final = (27, 28)
# Header fields the proposer does not choose: each must be what this node's builder sets.
_FIXED_FIELDS: Final = (
    "difficulty",
    "nonce",
    "uncles_hash",
    "withdrawals_root",
    "blob_gas_used",
    "excess_blob_gas",
    "parent_beacon_block_root",
    "requests_hash",
)
# Fields execution computes, in the order they are compared.
_COMPUTED_FIELDS: Final = (
    ("transaction_root", "transactions root"),
    ("receipt_root", "receipts root"),
    ("gas_used", "gas used"),
    ("bloom", "logs bloom"),
    ("state_root", "state root"),
)


def expected_header(
    chain: MiningChain,
    parent: BlockHeaderAPI,
    header: BlockHeaderAPI,
    *,
    commitment: Mapping[str, Any] | None = None,
) -> BlockHeaderAPI:
    """The header this node builds on ``parent`` with the proposer's choices in ``header``.

    The proposer chooses the timestamp, fee recipient, mix hash, extra data and gas limit;
    everything else follows from the parent, and from ``commitment`` (the header fields that
    commit to what the block carries beside its transactions, chain/rewards.py). Raises
    InvalidBlock (BlockNotOnHead when ``header`` does not extend ``parent``).
    """
    if header.parent_hash != parent.hash:
        raise BlockNotOnHead(
            f"block {int(header.block_number)} has parent 0x{bytes(header.parent_hash).hex()}, "
            f"but the head is block {int(parent.block_number)} 0x{bytes(parent.hash).hex()}"
        )
    if header.block_number != parent.block_number + 1:
        raise InvalidBlock(
            f"block number {header.block_number} does not follow its parent's {parent.block_number}"
        )
    if not parent.timestamp < header.timestamp < _TIMESTAMP_LIMIT:
        raise InvalidBlock(
            f"timestamp {header.timestamp} is not after its parent's {parent.timestamp}"
            if header.timestamp <= parent.timestamp
            else f"timestamp {header.timestamp} does not fit in 64 bits"
        )
    if len(header.extra_data) > MAX_EXTRA_DATA:
        raise InvalidBlock(
            f"extra data is {len(header.extra_data)} bytes; at most {MAX_EXTRA_DATA} are allowed"
        )
    try:
        validate_gas_limit(header.gas_limit, parent.gas_limit)
    except ValidationError as exc:
        raise InvalidBlock(f"gas limit: {exc} (parent's is {parent.gas_limit})") from exc
    base_fee = calculate_expected_base_fee_per_gas(parent)
    if getattr(header, "base_fee_per_gas", None) != base_fee:
        raise InvalidBlock(
            f"base fee is {getattr(header, 'base_fee_per_gas', None)}; "
            f"the parent implies {base_fee}"
        )
    try:
        expected = chain.create_header_from_parent(
            parent,
            timestamp=header.timestamp,
            coinbase=header.coinbase,
            mix_hash=header.mix_hash,
            extra_data=header.extra_data,
            gas_limit=header.gas_limit,
            **(commitment or {}),
        )
    except (ValidationError, TypeError, ValueError) as exc:
        raise InvalidBlock(f"malformed header: {exc}") from exc
    for name in _FIXED_FIELDS:
        has, wants = getattr(header, name, None), getattr(expected, name)
        if has != wants:
            raise InvalidBlock(f"header field {name} is {_show(has)}; expected {_show(wants)}")
    return expected


def check_transactions_root(header: BlockHeaderAPI, root: bytes) -> None:
    """Raise InvalidBlock unless the header commits to the transactions received with it."""
    _compare("transactions root", header.transaction_root, root)


def check_execution(header: BlockHeaderAPI, executed: BlockHeaderAPI) -> None:
    """Raise InvalidBlock unless what execution computed is what the header says, hash last."""
    for name, label in _COMPUTED_FIELDS:
        _compare(label, getattr(header, name), getattr(executed, name))
    _compare("block hash", header.hash, executed.hash)


def _compare(label: str, has: object, computed: object) -> None:
    if has != computed:
        raise InvalidBlock(
            f"{label} mismatch: the header has {_show(has)}, execution gives {_show(computed)}"
        )


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and value.bit_length() > 64:
        return hex(value)
    return repr(value)


def block_transaction(raw: bytes, index: int, chain_id: int) -> SignedTransactionAPI:
    """Decode a block's ``index``-th transaction and check its replay protection."""
    try:
        tx = decode_raw_transaction(raw)
    except TxPoolError as exc:
        raise InvalidBlock(f"transaction {index} is malformed: {exc}") from exc
    if tx.type_id is None and isinstance(tx, LegacyTransactionFieldsAPI):
        if tx.v in _UNPROTECTED_V:
            raise InvalidBlock(f"transaction {index} is not replay-protected (no EIP-155 chain id)")
    elif tx.y_parity not in (0, 1):
        raise InvalidBlock(f"transaction {index} has an invalid signature (y parity)")
    if tx.chain_id != chain_id:
        raise InvalidBlock(f"transaction {index} is for chain id {tx.chain_id}, not {chain_id}")
    if not (0 < tx.r < SECPK1_N and 0 < tx.s <= SECPK1_N // 2):
        raise InvalidBlock(f"transaction {index} has an invalid signature (r, s values)")
    return tx


def recover_sender(tx: SignedTransactionAPI, index: int) -> bytes:
    """The sender of a block's ``index``-th transaction, recovered from its signature."""
    try:
        return sender_of(tx)
    except (BadSignature, ValidationError, ValueError) as exc:
        raise InvalidBlock(f"transaction {index}: the sender cannot be recovered ({exc})") from exc
