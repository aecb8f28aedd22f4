"""The PowerVerse DAO (docs/dao.md): voting power, proposals, review, votes, projects.

Voting power is vPVC (`VotesPVC`): PVC locked with :meth:`Dao.deposit` (or staked, minted by
Staking), counted once delegated. A proposal is submitted with a deposit to `DaoProposals`,
reviewed and scored by the elected `ReviewCommittee`, then (if approved) voted on in
`DaoGovernor`, queued in the `DaoTimelock` and executed. Funded projects live in `DaoProjects`
(milestones, supervision, acceptance). Proposals are named by their `DaoProposals` id; a
project's continuation vote by its project id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract

from powerverse.contracts.addresses import SYSTEM_ADDRESSES
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import MarketError
from powerverse.market.receipts import TxInfo

__all__ = [
    "Action",
    "Committee",
    "Content",
    "Dao",
    "Election",
    "Project",
    "ProjectStatus",
    "Proposal",
    "ProposalStatus",
    "Support",
    "Verdict",
    "VoteState",
    "encode_action",
]


class ProposalStatus(IntEnum):
    """Where a proposal stands in DaoProposals (the vote's own state is `VoteState`)."""

    NONE = 0
    REVIEW = 1
    REJECTED = 2
    SPAM = 3
    VOTING = 4


class Verdict(IntEnum):
    """A committee member's verdict on a proposal."""

    APPROVE = 0
    REJECT = 1
    SPAM = 2


class Support(IntEnum):
    """A vote (OpenZeppelin GovernorCountingSimple)."""

    AGAINST = 0
    FOR = 1
    ABSTAIN = 2


class VoteState(IntEnum):
    """OpenZeppelin IGovernor.ProposalState."""

    PENDING = 0
    ACTIVE = 1
    CANCELED = 2
    DEFEATED = 3
    SUCCEEDED = 4
    QUEUED = 5
    EXPIRED = 6
    EXECUTED = 7


class ProjectStatus(IntEnum):
    """A funded project's state in DaoProjects."""

    NONE = 0
    ACTIVE = 1
    PAUSED = 2
    CANCELLED = 3
    COMPLETED = 4


def _name(enum: IntEnum) -> str:
    return enum.name.lower()


@dataclass(frozen=True, kw_only=True)
class Content:
    """A proposal's texts (each plain text or a content id; size limits in docs/dao.md)."""

    title: str
    background: str
    goals: str
    plan: str
    benefits: str = ""
    resources: str = ""

    def as_tuple(self) -> tuple[str, ...]:
        """The ABI tuple."""
        return (self.title, self.background, self.goals, self.plan, self.benefits, self.resources)

    def to_json(self) -> dict[str, str]:
        """JSON-friendly fields."""
        return {
            "title": self.title,
            "background": self.background,
            "goals": self.goals,
            "plan": self.plan,
            "benefits": self.benefits,
            "resources": self.resources,
        }


@dataclass(frozen=True, kw_only=True)
class Action:
    """One on-chain call the timelock makes if the proposal passes."""

    target: str
    value: int = 0
    data: bytes = b""

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {"target": self.target, "value": str(self.value), "data": "0x" + self.data.hex()}


def encode_action(client: ChainClient, contract: str, function: str, *args: Any) -> Action:
    """An Action calling `function(*args)` on system contract `contract` (e.g. Market.setFee)."""
    if contract not in SYSTEM_ADDRESSES:
        raise MarketError(
            f"{contract!r} is not a system contract; known: {', '.join(SYSTEM_ADDRESSES)}"
        )
    c = client.contract(contract)
    try:
        data = c.encode_abi(function, args=list(args))
    except Exception as exc:  # web3 raises several types for an unknown name or bad arguments
        raise MarketError(f"cannot encode {contract}.{function}{tuple(args)}: {exc}") from None
    return Action(target=str(c.address), data=bytes.fromhex(str(data).removeprefix("0x")))


@dataclass(frozen=True, kw_only=True)
class Proposal:
    """A DAO proposal, with its review tally and (once put to the vote) its vote."""

    id: int
    proposer: str
    kind: str
    status: ProposalStatus
    created_at: int
    review_end: int
    reviews: int
    approvals: int
    spam_votes: int
    score_sum: int
    team: str | None
    deposit: int
    budget: int
    governor_id: int
    content: Content
    actions: tuple[Action, ...]
    milestones: tuple[int, ...]
    vote_state: VoteState | None = None
    votes: tuple[int, int, int] | None = None  # against, for, abstain
    vote_start: int | None = None
    vote_end: int | None = None
    quorum: int | None = None
    eta: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (amounts and vote weights as decimal strings of wei)."""
        vote: dict[str, Any] | None = None
        if self.vote_state is not None and self.votes is not None:
            vote = {
                "governorId": str(self.governor_id),
                "state": _name(self.vote_state),
                "against": str(self.votes[0]),
                "for": str(self.votes[1]),
                "abstain": str(self.votes[2]),
                "start": self.vote_start,
                "end": self.vote_end,
                "quorum": None if self.quorum is None else str(self.quorum),
                "eta": self.eta,
            }
        return {
            "id": self.id,
            "proposer": self.proposer,
            "kind": self.kind,
            "status": _name(self.status),
            "createdAt": self.created_at,
            "reviewEnd": self.review_end,
            "reviews": self.reviews,
            "approvals": self.approvals,
            "spamVotes": self.spam_votes,
            "averageScore": (self.score_sum / self.reviews) if self.reviews else None,
            "team": self.team,
            "deposit": str(self.deposit),
            "budget": str(self.budget),
            "milestones": [str(m) for m in self.milestones],
            "content": self.content.to_json(),
            "actions": [a.to_json() for a in self.actions],
            "vote": vote,
        }


@dataclass(frozen=True, kw_only=True)
class Project:
    """A DAO-funded project."""

    id: int
    proposal_id: int
    team: str
    status: ProjectStatus
    released: int
    milestones: tuple[int, ...]
    budget: int
    paid: int
    created_at: int
    closed_at: int
    continuation_vote: int
    result: str

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (amounts as decimal strings of wei)."""
        return {
            "id": self.id,
            "proposalId": self.proposal_id,
            "team": self.team,
            "status": _name(self.status),
            "released": self.released,
            "milestones": [str(m) for m in self.milestones],
            "budget": str(self.budget),
            "paid": str(self.paid),
            "createdAt": self.created_at,
            "closedAt": self.closed_at,
            "continuationVote": str(self.continuation_vote) if self.continuation_vote else None,
            "result": self.result,
        }


@dataclass(frozen=True, kw_only=True)
class Committee:
    """The sitting review committee and its rules."""

    members: tuple[str, ...]
    term_start: int
    term_end: int
    size: int
    term_length: int
    election_period: int
    min_candidate_votes: int
    election_opens_at: int
    election_count: int

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "members": list(self.members),
            "termStart": self.term_start,
            "termEnd": self.term_end,
            "size": self.size,
            "termLength": self.term_length,
            "electionPeriod": self.election_period,
            "minCandidateVotes": str(self.min_candidate_votes),
            "electionOpensAt": self.election_opens_at,
            "electionCount": self.election_count,
        }


