"""CachedAccountDB against py-evm's AccountDB: the same state roots and reads, block after
block, whatever the cache holds (it is shared by every trie of the process)."""

from __future__ import annotations

import pytest
import rlp
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.rlp.accounts import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powerverse.chain import accountdb
from powerverse.chain.accountdb import CachedAccountDB, decode_account, encode_account

addresses = st.sampled_from([bytes([i]) * 20 for i in range(40)])
changes = st.lists(
    st.tuples(
        addresses,
        st.sampled_from(["balance", "nonce", "storage", "code", "delete"]),
        st.integers(0, 2**70),
    ),
    max_size=30,
)


def _apply(db: AccountDB, block: list[tuple[bytes, str, int]]) -> None:
    for address, what, value in block:
        if what == "balance":
            db.set_balance(address, value)
        elif what == "nonce":
            db.set_nonce(address, value % 2**64)
        elif what == "storage":
            db.set_storage(address, value % 7, value)
        elif what == "code":
            db.set_code(address, value.to_bytes(9, "big"))
        else:
            db.delete_account(address)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=st.lists(changes, min_size=1, max_size=5), cache_size=st.sampled_from([2, 65_536]))
def test_same_roots_and_reads_as_py_evm(
    blocks: list[list[tuple[bytes, str, int]]], cache_size: int
) -> None:
    plain_store, cached_store = AtomicDB(), AtomicDB()
    plain, cached = AccountDB(plain_store), CachedAccountDB(cached_store)
    old_size = accountdb.NODE_CACHE_SIZE
    accountdb.NODE_CACHE_SIZE = cache_size  # a tiny cache evicts all the time
    try:
        roots = []
        for block in blocks:
            _apply(plain, block)
            _apply(cached, block)
            plain.persist()
            cached.persist()
            assert cached.state_root == plain.state_root
            roots.append(plain.state_root)
        # Reopened at each root, fresh objects read the same accounts.
        for root in roots:
            again_plain, again_cached = (
                AccountDB(plain_store, root),
                CachedAccountDB(cached_store, root),
            )
            for i in range(40):
                address = bytes([i]) * 20
                assert again_cached.get_balance(address) == again_plain.get_balance(address)
                assert again_cached.get_nonce(address) == again_plain.get_nonce(address)
                assert again_cached.get_code(address) == again_plain.get_code(address)
                assert again_cached.get_storage(address, 3) == again_plain.get_storage(address, 3)
    finally:
        accountdb.NODE_CACHE_SIZE = old_size


def test_nodes_handed_out_are_copies() -> None:
    """py-trie edits branch nodes in place; the cached one must not change with them."""
    db = CachedAccountDB(AtomicDB())
    for i in range(40):
        db.set_balance(bytes([i]) * 20, i + 1)
    db.persist()
    trie = db._trie._db
    root = trie.get_node(trie.root_hash)
    root[0] = b"\x00" * 32
    assert trie.get_node(trie.root_hash)[0] != b"\x00" * 32
    assert db.get_balance(bytes([7]) * 20) == 8


@settings(max_examples=200, deadline=None)
@given(
    nonce=st.integers(0, 2**64 - 1),
    balance=st.one_of(st.integers(0, 2**80), st.integers(0, 2**256 - 1)),
    storage_root=st.binary(min_size=32, max_size=32),
    code_hash=st.binary(min_size=32, max_size=32),
)
def test_account_encoding_is_py_evm_s(
    nonce: int, balance: int, storage_root: bytes, code_hash: bytes
) -> None:
    account = Account(nonce, balance, storage_root, code_hash)
    encoded = rlp.encode(account, sedes=Account)
    assert encode_account(account) == encoded
    decoded = decode_account(encoded)
    assert decoded == rlp.decode(encoded, sedes=Account) == account
    assert rlp.encode(decoded) == encoded


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\xc0",
        rlp.encode([b"\x00", b"", b"\x11" * 32, b"\x22" * 32]),  # a leading zero
        rlp.encode([b"", b"", b"\x11" * 31, b"\x22" * 32]),  # a short root
        rlp.encode([b"", b"", b"\x11" * 32]),  # three fields
        rlp.encode([b"", b"", b"\x11" * 32, b"\x22" * 32]) + b"\x00",  # trailing bytes
    ],
)
def test_a_bad_account_encoding_is_refused_like_py_evm(bad: bytes) -> None:
    with pytest.raises(rlp.exceptions.RLPException) as expected:
        rlp.decode(bad, sedes=Account)
    with pytest.raises(type(expected.value)):
        decode_account(bad)
