"""Checking messages with real keys: signatures, sortition credentials, roles, heights, rounds."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from eth_hash.auto import keccak

from powerverse.chain.genesis import PVC, ConsensusParams, Genesis, Validator
from powerverse.consensus import sortition
from powerverse.consensus.checks import Checker, check_all
from powerverse.consensus.committee import (
    Committee,
    GenesisStakes,
    committee_for,
    committee_role,
    genesis_seed,
    proposer_role,
    seed_alpha,
)
from powerverse.consensus.crypto import KeySigner, RealCrypto
from powerverse.consensus.exceptions import InvalidMessage
from powerverse.consensus.messages import (
    NIL,
    Chain,
    Credential,
    Message,
    Priority,
    Proposal,
    Step,
    Vote,
    decode,
    encode,
)
from powerverse.crypto.consensus_keys import ConsensusKey

CHAIN = Chain(31337, keccak(b"test genesis"))
SEED = genesis_seed(CHAIN.genesis_hash)
SIGNERS = [KeySigner(ConsensusKey.from_seed(bytes([i + 1]) * 32)) for i in range(4)]
OUTSIDER = KeySigner(ConsensusKey.from_seed(b"\x09" * 32))
HEIGHT = 3
VALUE = keccak(b"block")
STAKE = 1000  # PVC per validator; W = 4000 units
ALL = 10**6  # a tau above W: every unit is selected


def make_committee(
    tau_committee: int = ALL, tau_proposer: int = 20, height: int = HEIGHT, seed: bytes = SEED
) -> Committee:
    genesis = Genesis(
        chain_id=CHAIN.chain_id,
        timestamp=0,
        validators=tuple(
            Validator(bytes([i + 1]) * 20, s.public_key, STAKE * PVC) for i, s in enumerate(SIGNERS)
        ),
        consensus=ConsensusParams(tau_committee=tau_committee, tau_proposer=tau_proposer),
    )
    return committee_for(height, seed, GenesisStakes.of(genesis), genesis.consensus)


def credential(signer: KeySigner, committee: Committee, role: bytes, tau: int) -> Credential:
    """The signer's credential, computed as if it held a validator's stake (even if not)."""
    vrf_hash, proof, j = sortition.sortition(
        signer.key.seed, committee.seed, tau, role, STAKE, committee.total_stake
    )
    return Credential(vrf_hash, proof, j)


def vote_cred(signer: KeySigner, committee: Committee, height: int | None = None) -> Credential:
    role = committee_role(committee.height if height is None else height)
    return credential(signer, committee, role, committee.params.tau_committee)


def proposer_cred(signer: KeySigner, committee: Committee, round_: int) -> Credential:
    role = proposer_role(committee.height, round_)
    return credential(signer, committee, role, committee.params.tau_proposer)


def signed(msg: Message, signer: KeySigner, chain: Chain = CHAIN) -> Any:
    return replace(msg, signature=signer.sign(msg.signing_bytes(chain)))


def vote(
    signer: KeySigner, committee: Committee, chain: Chain = CHAIN, **kw: Any
) -> Vote:  # fmt: skip
    fields: dict[str, Any] = {
        "height": committee.height,
        "round": 0,
        "step": Step.PRECOMMIT,
        "value": VALUE,
        "voter": signer.public_key,
    }
    fields |= kw
    if "credential" not in fields:
        fields["credential"] = vote_cred(signer, committee)
    result: Vote = signed(Vote(**fields), signer, chain)
    return result


def proposal(signer: KeySigner, committee: Committee, round_: int = 1, **kw: Any) -> Proposal:
    fields: dict[str, Any] = {
        "height": committee.height,
        "round": round_,
        "value": VALUE,
        "valid_round": -1,
        "proposer": signer.public_key,
        "seed_proof": signer.vrf_prove(seed_alpha(committee.seed, committee.height)),
    }
    fields |= kw
    if "credential" not in fields:
        fields["credential"] = proposer_cred(signer, committee, round_)
    result: Proposal = signed(Proposal(**fields), signer)
    return result


def priority(signer: KeySigner, committee: Committee, round_: int = 1, **kw: Any) -> Priority:
    fields: dict[str, Any] = {
        "height": committee.height,
        "round": round_,
        "proposer": signer.public_key,
    }
    fields |= kw
    if "credential" not in fields:
        fields["credential"] = proposer_cred(signer, committee, round_)
    result: Priority = signed(Priority(**fields), signer)
    return result


def checker(chain: Chain = CHAIN) -> Checker:
    return Checker(chain, RealCrypto())


def refused(
    msg: Message, committee: Committee, match: str | None = None, check: Checker | None = None
) -> None:
    with pytest.raises(InvalidMessage, match=match):
        (check or checker()).check(msg, committee)


# --- votes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("step", list(Step))
@pytest.mark.parametrize("value", [VALUE, NIL], ids=["value", "nil"])
def test_every_validator_weighs_its_stake_when_tau_covers_it(step: Step, value: bytes) -> None:
    committee = make_committee(tau_committee=ALL)
    c = checker()
    for signer in SIGNERS:
        v = vote(signer, committee, step=step, value=value, round=2)
        assert v.credential.weight == STAKE
        assert c.check(v, committee) == STAKE


def test_sortition_weight_below_stake_with_smaller_tau() -> None:
    committee = make_committee(tau_committee=2000)  # p = 1/2 over 4000 units
    c = checker()
    weights = []
    for signer in SIGNERS:
        v = vote(signer, committee)
        weight = c.check(v, committee)
        assert weight == v.credential.weight
        assert 0 < weight < STAKE
        weights.append(weight)
    assert 1600 < sum(weights) < 2400  # about tau; far outside only with negligible odds


def test_signer_credential_matches_checker() -> None:
    committee = make_committee(tau_committee=2000)
    for signer in SIGNERS:
        cred = signer.sortition(
            committee.seed, 2000, committee_role(HEIGHT), STAKE, committee.total_stake
        )
        assert cred is not None
        assert cred == vote_cred(signer, committee)
        assert checker().check(vote(signer, committee, credential=cred), committee) == cred.weight


def test_vote_survives_the_wire() -> None:
    committee = make_committee(tau_committee=2000)
    v = vote(SIGNERS[0], committee)
    assert checker().check(decode(encode(v)), committee) == v.credential.weight


@pytest.mark.parametrize("tau", [ALL, 2000])
def test_bad_signatures(tau: int) -> None:
    committee = make_committee(tau_committee=tau)
    v = vote(SIGNERS[0], committee)
    flipped = bytes([v.signature[0] ^ 1]) + v.signature[1:]
    refused(replace(v, signature=flipped), committee, "signature")
    refused(replace(v, signature=b""), committee, "signature")
    refused(replace(v, signature=b"\x00" * 64), committee, "signature")
    refused(replace(v, signature=v.signature[:63]), committee, "signature")
    by_other = replace(v, signature=SIGNERS[1].sign(v.signing_bytes(CHAIN)))
    refused(by_other, committee, "signature")


@pytest.mark.parametrize(
    "change",
    [{"value": NIL}, {"round": 1}, {"step": Step.PREVOTE}],
    ids=["value", "round", "step"],
)
def test_tampered_vote(change: dict[str, Any]) -> None:
    committee = make_committee()
    v = vote(SIGNERS[0], committee)
    refused(replace(v, **change), committee, "signature")


def test_vote_claimed_by_another_validator() -> None:
    """A's signed vote relabelled as B's, with B's valid credential: the signature fails."""
    committee = make_committee()
    v = vote(SIGNERS[0], committee)
    stolen = replace(v, voter=SIGNERS[1].public_key, credential=vote_cred(SIGNERS[1], committee))
    refused(stolen, committee, "signature")


