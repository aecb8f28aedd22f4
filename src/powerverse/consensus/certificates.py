"""Finality certificates: the precommits that decided a block, checkable by anyone.

A certificate holds, for one (height, round, block hash), precommits from distinct committee
members whose sortition weights add up to a quorum (more than 2/3 of the expected committee
weight). It is stored beside its block (the block's "seal"), served to peers, and checked by
every node that syncs, which therefore trusts no peer: it needs only the genesis, the
previous block's seed and the stakes at the lookback height.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp

from powerverse.chain.rlp_guard import RlpShapeError, check_rlp_depth
from powerverse.consensus.checks import Checker
from powerverse.consensus.committee import Committee
from powerverse.consensus.exceptions import InvalidCertificate, InvalidMessage, MalformedMessage
from powerverse.consensus.messages import (
    HASH_LEN,
    MAX_ROUND,
    NIL,
    Step,
    Vote,
    decode,
    encode,
    parse_fixed,
    parse_int,
)

MAX_CERTIFICATE_VOTES = 10_000
"""More votes than this in one certificate is refused outright (a committee is ~tau voters)."""


@dataclass(frozen=True)
class Certificate:
    """The precommits for ``value`` at (``height``, ``round``) that reached a quorum."""

    height: int
    round: int
    value: bytes
    votes: tuple[Vote, ...]

    @property
    def weight(self) -> int:
        """The claimed weight (checked by ``verify_certificate``)."""
        return sum(v.credential.weight for v in self.votes)

    def encode(self) -> bytes:
        """RLP of the certificate's encoded votes."""
        return bytes(
            rlp.encode([self.height, self.round, self.value, [encode(v) for v in self.votes]])
        )

    @classmethod
    def decode(cls, data: bytes) -> Certificate:
        """Parse a certificate; raise InvalidCertificate on malformed bytes."""
        try:
            check_rlp_depth(data, 3)
            items = rlp.decode(data)
            if not isinstance(items, list) or len(items) != 4:
                raise InvalidCertificate("a certificate is a list of 4 items")
            height, round_, value, votes = items
            if not isinstance(votes, list) or len(votes) > MAX_CERTIFICATE_VOTES:
                raise InvalidCertificate("certificate votes must be a list of bounded size")
            parsed = [decode(v) if isinstance(v, bytes) else None for v in votes]
            cert = cls(
                parse_int(height, "height"),
                parse_int(round_, "round", MAX_ROUND),
                parse_fixed(value, HASH_LEN, "value"),
                tuple(v for v in parsed if isinstance(v, Vote)),
            )
        except (RlpShapeError, rlp.exceptions.DecodingError) as exc:
            raise InvalidCertificate(f"malformed certificate: {exc}") from exc
        except MalformedMessage as exc:
            raise InvalidCertificate(f"malformed certificate: {exc}") from exc
        if len(cert.votes) != len(votes):
            raise InvalidCertificate("a certificate holds only votes")
        return cert


def verify_certificate(cert: Certificate, checker: Checker, committee: Committee) -> None:
    """Raise InvalidCertificate unless ``cert`` proves its value at ``committee``'s height."""
    if cert.height != committee.height:
        raise InvalidCertificate(f"certificate of height {cert.height}, not {committee.height}")
    if cert.value == NIL:
        raise InvalidCertificate("a certificate must finalize a block, not nil")
    seen: set[bytes] = set()
    weight = 0
    for vote in cert.votes:
        if (vote.height, vote.round, vote.step, vote.value) != (
            cert.height,
            cert.round,
            Step.PRECOMMIT,
            cert.value,
        ):
            raise InvalidCertificate("a vote in the certificate is not a precommit for its value")
        if vote.voter in seen:
            raise InvalidCertificate("two votes from one voter in a certificate")
        seen.add(vote.voter)
        try:
            weight += checker.check(vote, committee)
        except InvalidMessage as exc:
            raise InvalidCertificate(f"invalid vote in certificate: {exc}") from exc
    if not committee.is_quorum(weight):
        raise InvalidCertificate(
            f"certificate weight {weight} is not more than 2/3 of {committee.expected_weight}"
        )
