"""Decoding of raw (EIP-2718 binary) transactions as eth_sendRawTransaction receives them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, cast

import rlp
from coincurve import PublicKey
from eth.abc import SignedTransactionAPI
from eth.exceptions import UnrecognizedTransactionType
from eth.vm.forks.berlin.constants import ACCESS_LIST_TRANSACTION_TYPE
from eth.vm.forks.london.constants import DYNAMIC_FEE_TRANSACTION_TYPE
from eth.vm.forks.london.transactions import DynamicFeeTransaction
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.constants import SET_CODE_TRANSACTION_TYPE
from eth.vm.forks.prague.transactions import PragueLegacyTransaction, PragueTypedTransaction
from eth_hash.auto import keccak
from eth_utils.exceptions import ValidationError
from rlp.codec import encode_raw
from rlp.sedes.serializable import BaseSerializable

from powerverse.chain.rlp_guard import RlpShapeError, check_rlp_depth
from powerverse.chain.trie_root import uint_bytes
from powerverse.chain.txpool_errors import InvalidTransactionEncodingError, TxTypeNotSupportedError

__all__ = ["SUPPORTED_TX_TYPES", "decode_raw_transaction", "sender_of"]

SUPPORTED_TX_TYPES: Final = frozenset(
    {ACCESS_LIST_TRANSACTION_TYPE, DYNAMIC_FEE_TRANSACTION_TYPE, SET_CODE_TRANSACTION_TYPE}
)
"""Typed transactions the pool accepts besides legacy ones; blob transactions (3) are not."""

_LEGACY_FIRST_BYTE: Final = 0xC0  # an RLP list; typed transactions start below 0x80
_BUILDER: Final = PragueVM.get_transaction_builder()
_LEGACY: Final = PragueLegacyTransaction
# The common kinds, decoded without rlp.Serializable's keyword-argument round trip (see
# _decode_common); only classes that take their fields positionally qualify.
_POSITIONAL: Final = frozenset(
    cls for cls in (_LEGACY, DynamicFeeTransaction) if cls.__init__ is BaseSerializable.__init__
)


@dataclass(frozen=True)
class _Shape:
    """Where a transaction kind keeps its fields: the plain shape `_plain_fields` handles."""

    size: int
    to: int  # the address field (empty for a contract creation)
    data: int
    access_list: int | None  # None: the kind has none


_SHAPES: Final = {
    _LEGACY: _Shape(size=9, to=3, data=5, access_list=None),
    DynamicFeeTransaction: _Shape(size=12, to=5, data=7, access_list=8),
}


def _plain_fields(item: object, shape: _Shape) -> tuple[Any, ...] | None:
    """What the kind's rlp sedes deserialize `item` to, for the plain shape only: the right
    number of fields, each a byte string, every integer minimal (no leading zero byte), the
    address empty or 20 bytes, and an empty access list. Anything else returns None and the
    sedes decide (and word the error); the values are the sedes' for every input taken here.
    """
    if type(item) is not list or len(item) != shape.size:
        return None
    out: list[Any] = []
    for i, field in enumerate(item):
        if i == shape.access_list:
            if type(field) is not list or field:
                return None
            out.append(())
        elif type(field) is not bytes:
            return None
        elif i == shape.to:
            if len(field) not in (0, 20):
                return None
            out.append(field)
        elif i == shape.data:
            out.append(field)
        elif field[:1] == b"\x00":
            return None
        else:
            out.append(int.from_bytes(field, "big"))
    return tuple(out)


def _decode_common(raw: bytes) -> SignedTransactionAPI | None:
    """A legacy or EIP-1559 transaction decoded as py-evm does, about four times faster.

    py-evm's ``rlp.decode(payload, sedes=cls)`` turns the decoded fields into keyword
    arguments and back (with duplicate checks) before building the object; this builds it
    from the same deserialized fields positionally, and keeps the payload as the object's
    cached encoding as ``rlp.decode`` does. Anything unusual returns None, and py-evm's own
    decoder then decides (and words the error), so only the speed differs.
    """
    typed = raw[0] == DYNAMIC_FEE_TRANSACTION_TYPE
    cls = DynamicFeeTransaction if typed else _LEGACY
    if cls not in _POSITIONAL or not (typed or raw[0] >= _LEGACY_FIRST_BYTE):
        return None
    payload = raw[1:] if typed else raw
    try:
        item, _ = rlp.codec.decode_raw(payload, True, False)
        fields = _plain_fields(item, _SHAPES[cls])
        if fields is None:
            fields = cls._meta.sedes.deserialize(item)
        inner = cls(*fields)
    except Exception:  # py-evm's decoder reports it
        return None
    inner._cached_rlp = payload
    if typed:
        wrapper = PragueTypedTransaction(raw[0], inner)
        # py-evm's cached properties, from the bytes at hand (raw is the canonical encoding).
        wrapper.__dict__["_type_byte"] = raw[:1]
        wrapper.__dict__["hash"] = keccak(raw)
        return cast(SignedTransactionAPI, wrapper)
    return cast(SignedTransactionAPI, inner)


def decode_raw_transaction(raw: bytes) -> SignedTransactionAPI:
    """Decodes a legacy or typed (1, 2, 4) transaction; raises a TxPoolError on anything else."""
    if len(raw) == 0 or (raw[0] < 0x80 and len(raw) == 1):
        raise InvalidTransactionEncodingError("typed transaction too short")
    if raw[0] < 0x80 and raw[0] not in SUPPORTED_TX_TYPES:
        raise TxTypeNotSupportedError()
    if 0x80 <= raw[0] < _LEGACY_FIRST_BYTE:
        raise InvalidTransactionEncodingError("rlp: expected input list for legacy transaction")
    try:
        check_rlp_depth(raw[1:] if raw[0] < 0x80 else raw)
    except RlpShapeError as exc:
        raise InvalidTransactionEncodingError(f"rlp: {exc}") from exc
    fast = _decode_common(raw)
    if fast is not None:
        return fast
    try:
        return _BUILDER.decode(raw)
    except UnrecognizedTransactionType as exc:  # unreachable after the type check; kept as a guard
        raise TxTypeNotSupportedError() from exc
    except (rlp.exceptions.RLPException, ValidationError) as exc:
        raise InvalidTransactionEncodingError(f"rlp: {exc}") from exc
    except (TypeError, ValueError) as exc:
        # py-rlp lets a list where an integer belongs through as a TypeError.
        raise InvalidTransactionEncodingError(f"rlp: malformed field ({exc})") from exc


def sender_of(tx: SignedTransactionAPI) -> bytes:
    """``tx.sender``: for legacy EIP-155 and EIP-1559 transactions without an access list the
    signed message is encoded directly and the key recovered with coincurve (py-evm rebuilds
    an unsigned transaction object and serializes it generically first, about as costly as
    the recovery itself). Anything else, or a signature that does not recover, is py-evm's
    to answer, with its errors. The result is cached on the transaction as py-evm does.
    """
    cached = tx.__dict__.get("sender")
    if cached is not None:
        return bytes(cached)
    key = _recover_key(tx)
    if key is None:  # not a kind done here, or a signature py-evm must judge (and word)
        return bytes(tx.sender)
    sender = keccak(key.format(compressed=False)[1:])[12:]
    tx.__dict__["sender"] = sender
    return sender


def _recover_key(tx: SignedTransactionAPI) -> PublicKey | None:
    """The signer's public key, or None when the quick path does not apply or fails."""
    message = _signing_message(tx)
    if message is None:
        return None
    try:
        parity = tx.y_parity if tx.type_id is not None else _legacy_parity(tx)
        signature = tx.r.to_bytes(32, "big") + tx.s.to_bytes(32, "big") + bytes([parity])
        return PublicKey.from_signature_and_message(signature, keccak(message), hasher=None)
    except Exception:
        return None


