"""`pv order`: rental-type demand orders (post, fill, settle) and what every Orders order shares.

A consumer posts minimum specs, a period and a budget held in escrow; a provider fills it with
a matching verified resource at a price per day within the budget (the rest is refunded); at
the end anyone settles. ``show``, ``cancel``, ``expire``, ``dispute``, ``owed`` and
``withdraw`` work for task orders too (``pv task`` has them as well). Amounts are PVC (``1.5``)
or wei (``1000wei``); times unix seconds, ISO 8601, ``now`` or ``+3d``. Exit status: 0 done, 1
refused (the contract's error name is printed, or the JSON document with ``--json``), 2 bad
usage, 3 node unreachable.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

import typer

from powerverse.cli import market_match
from powerverse.cli.chainfmt import (
    attempt,
    done,
    format_pvc,
    parse_account,
    parse_amount,
    tx_json,
)
from powerverse.cli.chainopts import (
    DEFAULT_RPC,
    ChainOptions,
    JsonOption,
    RpcOption,
    chain_options,
    sdk,
)
from powerverse.cli.common import EXIT_USAGE, fail
from powerverse.market.orders import OrderClosed, Orders, Specs

app = typer.Typer(
    help="Demand orders: post minimum specs and a budget; providers fill them with a resource.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

OrderArg = Annotated[int, typer.Argument(min=1, help="The order id.")]
MinCores = Annotated[int, typer.Option("--min-cores", min=0, help="CPU cores.")]
MinClock = Annotated[int, typer.Option("--min-clock", min=0, help="CPU clock, MHz.")]
MinGpuMemory = Annotated[
    str | None, typer.Option("--min-gpu-memory", help="Per card: 80GiB, 24576MiB (bare: GiB).")
]
MinGpus = Annotated[int, typer.Option("--min-gpus", min=0, help="GPU cards.")]
MinMemory = Annotated[str | None, typer.Option("--min-memory", help="RAM: 64GiB (bare: GiB).")]
MinDisk = Annotated[int, typer.Option("--min-disk-gb", min=0, help="Disk, GB.")]
DiskKind = Annotated[str, typer.Option("--disk-type", help="Exact disk type, e.g. nvme.")]
Region = Annotated[str, typer.Option("--region", help="Exact region, e.g. cn-east.")]


orders_client = functools.partial(sdk, Orders)
"""The Orders SDK on a node, signing as the chosen account."""


def specs_from_options(
    min_cores: int,
    min_clock: int,
    min_gpu_memory: str | None,
    min_gpus: int,
    min_memory: str | None,
    min_disk_gb: int,
    disk_type: str,
    region: str,
) -> Specs:
    """Minimum specs from the shared options (memory sizes accept units)."""
    try:
        gpu_mib = (
            market_match.parse_mib(min_gpu_memory, "--min-gpu-memory") if min_gpu_memory else 0
        )
        ram_mib = market_match.parse_mib(min_memory, "--min-memory") if min_memory else 0
    except market_match.BadInput as exc:
        fail(str(exc), EXIT_USAGE)
    return Specs(
        cpu_cores=min_cores,
        cpu_clock_mhz=min_clock,
        gpu_memory_mib=gpu_mib,
        gpu_count=min_gpus,
        ram_mib=ram_mib,
        disk_gb=min_disk_gb,
        disk_kind=disk_type,
        region=region,
    )


def parse_time(text: str, now: int, option: str) -> int:
    """Unix seconds from an option value relative to the chain's head time `now`."""
    try:
        return market_match.parse_start(text, now)
    except market_match.BadInput as exc:
        fail(str(exc).replace("--start", option), EXIT_USAGE)


def head_time(orders: Orders) -> int:
    """Timestamp of the node's latest block."""
    return int(orders.client.w3.eth.get_block("latest")["timestamp"])


def order_doc(orders: Orders, order_id: int, tx: Any = None, **extra: Any) -> dict[str, Any]:
    """The order as JSON, with the transaction and extra fields when given."""
    doc = orders.order(order_id).to_json()
    if tx is not None:
        doc["tx"] = tx_json(tx)
    return {**doc, **extra}


