"""The equivocation-evidence precompile: the chain itself checks two conflicting signed messages.

A validator equivocates when it signs two different values for one slot: two prevotes (or two
precommits) for one (height, round), or two proposals for one (height, round). Contracts cannot
verify ed25519 signatures cheaply, and the signed bytes name the chain's genesis hash, which no
contract knows; so the chain offers a precompile at :data:`EVIDENCE_PRECOMPILE`:

- input: ``RLP([first, second])``, each the message's wire encoding as gossiped (a kind byte,
  then ``RLP([body, signature])``, docs/consensus.md) — what ``pv_getEvidence`` returns;
- output on valid evidence: ``abi.encode(bytes32 consensusKey, uint256 height)``; on anything
  else (malformed, bad signature, other chain, no conflict): empty output, like ``ecrecover``;
- gas: :data:`EVIDENCE_GAS`, charged whatever the input.

A second precompile at :data:`VOTE_PRECOMPILE` checks ONE signed vote, so that a validator can
prove on chain that it takes part in consensus (``Staking.proveLiveness``, downtime jailing):

- input: the vote's wire encoding, as in a finality certificate (``pv_getCertificate``);
- output for a vote correctly signed for this chain: ``abi.encode(bytes32 consensusKey,
  uint256 height, uint256 round, uint256 step, bytes32 value)`` (step 1 prevote, 2 precommit;
  value the block hash voted for); anything else gives empty output;
- gas: :data:`VOTE_GAS`, charged whatever the input.

The wire and signing formats are the consensus layer's (``powerverse.consensus.messages``); this
module reads only the fields evidence needs, and a differential test checks it against that
layer's encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import rlp
from eth.abc import ComputationAPI

from powerverse.chain.rlp_guard import RlpShapeError, check_rlp_depth
from powerverse.crypto import consensus_keys
from powerverse.crypto.exceptions import CryptoError

__all__ = [
    "EVIDENCE_GAS",
    "EVIDENCE_PRECOMPILE",
    "VOTE_GAS",
    "VOTE_PRECOMPILE",
    "check_evidence",
    "check_vote",
    "evidence_precompile",
    "vote_precompile",
]

EVIDENCE_PRECOMPILE: Final = (0x0A00).to_bytes(20, "big")
"""0x0000000000000000000000000000000000000a00."""
EVIDENCE_GAS: Final = 10_000
MAX_EVIDENCE_BYTES: Final = 4096
VOTE_PRECOMPILE: Final = (0x0A01).to_bytes(20, "big")
"""0x0000000000000000000000000000000000000a01."""
VOTE_GAS: Final = 5_000
MAX_VOTE_BYTES: Final = 1024

_DOMAIN: Final = b"powerverse/consensus/v1"
_PROPOSAL, _VOTE = 2, 3
_KEY_LEN, _HASH_LEN = 32, 32


class _Bad(Exception):
    """Not valid evidence."""


def _int(item: object) -> int:
    if not isinstance(item, bytes) or len(item) > 8 or item[:1] == b"\x00":
        raise _Bad("not a canonical integer")
    return int.from_bytes(item, "big")


def _fixed(item: object, size: int) -> bytes:
    if not isinstance(item, bytes) or len(item) != size:
        raise _Bad(f"expected {size} bytes")
    return item


def _list(item: object, size: int) -> list[object]:
    if not isinstance(item, list) or len(item) != size:
        raise _Bad(f"expected a list of {size}")
    return item


def _message(wire: object, domain: bytes) -> tuple[int, tuple[object, ...], bytes, bytes]:
    """(kind, slot, value, sender) of a correctly signed vote or proposal."""
    if not isinstance(wire, bytes) or len(wire) < 2:
        raise _Bad("message too short")
    kind = wire[0]
    try:
        check_rlp_depth(wire[1:], 8)
        outer = _list(rlp.decode(wire[1:]), 2)
    except (rlp.DecodingError, RlpShapeError) as exc:
        raise _Bad("malformed RLP") from exc
    body, signature = outer[0], _fixed(outer[1], 64)
    if kind == _VOTE:
        height, rnd, step, value, voter, cred = _list(body, 6)
        h, r, s = _int(height), _int(rnd), _int(step)
        if s not in (1, 2):
            raise _Bad("unknown step")
        value_b, sender = _fixed(value, _HASH_LEN), _fixed(voter, _KEY_LEN)
        _list(cred, 3)
        signed = rlp.encode([b"vote", h, r, s, value_b, sender])
        slot: tuple[object, ...] = ("vote", h, r, s)
    elif kind == _PROPOSAL:
        height, rnd, value, valid_round, proposer, cred, seed_proof = _list(body, 7)
        h, r, vr = _int(height), _int(rnd), _int(valid_round)
        value_b, sender = _fixed(value, _HASH_LEN), _fixed(proposer, _KEY_LEN)
        vrf_hash = _fixed(_list(cred, 3)[0], 64)
        if not isinstance(seed_proof, bytes):
            raise _Bad("seed proof must be bytes")
        signed = rlp.encode([b"proposal", h, r, value_b, vr, sender, vrf_hash, seed_proof])
        slot = ("proposal", h, r)
    else:
        raise _Bad("evidence is made of votes or proposals")
    try:
        consensus_keys.verify(sender, domain + signed, signature)
    except CryptoError as exc:
        raise _Bad("signature does not verify") from exc
    return kind, slot, value_b, sender


def check_evidence(data: bytes, chain_id: int, genesis_hash: bytes) -> tuple[bytes, int] | None:
    """(consensus key, height) if `data` proves an equivocation on this chain, else None."""
    if len(data) > MAX_EVIDENCE_BYTES:
        return None
    domain = _DOMAIN + chain_id.to_bytes(8, "big") + genesis_hash
    try:
        check_rlp_depth(data, 8)
        first, second = _list(rlp.decode(data), 2)
        _, slot_a, value_a, sender_a = _message(first, domain)
        _, slot_b, value_b, sender_b = _message(second, domain)
    except (_Bad, rlp.DecodingError, RlpShapeError, ValueError):
        return None
    if sender_a != sender_b or slot_a != slot_b or value_a == value_b:
        return None
    height = slot_a[1]
    assert isinstance(height, int)
    return sender_a, height


def check_vote(
    data: bytes, chain_id: int, genesis_hash: bytes
) -> tuple[bytes, int, int, int, bytes] | None:
    """(consensus key, height, round, step, value) of a vote signed for this chain, else None."""
    if len(data) > MAX_VOTE_BYTES or data[:1] != bytes([_VOTE]):
        return None
    domain = _DOMAIN + chain_id.to_bytes(8, "big") + genesis_hash
    try:
        _, slot, value, sender = _message(data, domain)
    except (_Bad, ValueError):
        return None
    _, height, rnd, step = slot
    assert isinstance(height, int) and isinstance(rnd, int) and isinstance(step, int)
    return sender, height, rnd, step, value


def vote_precompile(genesis_hash: bytes) -> Callable[[ComputationAPI], ComputationAPI]:
    """The single-vote precompile for a chain with this genesis hash."""

    def run(computation: ComputationAPI) -> ComputationAPI:
        computation.consume_gas(VOTE_GAS, reason="PowerVerse signed vote")
        chain_id = int(computation.state.execution_context.chain_id or 0)
        found = check_vote(computation.msg.data_as_bytes, chain_id, genesis_hash)
        if found is not None:
            key, height, rnd, step, value = found
            computation.output = (
                key
                + height.to_bytes(32, "big")
                + rnd.to_bytes(32, "big")
                + step.to_bytes(32, "big")
                + value
            )
        return computation

    return run


def evidence_precompile(genesis_hash: bytes) -> Callable[[ComputationAPI], ComputationAPI]:
    """The precompile for a chain with this genesis hash (the chain id comes from the state)."""

    def run(computation: ComputationAPI) -> ComputationAPI:
        computation.consume_gas(EVIDENCE_GAS, reason="PowerVerse equivocation evidence")
        chain_id = int(computation.state.execution_context.chain_id or 0)
        found = check_evidence(computation.msg.data_as_bytes, chain_id, genesis_hash)
        if found is not None:
            key, height = found
            computation.output = key + height.to_bytes(32, "big")
        return computation

    return run