def test_non_validator_voter() -> None:
    committee = make_committee()
    v = vote(OUTSIDER, committee)
    assert v.credential.weight == STAKE  # a well-made credential, as if it held stake
    refused(v, committee, "not a validator")


def test_zero_stake_validator_is_not_a_validator() -> None:
    genesis = Genesis(
        chain_id=CHAIN.chain_id,
        timestamp=0,
        validators=(
            Validator(b"\x01" * 20, SIGNERS[0].public_key, STAKE * PVC),
            Validator(b"\x02" * 20, SIGNERS[1].public_key, PVC - 1),
        ),
    )
    committee = committee_for(HEIGHT, SEED, GenesisStakes.of(genesis), genesis.consensus)
    assert committee.stake_of(SIGNERS[1].public_key) == 0
    cred = credential(SIGNERS[1], committee, committee_role(HEIGHT), ALL)
    refused(vote(SIGNERS[1], committee, credential=replace(cred, weight=1)), committee, "validator")


@pytest.mark.parametrize("tau", [ALL, 2000])
def test_credential_from_another_height(tau: int) -> None:
    committee = make_committee(tau_committee=tau)
    cred = vote_cred(SIGNERS[0], committee, height=HEIGHT + 1)
    refused(vote(SIGNERS[0], committee, credential=cred), committee, "credential")


