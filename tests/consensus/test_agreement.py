"""The agreement state machine, driven step by step: Tendermint's rules with weighted votes."""

from __future__ import annotations

from dataclasses import replace

from eth_hash.auto import keccak

from powerverse.chain.genesis import ConsensusParams
from powerverse.consensus.agreement import (
    Agreement,
    Broadcast,
    BuildBlock,
    Decide,
    Equivocation,
    Me,
    ScheduleTimeout,
    Timeout,
    Timeouts,
    ValidateValue,
)
from powerverse.consensus.committee import Committee, StakeEntry, committee_role, proposer_role
from powerverse.consensus.messages import NIL, Chain, Credential, Priority, Proposal, Step, Vote
from powerverse.consensus.simulation import FakeCrypto, FakeSigner

CHAIN = Chain(7, b"\x01" * 32)
SEED = b"\x42" * 32
HEIGHT = 5
# tau >= W: every stake unit is selected, so weights equal stakes (100 each, 400 in all).
PARAMS = ConsensusParams(tau_committee=10_000, tau_proposer=10_000)
EMPTY = keccak(b"empty block")
BLOCK_A = keccak(b"A")
BLOCK_B = keccak(b"B")

crypto = FakeCrypto()
SIGNERS = []
for i in range(4):
    secret = bytes([i + 1]) * 32
    pk = keccak(secret)
    crypto.secrets[pk] = secret
    SIGNERS.append(FakeSigner(pk, secret, crypto))
STAKES = {s.public_key: StakeEntry(s.public_key, s.public_key[:20], 100) for s in SIGNERS}
COMMITTEE = Committee(HEIGHT, SEED, STAKES, PARAMS)


def _cred(signer: FakeSigner, role: bytes, tau: int) -> Credential:
    cred = signer.sortition(SEED, tau, role, 100, 400)
    assert cred is not None
    return cred


def _agreement(i: int, *, proposer: bool = True) -> Agreement:
    signer = SIGNERS[i]

    def proposer_cred(round_: int) -> Credential | None:
        if not proposer:
            return None
        return _cred(signer, proposer_role(HEIGHT, round_), PARAMS.tau_proposer)

    me = Me(
        signer.public_key,
        signer.sign,
        _cred(signer, committee_role(HEIGHT), PARAMS.tau_committee),
        proposer_cred,
    )
    return Agreement(CHAIN, COMMITTEE, EMPTY, Timeouts(), me, crypto.priority)


def _vote(i: int, step: Step, value: bytes, round_: int = 0, height: int = HEIGHT) -> Vote:
    signer = SIGNERS[i]
    vote = Vote(
        height,
        round_,
        step,
        value,
        signer.public_key,
        _cred(signer, committee_role(HEIGHT), PARAMS.tau_committee),
    )
    return replace(vote, signature=signer.sign(vote.signing_bytes(CHAIN)))


def _proposal(i: int, value: bytes, round_: int = 0, valid_round: int = -1) -> Proposal:
    signer = SIGNERS[i]
    cred = _cred(signer, proposer_role(HEIGHT, round_), PARAMS.tau_proposer)
    p = Proposal(HEIGHT, round_, value, valid_round, signer.public_key, cred, b"\x00" * 80)
    return replace(p, signature=signer.sign(p.signing_bytes(CHAIN)))


def _priority(i: int, round_: int = 0) -> Priority:
    signer = SIGNERS[i]
    cred = _cred(signer, proposer_role(HEIGHT, round_), PARAMS.tau_proposer)
    p = Priority(HEIGHT, round_, signer.public_key, cred)
    return replace(p, signature=signer.sign(p.signing_bytes(CHAIN)))


def _sent(actions: list[object], kind: type) -> list[object]:
    return [a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, kind)]


def _my_votes(actions: list[object]) -> list[tuple[Step, bytes]]:
    return [(v.step, v.value) for v in _sent(actions, Vote)]  # type: ignore[attr-defined]


def _leader_index(round_: int = 0) -> int:
    prios = [
        crypto.priority(_cred(s, proposer_role(HEIGHT, round_), PARAMS.tau_proposer))
        for s in SIGNERS
    ]
    return prios.index(min(prios))


