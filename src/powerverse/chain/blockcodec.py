"""Blocks on the wire: RLP ``[header, [transaction, ...]]``, transactions as raw EIP-2718 bytes.

A block travels as its header and the raw transactions exactly as they are stored and
hashed into ``transactionsRoot``, so a receiver executes the bytes the proposer committed
to. Decoding takes bytes from the network: the nesting depth is checked before the RLP
decoder runs (see ``rlp_guard.py``), and anything malformed is an ``InvalidBlock``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import rlp
from eth.abc import BlockHeaderAPI
from eth.vm.forks.prague.blocks import PragueBlockHeader
from rlp.sedes import CountableList, List, binary

from powerverse.chain.exceptions import InvalidBlock
from powerverse.chain.rlp_guard import RlpShapeError, check_rlp_depth

__all__ = ["decode_block", "decode_header", "encode_block", "encode_header"]

_BLOCK: Final = List([PragueBlockHeader, CountableList(binary)], strict=True)


def encode_block(header: BlockHeaderAPI, tx_payloads: Sequence[bytes]) -> bytes:
    """The wire form of a block: RLP of [header, [raw transaction, ...]]."""
    return bytes(rlp.encode([header, list(tx_payloads)]))


def decode_block(data: bytes) -> tuple[BlockHeaderAPI, tuple[bytes, ...]]:
    """Header and raw transactions of a block from untrusted bytes; InvalidBlock if malformed.

    The transactions are not decoded here: ``Blockchain.execute_block`` does that, and judges
    them.
    """
    _check_shape(data)
    try:
        header, payloads = rlp.decode(bytes(data), sedes=_BLOCK)
    except (rlp.exceptions.RLPException, TypeError, ValueError) as exc:
        raise InvalidBlock(f"malformed block encoding: {exc}") from exc
    return header, tuple(payloads)


def encode_header(header: BlockHeaderAPI) -> bytes:
    """RLP of a header (what its hash is taken over)."""
    return bytes(rlp.encode(header))


def decode_header(data: bytes) -> BlockHeaderAPI:
    """A Prague header from untrusted bytes; InvalidBlock if malformed."""
    _check_shape(data)
    try:
        header: BlockHeaderAPI = rlp.decode(bytes(data), sedes=PragueBlockHeader)
    except (rlp.exceptions.RLPException, TypeError, ValueError) as exc:
        raise InvalidBlock(f"malformed block header: {exc}") from exc
    return header


def _check_shape(data: bytes) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidBlock(f"a block must be bytes, not {type(data).__name__}")
    try:
        check_rlp_depth(bytes(data))
    except RlpShapeError as exc:
        raise InvalidBlock(f"malformed block encoding: {exc}") from exc
