"""`pv market`: list resources, rent them, confirm, settle, extend, heartbeats, disputes, money.

Prices are per day; amounts are PVC (``1.5``) or wei (``1000wei``). Times are unix seconds,
ISO 8601, ``now`` or relative (``+30d``, ``+12h``). Exit status: 0 done, 1 refused (the
contract's error name is printed, or the JSON document with ``--json``), 2 bad usage, 3 node
unreachable. ``pv market match`` recommends listings for a demand.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

import typer
from rich.console import Console

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
from powerverse.cli.common import EXIT_USAGE, fail, print_json
from powerverse.market.rentals import Listing, Rental, RentalClosed, Rentals

app = typer.Typer(
    help="Listings and rentals: list, rent, confirm, settle, extend, heartbeats, disputes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
market_match.register(app)

TokenArg = Annotated[int, typer.Argument(min=1, help="The resource's token id.")]
RentalArg = Annotated[int, typer.Argument(min=1, help="The rental id.")]
DaysArg = Annotated[int, typer.Argument(min=1, help="Whole days.")]
PriceArg = Annotated[str, typer.Argument(help="Price per day: PVC (0.5) or wei (1000wei).")]
ValueOption = Annotated[
    str | None, typer.Option("--value", help="Pay exactly this (default: the quoted price).")
]


_rentals = functools.partial(sdk, Rentals)
"""The SDK object for a command: node, signer, and whether one is needed."""


def listing_json(listing: Listing, current_rental: int) -> dict[str, Any]:
    """A listing as JSON (wei as decimal strings)."""
    return {
        "tokenId": listing.token_id,
        "provider": listing.provider,
        "status": listing.status.name.lower(),
        "pricePerDay": str(listing.price_per_day),
        "availableFrom": listing.available_from,
        "availableUntil": listing.available_until,
        "minDays": listing.min_days,
        "maxDays": listing.max_days,
        "currentRental": current_rental,
    }


def rental_json(rental: Rental) -> dict[str, Any]:
    """A rental as JSON (wei as decimal strings)."""
    return {
        "rentalId": rental.rental_id,
        "tokenId": rental.token_id,
        "consumer": rental.consumer,
        "provider": rental.provider,
        "state": rental.state.name.lower(),
        "periodDays": rental.period_days,
        "pricePerDay": str(rental.price_per_day),
        "escrow": str(rental.escrow),
        "feeBps": rental.fee_bps,
        "createdAt": rental.created_at,
        "confirmDeadline": rental.confirm_deadline,
        "start": rental.start,
        "end": rental.end,
        "lastHeartbeat": rental.last_heartbeat,
        "handedToArbitration": rental.handed_to_arbitration,
        "disputeId": rental.dispute_id,
    }


def _closed_json(closed: RentalClosed) -> dict[str, Any]:
    return {
        "rentalId": closed.rental_id,
        "state": closed.state.name.lower(),
        "toConsumer": str(closed.to_consumer),
        "toProvider": str(closed.to_provider),
        "fee": str(closed.fee),
        "tx": tx_json(closed.tx),
    }


def _closed_message(verb: str, closed: RentalClosed) -> str:
    return (
        f"{verb} rental #{closed.rental_id}: "
        f"{format_pvc(closed.to_consumer)} to the consumer, {format_pvc(closed.to_provider)} "
        f"to the provider, fee {format_pvc(closed.fee)}; withdraw with `pv market withdraw`"
    )


def _time(text: str, now: int, option: str) -> int:
    try:
        return market_match.parse_start(text, now)
    except market_match.BadInput as exc:
        fail(str(exc).replace("--start", option), EXIT_USAGE)


def _head_time(r: Rentals) -> int:
    return int(r.client.w3.eth.get_block("latest")["timestamp"])


def _listed(r: Rentals, token_id: int, tx: Any) -> dict[str, Any]:
    listing = r.listing(token_id)
    doc = listing_json(listing, r.current_rental(token_id))
    return {**doc, "tx": tx_json(tx)} if tx is not None else doc


@app.command("list")
@chain_options
def list_(
    token_id: TokenArg,
    price: Annotated[str, typer.Option("--price", help="Per day: PVC (0.5) or wei (1000wei).")],
    available_from: Annotated[
        str, typer.Option("--available-from", help="Unix seconds, ISO time, now, +1d.")
    ] = "now",
    available_until: Annotated[
        str, typer.Option("--available-until", help="Unix seconds, ISO time, +90d.")
    ] = "+90d",
    min_days: Annotated[int, typer.Option("--min-days", min=1)] = 1,
    max_days: Annotated[int, typer.Option("--max-days", min=1)] = 30,
    *,
    opts: ChainOptions,
) -> None:
    """List a verified resource you own for rent."""
    wei = parse_amount(price)
    r = opts.sdk(Rentals)
    now = _head_time(r)
    start = _time(available_from, now, "--available-from")
    until = _time(available_until, now, "--available-until")
    tx = attempt(
        opts.json_output,
        lambda: r.list_resource(
            token_id,
            price_per_day=wei,
            available_from=start,
            available_until=until,
            min_days=min_days,
            max_days=max_days,
        ),
    )
    done(
        opts.json_output,
        _listed(r, token_id, tx),
        f"listed #{token_id} at {format_pvc(wei)}/day, {min_days}–{max_days} days, "
        f"available {start}–{until}",
    )


@app.command("update-price")
@chain_options
def update_price(token_id: TokenArg, price: PriceArg, *, opts: ChainOptions) -> None:
    """Change the price per day of future rentals."""
    wei = parse_amount(price)
    r = opts.sdk(Rentals)
    tx = attempt(opts.json_output, lambda: r.update_price(token_id, wei))
    done(opts.json_output, _listed(r, token_id, tx), f"#{token_id} now costs {format_pvc(wei)}/day")


def _listing_action(name: str, verb: str, help_text: str) -> None:
    @chain_options
    def command(token_id: TokenArg, *, opts: ChainOptions) -> None:
        r = opts.sdk(Rentals)
        method = {
            "pause": r.pause_listing,
            "resume": r.resume_listing,
            "unlist": r.unlist,
        }[name]
        tx = attempt(opts.json_output, lambda: method(token_id))
        done(opts.json_output, _listed(r, token_id, tx), f"{verb} #{token_id}")

    command.__doc__ = help_text
    app.command(name)(command)


_listing_action("pause", "paused", "Stop taking rentals for a while (running ones continue).")
_listing_action("resume", "resumed", "Take rentals again after a pause.")
_listing_action("unlist", "unlisted", "Remove the listing.")


@app.command("show")
def show(
    token_id: TokenArg,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """A resource's listing and its current rental id (0 when none)."""
    r = _rentals(rpc_url, need_signer=False)
    doc = attempt(json_output, lambda: _listed(r, token_id, None))
    done(
        json_output,
        doc,
        f"#{token_id}: {doc['status']}, {format_pvc(int(doc['pricePerDay']))}/day, "
        f"{doc['minDays']}–{doc['maxDays']} days, available {doc['availableFrom']}–"
        f"{doc['availableUntil']}, provider {doc['provider']}, rental {doc['currentRental']}",
    )


