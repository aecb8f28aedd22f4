"""Many updates to a Merkle-Patricia trie of fixed-length keys, applied in one pass.

py-trie applies a block's account changes one key at a time: every update walks from the
root, re-encodes and re-hashes each node on its path and stores each intermediate version, so
the root branch of the state trie is rebuilt once per changed account. Here the changes are
sorted and pushed down the trie together: each node on the union of their paths is read
once, rebuilt once and stored once, which is the final version (as geth's trie commit does).

Keys all have the same length (the state trie's keccak(address)), so no key is a prefix of
another and no branch carries a value. Nodes use py-trie's decoded form: b"" blank,
[compact path, value or child] for a leaf or an extension, 17 items for a branch; a child is
a 32-byte hash, or the node itself when its encoding is shorter than 32 bytes. The result is
checked against py-trie by property tests (tests/chain/test_trie_batch.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import Any

from eth_hash.auto import keccak
from rlp.codec import encode_raw

from powerverse.chain.trie_root import hex_prefix, key_nibbles

__all__ = ["BLANK_ROOT", "TrieBatch", "node_path"]

BLANK_ROOT = keccak(encode_raw(b""))

_Item = tuple[bytes, bytes]  # (key as nibbles, one byte per nibble; new value, b"" deletes)
_Node = Any  # b"" | list


def node_path(compact: bytes) -> tuple[bytes, bool]:
    """The nibble path of a leaf or extension node, and whether it is a leaf."""
    flag = compact[0] >> 4
    nibbles = key_nibbles(compact)
    return (nibbles[1:] if flag & 1 else nibbles[2:]), flag >= 2


class TrieBatch:
    """Applies sorted updates to the trie at a root, storing the new nodes in `db`.

    `read(hash)` returns a stored node in decoded form (a fresh list the caller may change).
    """

    def __init__(self, db: MutableMapping[bytes, bytes], read: Callable[[bytes], _Node]) -> None:
        self.db = db
        self.read = read

    def apply(self, root: bytes, updates: Sequence[tuple[bytes, bytes]]) -> bytes:
        """The root hash after setting each key to its value (b"" deletes the key)."""
        items = sorted((key_nibbles(key), value) for key, value in dict(updates).items())
        if not items:
            return root
        node = self.read(root) if root != BLANK_ROOT else b""
        new = self._update(node, 0, items)
        if new == b"":
            return BLANK_ROOT
        encoded = encode_raw(new)
        digest = keccak(encoded)
        self.db[digest] = encoded  # the root is stored even when short, as py-trie does
        return digest

    # ------------------------------------------------------------------ rebuilding

    def _resolve(self, ref: _Node) -> _Node:
        if isinstance(ref, list) or ref == b"":
            return ref
        return self.read(ref)

    def _ref(self, node: _Node) -> _Node:
        """How a parent refers to `node`: inline when short, else its hash (stored)."""
        if node == b"":
            return b""
        encoded = encode_raw(node)
        if len(encoded) < 32:
            return node
        digest = keccak(encoded)
        self.db[digest] = encoded
        return digest

    def _update(self, node: _Node, depth: int, items: Sequence[_Item]) -> _Node:
        if node == b"":
            return self._build(depth, [item for item in items if item[1]])
        if len(node) == 17:
            return self._update_branch(node, depth, items)
        path, leaf = node_path(node[0])
        if leaf:
            key = items[0][0][:depth] + path
            merged = dict(items)
            merged.setdefault(key, node[1])
            return self._build(depth, sorted(item for item in merged.items() if item[1]))
        # An extension: if every change runs through it, rebuild its child only.
        end = depth + len(path)
        if all(item[0][depth:end] == path for item in items):
            return self._join(path, self._update(self._resolve(node[1]), end, items))
        # Otherwise split it: the same subtree as a branch whose one child holds the rest.
        branch: list[_Node] = [b""] * 17
        rest = path[1:]
        branch[path[0]] = node[1] if not rest else self._ref([hex_prefix(rest, False), node[1]])
        return self._update_branch(branch, depth, items)

    def _update_branch(self, branch: list[_Node], depth: int, items: Sequence[_Item]) -> _Node:
        for nibble, group in _groups(items, depth):
            child = self._update(self._resolve(branch[nibble]), depth + 1, group)
            branch[nibble] = self._ref(child)
        used = [i for i in range(16) if branch[i] != b""]
        if not used:
            return b""
        if len(used) == 1:  # a branch with one child folds into it
            only = used[0]
            return self._join(bytes([only]), self._resolve(branch[only]))
        return branch

    def _join(self, prefix: bytes, child: _Node) -> _Node:
        """`child` reached through the nibbles `prefix`, as one node."""
        if child == b"":
            return b""
        if len(child) == 17:
            return [hex_prefix(prefix, False), self._ref(child)]
        path, leaf = node_path(child[0])
        return [hex_prefix(prefix + path, leaf), child[1]]

    def _build(self, depth: int, items: Sequence[_Item]) -> _Node:
        """A new subtree holding exactly `items` (sorted, none deleted)."""
        if not items:
            return b""
        if len(items) == 1:
            key, value = items[0]
            return [hex_prefix(key[depth:], True), value]
        first, last = items[0][0], items[-1][0]
        common = depth
        while first[common] == last[common]:
            common += 1
        if common > depth:
            return [hex_prefix(first[depth:common], False), self._ref(self._build(common, items))]
        branch: list[_Node] = [b""] * 17
        for nibble, group in _groups(items, depth):
            branch[nibble] = self._ref(self._build(depth + 1, group))
        return branch


def _groups(items: Sequence[_Item], depth: int) -> Iterator[tuple[int, Sequence[_Item]]]:
    """Sorted items in runs that share the nibble at `depth`, with that nibble."""
    start = 0
    while start < len(items):
        nibble = items[start][0][depth]
        end = start + 1
        while end < len(items) and items[end][0][depth] == nibble:
            end += 1
        yield nibble, items[start:end]
        start = end