def _close_window(a: Agreement, round_: int = 0) -> list[object]:
    """Every priority, then the window's timeout (the last priority already closes it)."""
    actions: list[object] = []
    for i in range(4):
        actions += a.on_priority(_priority(i, round_))
    return actions + list(a.on_timeout(Timeout.PRIORITY, HEIGHT, round_))


def test_round_start_announces_priority_and_schedules_timeouts() -> None:
    actions = _agreement(0).start()
    assert len(_sent(actions, Priority)) == 1
    kinds = {a.kind for a in actions if isinstance(a, ScheduleTimeout)}
    assert kinds == {Timeout.PRIORITY, Timeout.PROPOSE}


def test_the_leader_builds_and_others_wait_for_its_block() -> None:
    leader = _leader_index()
    for i in range(4):
        a = _agreement(i)
        a.start()
        actions = _close_window(a)
        builds = [x for x in actions if isinstance(x, BuildBlock)]
        assert bool(builds) == (i == leader)
        assert a.leader(0) == SIGNERS[leader].public_key


def _worst_index(round_: int = 0) -> int:
    prios = [
        crypto.priority(_cred(s, proposer_role(HEIGHT, round_), PARAMS.tau_proposer))
        for s in SIGNERS
    ]
    return prios.index(max(prios))


def test_the_window_closes_once_every_validator_announced() -> None:
    leader = _leader_index()
    for i in range(4):
        a = _agreement(i)
        a.start()
        others = [j for j in range(4) if j != i]
        for j in others[:-1]:
            assert not [x for x in a.on_priority(_priority(j)) if isinstance(x, BuildBlock)]
        assert a.leader(0) is None  # still open: one validator has not announced
        actions = a.on_priority(_priority(others[-1]))
        assert a.leader(0) == SIGNERS[leader].public_key
        assert bool([x for x in actions if isinstance(x, BuildBlock)]) == (i == leader)
        assert a.on_timeout(Timeout.PRIORITY, HEIGHT, 0) == []  # the timeout changes nothing


def test_a_silent_validator_leaves_the_choice_to_the_window_timeout() -> None:
    leader = _leader_index()
    silent = next(i for i in range(4) if i != leader)
    a = _agreement(leader)
    a.start()
    for j in range(4):
        if j not in (leader, silent):
            a.on_priority(_priority(j))
    assert a.leader(0) is None
    assert [x for x in a.on_timeout(Timeout.PRIORITY, HEIGHT, 0) if isinstance(x, BuildBlock)]
    assert a.leader(0) == SIGNERS[leader].public_key


def test_priorities_of_a_later_round_close_its_window_when_the_round_starts() -> None:
    leader = _leader_index(1)
    a = _agreement(leader)
    a.start()
    for j in range(4):
        if j != leader:
            a.on_priority(_priority(j, 1))  # sent by nodes already in round 1
    assert a.leader(1) is None
    actions = a.on_timeout(Timeout.PRECOMMIT, HEIGHT, 0)  # round 1 starts
    assert a.round == 1 and a.leader(1) == SIGNERS[leader].public_key
    assert [x for x in actions if isinstance(x, BuildBlock)] == [BuildBlock(HEIGHT, 1)]


def test_a_leader_with_a_valid_value_re_proposes_it_when_the_window_closes_early() -> None:
    leader = _leader_index(1)
    a = _agreement(leader)
    a.start()
    _close_window(a)
    others = [i for i in range(4) if i != leader]
    a.on_proposal(_proposal(_leader_index(0), BLOCK_A))
    a.on_validated(BLOCK_A, True)
    for i in others[:2]:
        a.on_vote(_vote(i, Step.PREVOTE, BLOCK_A))  # a polka: BLOCK_A is the valid value
    assert a.valid_value == BLOCK_A
    a.on_timeout(Timeout.PRECOMMIT, HEIGHT, 0)  # round 1, which it leads
    actions: list[object] = []
    for j in others:
        actions += a.on_priority(_priority(j, 1))
    assert not [x for x in actions if isinstance(x, BuildBlock)]
    proposals = _sent(actions, Proposal)
    assert [(p.round, p.value, p.valid_round) for p in proposals] == [(1, BLOCK_A, 0)]  # type: ignore[attr-defined]


