"""The one-pass ordered trie root equals py-evm's HexaryTrie root for any list of items."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from powerverse.chain.trie_root import BLANK_ROOT, ordered_trie_root


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def encode(self) -> bytes:
        return self.data


def _reference(values: list[bytes]) -> bytes:
    from eth.db.trie import make_trie_root_and_nodes

    root, _nodes = make_trie_root_and_nodes([_Raw(v) for v in values])
    return bytes(root)


def test_empty_trie() -> None:
    assert ordered_trie_root([]) == BLANK_ROOT == _reference([])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=80), max_size=300))
def test_matches_py_evm(values: list[bytes]) -> None:
    assert ordered_trie_root(values) == _reference(values)


def test_large_block_of_transaction_like_items() -> None:
    values = [bytes([0x02]) + i.to_bytes(4, "big") * 28 for i in range(1500)]
    assert ordered_trie_root(values) == _reference(values)


def test_short_items_are_inlined_like_py_evm() -> None:
    values = [bytes([i]) for i in range(1, 40)]
    assert ordered_trie_root(values) == _reference(values)
