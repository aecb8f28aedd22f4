"""`pv dividends`: the monthly dividend pool (docs/tokenomics.md "Monthly dividends").

Providers send a device heartbeat once per slot (`heartbeat`; the provider agent does it by
itself); a device with heartbeats in 90 % of a 30-day epoch's slots adds its performPoints to its
owner's score. After an epoch ends anyone closes it (`close`), fixing its pool; owners `claim`
``pool × score / total``. `verify` recomputes an epoch from the chain's logs and state and
compares it with the contract. Amounts: PVC (``1.5``) or wei (``1000wei``); JSON has wei as
decimal strings. Exit status: 0 done (verify: the contract agrees), 1 refused or a mismatch,
2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from eth_utils.address import to_checksum_address
from rich.console import Console
from rich.table import Table

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
    DevAccountOption,
    JsonOption,
    RpcOption,
    chain_options,
    connect,
)
from powerverse.cli.common import EXIT_USAGE, EXIT_USER_ERROR, fail, print_json
from powerverse.crypto.keys import dev_accounts
from powerverse.market.client import ChainClient
from powerverse.market.dividends import DividendPool

app = typer.Typer(
    help="Monthly dividends: device heartbeats, closing epochs, claims, verification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EpochArg = Annotated[int, typer.Argument(min=0, help="The epoch (30-day month; 0 is the first).")]


def _pool(client: ChainClient) -> DividendPool:
    pool = DividendPool(client)
    if not pool.deployed():
        fail(f"no DividendPool at {pool.address}: this chain's genesis has no tokenomics section")
    return pool


def _iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@app.command("status")
def status(rpc_url: RpcOption = DEFAULT_RPC, json_output: JsonOption = False) -> None:
    """The pool: balance, what closed epochs still owe, the epoch under way."""
    pool = _pool(connect(rpc_url, need_signer=False))
    state = attempt(json_output, pool.status)
    current = pool.epoch(state.current_epoch) if state.current_epoch is not None else None
    doc = {**state.to_json(), "current": current.to_json() if current else None}
    if json_output:
        print_json(doc)
        return
    out = _console()
    out.print(f"dividend pool {state.address}: balance {format_pvc(state.balance)}")
    out.print(
        f"owed to closed epochs: {format_pvc(state.reserved)}; "
        f"next epoch's pool so far: {format_pvc(state.unassigned)}"
    )
    if current is None:
        out.print(f"epochs start at {_iso(state.first_epoch_start)}")
    else:
        out.print(
            f"epoch {current.epoch}: {_iso(current.start)} to {_iso(current.end)}, "
            f"{current.slots} slots of {current.slot_length} s, online with "
            f"{current.required} heartbeats; total score so far {current.total_score}"
        )
    out.print(f"next epoch to close: {state.next_epoch_to_close}")


@app.command("epoch")
def epoch(
    epoch: EpochArg, rpc_url: RpcOption = DEFAULT_RPC, json_output: JsonOption = False
) -> None:
    """One epoch: its times, slots, pool, total score and claims."""
    pool = _pool(connect(rpc_url, need_signer=False))
    info = attempt(json_output, lambda: pool.epoch(epoch))
    if json_output:
        print_json(info.to_json())
        return
    out = _console()
    state = "closed" if info.closed else "open"
    out.print(f"epoch {info.epoch} ({state}): {_iso(info.start)} to {_iso(info.end)}")
    out.print(
        f"{info.slots} slots of {info.slot_length} s; a device is online with "
        f"{info.required} heartbeats"
    )
    out.print(f"total score {info.total_score}; claimed score {info.claimed_score}")
    if info.closed:
        if info.total_score == 0:
            out.print(f"nobody scored: its pool {format_pvc(info.pool)} carried over")
        else:
            out.print(f"pool {format_pvc(info.pool)}; claimed {format_pvc(info.claimed_amount)}")


@app.command("device")
def device(
    token_id: Annotated[int, typer.Argument(min=1, help="The ResourceNFT token id.")],
    epoch_: Annotated[
        int | None, typer.Option("--epoch", min=0, help="The epoch (default: the current one).")
    ] = None,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """A device's heartbeats in an epoch and whether it is online."""
    pool = _pool(connect(rpc_url, need_signer=False))
    if epoch_ is None:
        current = pool.status().current_epoch
        if current is None:
            fail("no epoch has started yet; give --epoch")
        epoch_ = current
    chosen = epoch_
    info = attempt(json_output, lambda: pool.epoch(chosen))
    dev = attempt(json_output, lambda: pool.device(chosen, token_id))
    doc = {**dev.to_json(), "requiredHeartbeats": info.required}
    done(
        json_output,
        doc,
        f"device #{token_id} in epoch {chosen}: {dev.heartbeats} of {info.required} "
        f"heartbeats; {'online' if dev.online else 'not online (yet)'}",
    )