def test_happy_path_decides_with_a_certificate_of_precommits() -> None:
    leader = _leader_index()
    me = (leader + 1) % 4
    a = _agreement(me)
    a.start()
    _close_window(a)
    actions = a.on_proposal(_proposal(leader, BLOCK_A))
    assert ValidateValue(BLOCK_A) in actions
    assert _my_votes(a.on_validated(BLOCK_A, True)) == [(Step.PREVOTE, BLOCK_A)]
    others = [i for i in range(4) if i != me]
    a.on_vote(_vote(others[0], Step.PREVOTE, BLOCK_A))
    actions = a.on_vote(_vote(others[1], Step.PREVOTE, BLOCK_A))  # 3 of 4: a polka
    assert _my_votes(actions) == [(Step.PRECOMMIT, BLOCK_A)]
    assert (a.locked_value, a.locked_round) == (BLOCK_A, 0)
    assert not [
        x for x in a.on_vote(_vote(others[0], Step.PRECOMMIT, BLOCK_A)) if isinstance(x, Decide)
    ]
    actions = a.on_vote(_vote(others[1], Step.PRECOMMIT, BLOCK_A))
    decisions = [x for x in actions if isinstance(x, Decide)]
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision.value == BLOCK_A and decision.height == HEIGHT
    assert {v.voter for v in decision.certificate} == {
        SIGNERS[i].public_key for i in (me, *others[:2])
    }
    assert all(v.step is Step.PRECOMMIT and v.value == BLOCK_A for v in decision.certificate)
    assert a.on_vote(_vote(others[2], Step.PRECOMMIT, BLOCK_A)) == []  # decided: ignores the rest


def test_two_of_four_is_not_a_quorum() -> None:
    a = _agreement(0, proposer=False)
    a.start()
    a.on_vote(_vote(1, Step.PRECOMMIT, EMPTY))
    actions = a.on_vote(_vote(2, Step.PRECOMMIT, EMPTY))
    assert not [x for x in actions if isinstance(x, Decide)]
    assert a.decision is None


def test_no_priority_in_time_means_a_prevote_for_the_empty_block() -> None:
    a = _agreement(0, proposer=False)
    a.start()
    actions = a.on_timeout(Timeout.PRIORITY, HEIGHT, 0)
    assert _my_votes(actions) == [(Step.PREVOTE, EMPTY)]


def test_a_missing_block_means_the_empty_block_after_one_grace_period() -> None:
    a = _agreement(_leader_index() ^ 1)
    a.start()
    _close_window(a)
    first = a.on_timeout(Timeout.PROPOSE, HEIGHT, 0)
    assert _my_votes(first) == []  # the leader announced itself: its block gets one more period
    assert [x.kind for x in first if isinstance(x, ScheduleTimeout)] == [Timeout.PROPOSE]
    assert _my_votes(a.on_timeout(Timeout.PROPOSE, HEIGHT, 0)) == [(Step.PREVOTE, EMPTY)]


def test_an_invalid_block_gets_a_prevote_for_the_empty_block() -> None:
    leader = _leader_index()
    a = _agreement((leader + 1) % 4)
    a.start()
    _close_window(a)
    a.on_proposal(_proposal(leader, BLOCK_A))
    assert _my_votes(a.on_validated(BLOCK_A, False)) == [(Step.PREVOTE, EMPTY)]


def test_an_empty_block_quorum_is_decided() -> None:
    a = _agreement(0, proposer=False)
    a.start()
    for i in (1, 2, 3):
        a.on_vote(_vote(i, Step.PRECOMMIT, EMPTY))
    assert a.decision is not None and a.decision.value == EMPTY


def test_a_proposal_from_a_non_leader_is_not_voted_on() -> None:
    leader = _leader_index()
    other = (leader + 1) % 4
    a = _agreement((leader + 2) % 4)
    a.start()
    _close_window(a)
    a.on_proposal(_proposal(other, BLOCK_B))
    assert _my_votes(a.on_validated(BLOCK_B, True)) == []


def _locked_on_a(me: int) -> Agreement:
    """A node that prevoted and locked BLOCK_A in round 0, then moved to round 1."""
    leader = _leader_index()
    a = _agreement(me)
    a.start()
    _close_window(a)
    a.on_proposal(_proposal(leader, BLOCK_A))
    a.on_validated(BLOCK_A, True)
    for i in range(4):
        if i != me:
            a.on_vote(_vote(i, Step.PREVOTE, BLOCK_A))
    assert a.locked_value == BLOCK_A
    a.on_timeout(Timeout.PRECOMMIT, HEIGHT, 0)
    assert a.round == 1
    return a


