"""Checking consensus messages: signatures, sortition credentials and roles.

The cryptography is behind ``Crypto`` so the deterministic simulation can run thousands of
rounds with a fast keyed-hash stand-in; nodes use ``RealCrypto`` (ed25519 signatures and
ECVRF sortition on libsodium). Both check the same things in the same order.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from powerverse.consensus.committee import Committee, committee_role, proposer_role
from powerverse.consensus.exceptions import InvalidMessage
from powerverse.consensus.messages import NIL, Chain, Credential, Message, Proposal, Vote


class Crypto(Protocol):
    """Verification primitives the checks need."""

    def verify_signature(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is ``public_key``'s signature of ``message``."""
        ...

    def verify_sort(
        self, public_key: bytes, credential: Credential, seed: bytes, tau: int, role: bytes,
        w: int, total: int,
    ) -> int:  # fmt: skip
        """Sortition's j for a credential; 0 when invalid or not selected."""
        ...

    def priority(self, credential: Credential) -> bytes:
        """The proposer priority of a credential (lower wins)."""
        ...

    def vrf_output(self, public_key: bytes, proof: bytes, alpha: bytes) -> bytes | None:
        """The VRF output of a valid proof of ``alpha`` by ``public_key``; None when invalid."""
        ...


class Signer(Protocol):
    """What a validator needs to take part: sign, and run sortition with its own key."""

    public_key: bytes

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` with the consensus key."""
        ...

    def sortition(
        self, seed: bytes, tau: int, role: bytes, w: int, total: int
    ) -> Credential | None:
        """This validator's credential for a role; None when not selected."""
        ...

    def vrf_prove(self, alpha: bytes) -> bytes:
        """A VRF proof of ``alpha`` (for the block seed)."""
        ...


@dataclass
class Checker:
    """Checks messages of one chain against a height's committee; remembers good credentials.

    A voter uses one committee credential for every vote of a height, so its VRF proof is
    verified once and the result cached (bounded).
    """

    chain: Chain
    crypto: Crypto
    cache_size: int = 10_000
    _credentials: OrderedDict[tuple[bytes, bytes, bytes, bytes], int] = field(
        default_factory=OrderedDict
    )

    def _weight(
        self, committee: Committee, public_key: bytes, credential: Credential, role: bytes,
        tau: int,
    ) -> int:  # fmt: skip
        key = (committee.seed + role, public_key, credential.vrf_hash, credential.proof)
        cached = self._credentials.get(key)
        if cached is not None:
            if cached != credential.weight:
                raise InvalidMessage(
                    f"the credential claims weight {credential.weight}, not {cached}"
                )
            return cached
        stake = committee.stake_of(public_key)
        if stake <= 0:
            raise InvalidMessage("the sender is not a validator at this height")
        j = self.crypto.verify_sort(
            public_key, credential, committee.seed, tau, role, stake, committee.total_stake
        )
        if j <= 0:
            raise InvalidMessage("the sortition credential is invalid or not selected")
        if j != credential.weight:
            raise InvalidMessage(f"the credential claims weight {credential.weight}, not {j}")
        self._credentials[key] = j
        if len(self._credentials) > self.cache_size:
            self._credentials.popitem(last=False)
        return j

    def _signature(self, public_key: bytes, signing: bytes, signature: bytes) -> None:
        if not self.crypto.verify_signature(public_key, signing, signature):
            raise InvalidMessage("the signature does not verify")

    def check(self, msg: Message, committee: Committee) -> int:
        """Raise InvalidMessage unless ``msg`` is good at ``committee``'s height; its weight.

        Cheapest first: height, sender, shape, then the ed25519 signature (about 0.1 ms),
        and only then the VRF credential (about 0.5 ms, cached per sender and height).
        """
        if msg.height != committee.height:
            raise InvalidMessage(f"message of height {msg.height}, not {committee.height}")
        params = committee.params
        sender = msg.voter if isinstance(msg, Vote) else msg.proposer
        if committee.stake_of(sender) <= 0:
            raise InvalidMessage("the sender is not a validator at this height")
        if isinstance(msg, Proposal):
            if not -1 <= msg.valid_round < msg.round:
                raise InvalidMessage("a proposal's valid round must be -1 or below its round")
            if msg.value == NIL:
                raise InvalidMessage("a proposal must name a block, not nil")
        self._signature(sender, msg.signing_bytes(self.chain), msg.signature)
        if isinstance(msg, Vote):
            role, tau = committee_role(msg.height), params.tau_committee
        else:
            role, tau = proposer_role(msg.height, msg.round), params.tau_proposer
        return self._weight(committee, sender, msg.credential, role, tau)


def check_all(checker: Checker, msgs: list[Message], committee: Committee) -> list[Message]:
    """The messages among ``msgs`` that pass (for tests and tools)."""
    good = []
    for msg in msgs:
        try:
            checker.check(msg, committee)
        except InvalidMessage:
            continue
        good.append(msg)
    return good
