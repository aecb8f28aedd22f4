"""The DAO on a real dev node: deposits and spam, review windows, committee elections, snapshot
voting with delegation, quorum, the timelock, funded projects with milestones, supervision and
re-votes, escalated disputes, and refusals of bad input."""

from __future__ import annotations

import pytest

from powerverse.contracts.system import DAO_TIMELOCK, MARKET
from powerverse.market.arbitration import Arbitration
from powerverse.market.dao import (
    Dao,
    ProjectStatus,
    ProposalStatus,
    Support,
    Verdict,
    VoteState,
    encode_action,
)
from powerverse.market.exceptions import MarketError
from powerverse.market.orders import Orders, OrderState
from powerverse.market.rentals import Rentals
from tests.market.conftest import ClientFactory
from tests.market.dao_helpers import (
    DEPOSIT,
    FOUNDATION,
    PVC,
    REVIEW_WINDOW,
    REVIEWERS,
    SUPERVISOR,
    approve,
    content,
    end_vote,
    queue_and_execute,
    start_vote,
    submit,
    vote_through,
)
from tests.market.market_helpers import head_time, refused, warp_by
from tests.market.orders_helpers import REWARD
from tests.market.test_arbitration import rejected_task
from tests.rpc.conftest import ThreadedNode

VOTER_A, VOTER_B, VOTER_C = 5, 6, 7
PROPOSER = 8
TEAM = 9


@pytest.fixture(scope="module", autouse=True)
def voters(client: ClientFactory) -> None:
    """Voters A and B lock 1,000 PVC each; the treasury gets 100 PVC for projects."""
    for i in (VOTER_A, VOTER_B):
        Dao(client(i)).deposit(1_000 * PVC)
    Dao(client(FOUNDATION)).donate(100 * PVC)


def _dao(client: ClientFactory, i: int) -> Dao:
    return Dao(client(i))


def test_genesis_wiring(client: ClientFactory) -> None:
    dao = _dao(client, 0)
    committee = dao.committee()
    assert committee.members == tuple(client(i).address for i in REVIEWERS)
    assert committee.term_end - committee.term_start == 30 * 86_400
    s = dao.settings()
    assert (s["votingDelay"], s["votingPeriod"], s["timelockDelay"]) == (60, 600, 60)
    assert (s["quorumPercent"], s["passThresholdBps"]) == (4, 5_000)
    assert dao.is_supervisor(client(SUPERVISOR).address)
    assert not dao.is_supervisor(client(FOUNDATION).address)
    # the genesis validator's stake is voting power, self-delegated
    validator = dao.client.call(dao.votes.functions.CLOCK_MODE())
    assert validator == "mode=timestamp"
    # the timelock holds the market's governance roles (the dev foundation keeps them too)
    market = dao.client.contract("Market")
    gov = dao.client.call(market.functions.GOVERNANCE_ROLE())
    assert dao.client.call(market.functions.hasRole(gov, "0x" + DAO_TIMELOCK.hex()))


def test_deposit_withdraw_and_non_transferable(client: ClientFactory) -> None:
    dao = _dao(client, VOTER_C)
    quorum_before = int(dao.settings()["quorumNow"])
    dao.deposit(5 * PVC)
    # the quorum now counts the deposit at once, even within the deposit's own second
    assert int(dao.settings()["quorumNow"]) == quorum_before + 5 * PVC * 4 // 100
    power = dao.power(client(VOTER_C).address)
    assert power["deposited"] == power["balance"] == power["votes"] == 5 * PVC
    assert power["delegate"] == client(VOTER_C).address  # self-delegated by default
    with refused("InsufficientDeposit", client(VOTER_C).address, 5 * PVC, 6 * PVC):
        dao.withdraw_deposit(6 * PVC)
    with refused("NonTransferable"):
        dao.client.transact(dao.votes.functions.transfer(client(VOTER_A).address, 1))
    with refused("NonTransferable"):
        dao.client.transact(dao.votes.functions.approve(client(VOTER_A).address, 1))
    before = dao.client.balance()
    dao.withdraw_deposit(5 * PVC)
    assert dao.power(client(VOTER_C).address)["votes"] == 0
    assert dao.client.balance() > before + 5 * PVC - PVC // 100  # got it back, minus gas
    with refused("AccessControlUnauthorizedAccount"):
        dao.client.transact(dao.votes.functions.mintStaked(client(VOTER_C).address, 1))
    assert dao.client.balance(dao.votes.address) == dao.client.call(
        dao.votes.functions.totalDeposited()
    )


