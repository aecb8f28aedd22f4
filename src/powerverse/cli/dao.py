"""`pv dao`: the PowerVerse DAO (docs/dao.md) — voting power, proposals, committee review,
votes, the timelock, funded projects and their supervision, committee elections.

A proposal is named by its id in DaoProposals (`pv dao list`); a project's continuation vote
by ``--project ID``. Amounts are PVC (decimals allowed) or wei with a ``wei`` suffix.
Exit status: 0 done, 1 refused (the contract's error name is printed, or the JSON document
with ``--json``), 2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Annotated, Any

import typer
from eth_utils.address import to_checksum_address
from rich.console import Console
from rich.markup import escape

from powerverse.cli.chainfmt import attempt as _attempt
from powerverse.cli.chainfmt import done as _print_done
from powerverse.cli.chainfmt import format_pvc as _pvc
from powerverse.cli.chainfmt import parse_account, parse_amount, refused
from powerverse.cli.chainopts import (
    DEFAULT_RPC,
    ChainOptions,
    JsonOption,
    RpcOption,
    chain_options,
    sdk,
)
from powerverse.cli.common import EXIT_USAGE, fail, print_json
from powerverse.market.dao import Action, Content, Dao, Support, Verdict, encode_action
from powerverse.market.exceptions import ContractError, MarketError

app = typer.Typer(
    help="The DAO: deposit for votes, delegate, propose, review, vote, queue, execute, "
    "supervise funded projects, elect the review committee.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_dao = functools.partial(sdk, Dao)
"""The DAO SDK on a node, signing as the chosen account."""

IdArg = Annotated[int, typer.Argument(min=1, help="The proposal id (see `pv dao list`).")]
ProjectArg = Annotated[int, typer.Argument(min=1, help="The project id.")]
AmountArg = Annotated[str, typer.Argument(help="PVC (e.g. 1.5) or wei with a suffix (1000wei).")]
ProjectOption = Annotated[
    int | None, typer.Option("--project", min=1, help="A project's continuation vote instead.")
]
SUPPORT = {"for": Support.FOR, "against": Support.AGAINST, "abstain": Support.ABSTAIN}
VERDICT = {"approve": Verdict.APPROVE, "reject": Verdict.REJECT, "spam": Verdict.SPAM}


def _done(json_output: bool, doc: Any, message: str) -> None:
    # messages carry "[status]" and user text (titles, notes), which are not Rich markup
    _print_done(json_output, doc, escape(message))


def _target(proposal_id: int | None, project: int | None) -> tuple[int | None, int | None]:
    if (proposal_id is None) == (project is None):
        fail("name a proposal id or --project ID (one of them)", EXIT_USAGE)
    return proposal_id, project


# ------------------------------------------------------------------ voting power


@app.command("deposit")
@chain_options
def deposit(amount: AmountArg, *, opts: ChainOptions) -> None:
    """Lock PVC for as many votes (vPVC); you vote with them yourself unless you delegate."""
    wei = parse_amount(amount)
    d = opts.sdk(Dao)
    _attempt(opts.json_output, lambda: d.deposit(wei))
    power = d.power(d.client.address)
    _done(
        opts.json_output,
        _power_json(power),
        f"locked {_pvc(wei)}; votes now {_pvc(power['votes'])}",
    )


@app.command("withdraw")
@chain_options
def withdraw(amount: AmountArg, *, opts: ChainOptions) -> None:
    """Unlock deposited PVC (burns as many vPVC)."""
    wei = parse_amount(amount)
    d = opts.sdk(Dao)
    _attempt(opts.json_output, lambda: d.withdraw_deposit(wei))
    power = d.power(d.client.address)
    _done(opts.json_output, _power_json(power), f"unlocked {_pvc(wei)}")


@app.command("delegate")
@chain_options
def delegate(
    to: Annotated[str, typer.Argument(help="The delegate's address (your own to vote yourself).")],
    *,
    opts: ChainOptions,
) -> None:
    """Give all your votes to another account (counted from the next snapshot on)."""
    target = parse_account(to, "delegate")
    d = opts.sdk(Dao)
    _attempt(opts.json_output, lambda: d.delegate(target))
    _done(opts.json_output, _power_json(d.power(d.client.address)), f"your votes go to {target}")


@app.command("power")
def power(
    account: Annotated[str, typer.Argument(help="An account address.")],
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """An account's vPVC: deposited, staked, its delegate and the votes it casts."""
    who = parse_account(account, "account")
    d = _dao(rpc_url, need_signer=False)
    p = _attempt(json_output, lambda: d.power(who))
    _done(
        json_output,
        _power_json(p),
        f"{who}: votes {_pvc(p['votes'])}, deposited {_pvc(p['deposited'])}, staked "
        f"{_pvc(p['staked'])}, delegate {p['delegate'] or 'none'}",
    )