@app.command("heartbeat")
@chain_options
def heartbeat(
    token_id: Annotated[int, typer.Argument(min=1, help="The ResourceNFT token id.")],
    *,
    opts: ChainOptions,
) -> None:
    """The device's owner or agent: report it online in this slot (once per slot)."""
    pool = _pool(opts.connect())
    beat = attempt(opts.json_output, lambda: pool.heartbeat(token_id))
    extra = ""
    if beat.online:
        extra = (
            f"; now online for the epoch with {beat.points} points"
            if beat.credited
            else "; online, but its owner is flagged this epoch (no score)"
        )
    done(
        opts.json_output,
        beat.to_json(),
        f"heartbeat for device #{token_id}: epoch {beat.epoch}, slot {beat.slot}{extra}",
    )


@app.command("donate")
@chain_options
def donate(
    amount: Annotated[str, typer.Argument(help="PVC (e.g. 1.5) or wei (e.g. 1000wei).")],
    *,
    opts: ChainOptions,
) -> None:
    """Add to the pool (it goes to the next epoch to close)."""
    wei = parse_amount(amount)
    if wei == 0:
        fail("a donation must be more than 0", EXIT_USAGE)
    pool = _pool(opts.connect())
    tx = attempt(opts.json_output, lambda: pool.donate(wei))
    done(opts.json_output, {"amount": str(wei), **tx_json(tx)}, f"donated {format_pvc(wei)}")


@app.command("close")
@chain_options
def close(epoch: EpochArg, *, opts: ChainOptions) -> None:
    """Anyone, once the epoch ended and the earlier ones are closed: fix its pool."""
    pool = _pool(opts.connect())
    closing = attempt(opts.json_output, lambda: pool.close(epoch))
    message = (
        f"epoch {epoch} closed: nobody scored, its pool {format_pvc(closing.pool)} carries over"
        if closing.total_score == 0
        else f"epoch {epoch} closed: pool {format_pvc(closing.pool)} "
        f"over a total score of {closing.total_score}"
    )
    done(opts.json_output, closing.to_json(), message)


