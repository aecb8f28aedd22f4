"""Decoding of raw (EIP-2718 binary) transactions as eth_sendRawTransaction receives them."""

from __future__ import annotations

from typing import Final, cast

import rlp
from eth.abc import SignedTransactionAPI
from eth.exceptions import UnrecognizedTransactionType
from eth.vm.forks.berlin.constants import ACCESS_LIST_TRANSACTION_TYPE
from eth.vm.forks.london.constants import DYNAMIC_FEE_TRANSACTION_TYPE
from eth.vm.forks.london.transactions import DynamicFeeTransaction
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.constants import SET_CODE_TRANSACTION_TYPE
from eth.vm.forks.prague.transactions import PragueLegacyTransaction, PragueTypedTransaction
from eth_utils.exceptions import ValidationError
from rlp.sedes.serializable import BaseSerializable

from powerverse.chain.rlp_guard import RlpShapeError, check_rlp_depth
from powerverse.chain.txpool_errors import InvalidTransactionEncodingError, TxTypeNotSupportedError

__all__ = ["SUPPORTED_TX_TYPES", "decode_raw_transaction"]

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
        inner = cls(*cls._meta.sedes.deserialize(item))
    except Exception:  # py-evm's decoder reports it
        return None
    inner._cached_rlp = payload
    if typed:
        return cast(SignedTransactionAPI, PragueTypedTransaction(raw[0], inner))
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
