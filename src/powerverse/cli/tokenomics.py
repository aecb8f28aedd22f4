"""`pv tokenomics`: the supply schedule, checking a genesis against it, releasing vested coin.

``schedule`` and ``check`` need no node. ``release`` sends `release()` to an allocation's Vesting
contract (anyone may; the beneficiary is paid) and ``vesting`` shows their state on a node.
Amounts are wei in JSON, PVC for people. Exit status: 0 done, 1 refused or mismatches found,
2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from powerverse.chain.exceptions import ChainError
from powerverse.chain.genesis import load_genesis
from powerverse.cli.chainfmt import attempt, done, format_pvc, refused
from powerverse.cli.chainopts import (
    DEFAULT_RPC,
    ChainOptions,
    JsonOption,
    RpcOption,
    chain_options,
    connect,
)
from powerverse.cli.common import EXIT_USAGE, EXIT_USER_ERROR, fail, parse_utc_time, print_json
from powerverse.contracts.exceptions import ContractsError
from powerverse.economics.allocations import (
    ALLOCATION_NAMES,
    ALLOCATIONS,
    VESTED_NAMES,
    TokenomicsParams,
)
from powerverse.economics.exceptions import EconomicsError
from powerverse.economics.schedule import schedule_at
from powerverse.market.exceptions import ContractError, MarketError
from powerverse.market.tokenomics import VestingWallet

app = typer.Typer(
    help="Supply and allocations: the unlock schedule, genesis checks, vesting releases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

AllocationArg = Annotated[
    str, typer.Argument(help=f"A vested allocation: {', '.join(VESTED_NAMES)}.")
]


def _pvc(wei: int) -> str:
    """PVC with thousands separators, cut (not rounded) to 4 decimals; --json has exact wei."""
    whole, frac = divmod(wei, 10**18)
    return f"{whole:,}.{frac // 10**14:04d}"


def _iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _params(
    genesis: Path | None, listing: str | None, presale_start: str | None
) -> TokenomicsParams:
    if (genesis is None) == (listing is None):
        fail("give exactly one of --genesis FILE or --listing DATE", EXIT_USAGE)
    if genesis is not None:
        if presale_start is not None:
            fail("--presale-unlock-start goes with --listing; a genesis has its own", EXIT_USAGE)
        try:
            g = load_genesis(genesis)
        except ChainError as exc:
            fail(str(exc), EXIT_USAGE)
        if g.tokenomics is None:
            fail(f"{genesis} has no tokenomics section (listing time, beneficiaries)", EXIT_USAGE)
        return g.tokenomics.params(g.timestamp)
    assert listing is not None
    start = parse_utc_time(listing, "--listing")
    unlock = (
        None if presale_start is None else parse_utc_time(presale_start, "--presale-unlock-start")
    )
    try:
        return TokenomicsParams(listing_time=start, genesis_time=start, presale_unlock_start=unlock)
    except EconomicsError as exc:
        fail(str(exc), EXIT_USAGE)


@app.command("schedule")
def schedule(
    at: Annotated[str, typer.Option("--at", help="The instant (ISO date, UTC, or unix seconds).")],
    genesis: Annotated[
        Path | None, typer.Option("--genesis", help="Read the listing time from a genesis file.")
    ] = None,
    listing: Annotated[
        str | None,
        typer.Option("--listing", help="Listing date (ISO, UTC); genesis taken as the same."),
    ] = None,
    presale_start: Annotated[
        str | None,
        typer.Option(
            "--presale-unlock-start",
            help="With --listing: the first presale installment (default: next 31 May).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Each allocation's total, unlocked (block_rewards: emitted) and locked amount at --at."""
    params = _params(genesis, listing, presale_start)
    when = parse_utc_time(at, "--at")
    rows = schedule_at(params, when)
    if json_output:
        doc = {
            "allocations": [
                {
                    "name": r.name,
                    "total": str(r.total),
                    "unlocked": str(r.unlocked),
                    "locked": str(r.locked),
                }
                for r in rows
            ]
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    shares = {a.name: a.share_percent for a in ALLOCATIONS}
    lines = [
        f"allocations at {_iso(when)} (listing {_iso(params.listing_time)}), in PVC "
        "cut to 4 decimals (--json gives exact wei)",
        f"{'allocation':<20} {'share':>5} {'total':>19} {'unlocked':>19} {'locked':>19}",
    ]
    total = (
        "total",
        100,
        *(sum(getattr(r, k) for r in rows) for k in ("total", "unlocked", "locked")),
    )
    for name, share, amount, unlocked, locked in [
        *((r.name, shares[r.name], r.total, r.unlocked, r.locked) for r in rows),
        total,
    ]:
        lines.append(
            f"{name:<20} {share:>4}% {_pvc(amount):>19} {_pvc(unlocked):>19} {_pvc(locked):>19}"
        )
    typer.echo("\n".join(lines))


@app.command("check")
def check(
    genesis_file: Annotated[Path, typer.Argument(help="The genesis file to check.")],
    json_output: JsonOption = False,
) -> None:
    """Verify a genesis holds the tokenomics table exactly; exit 1 naming each mismatch."""
    from powerverse.contracts.tokenomics import check_genesis

    try:
        genesis = load_genesis(genesis_file)
    except ChainError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        report = check_genesis(genesis)
    except ContractsError as exc:
        fail(f"cannot check {genesis_file}: {exc}")
    if json_output:
        print_json(report.to_json())
        if not report.ok:
            raise typer.Exit(EXIT_USER_ERROR)
        return
    console = Console(highlight=False, soft_wrap=True)
    for row in report.allocations:
        mark = "ok " if row.ok else "BAD"
        console.print(f"{mark} {row.name:<20} {row.address}  {format_pvc(row.actual)}")
    if report.ok:
        console.print(
            f"ok: {genesis_file} holds the tokenomics table; genesis balances add up to "
            f"{format_pvc(report.total_balance)}"
        )
        return
    for problem in report.problems:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"mismatch: {problem}")
    fail(f"{len(report.problems)} mismatch(es) in {genesis_file}")