@app.command("claim")
@chain_options
def claim(
    epoch: EpochArg,
    for_: Annotated[
        str | None, typer.Option("--for", help="Claim for this account (it is paid, not you).")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """Claim your dividend of a closed epoch (once; it stays claimable for ever)."""
    account = parse_account(for_, "--for") if for_ is not None else None
    pool = _pool(opts.connect())
    paid = attempt(opts.json_output, lambda: pool.claim(epoch, account=account))
    done(
        opts.json_output,
        paid.to_json(),
        f"paid {format_pvc(paid.amount)} to {paid.account} for epoch {epoch} (score {paid.score})",
    )


@app.command("claimable")
def claimable(
    for_: Annotated[
        str | None, typer.Option("--for", help="This account (or --from / --dev-account).")
    ] = None,
    rpc_url: RpcOption = DEFAULT_RPC,
    from_: Annotated[
        str | None, typer.Option("--from", help="Your address (nothing is signed).")
    ] = None,
    dev_account: DevAccountOption = None,
    json_output: JsonOption = False,
) -> None:
    """What an account may claim, per closed epoch."""
    given = [x for x in (for_, from_, dev_account) if x is not None]
    if len(given) != 1:
        fail("give one of --for ADDRESS, --from ADDRESS or --dev-account N", EXIT_USAGE)
    if dev_account is not None:
        account = str(to_checksum_address(dev_accounts()[dev_account].address))
    else:
        account = parse_account(str(for_ or from_), "--for" if for_ else "--from")
    pool = _pool(connect(rpc_url, need_signer=False))
    rows = attempt(json_output, lambda: pool.claimable_all(account))
    total = sum(w for _, _, w in rows)
    doc = {
        "account": account,
        "total": str(total),
        "epochs": [{"epoch": e, "score": str(s), "amount": str(w)} for e, s, w in rows],
    }
    if json_output:
        print_json(doc)
        return
    out = _console()
    if not rows:
        out.print(f"{account} has nothing to claim")
        return
    for e, s, w in rows:
        out.print(f"epoch {e}: {format_pvc(w)} (score {s})")
    out.print(f"total: {format_pvc(total)}")


@app.command("flag")
@chain_options
def flag(
    account: Annotated[str, typer.Argument(help="The account that violated the rules.")],
    epoch: EpochArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the event).")],
    *,
    opts: ChainOptions,
) -> None:
    """PlatformAdmin ADMIN_ROLE or FLAGGER_ROLE: the account scores 0 in the epoch."""
    who = parse_account(account, "ACCOUNT")
    if not reason.strip():
        fail("--reason must not be empty", EXIT_USAGE)
    pool = _pool(opts.connect())
    record = attempt(opts.json_output, lambda: pool.flag(who, epoch, reason))
    done(
        opts.json_output,
        record.to_json(),
        f"{who} flagged in epoch {epoch}: score {record.removed_score} removed",
    )


@app.command("flag-ruling")
@chain_options
def flag_ruling(
    dispute_id: Annotated[int, typer.Argument(min=1, help="An arbitration dispute id.")],
    *,
    opts: ChainOptions,
) -> None:
    """Anyone: flag the provider of a dispute ruled against it (consumer share > 0), in the
    epoch of the ruling."""
    pool = _pool(opts.connect())
    record = attempt(opts.json_output, lambda: pool.flag_ruling(dispute_id))
    done(
        opts.json_output,
        record.to_json(),
        f"{record.account} flagged in epoch {record.epoch} ({record.reason})",
    )


@app.command("verify")
def verify(
    epoch: EpochArg, rpc_url: RpcOption = DEFAULT_RPC, json_output: JsonOption = False
) -> None:
    """Recompute an epoch's scores, pool and payouts from the chain's logs and state and compare
    them with the contract; exit 1 naming each mismatch."""
    pool = _pool(connect(rpc_url, need_signer=False))
    report = attempt(json_output, lambda: pool.verify(epoch))
    if json_output:
        print_json(report.to_json())
    else:
        out = _console()
        out.print(
            f"epoch {epoch} ({'closed' if report.closed else 'open'}): "
            f"{len(report.devices)} device(s) online with {report.required} heartbeats of "
            f"{report.slot_length} s slots; total score {report.expected_total}"
        )
        if report.pool is not None:
            out.print(f"pool {format_pvc(report.pool)}; dust {report.dust} wei")
        table = Table("account", "score", "chain score", "payout", "chain payout", "claimed")
        for r in report.rows:
            table.add_row(
                r.account + (" (flagged)" if r.flagged else ""),
                str(r.expected_score),
                str(r.chain_score),
                "-" if r.expected_payout is None else format_pvc(r.expected_payout),
                "-" if r.chain_payout is None else format_pvc(r.chain_payout),
                "yes" if r.claimed else "no",
            )
        if report.rows:
            out.print(table)
        for problem in report.problems:
            out.print(f"mismatch: {problem}")
        out.print("the contract agrees" if report.ok else "the contract DISAGREES")
    if not report.ok:
        raise typer.Exit(EXIT_USER_ERROR)