def _power_json(p: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, int) else v) for k, v in p.items()}


# ------------------------------------------------------------------ proposals


def _call_arg(text: str) -> Any:
    """A --call argument: an integer, an address (checksummed, as web3 needs), true/false, or
    a string."""
    if text.lstrip("-").isdigit():
        return int(text)
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", text):
        return to_checksum_address(text)
    return {"true": True, "false": False}.get(text, text)


def _actions(d: Dao, call: list[str], raw: list[str]) -> list[Action]:
    actions: list[Action] = []
    for spec in call:
        head, _, rest = spec.partition(":")
        contract, _, function = head.partition(".")
        if not contract or not function:
            fail(
                f"--call {spec!r}: expected CONTRACT.FUNCTION[:ARG,...], e.g. Market.setFee:400",
                EXIT_USAGE,
            )
        args = [_call_arg(a) for a in rest.split(",") if a]
        try:
            actions.append(encode_action(d.client, contract, function, *args))
        except MarketError as exc:
            fail(str(exc), EXIT_USAGE)
    for spec in raw:
        target, _, data = spec.partition(":")
        try:
            payload = bytes.fromhex(data.removeprefix("0x"))
        except ValueError:
            fail(f"--raw-call {spec!r}: expected ADDRESS:HEXDATA", EXIT_USAGE)
        actions.append(Action(target=parse_account(target, "--raw-call"), data=payload))
    return actions