def test_a_locked_node_refuses_a_new_value_and_the_empty_block() -> None:
    me = (_leader_index(1) + 1) % 4
    a = _locked_on_a(me)
    _close_window(a, 1)
    a.on_proposal(_proposal(_leader_index(1), BLOCK_B, round_=1))
    assert _my_votes(a.on_validated(BLOCK_B, True)) == [(Step.PREVOTE, NIL)]
    b = _locked_on_a(me)
    _close_window(b, 1)
    b.on_timeout(Timeout.PROPOSE, HEIGHT, 1)  # grace period for the announced leader
    assert _my_votes(b.on_timeout(Timeout.PROPOSE, HEIGHT, 1)) == [(Step.PREVOTE, NIL)]


def test_a_locked_node_accepts_its_value_proposed_again() -> None:
    me = (_leader_index(1) + 1) % 4
    a = _locked_on_a(me)
    _close_window(a, 1)
    actions = a.on_proposal(_proposal(_leader_index(1), BLOCK_A, round_=1, valid_round=0))
    assert _my_votes(actions) == [(Step.PREVOTE, BLOCK_A)]


def test_a_leader_with_a_valid_value_proposes_it_again() -> None:
    me = _leader_index(1)
    a = _locked_on_a(me)
    actions = _close_window(a, 1)
    proposals = _sent(actions, Proposal)
    assert not [x for x in actions if isinstance(x, BuildBlock)]
    assert [(p.value, p.valid_round) for p in proposals] == [(BLOCK_A, 0)]  # type: ignore[attr-defined]


def test_more_than_a_third_in_a_later_round_makes_a_node_skip_ahead() -> None:
    a = _agreement(0, proposer=False)
    a.start()
    a.on_vote(_vote(1, Step.PREVOTE, EMPTY, round_=3))
    assert a.round == 0  # 1/4 is not more than 1/3
    a.on_vote(_vote(2, Step.PRECOMMIT, NIL, round_=3))
    assert a.round == 3


def test_double_votes_and_double_proposals_are_evidence() -> None:
    a = _agreement(0, proposer=False)
    a.start()
    first = _vote(1, Step.PREVOTE, BLOCK_A)
    a.on_vote(first)
    actions = a.on_vote(_vote(1, Step.PREVOTE, BLOCK_B))
    evidence = [x for x in actions if isinstance(x, Equivocation)]
    assert len(evidence) == 1 and evidence[0].first == first
    assert a.on_vote(_vote(1, Step.PREVOTE, BLOCK_B)) == []  # the same vote again: nothing new
    a.on_proposal(_proposal(2, BLOCK_A))
    actions = a.on_proposal(_proposal(2, BLOCK_B))
    assert [x for x in actions if isinstance(x, Equivocation)]


def test_messages_of_other_heights_and_stale_timeouts_are_ignored() -> None:
    a = _agreement(0, proposer=False)
    a.start()
    assert a.on_vote(_vote(1, Step.PREVOTE, BLOCK_A, height=HEIGHT + 1)) == []
    assert a.on_timeout(Timeout.PRECOMMIT, HEIGHT, 7) == []
    assert a.on_timeout(Timeout.PROPOSE, HEIGHT - 1, 0) == []
    assert a.round == 0


def test_a_zero_weight_vote_counts_for_nothing() -> None:
    a = _agreement(0, proposer=False)
    a.start()
    vote = _vote(1, Step.PRECOMMIT, EMPTY)
    zero = replace(vote, credential=replace(vote.credential, weight=0))
    for _ in range(3):
        a.on_vote(zero)
    assert a.decision is None


def test_a_block_still_being_executed_at_the_propose_timeout_is_waited_for() -> None:
    leader = _leader_index()
    a = _agreement((leader + 1) % 4)
    a.start()
    _close_window(a)
    assert ValidateValue(BLOCK_A) in a.on_proposal(_proposal(leader, BLOCK_A))
    assert _my_votes(a.on_timeout(Timeout.PROPOSE, HEIGHT, 0)) == []
    assert _my_votes(a.on_validated(BLOCK_A, True)) == [(Step.PREVOTE, BLOCK_A)]