def test_deposit_is_returned_and_spam_forfeits_it(client: ClientFactory) -> None:
    dao = _dao(client, PROPOSER)
    with refused("WrongDeposit", DEPOSIT - 1, DEPOSIT):
        dao.propose(content(), deposit=DEPOSIT - 1)
    treasury = dao.client.balance("0x" + DAO_TIMELOCK.hex())
    spam = submit(client, PROPOSER, title="buy my token")
    plain = submit(client, PROPOSER, title="a so-so idea")
    for i in REVIEWERS[:2]:
        _dao(client, i).review(spam, Verdict.SPAM, 0, "spam")
        _dao(client, i).review(plain, Verdict.REJECT, 30, "weak")
    _dao(client, REVIEWERS[2]).review(spam, Verdict.REJECT, 10, "")
    _dao(client, REVIEWERS[2]).review(plain, Verdict.APPROVE, 70, "")
    # every member reviewed: decided before the window ends
    assert dao.finalize_review(spam) is ProposalStatus.SPAM
    assert dao.finalize_review(plain) is ProposalStatus.REJECTED
    assert dao.client.balance("0x" + DAO_TIMELOCK.hex()) == treasury + DEPOSIT
    owed = dao.client.call(dao.proposals_contract.functions.owed(client(PROPOSER).address))
    assert owed == DEPOSIT
    assert dao.withdraw_returned_deposits() == DEPOSIT
    with refused("NothingOwed", client(PROPOSER).address):
        dao.withdraw_returned_deposits()
    p = dao.proposal(plain)
    assert (p.reviews, p.approvals, p.spam_votes, p.score_sum) == (3, 1, 0, 130)
    with pytest.raises(MarketError, match="not put to the vote"):
        dao.vote(plain, Support.FOR)


def test_review_window_and_member_checks(
    node_and_client: tuple[ThreadedNode, ClientFactory],
) -> None:
    node, client = node_and_client
    dao = _dao(client, PROPOSER)
    pid = submit(client, PROPOSER, title="window")
    with refused("NotMember", client(PROPOSER).address):
        dao.review(pid, Verdict.APPROVE, 90)
    with refused("ScoreOutOfRange", 101):
        _dao(client, 1).review(pid, Verdict.APPROVE, 101)
    _dao(client, 1).review(pid, Verdict.APPROVE, 90)
    with refused("AlreadyReviewed", pid, client(1).address):
        _dao(client, 1).review(pid, Verdict.APPROVE, 90)
    end = dao.proposal(pid).review_end
    with refused("ReviewWindowOpen", pid, end):
        dao.finalize_review(pid)
    warp_by(node, dao.client, REVIEW_WINDOW + 1)
    with refused("ReviewWindowClosed", pid, end):
        _dao(client, 2).review(pid, Verdict.APPROVE, 90)
    # one approval is below the two reviews needed: rejected, deposit returned
    assert dao.finalize_review(pid) is ProposalStatus.REJECTED
    with refused(
        "ProposalNotInState", pid, int(ProposalStatus.REVIEW), int(ProposalStatus.REJECTED)
    ):
        dao.finalize_review(pid)
    with refused("UnknownProposal", 999):
        dao.proposal(999)
    # a low average score is not approved either
    low = submit(client, PROPOSER, title="low score")
    for i in REVIEWERS:
        _dao(client, i).review(low, Verdict.APPROVE, 40)
    assert dao.finalize_review(low) is ProposalStatus.REJECTED
    with refused("TextTooLong", "title", 201, 200):
        dao.propose(content("x" * 201))
    with refused("EmptyText", "goals"):
        dao.propose(content().__class__(title="t", background="b", goals="", plan="p"))


@pytest.fixture(scope="module")
def node_and_client(
    dev_node: ThreadedNode, client: ClientFactory
) -> tuple[ThreadedNode, ClientFactory]:
    """The module's node with its client factory."""
    return dev_node, client


