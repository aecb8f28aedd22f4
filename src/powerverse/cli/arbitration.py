"""`pv arbitration`: the committee's disputes — list, show, evidence, rule, escalate.

A disputed rental (``pv market dispute``) or order (``pv order dispute``, ``pv task reject``)
arrives here with its escrow frozen. An arbiter (ARBITER_ROLE) rules by giving
``--consumer-share`` back to the consumer (the rest goes to the provider minus the platform
fee; the source contract pays at once), or escalates the dispute to a DAO vote, after which
only GOVERNANCE_ROLE rules. Exit status: 0 done, 1 refused (the contract's error name is
printed, or the JSON document with ``--json``), 2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

import functools
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from powerverse.cli.chainfmt import attempt, done, format_pvc, parse_amount, tx_json
from powerverse.cli.chainopts import (
    DEFAULT_RPC,
    ChainOptions,
    JsonOption,
    RpcOption,
    chain_options,
    sdk,
)
from powerverse.cli.common import EXIT_USAGE, fail, print_json
from powerverse.market.arbitration import Arbitration, Dispute

app = typer.Typer(
    help="Arbitration committee: disputes over rentals and orders, rulings, escalation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DisputeArg = Annotated[int, typer.Argument(min=1, help="The dispute id.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the event).")]


_arbitration = functools.partial(sdk, Arbitration)
"""The SDK object for a command: node, signer, and whether one is needed."""


def _line(d: Dispute) -> str:
    return (
        f"dispute #{d.dispute_id} over {d.source_name or d.source} #{d.source_id}: "
        f"{d.status.name.lower()}, {format_pvc(d.amount)} frozen, consumer {d.consumer}, "
        f"provider {d.provider}; {d.reason}"
    )


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include ruled disputes.")] = False,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """Disputes waiting for a ruling (open or escalated), oldest first."""
    arb = _arbitration(rpc_url, need_signer=False)
    if all_:
        rows = attempt(
            json_output, lambda: [arb.dispute(i) for i in range(1, arb.dispute_count() + 1)]
        )
    else:
        rows = attempt(json_output, arb.open_disputes)
    if json_output:
        print_json({"disputes": [d.to_json() for d in rows]})
        return
    table = Table(title="Disputes" if all_ else "Open disputes", title_justify="left")
    for column in ("id", "source", "status", "frozen", "consumer", "provider", "reason"):
        table.add_column(column)
    for d in rows:
        table.add_row(
            str(d.dispute_id),
            f"{d.source_name or d.source} #{d.source_id}",
            d.status.name.lower(),
            format_pvc(d.amount),
            d.consumer,
            d.provider,
            d.reason,
        )
    Console(highlight=False, soft_wrap=True).print(table)


@app.command("show")
def show(
    dispute_id: Annotated[
        int | None, typer.Argument(min=1, help="The dispute id (or use --rental/--order).")
    ] = None,
    rental: Annotated[
        int | None, typer.Option("--rental", min=1, help="The dispute over this Market rental.")
    ] = None,
    order: Annotated[
        int | None, typer.Option("--order", min=1, help="The dispute over this Orders order.")
    ] = None,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """One dispute: the order, the frozen amount, the parties and the ruling."""
    if sum(x is not None for x in (dispute_id, rental, order)) != 1:
        fail("give exactly one of DISPUTE_ID, --rental or --order", EXIT_USAGE)
    arb = _arbitration(rpc_url, need_signer=False)
    if dispute_id is None:
        source, source_id = ("Market", rental) if rental is not None else ("Orders", order)
        assert source_id is not None
        found = attempt(json_output, lambda: arb.dispute_for(source, source_id))
        if found is None:
            fail(f"no dispute over {source} #{source_id}")
        dispute_id = found
    the_id = dispute_id
    d = attempt(json_output, lambda: arb.dispute(the_id))
    message = _line(d)
    if d.ruled_by is not None:
        message += (
            f"\nruled by {d.ruled_by}{' (DAO)' if d.by_dao else ''}: "
            f"{format_pvc(d.consumer_share)} to the consumer"
        )
    done(json_output, d.to_json(), message)


@app.command("evidence")
@chain_options
def evidence(
    dispute_id: DisputeArg,
    text: Annotated[str, typer.Argument(help="A content id or a short text.")],
    *,
    opts: ChainOptions,
) -> None:
    """A party or an arbiter: attach evidence to a dispute that is not ruled yet."""
    arb = opts.sdk(Arbitration)
    tx = attempt(opts.json_output, lambda: arb.submit_evidence(dispute_id, text))
    done(
        opts.json_output,
        {"disputeId": dispute_id, "evidence": text, "tx": tx_json(tx)},
        f"evidence added to dispute #{dispute_id}",
    )


@app.command("rule")
@chain_options
def rule(
    dispute_id: DisputeArg,
    consumer_share: Annotated[
        str,
        typer.Option("--consumer-share", help="Back to the consumer (PVC or wei); rest: provider."),
    ],
    reason: ReasonOption,
    *,
    opts: ChainOptions,
) -> None:
    """ARBITER_ROLE (GOVERNANCE_ROLE once escalated): split the escrow; the source pays out."""
    wei = parse_amount(consumer_share)
    arb = opts.sdk(Arbitration)
    ruling = attempt(opts.json_output, lambda: arb.rule(dispute_id, wei, reason))
    doc = {
        **arb.dispute(dispute_id).to_json(),
        "providerShare": str(ruling.provider_share),
        "tx": tx_json(ruling.tx),
    }
    done(
        opts.json_output,
        doc,
        f"dispute #{dispute_id} ruled: {format_pvc(ruling.consumer_share)} to the consumer, "
        f"{format_pvc(ruling.provider_share)} to the provider side",
    )


@app.command("escalate")
@chain_options
def escalate(dispute_id: DisputeArg, reason: ReasonOption, *, opts: ChainOptions) -> None:
    """ARBITER_ROLE: hand an open dispute to a DAO vote (then GOVERNANCE_ROLE rules it)."""
    arb = opts.sdk(Arbitration)
    tx = attempt(opts.json_output, lambda: arb.escalate(dispute_id, reason))
    done(
        opts.json_output,
        {**arb.dispute(dispute_id).to_json(), "tx": tx_json(tx)},
        f"dispute #{dispute_id} escalated to governance",
    )
