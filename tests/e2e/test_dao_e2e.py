"""The DAO end to end: real `pv` processes against a real four-validator devnet.

Issue 6's "DAO end to end on a devnet through the CLI": a proposal rejected by the review
committee (spam forfeits the deposit, a plain rejection returns it); one failing the quorum;
one that passes and, after the timelock, changes the market fee, which the next rental pays;
a milestone project paused by supervision and re-voted; and nobody but the timelock changing
a governed parameter. Every step is a `pv dao ...` process (`--json` parsed); the SDK only
cross-checks balances and roles. Time moves with `pv devnet warp` (the devnet uses the dev
DAO periods: 60 s voting delay and timelock, 600 s voting period and review window).

The devnet genesis (`dev_system_config`) gives the foundation (dev account 0) the market's
governance roles beside the DAO, so here (e) shows that no other account changes a market
parameter and that nobody, the foundation included, changes a DAO setting outside a vote; that
the foundation cannot change a market parameter on a production genesis is
tests/market/test_dao_governance.py's (a node with `dev_roles=False`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from powerverse.contracts.system import DAO_TIMELOCK
from powerverse.crypto.keys import dev_accounts
from powerverse.market.admin import role_id
from powerverse.market.client import ChainClient, ContractError
from powerverse.market.rentals import Rentals
from tests.e2e.pvcli import PvCli
from tests.e2e.test_market_e2e import README_RESOURCE, DevnetProcesses, Market, addr

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PVC = 10**18
DAY = 86_400
BPS = 10_000
FOUNDATION = 0
REVIEWERS = (1, 2, 3)  # the dev genesis review committee
SUPERVISOR = 4  # the dev genesis supervision group
VOTER_A, VOTER_B = 5, 6
PROPOSER = 8
TEAM = 9
SMALL = 10  # a holder far below the quorum
PROVIDER, CONSUMER = 11, 12
DEPOSIT = 10 * PVC
VOTING_DELAY, VOTING_PERIOD, TIMELOCK_DELAY, REVIEW_WINDOW = 60, 600, 60, 600
TREASURY = "0x" + DAO_TIMELOCK.hex()
TEXT = ("--background", "ipfs://bafy-bg", "--goals", "cheaper rentals", "--plan", "ipfs://plan")


class Dao(Market):
    """The devnet, `pv` against it, and the DAO steps as `pv dao` commands."""

    def warp(self, seconds: int) -> None:
        """Move chain time `seconds` on and wait for a block after it."""
        self.warp_past(self.head_time() + seconds)

    def propose(self, title: str, *extra: str) -> int:
        doc = self.pv.ok("dao", "propose", "--title", title, *TEXT, *extra, signer=PROPOSER)
        assert doc["status"] == "review" and doc["deposit"] == str(DEPOSIT)
        return int(doc["id"])

    def review_all(self, pid: int, *verdicts: str) -> dict[str, Any]:
        """Every member reviews (so the review may be decided at once); then finalize."""
        for member, verdict in zip(REVIEWERS, verdicts, strict=True):
            score = "80" if verdict == "approve" else "10"
            self.pv.ok("dao", "review", str(pid), "--verdict", verdict, "--score", score,
                       "--note", f"{verdict} by {member}", signer=member)  # fmt: skip
        doc: dict[str, Any] = self.pv.ok("dao", "finalize", str(pid), signer=PROPOSER)
        return doc

    def vote_through(
        self, target: list[str], voters: tuple[int, ...], support: str = "for"
    ) -> None:
        """Wait out the voting delay, let `voters` vote, wait out the voting period."""
        self.warp(VOTING_DELAY + 1)
        for v in voters:
            doc = self.pv.ok("dao", "vote", *target, "--support", support, signer=v)
            assert doc["voter"] == addr(v) and int(doc["weight"]) > 0

        self.warp(VOTING_PERIOD + 1)

    def queue_and_execute(self, target: list[str]) -> None:
        """Queue; executing before the timelock delay is refused; after it, execute."""
        queued = self.pv.ok("dao", "queue", *target, signer=PROPOSER)
        assert queued["eta"] >= self.head_time() + TIMELOCK_DELAY - 5
        self.pv.refused("dao", "execute", *target, error="TimelockUnexpectedOperationState",
                        signer=PROPOSER)  # fmt: skip
        self.warp_past(queued["eta"])
        self.pv.ok("dao", "execute", *target, signer=PROPOSER)

    def vote_state(self, pid: int) -> str:
        return str(self.pv.ok("dao", "show", str(pid))["vote"]["state"])


@pytest.fixture(scope="module")
def dao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dao]:
    """One four-validator devnet (`pv devnet up`) for the module; voters A and B lock 1,000
    PVC each, a small holder 10."""
    devnet = DevnetProcesses(tmp_path_factory.mktemp("dao-e2e") / "devnet")
    try:
        devnet.up()
        d = Dao(devnet, PvCli(devnet.url))
        for voter, amount in ((VOTER_A, "1000"), (VOTER_B, "1000"), (SMALL, "10")):
            power = d.pv.ok("dao", "deposit", amount, signer=voter)
            assert power["votes"] == str(int(amount) * PVC)
        yield d
    finally:
        devnet.down()


def test_settings_on_the_devnet(dao: Dao) -> None:
    s = dao.pv.ok("dao", "settings")
    assert (s["votingDelay"], s["votingPeriod"], s["timelockDelay"]) == (
        VOTING_DELAY, VOTING_PERIOD, TIMELOCK_DELAY
    )  # fmt: skip
    assert s["proposalDeposit"] == str(DEPOSIT) and s["reviewWindow"] == REVIEW_WINDOW
    assert dao.pv.ok("dao", "committee")["members"] == [addr(i) for i in REVIEWERS]
    # the four validators' genesis stake (1,000 PVC each) votes too, beside the deposits
    supply = 4 * 1_000 * PVC + 2_010 * PVC
    assert int(s["quorumNow"]) == supply * s["quorumPercent"] // 100


def test_a_proposal_rejected_by_the_committee(dao: Dao) -> None:
    """(a) Spam loses the deposit to the treasury; a plain rejection gives it back."""
    treasury = dao.balance(TREASURY)
    spam = dao.propose("buy my token")
    plain = dao.propose("a so-so idea")
    dao.pv.refused("dao", "review", str(spam), "--verdict", "spam", "--score", "0",
                   error="NotMember", signer=PROPOSER)  # fmt: skip
    assert dao.review_all(spam, "spam", "spam", "reject")["status"] == "spam"
    rejected = dao.review_all(plain, "reject", "reject", "approve")
    assert rejected["status"] == "rejected" and rejected["vote"] is None
    assert (rejected["reviews"], rejected["approvals"]) == (3, 1)
    assert dao.balance(TREASURY) == treasury + DEPOSIT
    dao.pv.refused("dao", "finalize", str(plain), error="ProposalNotInState", signer=PROPOSER)
    not_voting = dao.pv.run("dao", "vote", str(plain), signer=VOTER_A)
    assert not_voting.returncode == 1 and "not put to the vote" in not_voting.stdout
    before = dao.balance(addr(PROPOSER))
    claimed = dao.pv.ok("dao", "claim", signer=PROPOSER)
    assert claimed == {"payments": "0", "deposits": str(DEPOSIT)}
    assert before < dao.balance(addr(PROPOSER)) <= before + DEPOSIT
    nothing = dao.pv.run("dao", "claim", signer=PROPOSER)
    assert nothing.returncode == 1 and "nothing to claim" in nothing.stderr


def test_a_proposal_failing_the_quorum(dao: Dao) -> None:
    """(b) Approved by the committee, but only a small holder votes: defeated."""
    pid = dao.propose("too few voters")
    assert dao.review_all(pid, "approve", "approve", "reject")["status"] == "voting"
    dao.vote_through([str(pid)], (SMALL,))
    vote = dao.pv.ok("dao", "show", str(pid))["vote"]
    assert vote["state"] == "defeated"
    assert vote["for"] == str(10 * PVC) and vote["against"] == "0"
    assert int(vote["quorum"]) > 10 * PVC  # 4 % of the vPVC at the snapshot
    dao.pv.refused("dao", "queue", str(pid), error="GovernorUnexpectedProposalState",
                   signer=PROPOSER)  # fmt: skip


def test_a_passed_fee_change_is_paid_by_the_next_rental(dao: Dao, tmp_path: Path) -> None:
    """(c) Market.setFee(400) passes, runs after the timelock, and the next rental pays 4 %."""
    pv = dao.pv
    old_fee = pv.ok("market", "config")["feeBps"]
    assert old_fee != 400
    pid = dao.propose("Fee to 4%", "--call", "Market.setFee:400")
    assert dao.review_all(pid, "approve", "approve", "approve")["status"] == "voting"
    pv.refused("dao", "vote", str(pid), error="GovernorUnexpectedProposalState", signer=VOTER_A)
    dao.warp(VOTING_DELAY + 1)
    pv.ok("dao", "vote", str(pid), "--support", "for", signer=VOTER_A)
    pv.refused("dao", "vote", str(pid), "--support", "against",
               error="GovernorAlreadyCastVote", signer=VOTER_A)  # fmt: skip
    pv.ok("dao", "vote", str(pid), "--support", "against", signer=SMALL)
    dao.warp(VOTING_PERIOD + 1)
    vote = pv.ok("dao", "show", str(pid))["vote"]
    assert (vote["state"], vote["for"], vote["against"]) == (
        "succeeded", str(1_000 * PVC), str(10 * PVC)
    )  # fmt: skip
    assert pv.ok("market", "config")["feeBps"] == old_fee  # not before the timelock ran it
    dao.queue_and_execute([str(pid)])
    assert dao.vote_state(pid) == "executed"
    assert pv.ok("market", "config")["feeBps"] == 400

    # the next rental is made at 4 % and settles with it
    token = pv.ok("resource", "register", *README_RESOURCE, signer=PROVIDER)["tokenId"]
    bench = tmp_path / "bench.json"
    bench.write_text('{"gflops": 82.6}\n')
    pv.ok("resource", "verify", str(token), "--evidence-file", str(bench), signer=FOUNDATION)
    pv.ok("market", "list", str(token), "--price", "1", "--max-days", "30", signer=PROVIDER)
    rental = pv.ok("market", "rent", str(token), "2", signer=CONSUMER)
    rid, rent = rental["rentalId"], 2 * PVC
    assert dao.rentals.rental(rid).fee_bps == 400
    confirmed = pv.ok("market", "confirm", str(rid), signer=PROVIDER)
    dao.warp_past(confirmed["end"])
    treasury = Rentals(dao.client()).config().treasury
    owed_before = dao.rentals.owed(treasury)
    settled = pv.ok("market", "settle", str(rid), signer=CONSUMER)
    fee = rent * 400 // BPS
    assert settled["fee"] == str(fee) and settled["toProvider"] == str(rent - fee)
    assert dao.rentals.owed(treasury) - owed_before == fee


def test_a_milestone_project_paused_and_revoted(dao: Dao) -> None:
    """(d) A funded project: a milestone paid, paused by supervision, its continuation voted
    through, resumed, accepted, and the team paid in full."""
    pv = dao.pv
    pv.ok("dao", "donate", "100", signer=FOUNDATION)
    pid = dao.propose("a dashboard", "--team", addr(TEAM), "--milestone", "10",
                      "--milestone", "20", "--milestone", "5")  # fmt: skip
    assert dao.review_all(pid, "approve", "approve", "reject")["status"] == "voting"
    dao.vote_through([str(pid)], (VOTER_A, VOTER_B))
    treasury = dao.balance(TREASURY)
    dao.queue_and_execute([str(pid)])
    assert dao.balance(TREASURY) == treasury - 35 * PVC
    projects = dao.client().contract("DaoProjects")
    project_id = str(dao.client().call(projects.functions.projectOfProposal(pid)))
    p = pv.ok("dao", "project", project_id)
    assert (p["status"], p["team"], p["budget"]) == ("active", addr(TEAM), str(35 * PVC))

    released = pv.ok("dao", "supervise", project_id, "release", "--note", "part 1",
                     signer=SUPERVISOR)  # fmt: skip
    assert released["paid"] == str(10 * PVC)
    pv.refused("dao", "supervise", project_id, "pause", "--note", "mine",
               error="AccessControlUnauthorizedAccount", signer=TEAM)  # fmt: skip
    paused = pv.ok("dao", "supervise", project_id, "pause", "--note", "off plan",
                   signer=SUPERVISOR)  # fmt: skip
    assert paused["status"] == "paused"
    pv.refused("dao", "supervise", project_id, "release", "--note", "more",
               error="ProjectNotInState", signer=SUPERVISOR)  # fmt: skip

    # the first continuation vote fails; the project stays paused
    revote = pv.ok("dao", "supervise", project_id, "revote", signer=SUPERVISOR)
    target = ["--project", project_id]
    dao.vote_through(target, (VOTER_A,), support="against")
    pv.refused("dao", "queue", *target, error="GovernorUnexpectedProposalState", signer=VOTER_A)
    # a second one passes and, through the timelock, resumes it
    again = pv.ok("dao", "supervise", project_id, "revote", signer=SUPERVISOR)
    assert again["continuationVote"] != revote["continuationVote"]
    dao.vote_through(target, (VOTER_A, VOTER_B))
    dao.queue_and_execute(target)
    assert pv.ok("dao", "project", project_id)["status"] == "active"

    assert pv.ok("dao", "supervise", project_id, "release", "--note", "part 2",
                 signer=SUPERVISOR)["paid"] == str(30 * PVC)  # fmt: skip
    done = pv.ok("dao", "accept", project_id, "--report", "ipfs://bafy-final", signer=SUPERVISOR)
    assert (done["status"], done["result"], done["paid"]) == (
        "completed", "ipfs://bafy-final", str(35 * PVC)
    )  # fmt: skip
    assert pv.ok("dao", "claim", signer=TEAM)["payments"] == str(35 * PVC)


def test_nobody_but_the_timelock_changes_a_governed_parameter(dao: Dao) -> None:
    """(e) On the devnet: no account but the foundation (dev roles) and the timelock holds a
    market governance role; no account at all, the foundation included, changes a DAO
    setting or puts a proposal to the Governor directly, and no one schedules in the timelock."""
    gov_role = role_id("GOVERNANCE_ROLE")
    reader = dao.client()
    for name in ("Market", "Orders", "Reputation", "ResourceNFT"):
        has = reader.contract(name).functions.hasRole
        assert reader.call(has(gov_role, TREASURY)), name
        assert reader.call(has(gov_role, addr(FOUNDATION))), name  # the devnet's dev roles
    for i in (FOUNDATION, 1, SUPERVISOR, VOTER_A, PROPOSER):
        c = ChainClient(dao.node.url, Account.from_key(dev_accounts()[i].private_key))
        me = c.address
        attempts: list[tuple[Any, str]] = [
            (c.contract("DaoGovernor").functions.setVotingPeriod(1), "GovernorOnlyExecutor"),
            (c.contract("DaoGovernor").functions.setPassThreshold(9_000), "GovernorOnlyExecutor"),
            (c.contract("DaoProposals").functions.setParams((1, 600, 1, 1)), "NotTimelock"),
            (c.contract("ReviewCommittee").functions.setMembers([me], 2**40), "NotTimelock"),
            (c.contract("DaoGovernor").functions.propose([me], [0], [b""], "sneak"),
             "NotDaoContract"),
            (c.contract("DaoTimelock").functions.schedule(me, 0, b"", bytes(32), bytes(32), 60),
             "AccessControlUnauthorizedAccount"),
        ]  # fmt: skip
        if i != FOUNDATION:
            attempts += [
                (c.contract("Market").functions.setFee(100), "AccessControlUnauthorizedAccount"),
                (c.contract("Reputation").functions.setMinReputation(0),
                 "AccessControlUnauthorizedAccount"),
                (c.contract("Market").functions.grantRole(gov_role, me),
                 "AccessControlUnauthorizedAccount"),
            ]  # fmt: skip
        for fn, error in attempts:
            with pytest.raises(ContractError) as refused:
                c.transact(fn)
            assert refused.value.name == error, (i, fn.fn_name)
    s = dao.pv.ok("dao", "settings")
    assert (s["votingPeriod"], s["passThresholdBps"]) == (VOTING_PERIOD, 5_000)
    assert dao.pv.ok("market", "config")["feeBps"] == 400  # what the vote set, nothing else