@dataclass(frozen=True, kw_only=True)
class Election:
    """A review committee election and its tally."""

    id: int
    start: int
    end: int
    snapshot: int
    finalized: bool
    elected: bool
    candidates: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (votes as decimal strings of wei)."""
        return {
            "id": self.id,
            "start": self.start,
            "end": self.end,
            "snapshot": self.snapshot,
            "finalized": self.finalized,
            "elected": self.elected,
            "candidates": {a: str(v) for a, v in self.candidates.items()},
        }


class Dao:
    """The DAO's contracts through one client."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.votes: Contract = client.contract("VotesPVC")
        self.timelock: Contract = client.contract("DaoTimelock")
        self.governor: Contract = client.contract("DaoGovernor")
        self.committee_contract: Contract = client.contract("ReviewCommittee")
        self.proposals_contract: Contract = client.contract("DaoProposals")
        self.projects: Contract = client.contract("DaoProjects")

    def _tx(self, fn: Any, *, value: int = 0) -> dict[str, Any]:
        return self.client.transact(fn, value=value)

    # ------------------------------------------------------------------ voting power

    def deposit(self, amount: int) -> TxInfo:
        """Lock `amount` wei of PVC for as many vPVC (self-delegated if you have no delegate)."""
        return TxInfo.from_receipt(self._tx(self.votes.functions.deposit(), value=amount))

    def withdraw_deposit(self, amount: int) -> TxInfo:
        """Burn `amount` vPVC and get the locked PVC back."""
        return TxInfo.from_receipt(self._tx(self.votes.functions.withdraw(amount)))

    def delegate(self, delegatee: str) -> TxInfo:
        """Give your votes to `delegatee` (yourself to vote in person)."""
        to = to_checksum_address(delegatee)
        return TxInfo.from_receipt(self._tx(self.votes.functions.delegate(to)))

    def donate(self, amount: int) -> TxInfo:
        """Give `amount` wei to the DAO treasury (the timelock)."""
        return TxInfo.from_receipt(self._tx(self.timelock.functions.donate(), value=amount))

    def power(self, account: str) -> dict[str, Any]:
        """An account's vPVC: balance, deposited, staked, delegate, current votes."""
        a = to_checksum_address(account)
        f = self.votes.functions
        delegate = str(self.client.call(f.delegates(a)))
        return {
            "account": a,
            "balance": int(self.client.call(f.balanceOf(a))),
            "deposited": int(self.client.call(f.depositedOf(a))),
            "staked": int(self.client.call(f.stakedOf(a))),
            "delegate": None if int(delegate, 16) == 0 else delegate,
            "votes": int(self.client.call(f.getVotes(a))),
        }

    def past_votes(self, account: str, timepoint: int) -> int:
        """`account`'s votes at a past timestamp."""
        fn = self.votes.functions.getPastVotes(to_checksum_address(account), timepoint)
        return int(self.client.call(fn))

    # ------------------------------------------------------------------ proposals

    def propose(
        self,
        content: Content,
        actions: Sequence[Action] = (),
        *,
        team: str | None = None,
        milestones: Sequence[int] = (),
        deposit: int | None = None,
    ) -> int:
        """Submit a proposal with the deposit (read from the chain unless given); its id."""
        amount = self.params()["proposalDeposit"] if deposit is None else deposit
        fn = self.proposals_contract.functions.propose(
            content.as_tuple(),
            [(to_checksum_address(a.target), a.value, a.data) for a in actions],
            to_checksum_address(team) if team else "0x" + "00" * 20,
            list(milestones),
        )
        receipt = self._tx(fn, value=amount)
        (event,) = self.client.events(self.proposals_contract, "Proposed", receipt)
        return int(event["id"])

    def review(self, proposal_id: int, verdict: Verdict, score: int, note: str = "") -> TxInfo:
        """Committee member: review and score (0-100) a proposal."""
        fn = self.proposals_contract.functions.review(proposal_id, int(verdict), score, note)
        return TxInfo.from_receipt(self._tx(fn))

    def finalize_review(self, proposal_id: int) -> ProposalStatus:
        """Decide a proposal's review (anyone, after the window or once all reviewed)."""
        receipt = self._tx(self.proposals_contract.functions.finalizeReview(proposal_id))
        (event,) = self.client.events(self.proposals_contract, "ReviewFinalized", receipt)
        return ProposalStatus(int(event["status"]))

    def propose_ruling(self, dispute_id: int, consumer_share: int, reason: str) -> int:
        """Arbiter: put the ruling of an escalated dispute to the vote; the proposal id."""
        fn = self.proposals_contract.functions.proposeRuling(dispute_id, consumer_share, reason)
        receipt = self._tx(fn)
        (event,) = self.client.events(self.proposals_contract, "RulingProposed", receipt)
        return int(event["id"])

    def withdraw_returned_deposits(self) -> int:
        """Take back returned proposal deposits; the wei paid."""
        receipt = self._tx(self.proposals_contract.functions.withdraw())
        (event,) = self.client.events(self.proposals_contract, "Withdrawn", receipt)
        return int(event["amount"])

    def proposal_count(self) -> int:
        """How many proposals were submitted (ids 1..count)."""
        return int(self.client.call(self.proposals_contract.functions.proposalCount()))

    def proposal(self, proposal_id: int) -> Proposal:
        """Proposal `proposal_id` with its review tally and vote (MarketError if unknown)."""
        f = self.proposals_contract.functions
        p = self.client.call(f.proposalOf(proposal_id))
        c = self.client.call(f.contentOf(proposal_id))
        actions, milestones = self.client.call(f.planOf(proposal_id))
        gid = int(p[12])
        vote: dict[str, Any] = {}
        if gid:
            vote = self._vote_fields(gid)
        team = str(p[9])
        return Proposal(
            id=proposal_id,
            proposer=str(p[0]),
            kind="ruling" if int(p[1]) == 1 else "regular",
            status=ProposalStatus(int(p[2])),
            created_at=int(p[3]),
            review_end=int(p[4]),
            reviews=int(p[5]),
            approvals=int(p[6]),
            spam_votes=int(p[7]),
            score_sum=int(p[8]),
            team=None if int(team, 16) == 0 else team,
            deposit=int(p[10]),
            budget=int(p[11]),
            governor_id=gid,
            content=Content(
                title=c[0], background=c[1], goals=c[2], plan=c[3], benefits=c[4], resources=c[5]
            ),
            actions=tuple(
                Action(target=str(a[0]), value=int(a[1]), data=bytes(a[2])) for a in actions
            ),
            milestones=tuple(int(m) for m in milestones),
            **vote,
        )

    def list_proposals(self) -> list[Proposal]:
        """Every proposal, oldest first."""
        return [self.proposal(i) for i in range(1, self.proposal_count() + 1)]

    def params(self) -> dict[str, int]:
        """Proposal rules: deposit (wei), review window (s), minimum reviews and score."""
        d, window, reviews, score = self.client.call(self.proposals_contract.functions.params())
        return {
            "proposalDeposit": int(d),
            "reviewWindow": int(window),
            "minReviews": int(reviews),
            "minScore": int(score),
        }

    def settings(self) -> dict[str, Any]:
        """Every governable DAO setting now."""
        g = self.governor.functions
        c = self.committee()
        numerator = int(self.client.call(g.quorumNumerator()))
        # the quorum a vote would need with today's supply: the governor's quorum(t) only
        # answers for a past second, which misses deposits made within the current one
        supply = int(self.client.call(self.votes.functions.totalSupply()))
        denominator = int(self.client.call(g.quorumDenominator()))
        return {
            "votingDelay": int(self.client.call(g.votingDelay())),
            "votingPeriod": int(self.client.call(g.votingPeriod())),
            "quorumPercent": numerator,
            "quorumNow": str(supply * numerator // denominator),
            "passThresholdBps": int(self.client.call(g.passThresholdBps())),
            "timelockDelay": int(self.client.call(self.timelock.functions.getMinDelay())),
            "treasury": str(self.timelock.address),
            "treasuryBalance": str(self.client.balance(str(self.timelock.address))),
            **{k: (str(v) if k == "proposalDeposit" else v) for k, v in self.params().items()},
            "committeeSize": c.size,
            "termLength": c.term_length,
            "electionPeriod": c.election_period,
            "minCandidateVotes": str(c.min_candidate_votes),
        }

    # ------------------------------------------------------------------ the vote

    def _vote_fields(self, gid: int) -> dict[str, Any]:
        g = self.governor.functions
        start = int(self.client.call(g.proposalSnapshot(gid)))
        against, for_, abstain = self.client.call(g.proposalVotes(gid))
        now = int(self.client.w3.eth.get_block("latest")["timestamp"])
        quorum = int(self.client.call(g.quorum(start))) if start < now else None
        return {
            "vote_state": VoteState(int(self.client.call(g.state(gid)))),
            "votes": (int(against), int(for_), int(abstain)),
            "vote_start": start,
            "vote_end": int(self.client.call(g.proposalDeadline(gid))),
            "quorum": quorum,
            "eta": int(self.client.call(g.proposalEta(gid))) or None,
        }

    def governor_id(self, proposal_id: int | None = None, *, project_id: int | None = None) -> int:
        """The Governor's id of a proposal's vote, or of a project's latest continuation vote."""
        if (proposal_id is None) == (project_id is None):
            raise MarketError("name either a proposal or a project")
        if project_id is not None:
            gid = int(self.project(project_id).continuation_vote)
            if not gid:
                raise MarketError(f"project {project_id} has no continuation vote")
            return gid
        assert proposal_id is not None
        p = self.client.call(self.proposals_contract.functions.proposalOf(proposal_id))
        gid = int(p[12])
        if not gid:
            status = ProposalStatus(int(p[2])).name.lower()
            raise MarketError(f"proposal {proposal_id} was not put to the vote (it is {status})")
        return gid

    def _call_args(
        self, proposal_id: int | None, project_id: int | None
    ) -> tuple[list[str], list[int], list[bytes], bytes]:
        if project_id is not None:
            fn = self.projects.functions.continuationCall(project_id)
        else:
            fn = self.proposals_contract.functions.governorCall(proposal_id)
        targets, values, calldatas, description = self.client.call(fn)
        return list(targets), list(values), list(calldatas), keccak(text=description)

    def vote(
        self,
        proposal_id: int | None = None,
        support: Support = Support.FOR,
        reason: str = "",
        *,
        project_id: int | None = None,
    ) -> int:
        """Vote on a proposal (or a project's continuation); the weight counted."""
        gid = self.governor_id(proposal_id, project_id=project_id)
        g = self.governor.functions
        fn = (
            g.castVoteWithReason(gid, int(support), reason)
            if reason
            else g.castVote(gid, int(support))
        )
        receipt = self._tx(fn)
        (event,) = self.client.events(self.governor, "VoteCast", receipt)
        return int(event["weight"])

    def vote_state(
        self, proposal_id: int | None = None, *, project_id: int | None = None
    ) -> VoteState:
        """The vote's state."""
        gid = self.governor_id(proposal_id, project_id=project_id)
        return VoteState(int(self.client.call(self.governor.functions.state(gid))))

    def queue(self, proposal_id: int | None = None, *, project_id: int | None = None) -> int:
        """Queue a passed vote in the timelock (anyone); when it may be executed."""
        self.governor_id(proposal_id, project_id=project_id)
        t, v, c, d = self._call_args(proposal_id, project_id)
        receipt = self._tx(self.governor.functions.queue(t, v, c, d))
        (event,) = self.client.events(self.governor, "ProposalQueued", receipt)
        return int(event["etaSeconds"])

    def execute(self, proposal_id: int | None = None, *, project_id: int | None = None) -> TxInfo:
        """Run a queued proposal's actions through the timelock (anyone, after the delay)."""
        self.governor_id(proposal_id, project_id=project_id)
        t, v, c, d = self._call_args(proposal_id, project_id)
        return TxInfo.from_receipt(self._tx(self.governor.functions.execute(t, v, c, d)))

    # ------------------------------------------------------------------ committee

    def committee(self) -> Committee:
        """The sitting review committee and its rules."""
        f = self.committee_contract.functions
        size, term, period, min_votes = self.client.call(f.rules())
        return Committee(
            members=tuple(str(m) for m in self.client.call(f.members())),
            term_start=int(self.client.call(f.termStart())),
            term_end=int(self.client.call(f.termEnd())),
            size=int(size),
            term_length=int(term),
            election_period=int(period),
            min_candidate_votes=int(min_votes),
            election_opens_at=int(self.client.call(f.electionOpensAt())),
            election_count=int(self.client.call(f.electionCount())),
        )

    def open_election(self) -> int:
        """Open the next committee election (anyone, once due); its id."""
        receipt = self._tx(self.committee_contract.functions.openElection())
        (event,) = self.client.events(self.committee_contract, "ElectionOpened", receipt)
        return int(event["electionId"])

    def stand(self, election_id: int) -> TxInfo:
        """Stand as a candidate in an open election."""
        return TxInfo.from_receipt(self._tx(self.committee_contract.functions.stand(election_id)))

    def elect(self, election_id: int, candidate: str) -> int:
        """Give your votes at the election's snapshot to `candidate`; the weight counted."""
        fn = self.committee_contract.functions.vote(election_id, to_checksum_address(candidate))
        receipt = self._tx(fn)
        (event,) = self.client.events(self.committee_contract, "ElectionVote", receipt)
        return int(event["weight"])

    def finalize_election(self, election_id: int) -> bool:
        """Count an ended election (anyone); whether a new committee was elected."""
        fn = self.committee_contract.functions.finalizeElection(election_id)
        receipt = self._tx(fn)
        (event,) = self.client.events(self.committee_contract, "ElectionFinalized", receipt)
        return bool(event["elected"])

    def election(self, election_id: int) -> Election:
        """Election `election_id` with every candidate's votes."""
        f = self.committee_contract.functions
        e = self.client.call(f.electionOf(election_id))
        return Election(
            id=election_id,
            start=int(e[0]),
            end=int(e[1]),
            snapshot=int(e[2]),
            finalized=bool(e[3]),
            elected=bool(e[4]),
            candidates={str(c): int(self.client.call(f.votesFor(election_id, c))) for c in e[5]},
        )

    # ------------------------------------------------------------------ projects

    def project(self, project_id: int) -> Project:
        """Project `project_id` (MarketError if unknown)."""
        f = self.projects.functions
        p = self.client.call(f.projectOf(project_id))
        milestones = self.client.call(f.milestonesOf(project_id))
        return Project(
            id=project_id,
            proposal_id=int(p[0]),
            team=str(p[1]),
            status=ProjectStatus(int(p[2])),
            released=int(p[3]),
            created_at=int(p[4]),
            closed_at=int(p[5]),
            budget=int(p[6]),
            paid=int(p[7]),
            continuation_vote=int(p[8]),
            result=str(p[10]),
            milestones=tuple(int(m) for m in milestones),
        )

    def project_of_proposal(self, proposal_id: int) -> int:
        """The project a proposal funded (0 when none)."""
        fn = self.projects.functions.projectOfProposal(proposal_id)
        return int(self.client.call(fn))

    def project_count(self) -> int:
        """How many projects were funded (ids 1..count)."""
        return int(self.client.call(self.projects.functions.projectCount()))

    def report_progress(self, project_id: int, report: str) -> TxInfo:
        """Execution team: report progress (text or content id)."""
        fn = self.projects.functions.reportProgress(project_id, report)
        return TxInfo.from_receipt(self._tx(fn))

    def release_milestone(self, project_id: int, note: str) -> int:
        """Supervisor: pay the next (not the last) milestone; the wei released."""
        receipt = self._tx(self.projects.functions.releaseMilestone(project_id, note))
        (event,) = self.client.events(self.projects, "MilestoneReleased", receipt)
        return int(event["amount"])

    def pause_project(self, project_id: int, reason: str) -> TxInfo:
        """Supervisor: stop a deviating project's payments."""
        fn = self.projects.functions.pause(project_id, reason)
        return TxInfo.from_receipt(self._tx(fn))

    def propose_continuation(self, project_id: int) -> int:
        """Supervisor: put a paused project's continuation to the vote; the Governor id."""
        receipt = self._tx(self.projects.functions.proposeContinuation(project_id))
        (event,) = self.client.events(self.projects, "ContinuationProposed", receipt)
        return int(event["governorId"])

    def close_after_vote(self, project_id: int) -> int:
        """Anyone: close a paused project whose continuation vote failed; the wei refunded."""
        receipt = self._tx(self.projects.functions.closeAfterVote(project_id))
        (event,) = self.client.events(self.projects, "ProjectCancelled", receipt)
        return int(event["refunded"])

    def accept(self, project_id: int, report: str) -> int:
        """Supervisor: accept the results, pay the last milestone; the wei paid."""
        receipt = self._tx(self.projects.functions.accept(project_id, report))
        (event,) = self.client.events(self.projects, "ProjectAccepted", receipt)
        return int(event["lastMilestone"])

    def withdraw_payments(self) -> int:
        """Execution team: take the milestone payments credited to you; the wei paid."""
        receipt = self._tx(self.projects.functions.withdraw())
        (event,) = self.client.events(self.projects, "Withdrawn", receipt)
        return int(event["amount"])

    def result(self, project_id: int) -> dict[str, Any]:
        """A project's published result."""
        accepted, report, at = self.client.call(self.projects.functions.resultOf(project_id))
        return {
            "projectId": project_id,
            "accepted": bool(accepted),
            "report": report,
            "at": int(at),
        }

    def is_supervisor(self, account: str) -> bool:
        """Whether `account` is in the supervision group."""
        f = self.projects.functions
        role = self.client.call(f.SUPERVISOR_ROLE())
        return bool(self.client.call(f.hasRole(role, to_checksum_address(account))))
