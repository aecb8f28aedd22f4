"""`pv dao`: JSON output, human output, bad input (exit 2), refusals (exit 1, the contract
error's name), an unreachable node (exit 3), and every subcommand against a real dev node: a
fee change voted through the timelock, a funded project paused and re-voted, spam and returned
deposits, an escalated dispute put to the vote, and a committee election."""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account

from powerverse.contracts.system import DAO_TIMELOCK
from powerverse.crypto.keys import dev_accounts
from powerverse.market.arbitration import Arbitration
from powerverse.market.client import ChainClient
from powerverse.market.orders import Orders, OrderState
from powerverse.market.rentals import Rentals
from tests.cli.chain_cli import PVC, addr, chain, head_time, ok, pv, refused, warp_by
from tests.market.conftest import make_factory
from tests.market.orders_helpers import REWARD
from tests.market.test_arbitration import rejected_task
from tests.rpc.conftest import ThreadedNode

__all__ = ["chain"]  # the module-scoped dev node fixture

FOUNDATION = 0  # the dev arbiter
REVIEWERS = (1, 2, 3)  # the dev genesis review committee
SUPERVISOR = 4
VOTER_A, VOTER_B = 5, 6
PROPOSER = 8
TEAM = 9
SMALL = 10  # a holder far below the quorum
DEPOSIT = 10 * PVC
VOTING_DELAY, VOTING_PERIOD, TIMELOCK_DELAY = 60, 600, 60
TREASURY = "0x" + DAO_TIMELOCK.hex()
TEXT = ("--background", "ipfs://bafy-bg", "--goals", "cheaper rentals", "--plan", "ipfs://plan")