def test_pass_timelock_execute_changes_the_fee(
    node_and_client: tuple[ThreadedNode, ClientFactory],
) -> None:
    node, client = node_and_client
    dao = _dao(client, PROPOSER)
    action = encode_action(dao.client, "Market", "setFee", 400)
    assert action.target.lower() == "0x" + MARKET.hex()
    pid = submit(client, PROPOSER, [action], title="fee to 4%")
    approve(client, pid)
    p = dao.proposal(pid)
    assert p.vote_state is VoteState.PENDING
    with refused("GovernorUnexpectedProposalState"):
        _dao(client, VOTER_A).vote(pid, Support.FOR)  # before the vote starts
    assert vote_through(node, client, [VOTER_A], pid) is VoteState.SUCCEEDED
    with refused("GovernorUnexpectedProposalState"):
        _dao(client, VOTER_B).vote(pid, Support.FOR)  # after it ended
    dao.queue(pid)
    with refused("TimelockUnexpectedOperationState"):
        dao.execute(pid)  # the timelock delay has not passed
    assert Rentals(dao.client).config().fee_bps == 250
    warp_by(node, dao.client, 61)
    dao.execute(pid)
    assert Rentals(dao.client).config().fee_bps == 400
    assert dao.vote_state(pid) is VoteState.EXECUTED


def test_snapshot_voting_and_delegation(
    node_and_client: tuple[ThreadedNode, ClientFactory],
) -> None:
    node, client = node_and_client
    pid = submit(client, PROPOSER, title="snapshot")
    approve(client, pid)
    # B delegates to A before the snapshot: A votes with both; B has nothing left to vote with
    _dao(client, VOTER_B).delegate(client(VOTER_A).address)
    start_vote(node, _dao(client, VOTER_A).client)
    # C deposits after the snapshot: no weight in this vote
    _dao(client, VOTER_C).deposit(50 * PVC)
    assert _dao(client, VOTER_A).vote(pid, Support.AGAINST) == 2_000 * PVC
    assert _dao(client, VOTER_C).vote(pid, Support.FOR) == 0
    assert _dao(client, VOTER_B).vote(pid, Support.FOR) == 0
    with refused("GovernorAlreadyCastVote", client(VOTER_A).address):
        _dao(client, VOTER_A).vote(pid, Support.FOR)
    # undelegating now does not change the snapshot's count
    _dao(client, VOTER_B).delegate(client(VOTER_B).address)
    end_vote(node, _dao(client, VOTER_A).client)
    p = _dao(client, PROPOSER).proposal(pid)
    assert p.votes == (2_000 * PVC, 0, 0)
    assert p.vote_state is VoteState.DEFEATED


def test_quorum_failure(node_and_client: tuple[ThreadedNode, ClientFactory]) -> None:
    node, client = node_and_client
    _dao(client, 10).deposit(10 * PVC)
    pid = submit(client, PROPOSER, title="too few voters")
    approve(client, pid)
    assert vote_through(node, client, [10], pid) is VoteState.DEFEATED
    p = _dao(client, 10).proposal(pid)
    assert p.votes == (0, 10 * PVC, 0)
    assert p.quorum is not None and p.quorum > 10 * PVC  # 4% of the supply at the snapshot
    with refused("GovernorUnexpectedProposalState"):
        _dao(client, 10).queue(pid)