@pytest.mark.parametrize("tau", [ALL, 2000])
def test_credential_from_another_seed(tau: int) -> None:
    committee = make_committee(tau_committee=tau)
    other = make_committee(tau_committee=tau, seed=keccak(b"another seed"))
    cred = vote_cred(SIGNERS[0], other)
    refused(vote(SIGNERS[0], committee, credential=cred), committee, "credential")


def test_proposer_credential_does_not_vote() -> None:
    committee = make_committee(tau_committee=2000, tau_proposer=2000)
    cred = proposer_cred(SIGNERS[0], committee, 0)
    assert cred.weight > 0
    refused(vote(SIGNERS[0], committee, credential=cred), committee, "credential")


def test_another_validators_credential() -> None:
    committee = make_committee(tau_committee=2000)
    cred = vote_cred(SIGNERS[1], committee)
    refused(vote(SIGNERS[0], committee, credential=cred), committee, "credential")


@pytest.mark.parametrize("tau", [ALL, 2000])
def test_tampered_credential(tau: int) -> None:
    committee = make_committee(tau_committee=tau)
    good = vote_cred(SIGNERS[0], committee)
    bad_hash = replace(good, vrf_hash=bytes([good.vrf_hash[0] ^ 1]) + good.vrf_hash[1:])
    bad_proof = replace(good, proof=bytes([good.proof[0] ^ 1]) + good.proof[1:])
    for cred in (bad_hash, bad_proof, replace(good, proof=b"\x00" * 80)):
        refused(vote(SIGNERS[0], committee, credential=cred), committee, "credential")


@pytest.mark.parametrize("tau", [ALL, 2000])
@pytest.mark.parametrize("delta", [-1, 1, 10**6])
def test_claimed_weight_must_equal_j(tau: int, delta: int) -> None:
    committee = make_committee(tau_committee=tau)
    good = vote_cred(SIGNERS[0], committee)
    bad = vote(SIGNERS[0], committee, credential=replace(good, weight=good.weight + delta))
    refused(bad, committee, "weight")


def test_claimed_weight_zero() -> None:
    committee = make_committee(tau_committee=2000)
    good = vote_cred(SIGNERS[0], committee)
    refused(vote(SIGNERS[0], committee, credential=replace(good, weight=0)), committee, "weight")


def test_claimed_weight_checked_after_a_good_vote_is_cached() -> None:
    """The credential cache must not let the same proof through with another claimed weight."""
    committee = make_committee(tau_committee=2000)
    c = checker()
    good = vote(SIGNERS[0], committee, step=Step.PREVOTE)
    assert c.check(good, committee) == good.credential.weight
    inflated = replace(good.credential, weight=good.credential.weight + 100)
    refused(vote(SIGNERS[0], committee, credential=inflated), committee, "weight", check=c)
    # and the good one still passes afterwards
    assert c.check(vote(SIGNERS[0], committee), committee) == good.credential.weight


