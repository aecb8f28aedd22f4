"""`pv rewards`: the block rewards the chain paid (docs/tokenomics.md, "Block rewards").

``block`` shows what one block paid and to whom, ``range`` sums a range of blocks per
recipient, ``emission`` the emission pool's state. Validators' parts are in Staking (commission
owed to the operator, the rest in the bonded pool): ``pv stake`` withdraws and shows them.
Amounts are wei in JSON, PVC for people. Exit status: 0 done, 1 refused, 2 bad usage,
3 node unreachable.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from powerverse.cli.chainfmt import attempt, format_pvc
from powerverse.cli.chainopts import DEFAULT_RPC, JsonOption, RpcOption, connect
from powerverse.cli.common import EXIT_USAGE, fail, print_json
from powerverse.market.rewards import MAX_RANGE, BlockRewards

app = typer.Typer(
    help="Block rewards: what each block paid the proposer, the committee and the dividend pool.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else "-"


def _block_ref(text: str) -> int | str:
    if text in ("latest", "earliest", "finalized", "safe"):
        return text
    if text.startswith("0x") and len(text) == 66:
        return text  # a block hash
    try:
        number = int(text, 0)
    except ValueError:
        fail(f"BLOCK must be a number, a tag (latest) or a block hash, not {text!r}", EXIT_USAGE)
    if number < 0:
        fail("BLOCK cannot be negative", EXIT_USAGE)
    return number


@app.command("block")
def block(
    ref: Annotated[str, typer.Argument(help="Block number, hash or tag.")] = "latest",
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """What one block paid out of the emission pool, and to whom (null / a note when nothing)."""
    rewards = BlockRewards(connect(rpc_url, need_signer=False))
    reward = attempt(json_output, lambda: rewards.block(_block_ref(ref)))
    if json_output:
        print_json({"reward": None if reward is None else reward.to_json()})
        return
    if reward is None:
        typer.echo(f"block {ref} paid no reward (empty, before emission starts, or dev genesis)")
        return
    typer.echo(
        f"block {reward.number} paid {format_pvc(reward.total)} for emission "
        f"{_iso(reward.since)} .. {_iso(reward.until)}"
    )
    typer.echo(f"  dividend pool      {format_pvc(reward.dividend)}")
    key = reward.proposer.consensus_key
    typer.echo(
        f"  proposer           {format_pvc(reward.proposer.amount)}  {reward.proposer.account}"
        + (f" (key {key[:18]}…)" if key else "")
    )
    for member in reward.committee:
        typer.echo(
            f"  committee w={member.weight:<6} {format_pvc(member.amount)}  {member.account}"
        )


@app.command("range")
def range_(
    first: Annotated[int, typer.Argument(help="First block.", min=0)],
    last: Annotated[int, typer.Argument(help="Last block (inclusive).", min=0)],
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """Sum the rewards of blocks FIRST..LAST per recipient account."""
    if last < first:
        fail(f"LAST ({last}) is before FIRST ({first})", EXIT_USAGE)
    if last - first + 1 > MAX_RANGE:
        fail(f"at most {MAX_RANGE} blocks at a time", EXIT_USAGE)
    rewards = BlockRewards(connect(rpc_url, need_signer=False))
    summary = attempt(json_output, lambda: rewards.summary(first, last))
    if json_output:
        print_json(summary.to_json())
        return
    typer.echo(
        f"blocks {first}..{last}: {summary.blocks_paid} paid {format_pvc(summary.total)}, "
        f"of which {format_pvc(summary.dividend)} to the dividend pool"
    )
    for row in summary.to_json()["recipients"]:
        typer.echo(f"  {row['account']}  {format_pvc(int(row['amount']))}")


@app.command("emission")
def emission(
    at: Annotated[str, typer.Option("--at", help="Block number or tag.")] = "latest",
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """The emission pool: balance, paid out so far, paid up to which instant."""
    rewards = BlockRewards(connect(rpc_url, need_signer=False))
    ref = _block_ref(at)
    status = attempt(json_output, lambda: rewards.emission(ref))
    if json_output:
        print_json(status.to_json())
        return
    typer.echo(f"emission pool   {format_pvc(status.pool)}")
    typer.echo(f"paid out        {format_pvc(status.paid)} (up to {_iso(status.paid_until)})")
    typer.echo(f"dividend pool   {format_pvc(status.dividend_pool)}")
