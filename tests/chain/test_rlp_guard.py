"""Untrusted RLP is refused before decoding when it nests too deeply or is truncated."""

from __future__ import annotations

import pytest
import rlp

from powerverse.chain.rlp_guard import MAX_RLP_DEPTH, RlpShapeError, check_rlp_depth
from powerverse.chain.txdecode import decode_raw_transaction
from powerverse.chain.txpool_errors import InvalidTransactionEncodingError


def _nested(depth: int) -> bytes:
    """`depth` lists, each holding the next, without recursion."""
    out = b"\xc0"
    for _ in range(depth - 1):
        size = len(out)
        if size < 56:
            out = bytes([0xC0 + size]) + out
        else:
            length = size.to_bytes((size.bit_length() + 7) // 8, "big")
            out = bytes([0xF7 + len(length)]) + length + out
    return out


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x01",
        b"x" * 60,
        [],
        [b"a", [b"b", [b"c"]]],
        [[[]], []],
        [b"y" * 70] * 3,
        [[b"\x00" * 20, [b"\x11" * 32]]],
    ],
)
def test_valid_rlp_passes(value: object) -> None:
    check_rlp_depth(rlp.encode(value))


def test_depth_limit_is_exact() -> None:
    check_rlp_depth(_nested(MAX_RLP_DEPTH))
    with pytest.raises(RlpShapeError, match="deeper than"):
        check_rlp_depth(_nested(MAX_RLP_DEPTH + 1))


@pytest.mark.parametrize(
    "data",
    [b"\x83ab", b"\xb8", b"\xb9\x01", b"\xc3\x01\x02", b"\xc2\x83abc", b"\xf8"],
)
def test_truncated_rlp_is_refused(data: bytes) -> None:
    with pytest.raises(RlpShapeError):
        check_rlp_depth(data)


@pytest.mark.parametrize("prefix", [b"", b"\x02"])
def test_a_deeply_nested_transaction_is_refused_not_a_crash(prefix: bytes) -> None:
    # 100,000 levels: the Rust decoder would overflow its stack and kill the process.
    raw = prefix + _nested(100_000)
    with pytest.raises(InvalidTransactionEncodingError, match="deeper than"):
        decode_raw_transaction(raw)
