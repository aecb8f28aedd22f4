"""py-evm's account database with a cache of decoded state-trie nodes and batched updates.

Every account read and every account write of a block walks the state trie from its root:
py-trie fetches each node on the path from the store and decodes its RLP again, the root's
17-item branch on every single access. A trie node is named by its hash, so a decoded node
never goes stale: this keeps the most recently used ones (per process), which makes the
upper levels of the trie free after the first access. Everything else is py-evm's and
py-trie's code; the state roots are the same (tests/chain/test_accountdb.py).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, cast

import rlp
from eth.abc import DatabaseAPI
from eth.constants import BLANK_ROOT_HASH
from eth.db.accesslog import KeyAccessLoggerDB
from eth.db.account import AccountDB
from eth.db.cache import CacheDB
from eth.db.hash_trie import HashTrie
from eth.db.journal import JournalDB
from eth.rlp.accounts import Account
from eth_hash.auto import keccak
from eth_typing import Address, Hash32
from rlp.codec import decode_raw, encode_raw
from trie.hexary import HexaryTrie

from powerverse.chain.trie_batch import TrieBatch, node_path
from powerverse.chain.trie_root import key_nibbles, uint_bytes

__all__ = [
    "NODE_CACHE_SIZE",
    "CachedAccountDB",
    "NodeCachingTrie",
    "decode_account",
    "encode_account",
]

NODE_CACHE_SIZE = 32_768
"""Decoded nodes kept per process (about 35 MB when all are full branch nodes)."""

_ACCOUNT_FIELDS: Any = Account._meta.sedes

_NODES: OrderedDict[bytes, list[Any]] = OrderedDict()


def _copy(node: list[Any]) -> list[Any]:
    # py-trie changes branch nodes in place while it rebuilds a path: hand out copies.
    return [list(item) if isinstance(item, list) else item for item in node]


class NodeCachingTrie(HexaryTrie):
    """A HexaryTrie whose hash-named nodes are decoded once per process."""

    def get_node(self, node_hash: bytes) -> Any:
        """The decoded node `node_hash` (py-trie's semantics; blank and inline nodes as-is)."""
        if len(node_hash) != 32:
            return super().get_node(node_hash)  # type: ignore[no-untyped-call]
        node = _NODES.get(node_hash)
        if node is None:
            node = super().get_node(node_hash)  # type: ignore[no-untyped-call]
            if not isinstance(node, list):
                return node
            _NODES[node_hash] = _copy(node)
            if len(_NODES) > NODE_CACHE_SIZE:
                _NODES.popitem(last=False)
        else:
            _NODES.move_to_end(node_hash)
        return _copy(node)

    def get(self, key: bytes) -> bytes:
        """The value at `key` (b"" when absent): py-trie's lookup, walking the cached nodes
        without copying them and with a cheaper nibble conversion. A node missing from the
        store is left to py-trie, which raises its MissingTrieNode."""
        nibbles = key_nibbles(key)
        depth = 0
        ref: Any = self.root_hash
        node: Any
        try:
            while True:
                if isinstance(ref, list):
                    node = ref
                elif ref == b"" or ref == BLANK_ROOT_HASH:
                    return b""
                else:
                    node = _NODES.get(ref)
                    if node is None:
                        node = self.get_node(ref)
                if node == b"":
                    return b""
                if len(node) == 17:
                    if depth == len(nibbles):
                        return bytes(node[16])
                    ref = node[nibbles[depth]]
                    depth += 1
                    continue
                path, leaf = node_path(node[0])
                if leaf:
                    return bytes(node[1]) if nibbles[depth:] == path else b""
                if nibbles[depth : depth + len(path)] != path:
                    return b""
                depth += len(path)
                ref = node[1]
        except KeyError:
            return bytes(super().get(key))


class CachedAccountDB(AccountDB):
    """AccountDB whose state trie is a NodeCachingTrie (the same layering as py-evm's)."""

    def __init__(self, db: Any, state_root: Hash32 = BLANK_ROOT_HASH) -> None:
        super().__init__(db, state_root)
        # Rebuild py-evm's read path on the caching trie: _trie > logger > cache > journal.
        trie = NodeCachingTrie(self._batchtrie, state_root, prune=True)
        self._trie_hexary = trie
        self._trie = HashTrie(cast(DatabaseAPI, trie))
        self._trie_logger = KeyAccessLoggerDB(self._trie, log_missing_keys=False)
        self._trie_cache = CacheDB(self._trie_logger)
        self._journaltrie = JournalDB(self._trie_cache)

    # py-evm encodes and decodes accounts through rlp.Serializable's generic machinery, about
    # 20 µs each way; an account is four fields, done directly here (same bytes, same object).

    def _get_account(self, address: Address, from_journal: bool = True) -> Account:
        if from_journal and address in self._account_cache:
            return self._account_cache[address]
        encoded = self._get_encoded_account(address, from_journal)
        account = decode_account(encoded) if encoded else Account()
        if from_journal:
            self._account_cache[address] = account
        return account

    def _set_account(self, address: Address, account: Account) -> None:
        self._account_cache[address] = account
        self._journaltrie[address] = encode_account(account)

    def make_state_root(self) -> Hash32:
        """py-evm's make_state_root, with the account changes applied to the trie in one
        pass (chain/trie_batch.py) instead of one key at a time."""
        for _address, store in self._dirty_account_stores():
            store.make_storage_root()
        for address, storage_root in self._get_changed_roots():
            if self.account_exists(address) or storage_root != BLANK_ROOT_HASH:
                self._set_storage_root(address, storage_root)
        self._journaldb.persist()
        diff = self._journaltrie.diff()
        updates = [(keccak(key), value) for key, value in diff.pending_items()]
        updates += [(keccak(key), b"") for key in diff.deleted_keys()]
        if updates:
            trie = self._trie_hexary
            batch = TrieBatch(self._batchtrie, trie.get_node)
            trie.root_hash = batch.apply(trie.root_hash, updates)
        self._journaltrie.reset()
        self._trie_cache.reset_cache()
        return self.state_root


def encode_account(account: Account) -> bytes:
    """rlp.encode(account, sedes=Account), without the generic serializer."""
    return cast(
        bytes,
        encode_raw(
            [
                uint_bytes(account.nonce),
                uint_bytes(account.balance),
                account.storage_root,
                account.code_hash,
            ]
        ),
    )


def decode_account(encoded: bytes) -> Account:
    """rlp.decode(encoded, sedes=Account): the same checks, the fields passed positionally."""
    try:
        item, _ = decode_raw(encoded, True, False)
        account = Account(*_ACCOUNT_FIELDS.deserialize(item))
    except rlp.exceptions.RLPException:
        return cast(Account, rlp.decode(encoded, sedes=Account))  # raises py-evm's error
    account._cached_rlp = encoded
    return account
