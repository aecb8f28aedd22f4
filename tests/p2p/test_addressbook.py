"""The address book: bootnodes are retried forever, learned peers are forgotten when dead."""

from __future__ import annotations

import random

from powerverse.p2p import PeerAddress
from powerverse.p2p.addressbook import AddressBook

SELF = b"s" * 32


def addr(n: int) -> PeerAddress:
    return PeerAddress(peer_id=bytes([n]) * 32, host="127.0.0.1", port=1000 + n)


def book(**kw: int) -> AddressBook:
    values = {"capacity": 10, "max_failures": 3}
    values.update(kw)
    return AddressBook(
        self_id=SELF,
        backoff_initial=1.0,
        backoff_max=8.0,
        rng=random.Random(1),
        **values,
    )


def never(_: bytes) -> bool:
    return False


def test_bootnodes_survive_failures_with_capped_backoff() -> None:
    b = book()
    b.add_bootnode(addr(1))
    now = 0.0
    delays = []
    for _ in range(8):
        assert [a for a, _ in b.due(now, never)] == [addr(1)]
        b.dial_failed(addr(1).peer_id, now)
        assert b.due(now, never) == []
        nxt = now
        while not b.due(nxt, never):
            nxt += 0.125
        delays.append(nxt - now)
        now = nxt
    assert delays[0] <= 1.0 and delays[-1] <= 8.0
    assert delays[3] > delays[0]  # it backs off
    assert b.is_bootnode(addr(1).peer_id)


def test_learned_peers_are_forgotten_after_repeated_failures() -> None:
    b = book()
    assert b.learn(addr(2), 0.0)
    assert not b.learn(addr(2), 0.0)
    for _ in range(3):
        b.dial_failed(addr(2).peer_id, 0.0)
    assert b.get(addr(2).peer_id) is None


def test_self_and_capacity() -> None:
    b = book(capacity=2)
    assert not b.learn(PeerAddress(peer_id=SELF, host="h", port=1), 0.0)
    b.add_bootnode(PeerAddress(peer_id=SELF, host="h", port=1))
    assert b.addresses() == []
    b.add_bootnode(addr(9))
    for n in (1, 2, 3):
        b.learn(addr(n), float(n))
    assert len(b) == 3  # the bootnode plus two learned
    assert b.get(addr(9).peer_id) == addr(9)
    assert b.addresses()[0] == addr(9)


def test_due_lists_bootnodes_first_and_honours_skip() -> None:
    b = book()
    b.learn(addr(1), 0.0)
    b.add_bootnode(addr(2))
    assert [a for a, boot in b.due(0.0, never)] == [addr(2), addr(1)]
    assert [boot for _, boot in b.due(0.0, never)] == [True, False]
    assert b.due(0.0, lambda p: p == addr(2).peer_id) == [(addr(1), False)]


def test_connected_resets_backoff_and_updates_learned_address() -> None:
    b = book()
    b.learn(addr(1), 0.0)
    b.dial_failed(addr(1).peer_id, 0.0)
    moved = PeerAddress(peer_id=addr(1).peer_id, host="127.0.0.1", port=5555)
    b.connected(moved, moved.peer_id, 1.0)
    assert b.get(moved.peer_id) == moved
    b.disconnected(moved.peer_id, 1.0)
    assert b.due(1.0, never) == []
    assert b.due(2.0, never) == [(moved, False)]
    b.connected(addr(7), addr(7).peer_id, 3.0)  # an inbound peer is learned
    assert b.get(addr(7).peer_id) == addr(7)
    b.forget(addr(7).peer_id)
    assert b.get(addr(7).peer_id) is None
