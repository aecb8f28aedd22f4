"""Blocks on the wire: RLP ``[header, [transaction, ...]]``, transactions as raw EIP-2718 bytes,
and ``[header, [transaction, ...], attachment]`` for a block that carries its parent's finality
certificate (chain/rewards.py; the header commits to it).

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

__all__ = [
    "decode_block",
    "decode_block_attached",
    "decode_header",
    "encode_block",
    "encode_header",
]

_BLOCK: Final = List([PragueBlockHeader, CountableList(binary)], strict=True)
_ATTACHED: Final = List([PragueBlockHeader, CountableList(binary), binary], strict=True)


def encode_block(
    header: BlockHeaderAPI, tx_payloads: Sequence[bytes], attachment: bytes = b""
) -> bytes:
    """The wire form of a block: RLP of [header, [raw transaction, ...]] (and the attachment,
    when there is one)."""
    if attachment:
        return bytes(rlp.encode([header, list(tx_payloads), attachment]))
    return bytes(rlp.encode([header, list(tx_payloads)]))


def decode_block(data: bytes) -> tuple[BlockHeaderAPI, tuple[bytes, ...]]:
    """Header and raw transactions of a block from untrusted bytes; InvalidBlock if malformed.

    The transactions are not decoded here: ``Blockchain.execute_block`` does that, and judges
    them.
    """
    header, payloads, _ = decode_block_attached(data)
    return header, payloads


def decode_block_attached(data: bytes) -> tuple[BlockHeaderAPI, tuple[bytes, ...], bytes]:
    """As :func:`decode_block`, with the block's attachment (b"" when it has none)."""
    _check_shape(data)
    try:
        items = rlp.decode(bytes(data))
        if isinstance(items, list) and len(items) == 3:
            header, payloads, attachment = rlp.decode(bytes(data), sedes=_ATTACHED)
            if not attachment:
                raise InvalidBlock("malformed block encoding: an empty attachment is left out")
        else:
            header, payloads = rlp.decode(bytes(data), sedes=_BLOCK)
            attachment = b""
    except (rlp.exceptions.RLPException, TypeError, ValueError) as exc:
        raise InvalidBlock(f"malformed block encoding: {exc}") from exc
    return header, tuple(payloads), bytes(attachment)


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