def closed_json(closed: OrderClosed) -> dict[str, Any]:
    """A payout as JSON (wei as decimal strings)."""
    return {
        "orderId": closed.order_id,
        "state": closed.state.name.lower(),
        "toConsumer": str(closed.to_consumer),
        "toProvider": str(closed.to_provider),
        "fee": str(closed.fee),
        "tx": tx_json(closed.tx),
    }


def closed_message(closed: OrderClosed) -> str:
    """A payout in words."""
    return (
        f"order #{closed.order_id} {closed.state.name.lower()}: "
        f"{format_pvc(closed.to_consumer)} to the consumer, {format_pvc(closed.to_provider)} to "
        f"the provider, fee {format_pvc(closed.fee)}; withdraw with `pv order withdraw`"
    )


# ---------------------------------------------------------------------- shared commands


def show_command(
    order_id: OrderArg,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """One order (demand or task): parties, state, escrow, specs and times."""
    orders = orders_client(rpc_url, need_signer=False)
    doc = attempt(json_output, lambda: order_doc(orders, order_id))
    who = doc["provider"] or "no provider yet"
    done(
        json_output,
        doc,
        f"{doc['kind']} #{order_id}: {doc['state']}, escrow {format_pvc(int(doc['escrow']))}, "
        f"consumer {doc['consumer']}, {who}, deadline {doc['deadline']}",
    )


def closing_command(method: str, help_text: str) -> Any:
    """A command closing an order by id with the Orders method `method` (cancel, settle, ...)."""

    @chain_options
    def command(order_id: OrderArg, *, opts: ChainOptions) -> None:
        orders = opts.sdk(Orders)
        closed = attempt(opts.json_output, lambda: getattr(orders, method)(order_id))
        done(opts.json_output, closed_json(closed), closed_message(closed))

    command.__doc__ = help_text
    return command


cancel_command = closing_command("cancel", "Consumer: cancel an open order; the escrow comes back.")
expire_command = closing_command(
    "expire",
    "Anyone, after the deadline: expire an open order, or fail a task taken without a result "
    "(the consumer is refunded; the provider's reputation drops).",
)


@chain_options
def dispute_command(
    order_id: OrderArg,
    reason: Annotated[str, typer.Option("--reason", help="What went wrong.")],
    *,
    opts: ChainOptions,
) -> None:
    """A party: dispute a running order; the escrow goes to the arbitration committee."""
    orders = opts.sdk(Orders)
    disputed = attempt(opts.json_output, lambda: orders.open_dispute(order_id, reason))
    done(
        opts.json_output,
        {"orderId": order_id, "disputeId": disputed.dispute_id, "tx": tx_json(disputed.tx)},
        f"order #{order_id} disputed: Arbitration dispute #{disputed.dispute_id}",
    )


@chain_options(keystore=False)
def owed_command(
    account: Annotated[
        str | None, typer.Argument(help="Whose balance (default: the signing account).")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """PVC the Orders contract owes an account (rewards, rent, refunds)."""
    who = parse_account(account, "ACCOUNT") if account is not None else None
    orders = opts.sdk(Orders, need_signer=False)
    if who is None:
        if orders.client.account is None:
            fail("give an ACCOUNT, or sign with --from/--dev-account", EXIT_USAGE)
        who = orders.client.address
    wei = attempt(opts.json_output, lambda: orders.owed(who))
    done(opts.json_output, {"account": who, "owed": str(wei)}, f"{who} is owed {format_pvc(wei)}")


@chain_options
def withdraw_command(
    to: Annotated[
        str | None, typer.Option("--to", help="Send to this address instead of yourself.")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """Receive everything the Orders contract owes you."""
    target = parse_account(to, "--to") if to is not None else None
    orders = opts.sdk(Orders)
    paid = attempt(opts.json_output, lambda: orders.withdraw(target))
    me = orders.client.address
    done(
        opts.json_output,
        {"account": me, "to": target or me, "paid": str(paid.amount), "tx": tx_json(paid.tx)},
        f"paid {format_pvc(paid.amount)} to {target or me}",
    )


def register_shared(group: typer.Typer) -> None:
    """Attach the commands every Orders order has (show, cancel, expire, dispute, money)."""
    group.command("show")(show_command)
    group.command("cancel")(cancel_command)
    group.command("expire")(expire_command)
    group.command("dispute")(dispute_command)
    group.command("owed")(owed_command)
    group.command("withdraw")(withdraw_command)


# ---------------------------------------------------------------------- demands


@app.command("post")
@chain_options
def post(
    days: Annotated[int, typer.Option("--days", min=1, help="Rental period in days.")],
    budget: Annotated[str, typer.Option("--budget", help="Most you pay in all (escrowed).")],
    deadline: Annotated[
        str, typer.Option("--deadline", help="Open until: unix seconds, ISO time, +1d.")
    ] = "+1d",
    min_cores: MinCores = 0,
    min_clock: MinClock = 0,
    min_gpu_memory: MinGpuMemory = None,
    min_gpus: MinGpus = 0,
    min_memory: MinMemory = None,
    min_disk_gb: MinDisk = 0,
    disk_type: DiskKind = "",
    region: Region = "",
    *,
    opts: ChainOptions,
) -> None:
    """Consumer: post a rental demand with minimum specs, paying the budget into escrow."""
    wei = parse_amount(budget)
    specs = specs_from_options(
        min_cores, min_clock, min_gpu_memory, min_gpus, min_memory, min_disk_gb, disk_type, region
    )
    orders = opts.sdk(Orders)
    until = parse_time(deadline, head_time(orders), "--deadline")
    posted = attempt(
        opts.json_output,
        lambda: orders.post_demand(specs, period_days=days, budget=wei, deadline=until),
    )
    done(
        opts.json_output,
        order_doc(orders, posted.order_id, posted.tx),
        f"demand #{posted.order_id}: {days} days for at most {format_pvc(posted.escrow)}, "
        f"open until {until}",
    )


@app.command("fill")
@chain_options
def fill(
    order_id: OrderArg,
    token_id: Annotated[int, typer.Argument(min=1, help="Your verified resource's token id.")],
    price: Annotated[str, typer.Option("--price", help="Per day: PVC (0.5) or wei (1000wei).")],
    *,
    opts: ChainOptions,
) -> None:
    """Provider: fill a demand with a matching resource; the rental starts now."""
    wei = parse_amount(price)
    orders = opts.sdk(Orders)
    filled = attempt(opts.json_output, lambda: orders.fill_demand(order_id, token_id, wei))
    done(
        opts.json_output,
        order_doc(orders, order_id, filled.tx, rent=str(filled.rent), refund=str(filled.refund)),
        f"demand #{order_id} filled with #{token_id}: rent {format_pvc(filled.rent)} "
        f"(refunded {format_pvc(filled.refund)}), runs {filled.start}–{filled.end}",
    )


app.command("settle")(
    closing_command(
        "settle", "Anyone, after the rental's end: pay the provider (rent minus the fee)."
    )
)
register_shared(app)


@app.command("config")
def config(
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """The Orders contract's tunables and the money it holds."""
    orders = orders_client(rpc_url, need_signer=False)
    cfg = attempt(json_output, orders.config)
    totals = orders.totals()
    doc = {
        "treasury": cfg.treasury,
        "feeBps": cfg.fee_bps,
        "reviewWindow": cfg.review_window,
        "orders": orders.order_count(),
        "escrowed": str(totals.escrowed),
        "owed": str(totals.owed),
        "balance": str(totals.balance),
    }
    done(
        json_output,
        doc,
        f"fee {cfg.fee_bps} bps to {cfg.treasury}; review window {cfg.review_window} s; "
        f"{doc['orders']} orders; escrowed {format_pvc(totals.escrowed)}, owed "
        f"{format_pvc(totals.owed)}",
    )