def _legacy_parity(tx: Any) -> int:
    v = int(tx.v)
    return v - 35 - 2 * int(tx.chain_id)


def _signing_message(tx: SignedTransactionAPI) -> bytes | None:
    """The bytes whose keccak a legacy (EIP-155) or an EIP-1559 transaction signs."""
    fields: Any = tx
    if tx.type_id == DYNAMIC_FEE_TRANSACTION_TYPE:
        if fields.access_list:
            return None
        return bytes([DYNAMIC_FEE_TRANSACTION_TYPE]) + cast(
            bytes,
            encode_raw(
                [
                    uint_bytes(fields.chain_id),
                    uint_bytes(fields.nonce),
                    uint_bytes(fields.max_priority_fee_per_gas),
                    uint_bytes(fields.max_fee_per_gas),
                    uint_bytes(fields.gas),
                    bytes(fields.to),
                    uint_bytes(fields.value),
                    bytes(fields.data),
                    [],
                ]
            ),
        )
    if tx.type_id is None and isinstance(tx, _LEGACY) and int(fields.v) >= 35:
        return cast(
            bytes,
            encode_raw(
                [
                    uint_bytes(fields.nonce),
                    uint_bytes(fields.gas_price),
                    uint_bytes(fields.gas),
                    bytes(fields.to),
                    uint_bytes(fields.value),
                    bytes(fields.data),
                    uint_bytes(fields.chain_id),
                    b"",
                    b"",
                ]
            ),
        )
    return None
