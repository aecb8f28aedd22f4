"""Pending blocks: propose or execute without committing, then commit exactly one with a seal."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import rlp
from eth.abc import BlockHeaderAPI
from eth_account import Account
from eth_hash.auto import keccak

from powerverse.chain.blockchain import Blockchain, BuiltBlock, target_gas_limit
from powerverse.chain.blockcodec import decode_block, decode_header, encode_block, encode_header
from powerverse.chain.exceptions import (
    BlockNotOnHead,
    ChainError,
    InvalidBlock,
    StalePendingBlock,
    UnknownPendingBlock,
)
from powerverse.chain.executor import pooled_from_raw
from powerverse.chain.genesis import Genesis, dev_genesis
from powerverse.chain.store import LmdbStore
from powerverse.chain.trie_root import ordered_trie_root
from powerverse.chain.txdecode import decode_raw_transaction
from powerverse.chain.txpool import PooledTx

KEYS = [Account.from_key(bytes([i + 1]) * 32) for i in range(4)]
ADDRS = [bytes.fromhex(k.address[2:]) for k in KEYS]
TO = b"\x44" * 20
T0 = 1_700_000_000
ARTIFACT = Path(__file__).resolve().parents[1] / "contracts" / "artifacts" / "CustomErrors.json"


def _genesis() -> Genesis:
    return dev_genesis(T0, ADDRS)


def _raw(key: int, nonce: int, **over: object) -> bytes:
    tx: dict[str, object] = {
        "nonce": nonce,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "to": "0x" + TO.hex(),
        "value": 7,
        "chainId": 31337,
        "type": 2,
    }
    tx.update(over)
    if tx["to"] is None:
        del tx["to"]
    return bytes(KEYS[key].sign_transaction(tx).raw_transaction)


def _ptx(key: int, raw: bytes) -> PooledTx:
    return pooled_from_raw(raw, ADDRS[key])


def _transfers(first_nonce: int, count: int = 3) -> list[PooledTx]:
    return [_ptx(k, _raw(k, first_nonce + n)) for n in range(count) for k in range(3)]


@pytest.fixture
def chains(tmp_path: Path) -> Iterator[Callable[[], Blockchain]]:
    """Makes chains with the same genesis, each in a data directory of its own."""
    made: list[Blockchain] = []

    def make() -> Blockchain:
        chain = Blockchain(LmdbStore(tmp_path / f"node{len(made)}"), _genesis())
        made.append(chain)
        return chain

    yield make
    for chain in made:
        chain.close()


def _propose(chain: Blockchain, candidates: list[PooledTx], ts: int, **kw: object) -> BuiltBlock:
    return chain.propose_block(candidates, timestamp=ts, coinbase=b"\x09" * 20, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- propose and commit


def test_propose_then_commit_is_build_block(chains: Callable[[], Blockchain]) -> None:
    built_here, pending_there = chains(), chains()
    built = built_here.build_block(_transfers(0), timestamp=T0 + 12, coinbase=b"\x09" * 20)
    pending = _propose(pending_there, _transfers(0), T0 + 12)
    # Pending: not canonical, state unchanged, nothing stored.
    assert pending_there.height == 0 and pending_there.get_balance(TO) == 0
    assert pending_there.pending_hashes() == (bytes(pending.block.hash),)
    assert pending_there.store.get(b"pv:body:" + bytes(pending.block.hash)) is None
    committed = pending_there.commit_pending(pending.block.hash, b"seal-1")
    assert committed.block.hash == built.block.hash == pending_there.head.hash
    assert pending_there.get_balance(TO) == built_here.get_balance(TO) == 9 * 7
    assert pending_there.pending_hashes() == ()
    assert pending_there.seal_of(pending.block.hash) == b"seal-1"
    assert built_here.seal_of(built.block.hash) is None  # dev blocks carry no seal
    assert pending.tx_payloads == tuple(p.raw for p in _transfers(0))


def test_a_proposal_keeps_builder_semantics(chains: Callable[[], Blockchain]) -> None:
    chain = chains()
    stale = _ptx(0, _raw(0, 5))  # a nonce gap: py-evm refuses it, its sender is skipped
    later = _ptx(0, _raw(0, 6))
    pending = _propose(chain, [stale, later, _ptx(1, _raw(1, 0))], T0 + 1)
    assert [r[0] for r in pending.rejected] == [stale.hash]
    assert len(pending.block.transactions) == 1
    # A timestamp not after the head's becomes the head's + 1, as build_block does.
    assert _propose(chain, [], T0 - 5).block.header.timestamp == T0 + 1
    with pytest.raises(ChainError, match="extra data"):
        _propose(chain, [], T0 + 1, extra_data=b"x" * 33)


def test_the_gas_limit_stays_at_the_genesis_limit(chains: Callable[[], Blockchain]) -> None:
    chain = chains()
    for n in range(1, 4):
        built = chain.build_block([], timestamp=T0 + n, coinbase=b"\x01" * 20)
        assert built.block.header.gas_limit == _genesis().gas_limit
    # Away from the target, it moves toward it as fast as the EIP-1559 bounds allow.
    assert target_gas_limit(10_000_000, 30_000_000) == 10_000_000 + 10_000_000 // 1024 - 1
    assert target_gas_limit(40_000_000, 30_000_000) == 40_000_000 - 40_000_000 // 1024 + 1
    assert target_gas_limit(30_000_000, 30_000_001) == 30_000_001


def test_blocks_proposed_on_one_chain_execute_on_another(
    chains: Callable[[], Blockchain],
) -> None:
    proposer, validator = chains(), chains()
    code = json.loads(ARTIFACT.read_text())["bytecode"]
    rounds = [
        [
            *_transfers(0, 2),
            _ptx(3, _raw(3, 0, to=None, value=0, gas=1_000_000, data=code)),  # py-evm's path
        ],
        [_ptx(3, _raw(3, 1, gas=30_000, data="0x" + "ab" * 40)), *_transfers(2, 1)],
        [],  # an empty block
        _transfers(3, 2),
    ]
    for n, candidates in enumerate(rounds, start=1):
        proposal = _propose(proposer, candidates, T0 + 12 * n, extra_data=b"round %d" % n)
        wire = encode_block(proposal.block.header, proposal.tx_payloads)
        header, payloads = decode_block(wire)
        executed = validator.execute_block(header, payloads)
        assert executed.block.hash == proposal.block.hash and validator.height == n - 1
        assert [r.encode() for r in executed.receipts] == [r.encode() for r in proposal.receipts]
        assert executed.senders == proposal.senders
        proposer.commit_pending(proposal.block.hash, b"seal %d" % n)
        validator.commit_pending(executed.block.hash, b"seal %d" % n)
        assert proposer.head == validator.head and validator.height == n
        assert validator.seal_of(validator.head.hash) == b"seal %d" % n
    assert validator.head.state_root == proposer.head.state_root
    assert validator.get_balance(TO) == proposer.get_balance(TO) > 0


def test_fast_and_slow_transfer_paths_agree_on_received_blocks(tmp_path: Path) -> None:
    fast = Blockchain(LmdbStore(tmp_path / "fast"), _genesis())
    slow = Blockchain(LmdbStore(tmp_path / "slow"), _genesis(), fast_transfers=False)
    try:
        proposal = _propose(fast, _transfers(0), T0 + 1)
        assert slow.execute_block(proposal.block.header, proposal.tx_payloads).block.hash == (
            proposal.block.hash
        )
    finally:
        fast.close()
        slow.close()


def test_competing_proposals_are_pending_together_and_one_is_committed(
    chains: Callable[[], Blockchain],
) -> None:
    alice, bob, carol = chains(), chains(), chains()
    a = _propose(alice, _transfers(0, 2), T0 + 5)
    b = _propose(bob, _transfers(0, 1), T0 + 6)
    assert a.block.hash != b.block.hash
    carol_own = _propose(carol, [], T0 + 7)
    got_a = carol.execute_block(a.block.header, a.tx_payloads)
    got_b = carol.execute_block(b.block.header, b.tx_payloads)
    assert set(carol.pending_hashes()) == {
        bytes(h) for h in (a.block.hash, b.block.hash, carol_own.block.hash)
    }
    assert carol.height == 0 and carol.get_balance(TO) == 0
    # Executing a pending block again returns it as it is.
    assert carol.execute_block(b.block.header, b.tx_payloads) is got_b
    with pytest.raises(InvalidBlock, match="transactions root"):  # same header, other body
        carol.execute_block(b.block.header, b.tx_payloads[:1])
    assert carol.pending_block(a.block.hash) is got_a
    carol.commit_pending(b.block.hash, b"cert-b")
    assert carol.head.hash == b.block.hash and carol.pending_hashes() == ()
    assert carol.get_balance(TO) == 3 * 7
    with pytest.raises(UnknownPendingBlock):
        carol.commit_pending(got_a.block.hash, b"cert-a")
    # The dropped proposal no longer extends the head.
    with pytest.raises(BlockNotOnHead, match="parent"):
        carol.execute_block(a.block.header, a.tx_payloads)
    assert carol.head.hash == b.block.hash and carol.seal_of(a.block.hash) is None


def test_commit_refuses_unknown_and_stale_blocks(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    one, other = Blockchain(store, _genesis()), Blockchain(store, _genesis())
    try:
        with pytest.raises(UnknownPendingBlock, match="no pending block"):
            one.commit_pending(b"\x00" * 32, b"seal")
        pending = _propose(one, _transfers(0, 1), T0 + 1)
        other.build_block([], timestamp=T0 + 2, coinbase=b"\x01" * 20)  # a second writer moved on
        with pytest.raises(StalePendingBlock, match=r"the head is now"):
            one.commit_pending(pending.block.hash, b"seal")
        assert one.pending_hashes() == () and one.height == 1
        with pytest.raises(TypeError):
            one.commit_pending(pending.block.hash, "seal")  # type: ignore[arg-type]
    finally:
        one.discard_pending()
        other.close()


def test_discard_and_rewind_drop_pending_blocks(chains: Callable[[], Blockchain]) -> None:
    chain = chains()
    pending = _propose(chain, _transfers(0, 1), T0 + 1)
    chain.discard_pending()
    assert chain.pending_hashes() == ()
    with pytest.raises(UnknownPendingBlock):
        chain.commit_pending(pending.block.hash, b"seal")
    chain.build_block([], timestamp=T0 + 1, coinbase=b"\x01" * 20)
    _propose(chain, [], T0 + 2)
    chain.rewind_to(0)
    assert chain.pending_hashes() == () and chain.height == 0


def test_seals_survive_reopening_and_blocks_serve_sync(tmp_path: Path) -> None:
    chain = Blockchain(LmdbStore(tmp_path / "a"), _genesis())
    for n in range(1, 3):
        pending = _propose(chain, _transfers(n - 1, 1), T0 + n)
        chain.commit_pending(pending.block.hash, b"\xc0" + bytes([n]) * 40)
    head = bytes(chain.head.hash)
    chain.close()
    reopened = Blockchain(LmdbStore(tmp_path / "a"), _genesis())
    syncing = Blockchain(LmdbStore(tmp_path / "b"), _genesis())
    try:
        assert reopened.seal_of(head) == b"\xc0" + b"\x02" * 40 and reopened.height == 2
        # A syncing node imports the committed blocks, with their seals, as they are served.
        for number in (1, 2):
            header, payloads = reopened.raw_block(number)
            wire = encode_block(header, payloads)
            seal = reopened.seal_of(header.hash)
            assert seal is not None
            got_header, got_payloads = decode_block(wire)
            imported = syncing.import_block(got_header, got_payloads, seal)
            assert imported.block.hash == header.hash
        assert syncing.head == reopened.head and syncing.seal_of(head) == reopened.seal_of(head)
        assert syncing.raw_block(0) == (syncing.header_by_number(0), ())
    finally:
        reopened.close()
        syncing.close()


# ---------------------------------------------------------------- senders


def test_known_senders_save_recovery(
    chains: Callable[[], Blockchain], monkeypatch: pytest.MonkeyPatch
) -> None:
    proposer, validator = chains(), chains()
    candidates = _transfers(0)
    proposal = _propose(proposer, candidates, T0 + 1)
    import coincurve.keys

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a known sender was recovered again")

    monkeypatch.setattr(coincurve.keys.PublicKey, "from_signature_and_message", refuse)
    known = {c.hash: c.sender for c in candidates}
    executed = validator.execute_block(
        proposal.block.header, proposal.tx_payloads, known_senders=known
    )
    assert executed.block.hash == proposal.block.hash


def test_a_wrong_known_sender_does_not_change_the_verdict(
    chains: Callable[[], Blockchain],
) -> None:
    proposer, validator = chains(), chains()
    candidates = _transfers(0, 1)
    proposal = _propose(proposer, candidates, T0 + 1)
    # Key 0's transaction claimed to come from key 3: the block is still judged valid ...
    wrong = {candidates[0].hash: ADDRS[3]}
    executed = validator.execute_block(
        proposal.block.header, proposal.tx_payloads, known_senders=wrong
    )
    assert executed.block.hash == proposal.block.hash
    assert executed.senders == tuple(ADDRS[:3])
    validator.commit_pending(executed.block.hash, b"s")
    proposer.commit_pending(proposal.block.hash, b"s")
    assert validator.get_nonce(ADDRS[3]) == 0 and validator.get_nonce(ADDRS[0]) == 1
    # ... and an invalid block stays invalid whatever the hints say.
    bad = _propose(proposer, _transfers(1, 1), T0 + 2)
    header = bad.block.header.copy(state_root=b"\x01" * 32)
    hints = {keccak(p): ADDRS[0] for p in bad.tx_payloads}
    with pytest.raises(InvalidBlock, match="state root"):
        validator.execute_block(header, bad.tx_payloads, known_senders=hints)


# ---------------------------------------------------------------- tampering


@pytest.fixture
def proposal_pair(
    chains: Callable[[], Blockchain],
) -> tuple[Blockchain, BuiltBlock]:
    """A validator at genesis and a valid proposal for block 1 from another node."""
    proposer, validator = chains(), chains()
    return validator, _propose(proposer, _transfers(0, 2), T0 + 12)


def _refused(
    validator: Blockchain, header: BlockHeaderAPI, payloads: tuple[bytes, ...], match: str
) -> None:
    head = validator.head
    with pytest.raises(InvalidBlock, match=match):
        validator.execute_block(header, payloads)
    assert validator.head == head and validator.pending_hashes() == ()
    assert validator.get_balance(TO) == 0


def _with_payloads(header: BlockHeaderAPI, payloads: list[bytes]) -> BlockHeaderAPI:
    """The header committing to `payloads` (so the transactions themselves are judged)."""
    return header.copy(transaction_root=ordered_trie_root(payloads))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("state_root", b"\x01" * 32, "state root mismatch"),
        ("receipt_root", b"\x02" * 32, "receipts root mismatch"),
        ("transaction_root", b"\x03" * 32, "transactions root mismatch"),
        ("gas_used", 21_000, "gas used mismatch"),
        ("bloom", 1, "logs bloom mismatch"),
        ("block_number", 2, "block number"),
        ("difficulty", 1, "difficulty"),
        ("nonce", b"\x00" * 7 + b"\x01", "nonce"),
        ("parent_beacon_block_root", b"\x05" * 32, "parent_beacon_block_root"),
        ("requests_hash", b"\x06" * 32, "requests_hash"),
        ("excess_blob_gas", 1, "excess_blob_gas"),
        ("extra_data", b"x" * 33, "extra data is 33 bytes"),
        ("timestamp", T0, "not after its parent"),
        ("timestamp", 2**64, "64 bits"),
        ("gas_limit", 60_000_000, "gas limit"),
        ("gas_limit", 29_000_000, "gas limit"),
    ],
)
def test_a_tampered_header_is_refused(
    proposal_pair: tuple[Blockchain, BuiltBlock], field: str, value: object, match: str
) -> None:
    validator, proposal = proposal_pair
    header = proposal.block.header.copy(**{field: value})
    _refused(validator, header, proposal.tx_payloads, match)


def test_a_wrong_base_fee_is_refused(proposal_pair: tuple[Blockchain, BuiltBlock]) -> None:
    validator, proposal = proposal_pair
    header = proposal.block.header
    _refused(validator, header.copy(base_fee_per_gas=header.base_fee_per_gas + 1), (), "base fee")


def test_a_block_on_another_parent_is_refused(
    proposal_pair: tuple[Blockchain, BuiltBlock],
) -> None:
    validator, proposal = proposal_pair
    header = proposal.block.header.copy(parent_hash=b"\x07" * 32)
    with pytest.raises(BlockNotOnHead, match="parent"):
        validator.execute_block(header, proposal.tx_payloads)
    assert validator.height == 0 and validator.pending_hashes() == ()


def test_a_gas_limit_within_bounds_is_the_proposers_choice(
    chains: Callable[[], Blockchain],
) -> None:
    validator = chains()
    parent = validator.head
    header = validator.chain.create_header_from_parent(
        parent, timestamp=T0 + 1, gas_limit=parent.gas_limit + parent.gas_limit // 1024 - 1
    )
    # Nothing executed: the state root is the parent's, and so on; only the hash must match.
    executed = validator.execute_block(header.copy(state_root=parent.state_root), [])
    assert executed.block.header.gas_limit == header.gas_limit


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: _raw(0, 7), "transaction 0 .*nonce"),  # a nonce gap
        (lambda: _raw(0, 0, value=10**30), "transaction 0 .*(funds|balance)"),
        (lambda: _raw(0, 0, maxFeePerGas=1, maxPriorityFeePerGas=1), "transaction 0 .*fee"),
        (lambda: _raw(0, 0, gas=40_000_000), "transaction 0 .*gas"),
        (lambda: _raw(0, 0, chainId=1), "chain id 1"),
        (lambda: b"\xff\x00\x01", "transaction 0 is malformed"),
        (lambda: b"", "transaction 0 is malformed"),
        (lambda: b"\x02" + rlp.encode([b"\x01"] * 3), "transaction 0 is malformed"),
        (lambda: _high_s(_raw(0, 0)), "r, s values"),
        (lambda: _legacy_unprotected(), "replay-protected"),
    ],
)
def test_a_block_with_a_bad_transaction_is_refused(
    proposal_pair: tuple[Blockchain, BuiltBlock], make: Callable[[], bytes], match: str
) -> None:
    validator, proposal = proposal_pair
    payloads = [make()]
    _refused(validator, _with_payloads(proposal.block.header, payloads), tuple(payloads), match)


def test_a_forged_signature_is_refused(proposal_pair: tuple[Blockchain, BuiltBlock]) -> None:
    validator, proposal = proposal_pair
    # The same transfer with r changed: it recovers to some other (unfunded) account or none.
    tx = decode_raw_transaction(_raw(0, 0))
    forged = tx.copy(r=tx.r ^ 1).encode()
    _refused(
        validator,
        _with_payloads(proposal.block.header, [forged]),
        (forged,),
        r"transaction 0(: the sender cannot be recovered| .*cannot be applied)",
    )


def test_a_duplicated_transaction_is_refused(
    proposal_pair: tuple[Blockchain, BuiltBlock],
) -> None:
    validator, proposal = proposal_pair
    payloads = [proposal.tx_payloads[0], proposal.tx_payloads[0]]
    _refused(validator, _with_payloads(proposal.block.header, payloads), tuple(payloads), "nonce")


def test_a_transaction_too_big_for_the_block_gas_left_is_refused(
    chains: Callable[[], Blockchain],
) -> None:
    validator = chains()
    parent = validator.head
    header = validator.chain.create_header_from_parent(
        parent, timestamp=T0 + 1, gas_limit=parent.gas_limit - parent.gas_limit // 1024 + 1
    )
    # The first fits; after its 21,000 gas the second's gas limit no longer does.
    payloads = [_raw(k, 0, gas=header.gas_limit - 20_999) for k in range(2)]
    _refused(validator, _with_payloads(header, payloads), tuple(payloads), "transaction 1 .*gas")


def _high_s(raw: bytes) -> bytes:
    from eth.constants import SECPK1_N

    tx = decode_raw_transaction(raw)
    return bytes(tx.copy(s=SECPK1_N - tx.s, y_parity=1 - tx.y_parity).encode())


def _legacy_unprotected() -> bytes:
    tx = {"nonce": 0, "gas": 21_000, "gasPrice": 2 * 10**10, "to": "0x" + TO.hex(), "value": 1}
    return bytes(KEYS[0].sign_transaction(tx).raw_transaction)


# ---------------------------------------------------------------- wire encoding


def test_block_encoding_round_trips(proposal_pair: tuple[Blockchain, BuiltBlock]) -> None:
    _validator, proposal = proposal_pair
    wire = encode_block(proposal.block.header, proposal.tx_payloads)
    header, payloads = decode_block(wire)
    assert header == proposal.block.header and payloads == proposal.tx_payloads
    assert decode_header(encode_header(header)).hash == proposal.block.hash


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\xc0",
        rlp.encode([b"a", b"b"]),
        rlp.encode([[b"x"] * 21, []]),
        rlp.encode([[b""] * 20, []]),
        b"\xc1" * 100_000 + b"\x80",  # deeply nested: refused before pyrlp recurses
        b"\xf9\xff\xff",  # a length running past the end
    ],
)
def test_garbage_blocks_are_invalid_not_crashes(data: bytes) -> None:
    with pytest.raises(InvalidBlock):
        decode_block(data)
    with pytest.raises(InvalidBlock):
        decode_header(data)


def test_deeply_nested_transactions_in_a_block_are_refused(
    proposal_pair: tuple[Blockchain, BuiltBlock],
) -> None:
    validator, proposal = proposal_pair
    nested = b"\x02" + b"\xc1" * 50_000 + b"\x80"
    wire = rlp.encode([proposal.block.header, [nested]])
    header, payloads = decode_block(wire)  # transactions are opaque bytes on the wire
    _refused(validator, _with_payloads(header, list(payloads)), payloads, "malformed")