def test_vote_of_another_height() -> None:
    committee = make_committee()
    later = make_committee(height=HEIGHT + 1)
    v = vote(SIGNERS[0], later)
    assert checker().check(v, later) == STAKE
    refused(v, committee, "height")
    refused(replace(v, height=HEIGHT - 1), committee, "height")


def test_signature_on_another_chain_fails() -> None:
    committee = make_committee()
    for other in (Chain(CHAIN.chain_id + 1, CHAIN.genesis_hash), Chain(CHAIN.chain_id, NIL)):
        v = vote(SIGNERS[0], committee, chain=other)
        assert checker(other).check(v, committee) == STAKE
        refused(v, committee, "signature")
        with pytest.raises(InvalidMessage, match="signature"):
            checker(other).check(vote(SIGNERS[0], committee), committee)


def test_failed_check_is_not_cached_as_good() -> None:
    committee = make_committee()
    c = checker()
    v = vote(SIGNERS[0], committee)
    refused(replace(v, signature=b"\x00" * 64), committee, "signature", check=c)
    assert c.check(v, committee) == STAKE
    refused(replace(v, signature=b"\x00" * 64), committee, "signature", check=c)


# --- proposals and priorities ----------------------------------------------------------------


def selected_round(signer: KeySigner, committee: Committee, start: int = 1) -> int:
    for r in range(start, start + 200):
        if proposer_cred(signer, committee, r).weight > 0:
            return r
    raise AssertionError("never selected")


def unselected_round(signer: KeySigner, committee: Committee) -> int:
    for r in range(200):
        if proposer_cred(signer, committee, r).weight == 0:
            return r
    raise AssertionError("always selected")


@pytest.mark.parametrize("tau_proposer", [20, 1, ALL])
def test_proposal_and_priority_pass(tau_proposer: int) -> None:
    committee = make_committee(tau_committee=2000, tau_proposer=tau_proposer)
    for signer in SIGNERS:
        r = selected_round(signer, committee)
        p = proposal(signer, committee, r)
        assert checker().check(p, committee) == p.credential.weight > 0
        assert checker().check(decode(encode(p)), committee) == p.credential.weight
        pr = priority(signer, committee, r)
        assert checker().check(pr, committee) == p.credential.weight
        if tau_proposer == ALL:
            assert p.credential.weight == STAKE


@pytest.mark.parametrize(("round_", "valid_round"), [(1, -1), (1, 0), (5, 4), (5, 0), (0, -1)])
def test_valid_round_in_range(round_: int, valid_round: int) -> None:
    committee = make_committee(tau_proposer=ALL)
    p = proposal(SIGNERS[0], committee, round_, valid_round=valid_round)
    assert checker().check(p, committee) == STAKE


@pytest.mark.parametrize(("round_", "valid_round"), [(1, 1), (1, 2), (0, 0), (5, 9), (5, 5)])
def test_valid_round_out_of_range(round_: int, valid_round: int) -> None:
    committee = make_committee(tau_proposer=ALL)
    p = proposal(SIGNERS[0], committee, round_, valid_round=valid_round)
    refused(p, committee, "valid round")


def test_valid_round_below_minus_one() -> None:
    """Not encodable (nor signable), but a locally built one is refused before anything else."""
    committee = make_committee(tau_proposer=ALL)
    p = proposal(SIGNERS[0], committee, 3)
    refused(replace(p, valid_round=-2), committee, "valid round")


def test_unselected_proposer() -> None:
    committee = make_committee(tau_committee=2000, tau_proposer=1)
    signer = SIGNERS[0]
    r = unselected_round(signer, committee)
    cred = proposer_cred(signer, committee, r)
    assert signer.sortition(committee.seed, 1, proposer_role(HEIGHT, r), STAKE, 4000) is None
    for weight in (0, 1):
        forged = replace(cred, weight=weight)
        refused(proposal(signer, committee, r, credential=forged), committee, "not selected")
        refused(priority(signer, committee, r, credential=forged), committee, "not selected")


