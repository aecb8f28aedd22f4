"""A nesting-depth check for RLP that arrives from outside, run before decoding it.

pyrlp decodes through rusty-rlp (Rust) when it is installed, and that decoder recurses once
per nesting level: tens of thousands of nested lists overflow the thread's stack and kill the
process. Nothing valid nests deeply (a transaction with an access list is four levels), so
untrusted RLP is walked here first, without recursion, and refused beyond ``MAX_RLP_DEPTH``.
"""

from __future__ import annotations

from typing import Final

MAX_RLP_DEPTH: Final = 16
"""Deepest list nesting accepted from outside (a typed transaction needs four)."""


class RlpShapeError(ValueError):
    """RLP that is too deeply nested or whose lengths run past its end."""


def _length(data: bytes, start: int, size: int) -> int:
    if start + size > len(data):
        raise RlpShapeError("RLP length prefix runs past the end of the input")
    return int.from_bytes(data[start : start + size], "big")


def check_rlp_depth(data: bytes, max_depth: int = MAX_RLP_DEPTH) -> None:
    """Raise RlpShapeError if ``data`` nests lists deeper than ``max_depth`` or is truncated."""
    ends: list[int] = []  # end offsets of the lists we are inside
    pos = 0
    total = len(data)
    while pos < total:
        first = data[pos]
        if first < 0x80:
            pos += 1
        elif first <= 0xB7:
            pos += 1 + first - 0x80
        elif first <= 0xBF:
            size = first - 0xB7
            pos += 1 + size + _length(data, pos + 1, size)
        else:
            if first <= 0xF7:
                header, payload = 1, first - 0xC0
            else:
                size = first - 0xF7
                header, payload = 1 + size, _length(data, pos + 1, size)
            ends.append(pos + header + payload)
            if len(ends) > max_depth:
                raise RlpShapeError(f"RLP nested deeper than {max_depth} lists")
            pos += header
        while ends and pos >= ends[-1]:
            if pos > ends[-1]:
                raise RlpShapeError("an RLP item runs past the end of its list")
            ends.pop()
    if pos > total or ends:
        raise RlpShapeError("RLP input is truncated")