def test_milestones_pause_revote_and_acceptance(
    node_and_client: tuple[ThreadedNode, ClientFactory],
) -> None:
    node, client = node_and_client
    team = client(TEAM).address
    milestones = [10 * PVC, 20 * PVC, 5 * PVC]
    pid = submit(client, PROPOSER, title="build a dashboard", team=team, milestones=milestones)
    assert _dao(client, PROPOSER).proposal(pid).budget == 35 * PVC
    approve(client, pid)
    assert vote_through(node, client, [VOTER_A, VOTER_B], pid) is VoteState.SUCCEEDED
    treasury = client(0).balance("0x" + DAO_TIMELOCK.hex())
    queue_and_execute(node, _dao(client, PROPOSER), pid)
    assert client(0).balance("0x" + DAO_TIMELOCK.hex()) == treasury - 35 * PVC
    sup = _dao(client, SUPERVISOR)
    project_id = sup.project_of_proposal(pid)
    project = sup.project(project_id)
    assert (project.status, project.team, project.milestones) == (
        ProjectStatus.ACTIVE, team, tuple(milestones)
    )  # fmt: skip

    _dao(client, TEAM).report_progress(project_id, "ipfs://bafy-progress-1")
    with refused("AccessControlUnauthorizedAccount"):
        _dao(client, TEAM).release_milestone(project_id, "pay me")
    assert sup.release_milestone(project_id, "first part delivered") == 10 * PVC
    with refused("MilestonesOutstanding", project_id, 1, 3):
        sup.accept(project_id, "ipfs://bafy-final")

    # deviates: paused, continuation put to the vote, which fails for lack of votes
    sup.pause_project(project_id, "the design changed without a vote")
    with refused(
        "ProjectNotInState", project_id, int(ProjectStatus.ACTIVE), int(ProjectStatus.PAUSED)
    ):
        sup.release_milestone(project_id, "more")
    with refused("NoContinuationVote", project_id):
        sup.close_after_vote(project_id)
    sup.propose_continuation(project_id)
    with refused("VoteOpen"):
        sup.propose_continuation(project_id)
    with refused("VoteNotLost"):
        sup.close_after_vote(project_id)
    assert vote_through(
        node, client, [VOTER_A], project_id=project_id, support=Support.AGAINST
    ) is (VoteState.DEFEATED)
    # ... put to a new vote, which passes: the project goes on
    sup.propose_continuation(project_id)
    assert vote_through(node, client, [VOTER_A, VOTER_B], project_id=project_id) is (
        VoteState.SUCCEEDED
    )
    queue_and_execute(node, sup, project_id=project_id)
    assert sup.project(project_id).status is ProjectStatus.ACTIVE

    assert sup.release_milestone(project_id, "second part") == 20 * PVC
    with refused("LastMilestoneNeedsAcceptance", project_id):
        sup.release_milestone(project_id, "last")
    with refused("AccessControlUnauthorizedAccount"):
        _dao(client, TEAM).accept(project_id, "ipfs://bafy-final")
    assert sup.accept(project_id, "ipfs://bafy-final-report") == 5 * PVC
    result = sup.result(project_id)
    assert result["accepted"] and result["report"] == "ipfs://bafy-final-report"
    assert sup.project(project_id).status is ProjectStatus.COMPLETED
    before = client(TEAM).balance()
    assert _dao(client, TEAM).withdraw_payments() == 35 * PVC
    assert client(TEAM).balance() > before + 35 * PVC - PVC // 100
    assert client(0).balance(sup.projects.address) == 0


def test_a_project_whose_continuation_is_rejected_is_closed(
    node_and_client: tuple[ThreadedNode, ClientFactory],
) -> None:
    node, client = node_and_client
    team = client(TEAM).address
    pid = submit(client, PROPOSER, title="doomed", team=team, milestones=[PVC, 2 * PVC])
    approve(client, pid)
    assert vote_through(node, client, [VOTER_A], pid) is VoteState.SUCCEEDED
    queue_and_execute(node, _dao(client, PROPOSER), pid)
    sup = _dao(client, SUPERVISOR)
    project_id = sup.project_of_proposal(pid)
    sup.release_milestone(project_id, "first")
    sup.pause_project(project_id, "off plan")
    sup.propose_continuation(project_id)
    state = vote_through(node, client, [VOTER_A], project_id=project_id, support=Support.AGAINST)
    assert state is VoteState.DEFEATED
    treasury = client(0).balance("0x" + DAO_TIMELOCK.hex())
    assert _dao(client, 11).close_after_vote(project_id) == 2 * PVC
    assert client(0).balance("0x" + DAO_TIMELOCK.hex()) == treasury + 2 * PVC
    assert sup.project(project_id).status is ProjectStatus.CANCELLED
    with refused("ProjectNotInState"):
        sup.accept(project_id, "x")


def test_only_the_timelock_runs_dao_functions(client: ClientFactory) -> None:
    dao = _dao(client, FOUNDATION)
    me = client(FOUNDATION).address
    with refused("NotTimelock", me):
        dao.client.transact(dao.projects.functions.create(1, me, [1]), value=1)
    with refused("NotTimelock", me):
        dao.client.transact(dao.proposals_contract.functions.setParams((1, 600, 1, 1)))
    with refused("NotTimelock", me):
        dao.client.transact(dao.committee_contract.functions.setMembers([me], 2**40))
    with refused("GovernorOnlyExecutor", me):
        dao.client.transact(dao.governor.functions.setPassThreshold(6_000))
    with refused("GovernorOnlyExecutor", me):
        dao.client.transact(dao.governor.functions.setVotingPeriod(1))
    with refused("NotDaoContract", me):
        dao.client.transact(dao.governor.functions.propose([me], [0], [b""], "sneak"))
    with refused("AccessControlUnauthorizedAccount"):
        dao.client.transact(dao.timelock.functions.schedule(me, 0, b"", bytes(32), bytes(32), 60))