@app.command("propose")
@chain_options
def propose(
    title: Annotated[str, typer.Option("--title", help="Up to 200 bytes.")],
    background: Annotated[str, typer.Option("--background", help="Text or content id.")],
    goals: Annotated[str, typer.Option("--goals", help="Text or content id.")],
    plan: Annotated[str, typer.Option("--plan", help="Text or content id.")],
    benefits: Annotated[str, typer.Option("--benefits", help="Expected benefits.")] = "",
    resources: Annotated[str, typer.Option("--resources", help="Resources needed.")] = "",
    call: Annotated[
        list[str] | None,
        typer.Option(
            "--call",
            help="An on-chain action CONTRACT.FUNCTION[:ARG,...] on a system contract, "
            "arguments integers, addresses, true/false or text, e.g. Market.setFee:400 "
            "(repeatable).",
        ),
    ] = None,
    raw_call: Annotated[
        list[str] | None, typer.Option("--raw-call", help="ADDRESS:HEXDATA (repeatable).")
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="Execution team's address.")] = None,
    milestone: Annotated[
        list[str] | None,
        typer.Option("--milestone", help="A milestone payment (PVC or wei), in order; repeat."),
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """Submit a proposal with the deposit; it goes to the review committee."""
    milestones = [parse_amount(m) for m in milestone or []]
    if bool(milestones) != bool(team):
        fail("a funded project needs both --team and at least one --milestone", EXIT_USAGE)
    team_address = parse_account(team, "--team") if team else None
    d = opts.sdk(Dao)
    actions = _actions(d, call or [], raw_call or [])
    text = Content(
        title=title, background=background, goals=goals, plan=plan, benefits=benefits,
        resources=resources,
    )  # fmt: skip
    pid = _attempt(
        opts.json_output, lambda: d.propose(text, actions, team=team_address, milestones=milestones)
    )
    p = d.proposal(pid)
    _done(opts.json_output, p.to_json(), f"proposal {pid} submitted; review until {p.review_end}")


@app.command("review")
@chain_options
def review(
    proposal_id: IdArg,
    verdict: Annotated[str, typer.Option("--verdict", help="approve, reject or spam.")],
    score: Annotated[int, typer.Option("--score", min=0, max=100, help="0-100.")],
    note: Annotated[str, typer.Option("--note", help="Comment or content id.")] = "",
    *,
    opts: ChainOptions,
) -> None:
    """Committee member: review and score a proposal within the review window."""
    if verdict not in VERDICT:
        fail(f"--verdict {verdict!r}: expected approve, reject or spam", EXIT_USAGE)
    d = opts.sdk(Dao)
    _attempt(opts.json_output, lambda: d.review(proposal_id, VERDICT[verdict], score, note))
    p = d.proposal(proposal_id)
    _done(opts.json_output, p.to_json(), f"reviewed proposal {proposal_id}: {verdict} ({score})")


@app.command("finalize")
@chain_options
def finalize(proposal_id: IdArg, *, opts: ChainOptions) -> None:
    """Decide a review (anyone: after the window, or once every member reviewed)."""
    d = opts.sdk(Dao)
    status = _attempt(opts.json_output, lambda: d.finalize_review(proposal_id))
    p = d.proposal(proposal_id)
    _done(opts.json_output, p.to_json(), f"proposal {proposal_id}: {status.name.lower()}")


@app.command("vote")
@chain_options
def vote(
    proposal_id: Annotated[int | None, typer.Argument(min=1, help="The proposal id.")] = None,
    support: Annotated[str, typer.Option("--support", help="for, against or abstain.")] = "for",
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the event).")] = "",
    project: ProjectOption = None,
    *,
    opts: ChainOptions,
) -> None:
    """Vote with your votes at the vote's snapshot (once, during the voting period)."""
    if support not in SUPPORT:
        fail(f"--support {support!r}: expected for, against or abstain", EXIT_USAGE)
    pid, prj = _target(proposal_id, project)
    d = opts.sdk(Dao)
    weight = _attempt(
        opts.json_output, lambda: d.vote(pid, SUPPORT[support], reason, project_id=prj)
    )
    doc = {"voter": d.client.address, "support": support, "weight": str(weight)}
    _done(opts.json_output, doc, f"voted {support} with {_pvc(weight)}")


@app.command("queue")
@chain_options
def queue(
    proposal_id: Annotated[int | None, typer.Argument(min=1, help="The proposal id.")] = None,
    project: ProjectOption = None,
    *,
    opts: ChainOptions,
) -> None:
    """Queue a passed vote in the timelock (anyone)."""
    pid, prj = _target(proposal_id, project)
    d = opts.sdk(Dao)
    eta = _attempt(opts.json_output, lambda: d.queue(pid, project_id=prj))
    _done(opts.json_output, {"eta": eta}, f"queued; executable from timestamp {eta}")


@app.command("execute")
@chain_options
def execute(
    proposal_id: Annotated[int | None, typer.Argument(min=1, help="The proposal id.")] = None,
    project: ProjectOption = None,
    *,
    opts: ChainOptions,
) -> None:
    """Run a queued proposal's actions through the timelock (anyone, after the delay)."""
    pid, prj = _target(proposal_id, project)
    d = opts.sdk(Dao)
    tx = _attempt(opts.json_output, lambda: d.execute(pid, project_id=prj))
    _done(opts.json_output, {"txHash": tx.tx_hash, "blockNumber": tx.block_number}, "executed")