def _allocation(name: str) -> str:
    if name in VESTED_NAMES:
        return name
    if name in ALLOCATION_NAMES:
        held = (
            "the emission pool pays it per block"
            if name == "block_rewards"
            else "members claim it (pv airdrop claim)"
        )
        fail(f"{name} has no Vesting contract: {held}", EXIT_USAGE)
    fail(
        f"unknown allocation {name!r}; vested allocations are {', '.join(VESTED_NAMES)}", EXIT_USAGE
    )


@app.command("release")
@chain_options
def release(allocation: AllocationArg, *, opts: ChainOptions) -> None:
    """Pay an allocation's beneficiary every due installment (anyone may send this)."""
    name = _allocation(allocation)
    client = opts.connect()
    wallet = VestingWallet(client, name)
    try:
        paid = wallet.release()
    except ContractError as exc:
        if opts.json_output:
            refused(exc, opts.json_output)
        if exc.name == "NothingDue":
            nxt = int(exc.args_by_name.get("nextTime", 0))
            fail(f"nothing due yet for {name}: the next installment unlocks at {_iso(nxt)}")
        if exc.name == "FullyReleased":
            fail(f"everything of {name} has been released already")
        refused(exc, opts.json_output)
    except MarketError as exc:
        refused(exc, opts.json_output)
    done(
        opts.json_output,
        {"allocation": name, **paid.to_json()},
        f"released {format_pvc(paid.amount)} of {name} to {paid.beneficiary} "
        f"({paid.released_count} installment(s) paid so far)",
    )


@app.command("vesting")
def vesting(
    allocation: Annotated[
        str | None, typer.Argument(help="One vested allocation (default: all of them).")
    ] = None,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """The Vesting contracts on a node: beneficiary, released, releasable, next installment."""
    names = [_allocation(allocation)] if allocation is not None else list(VESTED_NAMES)
    client = connect(rpc_url, need_signer=False)
    rows: list[dict[str, Any]] = []
    for name in names:
        status = attempt(json_output, VestingWallet(client, name).status)
        rows.append({"allocation": name, **status.to_json()})
    if json_output:
        print_json({"vesting": rows})
        return
    for row in rows:
        nxt = row["nextInstallment"]
        upcoming = (
            "all paid"
            if nxt is None
            else (f"next {_pvc(int(nxt['amount']))} at {_iso(int(nxt['time']))}")
        )
        typer.echo(
            f"{row['allocation']:<20} {row['address']} -> {row['beneficiary']}\n"
            f"{'':<20} released {_pvc(int(row['released']))} PVC, releasable "
            f"{_pvc(int(row['releasable']))} PVC, {upcoming}"
        )