def test_committee_election_and_terms(node_and_client: tuple[ThreadedNode, ClientFactory]) -> None:
    node, client = node_and_client
    dao = _dao(client, VOTER_A)
    committee = dao.committee()
    with refused("ElectionNotDue", committee.election_opens_at):
        dao.open_election()
    warp_by(node, dao.client, committee.election_opens_at - head_time(dao.client))
    eid = dao.open_election()
    with refused("ElectionInProgress", eid):
        dao.open_election()
    with refused("NotEnoughVotes"):
        _dao(client, 12).stand(eid)  # no vPVC at the snapshot
    for i in (VOTER_A, VOTER_B, 10):
        _dao(client, i).stand(eid)
    with refused("AlreadyCandidate", eid, client(VOTER_A).address):
        dao.stand(eid)
    with refused("NotCandidate", eid, client(12).address):
        dao.elect(eid, client(12).address)
    assert _dao(client, VOTER_B).elect(eid, client(10).address) == 1_000 * PVC
    assert dao.elect(eid, client(VOTER_B).address) == 1_000 * PVC
    with refused("AlreadyVoted", eid, client(VOTER_A).address):
        dao.elect(eid, client(VOTER_A).address)
    with refused("NoVotingPower", client(12).address):
        _dao(client, 12).elect(eid, client(VOTER_A).address)
    with refused("ElectionNotOver"):
        dao.finalize_election(eid)
    warp_by(node, dao.client, 601)
    with refused("ElectionClosed", eid):
        _dao(client, 10).elect(eid, client(VOTER_A).address)
    assert dao.finalize_election(eid)
    with refused("AlreadyFinalized", eid):
        dao.finalize_election(eid)
    new = dao.committee()
    # the two candidates with votes sit (ties go to the earlier candidacy); A had none
    assert set(new.members) == {client(VOTER_B).address, client(10).address}
    assert new.term_end - new.term_start == 30 * 86_400
    e = dao.election(eid)
    assert e.finalized and e.elected and e.candidates[client(VOTER_A).address] == 0
    # the old committee can no longer review; the new one can
    pid = submit(client, PROPOSER, title="after the election")
    with refused("NotMember", client(1).address):
        _dao(client, 1).review(pid, Verdict.APPROVE, 90)
    _dao(client, 10).review(pid, Verdict.APPROVE, 90)
    _dao(client, VOTER_B).review(pid, Verdict.APPROVE, 70)
    assert dao.finalize_review(pid) is ProposalStatus.VOTING
    # an election nobody votes in leaves the committee in office
    warp_by(node, dao.client, new.election_opens_at - head_time(dao.client))
    eid2 = dao.open_election()
    warp_by(node, dao.client, 601)
    assert not dao.finalize_election(eid2)
    assert dao.committee().members == new.members


def test_escalated_dispute_is_ruled_by_a_dao_vote(
    node_and_client: tuple[ThreadedNode, ClientFactory],
) -> None:
    node, client = node_and_client
    order_id, dispute_id = rejected_task(client)
    Arbitration(client(FOUNDATION)).escalate(dispute_id, "precedent needed: ask the DAO")
    amount = REWARD
    arbiter = _dao(client, FOUNDATION)
    with refused("NotArbiter", client(VOTER_A).address):
        _dao(client, VOTER_A).propose_ruling(dispute_id, amount, "refund")
    pid = arbiter.propose_ruling(dispute_id, amount, "the consumer was never served")
    p = arbiter.proposal(pid)
    assert p.kind == "ruling" and p.status is ProposalStatus.VOTING
    assert vote_through(node, client, [VOTER_A], pid) is VoteState.SUCCEEDED
    queue_and_execute(node, arbiter, pid)
    d = Arbitration(arbiter.client).dispute(dispute_id)
    assert d.by_dao and d.consumer_share == amount
    assert Orders(arbiter.client).order(order_id).state == OrderState.RESOLVED
    with refused("DisputeNotEscalated", dispute_id):
        arbiter.propose_ruling(dispute_id, amount, "again")
