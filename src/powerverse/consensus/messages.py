"""Consensus messages: priorities, proposals and votes, their signing bytes and RLP encoding.

Every message names its height and round, carries the sender's sortition credential for its
role, and is signed with the sender's ed25519 consensus key over bytes that also name the chain
(``chain_id`` and genesis hash), so a signature is never valid on another chain.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import rlp

from powerverse.chain.rlp_guard import RlpShapeError, check_rlp_depth
from powerverse.consensus.exceptions import MalformedMessage

HASH_LEN: Final = 32
NIL: Final = b"\x00" * HASH_LEN
"""The vote for no value (Tendermint's nil)."""

MAX_ROUND: Final = 2**32 - 1
_DOMAIN: Final = b"powerverse/consensus/v1"


class Step(enum.IntEnum):
    """The voting steps of a round."""

    PREVOTE = 1
    PRECOMMIT = 2


class Kind(enum.IntEnum):
    """Message kinds on the wire (the first byte of an encoded message)."""

    PRIORITY = 1
    PROPOSAL = 2
    VOTE = 3


@dataclass(frozen=True)
class Credential:
    """A sortition result: the VRF hash and proof, and the number of selected sub-users."""

    vrf_hash: bytes
    proof: bytes
    weight: int


@dataclass(frozen=True)
class Chain:
    """What every signature is bound to: the chain id and the genesis hash."""

    chain_id: int
    genesis_hash: bytes

    def domain(self) -> bytes:
        """The prefix of every signed message on this chain."""
        return _DOMAIN + self.chain_id.to_bytes(8, "big") + self.genesis_hash


@dataclass(frozen=True)
class Priority:
    """A proposer's announcement that it was selected for (height, round), sent first."""

    height: int
    round: int
    proposer: bytes
    credential: Credential
    signature: bytes = b""

    def signing_bytes(self, chain: Chain) -> bytes:
        """The bytes the proposer signs."""
        return chain.domain() + _rlp(
            [b"priority", self.height, self.round, self.proposer, self.credential.vrf_hash]
        )


@dataclass(frozen=True)
class Proposal:
    """A proposed value (block hash) for (height, round); ``valid_round`` -1 means a fresh one.

    ``seed_proof`` is the proposer's VRF proof over the previous seed; the block's mixHash is
    the new seed derived from it (see ``seed.py``).
    """

    height: int
    round: int
    value: bytes
    valid_round: int
    proposer: bytes
    credential: Credential
    seed_proof: bytes
    signature: bytes = b""

    def signing_bytes(self, chain: Chain) -> bytes:
        """The bytes the proposer signs."""
        return chain.domain() + _rlp(
            [
                b"proposal",
                self.height,
                self.round,
                self.value,
                self.valid_round + 1,
                self.proposer,
                self.credential.vrf_hash,
                self.seed_proof,
            ]
        )


@dataclass(frozen=True)
class Vote:
    """A committee member's prevote or precommit for a value (or NIL) at (height, round)."""

    height: int
    round: int
    step: Step
    value: bytes
    voter: bytes
    credential: Credential
    signature: bytes = b""

    def signing_bytes(self, chain: Chain) -> bytes:
        """The bytes the voter signs."""
        return chain.domain() + _rlp(
            [b"vote", self.height, self.round, int(self.step), self.value, self.voter]
        )

    @property
    def slot(self) -> tuple[int, int, Step, bytes]:
        """Where a voter may vote once: two different values in one slot are equivocation."""
        return (self.height, self.round, self.step, self.voter)


Message = Priority | Proposal | Vote


# ---------------------------------------------------------------- wire encoding


def _rlp(item: object) -> bytes:
    return bytes(rlp.encode(item))


def _cred(c: Credential) -> list[object]:
    return [c.vrf_hash, c.proof, c.weight]


def encode(msg: Message) -> bytes:
    """The wire bytes of a message: its kind byte, then RLP."""
    if isinstance(msg, Priority):
        body: list[object] = [msg.height, msg.round, msg.proposer, _cred(msg.credential)]
        kind = Kind.PRIORITY
    elif isinstance(msg, Proposal):
        body = [
            msg.height,
            msg.round,
            msg.value,
            msg.valid_round + 1,
            msg.proposer,
            _cred(msg.credential),
            msg.seed_proof,
        ]
        kind = Kind.PROPOSAL
    else:
        body = [
            msg.height,
            msg.round,
            int(msg.step),
            msg.value,
            msg.voter,
            _cred(msg.credential),
        ]
        kind = Kind.VOTE
    return bytes([kind]) + _rlp([body, msg.signature])


def parse_int(item: object, what: str, limit: int = 2**64 - 1) -> int:
    """A canonical RLP integer (no leading zeros, at most 8 bytes) up to ``limit``."""
    if not isinstance(item, bytes) or len(item) > 8 or (item and item[0] == 0):
        raise MalformedMessage(f"{what} is not a canonical integer")
    value = int.from_bytes(item, "big")
    if value > limit:
        raise MalformedMessage(f"{what} is out of range")
    return value


def parse_fixed(item: object, size: int, what: str) -> bytes:
    """A byte string of exactly ``size`` bytes."""
    if not isinstance(item, bytes) or len(item) != size:
        raise MalformedMessage(f"{what} must be {size} bytes")
    return item


def _list(item: object, size: int, what: str) -> list[object]:
    if not isinstance(item, list) or len(item) != size:
        raise MalformedMessage(f"{what} must be a list of {size} items")
    return item


def _credential(item: object) -> Credential:
    vrf_hash, proof, weight = _list(item, 3, "credential")
    return Credential(
        vrf_hash=parse_fixed(vrf_hash, 64, "credential hash"),
        proof=parse_fixed(proof, 80, "credential proof"),
        weight=parse_int(weight, "credential weight"),
    )


def decode(data: bytes) -> Message:
    """Parse wire bytes; raise MalformedMessage for anything that is not a well-formed message."""
    if not data:
        raise MalformedMessage("empty message")
    try:
        kind = Kind(data[0])
    except ValueError as exc:
        raise MalformedMessage(f"unknown message kind {data[0]}") from exc
    try:
        check_rlp_depth(data[1:], 4)
        outer = rlp.decode(data[1:])
    except (RlpShapeError, rlp.exceptions.DecodingError) as exc:
        raise MalformedMessage(f"bad RLP: {exc}") from exc
    body, signature = _list(outer, 2, "message")
    signature = parse_fixed(signature, 64, "signature")
    if kind is Kind.PRIORITY:
        height, rnd, proposer, cred = _list(body, 4, "priority")
        return Priority(
            height=parse_int(height, "height"),
            round=parse_int(rnd, "round", MAX_ROUND),
            proposer=parse_fixed(proposer, 32, "proposer"),
            credential=_credential(cred),
            signature=signature,
        )
    if kind is Kind.PROPOSAL:
        height, rnd, value, valid, proposer, cred, seed_proof = _list(body, 7, "proposal")
        return Proposal(
            height=parse_int(height, "height"),
            round=parse_int(rnd, "round", MAX_ROUND),
            value=parse_fixed(value, HASH_LEN, "value"),
            valid_round=parse_int(valid, "valid round", MAX_ROUND) - 1,
            proposer=parse_fixed(proposer, 32, "proposer"),
            credential=_credential(cred),
            seed_proof=parse_fixed(seed_proof, 80, "seed proof"),
            signature=signature,
        )
    height, rnd, step, value, voter, cred = _list(body, 6, "vote")
    try:
        step_ = Step(parse_int(step, "step"))
    except ValueError as exc:
        raise MalformedMessage("unknown vote step") from exc
    return Vote(
        height=parse_int(height, "height"),
        round=parse_int(rnd, "round", MAX_ROUND),
        step=step_,
        value=parse_fixed(value, HASH_LEN, "value"),
        voter=parse_fixed(voter, 32, "voter"),
        credential=_credential(cred),
        signature=signature,
    )
