"""Shared pieces of the DAO tests: roles of the dev accounts, content, and moving a proposal."""

from __future__ import annotations

from collections.abc import Sequence

from powerverse.market.client import ChainClient
from powerverse.market.dao import Action, Content, Dao, ProposalStatus, Support, Verdict, VoteState
from tests.market.conftest import ClientFactory
from tests.market.market_helpers import warp_by
from tests.rpc.conftest import ThreadedNode

PVC = 10**18
FOUNDATION = 0
REVIEWERS = (1, 2, 3)  # the dev genesis review committee
SUPERVISOR = 4  # the dev genesis supervision group
VOTING_DELAY = 60
VOTING_PERIOD = 600
TIMELOCK_DELAY = 60
REVIEW_WINDOW = 600
DEPOSIT = 10 * PVC


def content(title: str = "Faster matching") -> Content:
    """A complete proposal text."""
    return Content(
        title=title,
        background="ipfs://bafy-background",
        goals="cut matching latency by half",
        plan="ipfs://bafy-plan",
        benefits="more rentals",
        resources="two engineers",
    )


def approve(client: ClientFactory, proposal_id: int, score: int = 80) -> None:
    """Two committee members approve; the review is then decided (put to the vote)."""
    for i in REVIEWERS[:2]:
        Dao(client(i)).review(proposal_id, Verdict.APPROVE, score, f"ok from {i}")
    node_client = client(REVIEWERS[2])
    Dao(node_client).review(proposal_id, Verdict.REJECT, score, "not sure")
    assert Dao(node_client).finalize_review(proposal_id) is ProposalStatus.VOTING


def submit(
    client: ClientFactory,
    proposer: int,
    actions: Sequence[Action] = (),
    *,
    title: str = "Faster matching",
    team: str | None = None,
    milestones: Sequence[int] = (),
) -> int:
    """A proposal by dev account `proposer` with the deposit."""
    return Dao(client(proposer)).propose(content(title), actions, team=team, milestones=milestones)


def start_vote(node: ThreadedNode, c: ChainClient) -> None:
    """Move past the voting delay (the snapshot), so votes may be cast."""
    warp_by(node, c, VOTING_DELAY + 1)


def end_vote(node: ThreadedNode, c: ChainClient) -> None:
    """Move past the voting period."""
    warp_by(node, c, VOTING_PERIOD + 1)


def vote_through(
    node: ThreadedNode,
    client: ClientFactory,
    voters: Sequence[int],
    proposal_id: int | None = None,
    *,
    project_id: int | None = None,
    support: Support = Support.FOR,
) -> VoteState:
    """Start the vote, let `voters` vote, end it; the state afterwards."""
    dao = Dao(client(voters[0]))
    start_vote(node, dao.client)
    for v in voters:
        Dao(client(v)).vote(proposal_id, support, project_id=project_id)
    end_vote(node, dao.client)
    return dao.vote_state(proposal_id, project_id=project_id)


def queue_and_execute(
    node: ThreadedNode, dao: Dao, proposal_id: int | None = None, *, project_id: int | None = None
) -> None:
    """Queue a passed vote, wait out the timelock, execute it."""
    dao.queue(proposal_id, project_id=project_id)
    warp_by(node, dao.client, TIMELOCK_DELAY + 1)
    dao.execute(proposal_id, project_id=project_id)
    assert dao.vote_state(proposal_id, project_id=project_id) is VoteState.EXECUTED
