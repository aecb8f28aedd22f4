"""TrieBatch against py-trie: the same root after every batch of sets and deletes, and a
trie py-trie can read back from the nodes the batch stored."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from powerverse.chain.accountdb import NodeCachingTrie
from powerverse.chain.trie_batch import BLANK_ROOT, TrieBatch

# Keys from a tiny alphabet share long prefixes: extensions, splits and folds all happen.
keys = st.builds(
    lambda head, tail: bytes(head) + tail,
    st.lists(st.sampled_from([0x00, 0x01, 0x10, 0xFF]), min_size=0, max_size=31),
    st.sampled_from([b"", b"\x00", b"\x07", b"\x70"]),
).map(lambda k: (k + bytes(32))[:32])
values = st.one_of(
    st.just(b""),  # delete
    st.binary(min_size=1, max_size=4),  # short: leaves that live inline in their parent
    st.binary(min_size=30, max_size=80),
)
batches = st.lists(st.lists(st.tuples(keys, values), max_size=25), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=batches)
def test_the_same_root_as_py_trie(batches: list[list[tuple[bytes, bytes]]]) -> None:
    reference = HexaryTrie({})
    db: dict[bytes, bytes] = {}
    reader = HexaryTrie(db)
    batch = TrieBatch(db, reader.get_node)
    root = BLANK_ROOT
    expected: dict[bytes, bytes] = {}
    for changes in batches:
        for key, value in changes:
            reference[key] = value  # py-trie deletes on b""
            if value:
                expected[key] = value
            else:
                expected.pop(key, None)
        root = batch.apply(root, changes)
        assert root == reference.root_hash
        stored = HexaryTrie(db, root)
        for key, value in expected.items():
            assert stored[key] == value
        assert all(stored[key] == b"" for key, _ in changes if key not in expected)


def test_nothing_to_do_keeps_the_root() -> None:
    db: dict[bytes, bytes] = {}
    batch = TrieBatch(db, HexaryTrie(db).get_node)
    assert batch.apply(BLANK_ROOT, []) == BLANK_ROOT
    root = batch.apply(BLANK_ROOT, [(b"\x01" * 32, b"v")])
    assert batch.apply(root, [(b"\x02" * 32, b"")]) == root  # deleting a missing key
    assert batch.apply(root, [(b"\x01" * 32, b"")]) == BLANK_ROOT


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=st.dictionaries(keys, st.binary(min_size=1, max_size=80), max_size=30),
    probes=st.lists(keys, max_size=20),
)
def test_the_caching_trie_reads_what_py_trie_reads(
    content: dict[bytes, bytes], probes: list[bytes]
) -> None:
    db: dict[bytes, bytes] = {}
    reference = HexaryTrie(db)
    for key, value in content.items():
        reference[key] = value
    cached = NodeCachingTrie(db, reference.root_hash)
    for key in [*content, *probes]:
        assert cached.get(key) == reference.get(key)
    # the second time, from the cache
    for key in [*content, *probes]:
        assert cached.get(key) == reference.get(key)