def usage_error(result: Any, text: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert text in result.stderr + result.stdout, result.stderr


def dao(node: ThreadedNode | None, *args: str, signer: int | None = None) -> Any:
    """`pv dao ARGS`."""
    return pv(node, "dao", *args, signer=signer)


def propose(node: ThreadedNode, title: str, *extra: str) -> int:
    doc = ok(dao(node, "propose", "--title", title, *TEXT, *extra, "--json", signer=PROPOSER))
    assert doc["status"] == "review" and doc["deposit"] == str(DEPOSIT)
    return int(doc["id"])


def approve(node: ThreadedNode, pid: int) -> None:
    """Two members approve, one rejects; every member reviewed, so it is decided at once."""
    for i, verdict in zip(REVIEWERS, ("approve", "approve", "reject"), strict=True):
        ok(dao(node, "review", str(pid), "--verdict", verdict, "--score", "80", "--json",
               signer=i))  # fmt: skip
    doc = ok(dao(node, "finalize", str(pid), "--json", signer=PROPOSER))
    assert doc["status"] == "voting" and doc["vote"]["state"] == "pending"


def vote_through(node: ThreadedNode, target: list[str], voters: tuple[int, ...]) -> str:
    """Start the vote, let `voters` vote for, end it; the vote's state afterwards."""
    warp_by(node, VOTING_DELAY + 1)
    for v in voters:
        doc = ok(dao(node, "vote", *target, "--support", "for", "--json", signer=v))
        assert doc["voter"] == addr(v) and int(doc["weight"]) > 0
    warp_by(node, VOTING_PERIOD + 1)
    return state(node, target)


def state(node: ThreadedNode, target: list[str]) -> str:
    if target[0] == "--project":
        gid = ok(dao(node, "project", target[1], "--json"))["continuationVote"]
        client = ChainClient(node.url)
        governor = client.contract("DaoGovernor")
        names = ("pending", "active", "canceled", "defeated", "succeeded", "queued", "expired")
        return (*names, "executed")[int(client.call(governor.functions.state(int(gid))))]
    return str(ok(dao(node, "show", target[0], "--json"))["vote"]["state"])


def queue_and_execute(node: ThreadedNode, target: list[str]) -> None:
    queued = ok(dao(node, "queue", *target, "--json", signer=PROPOSER))
    assert queued["eta"] >= head_time(node) + TIMELOCK_DELAY - 1
    refused(dao(node, "execute", *target, "--json", signer=PROPOSER),
            "TimelockUnexpectedOperationState")  # fmt: skip
    warp_by(node, TIMELOCK_DELAY + 1)
    executed = ok(dao(node, "execute", *target, "--json", signer=PROPOSER))
    assert executed["txHash"].startswith("0x") and executed["blockNumber"] > 0


# ---------------------------------------------------------------- reads, bad usage, no node


def test_reads_on_a_fresh_chain(chain: ThreadedNode) -> None:
    s = ok(dao(chain, "settings", "--json"))
    assert (s["votingDelay"], s["votingPeriod"], s["timelockDelay"]) == (60, 600, 60)
    assert (s["quorumPercent"], s["passThresholdBps"], s["minReviews"]) == (4, 5_000, 2)
    assert s["proposalDeposit"] == str(DEPOSIT) and s["treasury"].lower() == TREASURY
    human = dao(chain, "settings")
    assert human.exit_code == 0 and "votingPeriod: 600" in human.stdout

    c = ok(dao(chain, "committee", "--json"))
    assert c["members"] == [addr(i) for i in REVIEWERS] and c["size"] == 3
    assert c["termEnd"] - c["termStart"] == 30 * 86_400 and c["electionCount"] == 0
    human = dao(chain, "committee")
    assert human.exit_code == 0 and addr(1) in human.stdout and "term ends" in human.stdout

    p = ok(dao(chain, "power", addr(VOTER_A), "--json"))
    assert p == {
        "account": addr(VOTER_A), "balance": "0", "deposited": "0", "staked": "0",
        "delegate": None, "votes": "0",
    }  # fmt: skip
    human = dao(chain, "power", addr(VOTER_A))
    assert (
        human.exit_code == 0 and "votes 0 PVC" in human.stdout and "delegate none" in human.stdout
    )

    assert ok(dao(chain, "list", "--json")) == {"proposals": []}
    empty = dao(chain, "list")
    assert empty.exit_code == 0 and empty.stdout == ""
    refused(dao(chain, "show", "7", "--json"), "UnknownProposal")
    refused(dao(chain, "project", "7", "--json"), "UnknownProject")


def test_bad_usage_exits_2(chain: ThreadedNode) -> None:
    usage_error(dao(chain, "deposit", "lots", signer=VOTER_A), "bad amount")
    usage_error(dao(chain, "deposit", "1/2", signer=VOTER_A), "bad amount")
    usage_error(dao(chain, "withdraw", "1.5wei", signer=VOTER_A), "bad amount")
    usage_error(dao(chain, "donate", "x", signer=VOTER_A), "bad amount")
    usage_error(dao(chain, "delegate", "0x12", signer=VOTER_A), "delegate")
    usage_error(dao(chain, "power", "nobody"), "account")
    usage_error(dao(chain, "propose", *TEXT, signer=PROPOSER), "--title")
    usage_error(
        dao(chain, "propose", "--title", "t", "--background", "b", "--plan", "p", signer=PROPOSER),
        "--goals",
    )
    usage_error(
        dao(chain, "propose", "--title", "t", *TEXT, "--team", addr(TEAM), signer=PROPOSER),
        "--milestone",
    )
    usage_error(
        dao(chain, "propose", "--title", "t", *TEXT, "--milestone", "5", signer=PROPOSER), "--team"
    )
    usage_error(
        dao(chain, "propose", "--title", "t", *TEXT, "--team", "0xbad", "--milestone", "5",
            signer=PROPOSER),
        "--team",
    )  # fmt: skip
    usage_error(
        dao(chain, "propose", "--title", "t", *TEXT, "--milestone", "ten", "--team", addr(TEAM),
            signer=PROPOSER),
        "bad amount",
    )  # fmt: skip
    for call, text in (
        ("Market", "CONTRACT.FUNCTION"),
        ("Nowhere.setFee:1", "not a system contract"),
        ("Market.noSuchFunction:1", "cannot encode"),
        ("Market.setFee:a,b", "cannot encode"),
    ):
        usage_error(
            dao(chain, "propose", "--title", "t", *TEXT, "--call", call, signer=PROPOSER), text
        )
    usage_error(
        dao(chain, "propose", "--title", "t", *TEXT, "--raw-call", f"{addr(1)}:zz",
            signer=PROPOSER),
        "HEXDATA",
    )  # fmt: skip
    usage_error(
        dao(chain, "propose", "--title", "t", *TEXT, "--raw-call", "0x12:00", signer=PROPOSER),
        "--raw-call",
    )
    usage_error(dao(chain, "review", "1", "--verdict", "maybe", "--score", "5", signer=1), "maybe")
    usage_error(
        dao(chain, "review", "1", "--verdict", "approve", "--score", "101", signer=1), "--score"
    )
    usage_error(dao(chain, "review", "1", "--verdict", "approve", signer=1), "--score")
    usage_error(
        dao(chain, "review", "0", "--verdict", "approve", "--score", "5", signer=1),
        "greater than or equal to 1",
    )
    usage_error(dao(chain, "vote", "1", "--support", "yes", signer=VOTER_A), "yes")
    usage_error(dao(chain, "vote", signer=VOTER_A), "one of them")
    usage_error(dao(chain, "vote", "1", "--project", "1", signer=VOTER_A), "one of them")
    usage_error(dao(chain, "queue", signer=VOTER_A), "one of them")
    usage_error(dao(chain, "execute", "1", "--project", "2", signer=VOTER_A), "one of them")
    usage_error(dao(chain, "show", "zero"), "valid integer")
    usage_error(dao(chain, "supervise", "1", "explode", signer=SUPERVISOR), "explode")
    usage_error(dao(chain, "accept", "1", signer=SUPERVISOR), "--report")
    usage_error(dao(chain, "elect", "count", signer=VOTER_A), "count")
    usage_error(dao(chain, "elect", "stand", signer=VOTER_A), "--election")
    usage_error(dao(chain, "elect", "vote", "--election", "1", signer=VOTER_A), "--candidate")
    usage_error(
        dao(chain, "elect", "vote", "--election", "1", "--candidate", "0x1", signer=VOTER_A),
        "--candidate",
    )
    usage_error(dao(chain, "rule", "1", "--consumer-share", "all", "--reason", "r"), "bad amount")
    usage_error(dao(chain, "rule", "1", "--consumer-share", "1"), "--reason")
    no_signer = dao(chain, "deposit", "1")
    assert no_signer.exit_code == 1 and "--dev-account" in no_signer.stderr


def test_an_unreachable_node_exits_3() -> None:
    for args, signer in (
        (("settings",), None),
        (("list", "--json"), None),
        (("power", addr(1)), None),
        (("deposit", "1"), VOTER_A),
        (("vote", "1", "--support", "for"), VOTER_A),
    ):
        result = dao(None, *args, signer=signer)
        assert result.exit_code == 3, (args, result.stdout, result.stderr)
        assert "cannot reach" in result.stderr


# ---------------------------------------------------------------- voting power


def test_deposit_delegate_withdraw_donate(chain: ThreadedNode) -> None:
    a = ok(dao(chain, "deposit", "1000", "--json", signer=VOTER_A))
    assert (a["deposited"], a["votes"], a["delegate"]) == (str(1_000 * PVC),) * 2 + (addr(VOTER_A),)
    human = dao(chain, "deposit", "1000", signer=VOTER_B)
    assert human.exit_code == 0, human.stderr
    assert "locked 1000 PVC; votes now 1000 PVC" in human.stdout
    ok(dao(chain, "deposit", "10", "--json", signer=SMALL))

    # B gives its votes to A, then takes them back
    moved = ok(dao(chain, "delegate", addr(VOTER_A), "--json", signer=VOTER_B))
    assert moved["delegate"] == addr(VOTER_A) and moved["votes"] == "0"
    assert ok(dao(chain, "power", addr(VOTER_A), "--json"))["votes"] == str(2_000 * PVC)
    human = dao(chain, "delegate", addr(VOTER_B), signer=VOTER_B)
    assert human.exit_code == 0 and f"your votes go to {addr(VOTER_B)}" in human.stdout
    assert ok(dao(chain, "power", addr(VOTER_A), "--json"))["votes"] == str(1_000 * PVC)

    refused(dao(chain, "withdraw", "11", "--json", signer=SMALL), "InsufficientDeposit")
    human = dao(chain, "withdraw", "11", signer=SMALL)
    assert human.exit_code == 1 and "InsufficientDeposit" in human.stderr
    back = ok(dao(chain, "withdraw", "0.5", "--json", signer=SMALL))
    assert back["deposited"] == back["votes"] == str(95 * PVC // 10)
    human = dao(chain, "withdraw", "0.5", signer=SMALL)
    assert human.exit_code == 0 and "unlocked 0.5 PVC" in human.stdout

    before = ChainClient(chain.url).balance(TREASURY)
    assert ok(dao(chain, "donate", "100", "--json", signer=FOUNDATION)) == {
        "donated": str(100 * PVC)
    }
    human = dao(chain, "donate", "1000wei", signer=FOUNDATION)
    assert human.exit_code == 0 and "to the treasury" in human.stdout
    assert ChainClient(chain.url).balance(TREASURY) == before + 100 * PVC + 1000
    s = ok(dao(chain, "settings", "--json"))
    assert s["treasuryBalance"] == str(before + 100 * PVC + 1000)


# ---------------------------------------------------------------- proposals and votes


def test_spam_forfeits_the_deposit_and_a_rejection_returns_it(chain: ThreadedNode) -> None:
    spam = propose(chain, "buy my token")
    plain = propose(chain, "a so-so idea")
    refused(dao(chain, "review", str(spam), "--verdict", "spam", "--score", "0", "--json",
                signer=PROPOSER), "NotMember")  # fmt: skip
    human = dao(chain, "review", str(spam), "--verdict", "spam", "--score", "0", signer=1)
    assert human.exit_code == 0 and f"reviewed proposal {spam}: spam (0)" in human.stdout
    refused(dao(chain, "review", str(spam), "--verdict", "approve", "--score", "90", "--json",
                signer=1), "AlreadyReviewed")  # fmt: skip
    ok(dao(chain, "review", str(spam), "--verdict", "spam", "--score", "0", "--json", signer=2))
    refused(dao(chain, "finalize", str(spam), "--json", signer=PROPOSER), "ReviewWindowOpen")
    ok(dao(chain, "review", str(plain), "--verdict", "reject", "--score", "20", "--json",
           signer=1))  # fmt: skip
    treasury = ChainClient(chain.url).balance(TREASURY)
    warp_by(chain, 601)
    human = dao(chain, "finalize", str(spam), signer=PROPOSER)
    assert human.exit_code == 0 and f"proposal {spam}: spam" in human.stdout
    decided = ok(dao(chain, "finalize", str(plain), "--json", signer=PROPOSER))
    assert decided["status"] == "rejected" and decided["vote"] is None
    assert (decided["reviews"], decided["approvals"], decided["averageScore"]) == (1, 0, 20)
    assert ChainClient(chain.url).balance(TREASURY) == treasury + DEPOSIT
    # the rejected proposal's deposit comes back; the spam's does not
    assert ok(dao(chain, "claim", "--json", signer=PROPOSER)) == {
        "payments": "0", "deposits": str(DEPOSIT)
    }  # fmt: skip
    nothing = dao(chain, "claim", signer=PROPOSER)
    assert nothing.exit_code == 1 and "nothing to claim" in nothing.stderr
    not_voting = dao(chain, "vote", str(plain), "--json", signer=VOTER_A)
    assert not_voting.exit_code == 1 and "not put to the vote" in not_voting.stdout


def test_call_arguments(chain: ThreadedNode) -> None:
    lower = addr(TEAM).lower()
    pid = propose(
        chain, "new treasury", "--call", f"Market.setTreasury:{lower}",
        "--raw-call", f"{addr(1)}:0xdeadbeef",
    )  # fmt: skip
    calls = ok(dao(chain, "show", str(pid), "--json"))["actions"]
    assert calls[0]["data"].endswith(lower.removeprefix("0x"))  # checksummed for the encoding
    assert calls[1] == {"target": addr(1), "value": "0", "data": "0xdeadbeef"}


def test_a_fee_change_passes_through_the_timelock(chain: ThreadedNode) -> None:
    pid = propose(
        chain, "Fee to 4% [market]", "--call", "Market.setFee:400", "--benefits", "treasury"
    )
    shown = ok(dao(chain, "show", str(pid), "--json"))
    (action,) = shown["actions"]
    assert action["target"] == "0x0000000000000000000000000000000000001002"  # Market
    assert action["data"].startswith("0x") and action["data"].endswith(f"{400:064x}")
    approve(chain, pid)
    pending = ok(dao(chain, "show", str(pid), "--json"))["vote"]
    assert (pending["state"], pending["quorum"], pending["eta"]) == ("pending", None, None)
    # before the voting delay: outside the period
    early = refused(dao(chain, "vote", str(pid), "--json", signer=VOTER_A),
                    "GovernorUnexpectedProposalState")  # fmt: skip
    assert early["args"]["current"] == 0  # pending
    warp_by(chain, VOTING_DELAY + 1)
    human = dao(chain, "vote", str(pid), "--support", "for", "--reason", "cheap", signer=VOTER_A)
    assert human.exit_code == 0 and "voted for with 1000 PVC" in human.stdout
    refused(dao(chain, "vote", str(pid), "--support", "against", "--json", signer=VOTER_A),
            "GovernorAlreadyCastVote")  # fmt: skip
    against = ok(dao(chain, "vote", str(pid), "--support", "abstain", "--json", signer=SMALL))
    assert against == {"voter": addr(SMALL), "support": "abstain", "weight": str(9 * PVC)}
    refused(dao(chain, "queue", str(pid), "--json", signer=PROPOSER),
            "GovernorUnexpectedProposalState")  # fmt: skip
    warp_by(chain, VOTING_PERIOD + 1)
    refused(
        dao(chain, "vote", str(pid), "--json", signer=VOTER_B), "GovernorUnexpectedProposalState"
    )  # fmt: skip  (after the period)
    vote = ok(dao(chain, "show", str(pid), "--json"))["vote"]
    assert (vote["state"], vote["for"], vote["abstain"]) == (
        "succeeded", str(1_000 * PVC), str(9 * PVC)
    )  # fmt: skip
    human = dao(chain, "show", str(pid))
    assert human.exit_code == 0 and f"#{pid} Fee to 4% [market] [voting]" in human.stdout
    assert "vote succeeded: for 1000 PVC" in human.stdout

    assert Rentals(ChainClient(chain.url)).config().fee_bps == 250
    queue_and_execute(chain, [str(pid)])
    assert Rentals(ChainClient(chain.url)).config().fee_bps == 400
    assert state(chain, [str(pid)]) == "executed"
    refused(dao(chain, "execute", str(pid), "--json", signer=PROPOSER),
            "GovernorUnexpectedProposalState")  # fmt: skip

    listed = ok(dao(chain, "list", "--json"))["proposals"]
    assert [(p["id"], p["status"]) for p in listed][-1] == (pid, "voting")
    human = dao(chain, "list")
    assert (
        human.exit_code == 0
        and f"#{pid} [voting, vote executed] Fee to 4% [market]" in human.stdout
    )
    assert "[spam] buy my token" in human.stdout


def test_a_vote_below_the_quorum_fails(chain: ThreadedNode) -> None:
    pid = propose(chain, "too few voters")
    approve(chain, pid)
    assert vote_through(chain, [str(pid)], (SMALL,)) == "defeated"
    vote = ok(dao(chain, "show", str(pid), "--json"))["vote"]
    assert vote["for"] == str(9 * PVC) and int(vote["quorum"]) > 9 * PVC
    refused(dao(chain, "queue", str(pid), "--json", signer=PROPOSER),
            "GovernorUnexpectedProposalState")  # fmt: skip


# ---------------------------------------------------------------- funded projects


def test_a_project_paused_revoted_and_accepted(chain: ThreadedNode) -> None:
    pid = propose(
        chain, "a dashboard", "--team", addr(TEAM), "--milestone", "10", "--milestone", "20",
        "--milestone", "5",
    )  # fmt: skip
    shown = ok(dao(chain, "show", str(pid), "--json"))
    assert shown["budget"] == str(35 * PVC) and shown["team"] == addr(TEAM)
    human = dao(chain, "show", str(pid))
    assert f"budget 35 PVC to {addr(TEAM)} in 3 milestone(s)" in human.stdout
    approve(chain, pid)
    assert vote_through(chain, [str(pid)], (VOTER_A, VOTER_B)) == "succeeded"
    queue_and_execute(chain, [str(pid)])
    project_id = "1"
    p = ok(dao(chain, "project", project_id, "--json"))
    assert (p["proposalId"], p["status"], p["team"], p["budget"]) == (
        pid, "active", addr(TEAM), str(35 * PVC)
    )  # fmt: skip

    refused(dao(chain, "supervise", project_id, "release", "--note", "pay", "--json",
                signer=TEAM), "AccessControlUnauthorizedAccount")  # fmt: skip
    released = ok(dao(chain, "supervise", project_id, "release", "--note", "part 1", "--json",
                      signer=SUPERVISOR))  # fmt: skip
    assert (released["released"], released["paid"]) == (1, str(10 * PVC))
    refused(dao(chain, "accept", project_id, "--report", "ipfs://r", "--json", signer=SUPERVISOR),
            "MilestonesOutstanding")  # fmt: skip
    refused(dao(chain, "supervise", project_id, "close", "--json", signer=SUPERVISOR),
            "ProjectNotInState")  # fmt: skip
    human = dao(chain, "supervise", project_id, "pause", "--note", "off plan", signer=SUPERVISOR)
    assert human.exit_code == 0 and f"project {project_id} paused" in human.stdout
    refused(dao(chain, "supervise", project_id, "close", "--json", signer=SUPERVISOR),
            "NoContinuationVote")  # fmt: skip
    revote = ok(dao(chain, "supervise", project_id, "revote", "--json", signer=SUPERVISOR))
    assert revote["status"] == "paused" and revote["continuationVote"] is not None
    target = ["--project", project_id]
    assert vote_through(chain, target, (VOTER_A, VOTER_B)) == "succeeded"
    queue_and_execute(chain, target)
    human = dao(chain, "project", project_id)
    assert human.exit_code == 0
    assert f"project {project_id} [active] team {addr(TEAM)}: paid 10 PVC of 35 PVC" in human.stdout

    human = dao(chain, "supervise", project_id, "release", "--note", "part 2", signer=SUPERVISOR)
    assert human.exit_code == 0 and "released 20 PVC to the team" in human.stdout
    refused(dao(chain, "supervise", project_id, "release", "--note", "last", "--json",
                signer=SUPERVISOR), "LastMilestoneNeedsAcceptance")  # fmt: skip
    refused(dao(chain, "accept", project_id, "--report", "ipfs://r", "--json", signer=TEAM),
            "AccessControlUnauthorizedAccount")  # fmt: skip
    done = ok(dao(chain, "accept", project_id, "--report", "ipfs://final", "--json",
                  signer=SUPERVISOR))  # fmt: skip
    assert (done["status"], done["result"], done["paid"]) == ("completed", "ipfs://final",
                                                              str(35 * PVC))  # fmt: skip
    assert ok(dao(chain, "claim", "--json", signer=TEAM)) == {
        "payments": str(35 * PVC), "deposits": "0"
    }  # fmt: skip
    human = dao(chain, "claim", signer=PROPOSER)  # the approved proposal's deposit came back
    assert human.exit_code == 0 and "paid " in human.stdout


def test_a_project_whose_continuation_fails_is_closed(chain: ThreadedNode) -> None:
    pid = propose(chain, "doomed", "--team", addr(TEAM), "--milestone", "1", "--milestone", "2")
    approve(chain, pid)
    assert vote_through(chain, [str(pid)], (VOTER_A,)) == "succeeded"
    queue_and_execute(chain, [str(pid)])
    project_id = "2"
    ok(dao(chain, "supervise", project_id, "pause", "--note", "gone", "--json", signer=SUPERVISOR))
    human = dao(chain, "supervise", project_id, "revote", signer=SUPERVISOR)
    assert human.exit_code == 0 and f"vote --project {project_id}" in human.stdout
    refused(dao(chain, "supervise", project_id, "revote", "--json", signer=SUPERVISOR), "VoteOpen")
    warp_by(chain, VOTING_DELAY + 1)
    ok(dao(chain, "vote", "--project", project_id, "--support", "against", "--json",
           signer=VOTER_A))  # fmt: skip
    warp_by(chain, VOTING_PERIOD + 1)
    treasury = ChainClient(chain.url).balance(TREASURY)
    human = dao(chain, "supervise", project_id, "close", signer=SMALL)
    assert human.exit_code == 0 and "3 PVC back to the treasury" in human.stdout
    assert ChainClient(chain.url).balance(TREASURY) == treasury + 3 * PVC
    assert ok(dao(chain, "project", project_id, "--json"))["status"] == "cancelled"


# ---------------------------------------------------------------- disputes and elections


def test_an_escalated_dispute_is_put_to_the_vote(chain: ThreadedNode) -> None:
    signers = [Account.from_key(a.private_key) for a in dev_accounts()]
    client = make_factory(chain, signers)
    order_id, dispute_id = rejected_task(client)
    refused(dao(chain, "rule", str(dispute_id), "--consumer-share", "1", "--reason", "r",
                "--json", signer=FOUNDATION), "DisputeNotEscalated")  # fmt: skip
    Arbitration(client(FOUNDATION)).escalate(dispute_id, "ask the DAO")
    refused(dao(chain, "rule", str(dispute_id), "--consumer-share", "1", "--reason", "r",
                "--json", signer=VOTER_A), "NotArbiter")  # fmt: skip
    doc = ok(dao(chain, "rule", str(dispute_id), "--consumer-share", f"{REWARD}wei",
                 "--reason", "never served", "--json", signer=FOUNDATION))  # fmt: skip
    assert doc["kind"] == "ruling" and doc["status"] == "voting"
    pid = str(doc["id"])
    assert vote_through(chain, [pid], (VOTER_A,)) == "succeeded"
    queue_and_execute(chain, [pid])
    d = Arbitration(ChainClient(chain.url)).dispute(dispute_id)
    assert d.by_dao and d.consumer_share == REWARD
    assert Orders(ChainClient(chain.url)).order(order_id).state == OrderState.RESOLVED
    human = dao(chain, "rule", str(dispute_id), "--consumer-share", "1", "--reason", "again",
                signer=FOUNDATION)  # fmt: skip
    assert human.exit_code == 1 and "DisputeNotEscalated" in human.stderr


def test_a_committee_election(chain: ThreadedNode) -> None:
    c = ok(dao(chain, "committee", "--json"))
    refused(dao(chain, "elect", "open", "--json", signer=VOTER_A), "ElectionNotDue")
    warp_by(chain, c["electionOpensAt"] - head_time(chain))
    opened = ok(dao(chain, "elect", "open", "--json", signer=VOTER_A))
    eid = str(opened["id"])
    assert opened["finalized"] is False and opened["candidates"] == {}
    for i in (VOTER_A, VOTER_B):
        ok(dao(chain, "elect", "stand", "--election", eid, "--json", signer=i))
    refused(dao(chain, "elect", "stand", "--election", eid, "--json", signer=VOTER_A),
            "AlreadyCandidate")  # fmt: skip
    refused(dao(chain, "elect", "stand", "--election", eid, "--json", signer=12), "NotEnoughVotes")
    voted = ok(dao(chain, "elect", "vote", "--election", eid, "--candidate", addr(VOTER_B),
                   "--json", signer=VOTER_A))  # fmt: skip
    assert voted["candidates"][addr(VOTER_B)] == str(1_000 * PVC)
    refused(dao(chain, "elect", "vote", "--election", eid, "--candidate", addr(VOTER_A),
                "--json", signer=VOTER_A), "AlreadyVoted")  # fmt: skip
    refused(dao(chain, "elect", "finalize", "--election", eid, "--json", signer=SMALL),
            "ElectionNotOver")  # fmt: skip
    warp_by(chain, int(c["electionPeriod"]) + 1)
    done = ok(dao(chain, "elect", "finalize", "--election", eid, "--json", signer=SMALL))
    assert done["finalized"] and done["elected"]
    human = dao(chain, "elect", "show", "--election", eid)
    assert human.exit_code == 0 and json.loads(human.stdout)["elected"] is True
    assert addr(VOTER_B) in ok(dao(chain, "committee", "--json"))["members"]