def test_proposer_credential_of_another_round() -> None:
    committee = make_committee(tau_proposer=2000)
    cred = proposer_cred(SIGNERS[0], committee, 2)
    refused(proposal(SIGNERS[0], committee, 1, credential=cred), committee, "credential")
    refused(priority(SIGNERS[0], committee, 1, credential=cred), committee, "credential")


def test_committee_credential_does_not_propose() -> None:
    committee = make_committee(tau_committee=2000, tau_proposer=2000)
    cred = vote_cred(SIGNERS[0], committee)
    refused(proposal(SIGNERS[0], committee, 1, credential=cred), committee, "credential")
    refused(priority(SIGNERS[0], committee, 1, credential=cred), committee, "credential")


def test_proposer_claimed_weight_must_equal_j() -> None:
    committee = make_committee(tau_proposer=2000)
    c = checker()
    good = proposal(SIGNERS[0], committee, 1)
    assert c.check(good, committee) == good.credential.weight
    cred = replace(good.credential, weight=good.credential.weight + 1)
    refused(proposal(SIGNERS[0], committee, 1, credential=cred), committee, "weight")
    refused(priority(SIGNERS[0], committee, 1, credential=cred), committee, "weight", check=c)


@pytest.mark.parametrize(
    "change",
    [
        {"value": b"\x07" * 32},
        {"valid_round": 0},
        {"seed_proof": b"\x00" * 80},
        {"round": 2},
    ],
    ids=["value", "valid_round", "seed_proof", "round"],
)
def test_tampered_proposal(change: dict[str, Any]) -> None:
    committee = make_committee(tau_proposer=ALL)
    p = proposal(SIGNERS[0], committee, 1)
    cred = proposer_cred(SIGNERS[0], committee, change.get("round", 1))
    refused(replace(p, credential=cred, **change), committee, "signature")


def test_proposal_and_priority_bad_senders() -> None:
    committee = make_committee(tau_proposer=ALL)
    p = proposal(SIGNERS[0], committee, 1)
    pr = priority(SIGNERS[0], committee, 1)
    for msg in (p, pr):
        refused(replace(msg, signature=SIGNERS[1].sign(msg.signing_bytes(CHAIN))), committee)
        refused(replace(msg, height=HEIGHT + 1), committee, "height")
    refused(proposal(OUTSIDER, committee, 1), committee, "not a validator")
    nil = signed(replace(p, value=NIL), SIGNERS[0])
    refused(nil, committee, "not nil")
    refused(priority(OUTSIDER, committee, 1), committee, "not a validator")
    refused(proposal(SIGNERS[0], committee, 1), committee, check=checker(Chain(1, NIL)))
    refused(priority(SIGNERS[0], committee, 1), committee, check=checker(Chain(1, NIL)))


def test_priority_tampered() -> None:
    committee = make_committee(tau_proposer=ALL)
    pr = priority(SIGNERS[0], committee, 1)
    refused(replace(pr, round=2, credential=proposer_cred(SIGNERS[0], committee, 2)), committee)
    refused(replace(pr, signature=bytes(64)), committee, "signature")


# --- cache and check_all ---------------------------------------------------------------------