@app.command("show")
def show(
    proposal_id: IdArg,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """A proposal: texts, actions, review tally, and its vote."""
    d = _dao(rpc_url, need_signer=False)
    p = _attempt(json_output, lambda: d.proposal(proposal_id))
    if json_output:
        print_json(p.to_json())
        return
    console = Console(highlight=False, soft_wrap=True, markup=False)
    console.print(f"#{p.id} {p.content.title} [{p.status.name.lower()}] by {p.proposer}")
    console.print(f"reviews {p.reviews} (approve {p.approvals}, spam {p.spam_votes})")
    if p.vote_state is not None and p.votes is not None:
        console.print(
            f"vote {p.vote_state.name.lower()}: for {_pvc(p.votes[1])}, against "
            f"{_pvc(p.votes[0])}, abstain {_pvc(p.votes[2])}"
        )
    if p.budget:
        console.print(f"budget {_pvc(p.budget)} to {p.team} in {len(p.milestones)} milestone(s)")


@app.command("list")
def list_(rpc_url: RpcOption = DEFAULT_RPC, json_output: JsonOption = False) -> None:
    """Every proposal with its status."""
    d = _dao(rpc_url, need_signer=False)
    rows = _attempt(json_output, d.list_proposals)
    if json_output:
        print_json({"proposals": [p.to_json() for p in rows]})
        return
    console = Console(highlight=False, soft_wrap=True, markup=False)
    for p in rows:
        vote_state = f", vote {p.vote_state.name.lower()}" if p.vote_state is not None else ""
        console.print(f"#{p.id} [{p.status.name.lower()}{vote_state}] {p.content.title}")


@app.command("settings")
def settings(rpc_url: RpcOption = DEFAULT_RPC, json_output: JsonOption = False) -> None:
    """Every governable DAO setting and the treasury."""
    d = _dao(rpc_url, need_signer=False)
    doc = _attempt(json_output, d.settings)
    if json_output:
        print_json(doc)
        return
    for key, value in doc.items():
        typer.echo(f"{key}: {value}")


# ------------------------------------------------------------------ projects


@app.command("supervise")
@chain_options
def supervise(
    project_id: ProjectArg,
    action: Annotated[
        str,
        typer.Argument(help="release (next milestone), pause, revote (continuation) or close."),
    ],
    note: Annotated[str, typer.Option("--note", help="Why (required for release and pause).")] = "",
    *,
    opts: ChainOptions,
) -> None:
    """Supervision group: release a milestone, pause a deviating project, put its continuation
    to a new vote; anyone: close a project whose continuation vote failed."""
    actions = {"release", "pause", "revote", "close"}
    if action not in actions:
        fail(f"unknown action {action!r}: expected one of {', '.join(sorted(actions))}", EXIT_USAGE)
    d = opts.sdk(Dao)
    message: str
    if action == "release":
        amount = _attempt(opts.json_output, lambda: d.release_milestone(project_id, note))
        message = f"released {_pvc(amount)} to the team"
    elif action == "pause":
        _attempt(opts.json_output, lambda: d.pause_project(project_id, note))
        message = f"project {project_id} paused"
    elif action == "revote":
        gid = _attempt(opts.json_output, lambda: d.propose_continuation(project_id))
        message = f"continuation put to the vote (pv dao vote --project {project_id}); id {gid}"
    else:
        refunded = _attempt(opts.json_output, lambda: d.close_after_vote(project_id))
        message = f"project closed; {_pvc(refunded)} back to the treasury"
    _done(opts.json_output, d.project(project_id).to_json(), message)


@app.command("accept")
@chain_options
def accept(
    project_id: ProjectArg,
    report: Annotated[str, typer.Option("--report", help="The results report (content id).")],
    *,
    opts: ChainOptions,
) -> None:
    """Supervision group: accept a project's results; pays the last milestone, publishes it."""
    d = opts.sdk(Dao)
    paid = _attempt(opts.json_output, lambda: d.accept(project_id, report))
    _done(
        opts.json_output, d.project(project_id).to_json(), f"accepted; last milestone {_pvc(paid)}"
    )


@app.command("project")
def project(
    project_id: ProjectArg,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """A funded project: milestones, payments, status and published result."""
    d = _dao(rpc_url, need_signer=False)
    p = _attempt(json_output, lambda: d.project(project_id))
    _done(
        json_output,
        p.to_json(),
        f"project {p.id} [{p.status.name.lower()}] team {p.team}: paid {_pvc(p.paid)} of "
        f"{_pvc(p.budget)} ({p.released}/{len(p.milestones)} milestones)"
        + (f"; result {p.result}" if p.result else ""),
    )


@app.command("claim")
@chain_options
def claim(*, opts: ChainOptions) -> None:
    """Take milestone payments (execution teams) and returned proposal deposits."""
    d = opts.sdk(Dao)
    paid = {"payments": 0, "deposits": 0}
    for key, fn in (("payments", d.withdraw_payments), ("deposits", d.withdraw_returned_deposits)):
        try:
            paid[key] = fn()
        except ContractError as exc:
            if exc.name != "NothingOwed":
                refused(exc, opts.json_output)
        except MarketError as exc:
            refused(exc, opts.json_output)
    if not any(paid.values()):
        fail("nothing to claim: no milestone payments and no returned deposits")
    _done(
        opts.json_output, {k: str(v) for k, v in paid.items()}, f"paid {_pvc(sum(paid.values()))}"
    )


# ------------------------------------------------------------------ committee and disputes


@app.command("committee")
def committee(rpc_url: RpcOption = DEFAULT_RPC, json_output: JsonOption = False) -> None:
    """The sitting review committee, its term and the election rules."""
    d = _dao(rpc_url, need_signer=False)
    c = _attempt(json_output, d.committee)
    _done(
        json_output,
        c.to_json(),
        f"committee {', '.join(c.members)}; term ends {c.term_end}; next election from "
        f"{c.election_opens_at}",
    )


@app.command("elect")
@chain_options
def elect(
    action: Annotated[str, typer.Argument(help="open, stand, vote, finalize or show.")],
    election_id: Annotated[int | None, typer.Option("--election", min=1)] = None,
    candidate: Annotated[str | None, typer.Option("--candidate", help="For `vote`.")] = None,
    *,
    opts: ChainOptions,
) -> None:
    """Review committee elections: open one (when due), stand, vote for a candidate, finalize."""
    if action not in {"open", "stand", "vote", "finalize", "show"}:
        fail(f"unknown action {action!r}: open, stand, vote, finalize or show", EXIT_USAGE)
    if action != "open" and election_id is None:
        fail(f"`elect {action}` needs --election ID", EXIT_USAGE)
    d = opts.sdk(Dao, need_signer=action != "show")
    if action == "open":
        election_id = _attempt(opts.json_output, d.open_election)
    assert election_id is not None
    eid = election_id
    if action == "stand":
        _attempt(opts.json_output, lambda: d.stand(eid))
    elif action == "vote":
        if candidate is None:
            fail("`elect vote` needs --candidate ADDRESS", EXIT_USAGE)
        who = parse_account(candidate, "--candidate")
        _attempt(opts.json_output, lambda: d.elect(eid, who))
    elif action == "finalize":
        _attempt(opts.json_output, lambda: d.finalize_election(eid))
    e = _attempt(opts.json_output, lambda: d.election(eid))
    _done(opts.json_output, e.to_json(), json.dumps(e.to_json(), indent=2))


@app.command("rule")
@chain_options
def rule(
    dispute_id: Annotated[int, typer.Argument(min=1, help="An escalated dispute's id.")],
    consumer_share: Annotated[str, typer.Option("--consumer-share", help="PVC or wei.")],
    reason: Annotated[str, typer.Option("--reason")],
    *,
    opts: ChainOptions,
) -> None:
    """Arbiter: put the ruling of an escalated dispute to a DAO vote."""
    share = parse_amount(consumer_share)
    d = opts.sdk(Dao)
    pid = _attempt(opts.json_output, lambda: d.propose_ruling(dispute_id, share, reason))
    _done(opts.json_output, d.proposal(pid).to_json(), f"ruling put to the vote as proposal {pid}")


@app.command("donate")
@chain_options
def donate(amount: AmountArg, *, opts: ChainOptions) -> None:
    """Give PVC to the DAO treasury (the timelock), which funds projects."""
    wei = parse_amount(amount)
    d = opts.sdk(Dao)
    _attempt(opts.json_output, lambda: d.donate(wei))
    _done(opts.json_output, {"donated": str(wei)}, f"donated {_pvc(wei)} to the treasury")