@app.command("rental")
def rental(
    rental_id: RentalArg,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """One rental: parties, state, escrow and times."""
    r = _rentals(rpc_url, need_signer=False)
    found = attempt(json_output, lambda: r.rental(rental_id))
    if found.state.name == "NONE":
        fail(f"no rental #{rental_id}")
    done(
        json_output,
        rental_json(found),
        f"rental #{rental_id} of #{found.token_id}: {found.state.name.lower()}, "
        f"{found.period_days} days, escrow {format_pvc(found.escrow)}, "
        f"consumer {found.consumer}, provider {found.provider}, ends {found.end or '-'}",
    )


@app.command("quote")
def quote(
    token_id: TokenArg,
    days: DaysArg,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """What renting a resource for some days costs now."""
    r = _rentals(rpc_url, need_signer=False)
    wei = attempt(json_output, lambda: r.quote(token_id, days))
    done(
        json_output,
        {"tokenId": token_id, "days": days, "amount": str(wei)},
        f"{days} days of #{token_id}: {format_pvc(wei)}",
    )


@app.command("rent")
@chain_options
def rent(
    token_id: TokenArg, days: DaysArg, value: ValueOption = None, *, opts: ChainOptions
) -> None:
    """Rent a listed resource; the rent is held in escrow until the provider confirms."""
    wei = parse_amount(value) if value is not None else None
    r = opts.sdk(Rentals)
    opened = attempt(opts.json_output, lambda: r.rent(token_id, days, value=wei))
    found = r.rental(opened.rental_id)
    done(
        opts.json_output,
        {**rental_json(found), "tx": tx_json(opened.tx)},
        f"rental #{opened.rental_id}: paid {format_pvc(opened.amount)} into escrow; the "
        f"provider must confirm by {opened.confirm_deadline}, else `pv market claim-refund`",
    )


def _rental_closing(name: str, verb: str, help_text: str) -> None:
    @chain_options
    def command(rental_id: RentalArg, *, opts: ChainOptions) -> None:
        r = opts.sdk(Rentals)
        method = {
            "decline": r.decline,
            "claim-refund": r.claim_refund,
            "settle": r.settle,
            "report-missed-heartbeat": r.report_missed_heartbeat,
        }[name]
        closed = attempt(opts.json_output, lambda: method(rental_id))
        done(opts.json_output, _closed_json(closed), _closed_message(verb, closed))

    command.__doc__ = help_text
    app.command(name)(command)


@app.command("confirm")
@chain_options
def confirm(rental_id: RentalArg, *, opts: ChainOptions) -> None:
    """Provider or agent: confirm the start of a rental (the clock starts now)."""
    r = opts.sdk(Rentals)
    confirmed = attempt(opts.json_output, lambda: r.confirm(rental_id))
    found = r.rental(rental_id)
    done(
        opts.json_output,
        {**rental_json(found), "tx": tx_json(confirmed.tx)},
        f"rental #{rental_id} runs from {confirmed.start} to {confirmed.end}",
    )


_rental_closing(
    "decline", "declined", "Provider or agent: turn a pending rental down (full refund)."
)
_rental_closing(
    "claim-refund",
    "refunded",
    "Anyone: refund a rental the provider did not confirm in time (in full).",
)
_rental_closing(
    "settle", "settled", "Anyone: pay out a rental that reached its end (rent minus the fee)."
)
_rental_closing(
    "report-missed-heartbeat",
    "terminated",
    "Anyone: end a rental whose heartbeats stopped (unused days refunded pro rata).",
)


@app.command("extend")
@chain_options
def extend(
    rental_id: RentalArg, days: DaysArg, value: ValueOption = None, *, opts: ChainOptions
) -> None:
    """Consumer: add days to a running rental before it ends (paying the rental's price)."""
    wei = parse_amount(value) if value is not None else None
    r = opts.sdk(Rentals)
    extended = attempt(opts.json_output, lambda: r.extend(rental_id, days, value=wei))
    found = r.rental(rental_id)
    done(
        opts.json_output,
        {**rental_json(found), "tx": tx_json(extended.tx)},
        f"rental #{rental_id} extended by {days} days (paid {format_pvc(extended.amount)}); "
        f"ends {extended.new_end}",
    )


@app.command("heartbeat")
@chain_options
def heartbeat(rental_id: RentalArg, *, opts: ChainOptions) -> None:
    """Provider or agent: report that the rented resource is alive."""
    r = opts.sdk(Rentals)
    tx = attempt(opts.json_output, lambda: r.heartbeat(rental_id))
    found = r.rental(rental_id)
    done(
        opts.json_output,
        {**rental_json(found), "tx": tx_json(tx)},
        f"heartbeat for rental #{rental_id} at {found.last_heartbeat}",
    )


@app.command("dispute")
@chain_options
def dispute(
    rental_id: RentalArg,
    reason: Annotated[str, typer.Option("--reason", help="What went wrong.")],
    *,
    opts: ChainOptions,
) -> None:
    """Consumer or provider: freeze the escrow and ask for arbitration."""
    r = opts.sdk(Rentals)
    opened = attempt(opts.json_output, lambda: r.open_dispute(rental_id, reason))
    where = (
        f"Arbitration dispute #{opened.dispute_id}"
        if opened.handed_to_arbitration
        else "the Market's arbiters"
    )
    done(
        opts.json_output,
        {
            "rentalId": rental_id,
            "disputeId": opened.dispute_id,
            "handedToArbitration": opened.handed_to_arbitration,
            "tx": tx_json(opened.tx),
        },
        f"rental #{rental_id} disputed; escrow frozen for {where}",
    )


@app.command("resolve")
@chain_options
def resolve(
    rental_id: RentalArg,
    consumer_share: Annotated[
        str,
        typer.Option("--consumer-share", help="Back to the consumer; the rest to the provider."),
    ],
    *,
    opts: ChainOptions,
) -> None:
    """ARBITER_ROLE: split a dispute the Market kept (no Arbitration contract involved)."""
    wei = parse_amount(consumer_share)
    r = opts.sdk(Rentals)
    closed = attempt(opts.json_output, lambda: r.resolve_dispute(rental_id, wei))
    done(opts.json_output, _closed_json(closed), _closed_message("resolved", closed))


@app.command("owed")
@chain_options(keystore=False)
def owed(
    account: Annotated[
        str | None, typer.Argument(help="Whose balance (default: the signing account).")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """PVC the Market owes an account (withdraw it with `pv market withdraw`)."""
    who = parse_account(account, "ACCOUNT") if account is not None else None
    r = opts.sdk(Rentals, need_signer=False)
    if who is None:
        if r.client.account is None:
            fail("give an ACCOUNT, or sign with --from/--dev-account", EXIT_USAGE)
        who = r.client.address
    wei = attempt(opts.json_output, lambda: r.owed(who))
    done(opts.json_output, {"account": who, "owed": str(wei)}, f"{who} is owed {format_pvc(wei)}")


@app.command("withdraw")
@chain_options
def withdraw(
    to: Annotated[
        str | None, typer.Option("--to", help="Send to this address instead of yourself.")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """Receive everything the Market owes you (rent, refunds, fees)."""
    target = parse_account(to, "--to") if to is not None else None
    r = opts.sdk(Rentals)
    paid = attempt(opts.json_output, lambda: r.withdraw(target))
    done(
        opts.json_output,
        {"account": r.client.address, "to": target or r.client.address, "paid": str(paid.amount),
         "tx": tx_json(paid.tx)},
        f"paid {format_pvc(paid.amount)} to {target or r.client.address}",
    )  # fmt: skip


@app.command("config")
def config(
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """The Market's tunables and the money it holds."""
    r = _rentals(rpc_url, need_signer=False)
    cfg = attempt(json_output, r.config)
    totals = r.totals()
    doc = {
        "treasury": cfg.treasury,
        "feeBps": cfg.fee_bps,
        "confirmWindow": cfg.confirm_window,
        "heartbeatInterval": cfg.heartbeat_interval,
        "heartbeatGrace": cfg.heartbeat_grace,
        "rentals": r.rental_count(),
        "escrowed": str(totals.escrowed),
        "owed": str(totals.owed),
        "balance": str(totals.balance),
    }
    if json_output:
        print_json(doc)
        return
    Console(highlight=False, soft_wrap=True).print(
        f"fee {cfg.fee_bps} bps to {cfg.treasury}; confirm within {cfg.confirm_window} s; "
        f"heartbeat every {cfg.heartbeat_interval} s (+{cfg.heartbeat_grace} s grace); "
        f"{doc['rentals']} rentals; escrowed {format_pvc(totals.escrowed)}, owed "
        f"{format_pvc(totals.owed)}, balance {format_pvc(totals.balance)}"
    )