@dataclass
class CountingCrypto:
    """RealCrypto that counts credential verifications."""

    real: RealCrypto = field(default_factory=RealCrypto)
    sorts: int = 0

    def verify_signature(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return self.real.verify_signature(public_key, message, signature)

    def verify_sort(
        self, public_key: bytes, credential: Credential, seed: bytes, tau: int, role: bytes,
        w: int, total: int,
    ) -> int:  # fmt: skip
        self.sorts += 1
        return self.real.verify_sort(public_key, credential, seed, tau, role, w, total)

    def priority(self, credential: Credential) -> bytes:
        return self.real.priority(credential)

    def vrf_output(self, public_key: bytes, proof: bytes, alpha: bytes) -> bytes | None:
        return self.real.vrf_output(public_key, proof, alpha)


def test_credential_verified_once_per_height() -> None:
    committee = make_committee(tau_committee=2000)
    crypto = CountingCrypto()
    c = Checker(CHAIN, crypto)
    for r in range(3):
        for step in Step:
            c.check(vote(SIGNERS[0], committee, round=r, step=step), committee)
    assert crypto.sorts == 1


def test_credential_cache_is_bounded() -> None:
    committee = make_committee(tau_committee=2000)
    crypto = CountingCrypto()
    c = Checker(CHAIN, crypto, cache_size=2)
    votes = [vote(s, committee) for s in SIGNERS[:3]]
    for v in votes:
        c.check(v, committee)
    assert crypto.sorts == 3
    c.check(votes[2], committee)
    assert crypto.sorts == 3  # recent: cached
    c.check(votes[0], committee)
    assert crypto.sorts == 4  # the oldest was evicted


def test_check_all_keeps_only_good_messages() -> None:
    committee = make_committee(tau_proposer=ALL)
    good = [vote(s, committee) for s in SIGNERS] + [proposal(SIGNERS[0], committee, 1)]
    bad: list[Message] = [
        vote(OUTSIDER, committee),
        replace(good[1], signature=bytes(64)),
        replace(good[2], height=HEIGHT + 1),
        proposal(SIGNERS[1], committee, 1, valid_round=1),
    ]
    mixed = [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3], bad[3], good[4]]
    assert check_all(checker(), mixed, committee) == good
    assert check_all(checker(), [], committee) == []


# --- RealCrypto and KeySigner ----------------------------------------------------------------


def test_real_crypto_signature() -> None:
    crypto = RealCrypto()
    signer = SIGNERS[0]
    sig = signer.sign(b"message")
    assert crypto.verify_signature(signer.public_key, b"message", sig)
    assert not crypto.verify_signature(signer.public_key, b"messagf", sig)
    assert not crypto.verify_signature(SIGNERS[1].public_key, b"message", sig)
    assert not crypto.verify_signature(signer.public_key, b"message", sig[:63])
    assert not crypto.verify_signature(signer.public_key[:31], b"message", sig)
    assert not crypto.verify_signature(b"", b"message", b"")


def test_real_crypto_vrf_output() -> None:
    crypto = RealCrypto()
    signer = SIGNERS[0]
    alpha = seed_alpha(SEED, HEIGHT)
    proof = signer.vrf_prove(alpha)
    output = crypto.vrf_output(signer.public_key, proof, alpha)
    assert output is not None
    assert len(output) == 64
    assert crypto.vrf_output(signer.public_key, proof, alpha) == output
    assert crypto.vrf_output(signer.public_key, proof, alpha + b"x") is None
    assert crypto.vrf_output(SIGNERS[1].public_key, proof, alpha) is None
    assert crypto.vrf_output(signer.public_key, proof[:79], alpha) is None
    assert crypto.vrf_output(signer.public_key, b"\x00" * 80, alpha) is None


def test_real_crypto_verify_sort_and_priority() -> None:
    crypto = RealCrypto()
    committee = make_committee(tau_committee=2000)
    cred = vote_cred(SIGNERS[0], committee)
    role = committee_role(HEIGHT)
    assert crypto.verify_sort(SIGNERS[0].public_key, cred, SEED, 2000, role, STAKE, 4000) == (
        cred.weight
    )
    assert crypto.verify_sort(SIGNERS[1].public_key, cred, SEED, 2000, role, STAKE, 4000) == 0
    assert crypto.verify_sort(b"\x00" * 5, cred, SEED, 2000, role, STAKE, 4000) == 0
    assert crypto.priority(cred) == sortition.priority(cred.vrf_hash, cred.weight)
    assert crypto.priority(replace(cred, weight=0)) == sortition.priority(cred.vrf_hash, 1)


def test_key_signer() -> None:
    signer = SIGNERS[0]
    assert signer.public_key == signer.key.public_key
    assert signer.sortition(SEED, 20, proposer_role(1, 0), 0, 4000) is None
    cred = signer.sortition(SEED, ALL, committee_role(1), STAKE, 4000)
    assert cred is not None
    assert cred.weight == STAKE
    assert len(cred.vrf_hash) == 64
    assert len(cred.proof) == 80
