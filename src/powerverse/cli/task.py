"""`pv task`: task orders — post a spec and a reward, take, submit a result, accept or reject.

MANUAL tasks are accepted by the consumer (or by anyone after the review window) or rejected
into arbitration; with ``--expected-hash``/``--expected-file`` a task is HASH-accepted at once
when the submitted result hash matches. Past the deadline without a result anyone may
``expire`` it: the consumer is refunded and the provider's reputation drops. Exit status: 0
done, 1 refused (the contract's error name is printed, or the JSON document with ``--json``),
2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from powerverse.cli.chainfmt import attempt, done, format_pvc, parse_amount, parse_hash32, tx_json
from powerverse.cli.chainopts import (
    ChainOptions,
    chain_options,
)
from powerverse.cli.common import EXIT_USAGE, fail
from powerverse.cli.order import (
    DiskKind,
    MinClock,
    MinCores,
    MinDisk,
    MinGpuMemory,
    MinGpus,
    MinMemory,
    OrderArg,
    Region,
    closed_json,
    closed_message,
    closing_command,
    head_time,
    order_doc,
    parse_time,
    register_shared,
    specs_from_options,
)
from powerverse.market.orders import Orders, result_hash

app = typer.Typer(
    help="Task orders: post a task with a reward; providers take it and submit a result.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _digest(text: str | None, path: Path | None, what: str) -> bytes | None:
    """A 32-byte hash from --X-hash, or keccak256 of --X-file's bytes; None when neither."""
    if text is not None and path is not None:
        fail(f"give either --{what}-hash or --{what}-file, not both", EXIT_USAGE)
    if path is not None:
        try:
            return result_hash(path.read_bytes())
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE)
    return parse_hash32(text, f"--{what}-hash") if text is not None else None


@app.command("post")
@chain_options
def post(
    spec: Annotated[str, typer.Option("--spec", help="Content id of the task specification.")],
    reward: Annotated[str, typer.Option("--reward", help="PVC (2.5) or wei, held in escrow.")],
    deadline: Annotated[
        str, typer.Option("--deadline", help="Result due: unix seconds, ISO time, +2d.")
    ],
    expected_hash: Annotated[
        str | None,
        typer.Option("--expected-hash", help="HASH acceptance: keccak256 of the result (hex)."),
    ] = None,
    expected_file: Annotated[
        Path | None,
        typer.Option("--expected-file", help="HASH acceptance: the expected result file."),
    ] = None,
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
    """Consumer: post a task with resource requirements, paying the reward into escrow."""
    wei = parse_amount(reward)
    expected = _digest(expected_hash, expected_file, "expected")
    specs = specs_from_options(
        min_cores, min_clock, min_gpu_memory, min_gpus, min_memory, min_disk_gb, disk_type, region
    )
    orders = opts.sdk(Orders)
    due = parse_time(deadline, head_time(orders), "--deadline")
    posted = attempt(
        opts.json_output,
        lambda: orders.post_task(spec, specs, reward=wei, deadline=due, expected_hash=expected),
    )
    how = "hash-matched" if expected is not None else "manual"
    done(
        opts.json_output,
        order_doc(orders, posted.order_id, posted.tx),
        f"task #{posted.order_id}: reward {format_pvc(posted.escrow)}, result due {due}, "
        f"{how} acceptance",
    )


@app.command("take")
@chain_options
def take(
    order_id: OrderArg,
    token_id: Annotated[int, typer.Argument(min=1, help="Your verified resource's token id.")],
    *,
    opts: ChainOptions,
) -> None:
    """Provider: take a task with a matching resource (it is marked rented)."""
    orders = opts.sdk(Orders)
    tx = attempt(opts.json_output, lambda: orders.take_task(order_id, token_id))
    doc = order_doc(orders, order_id, tx)
    done(opts.json_output, doc, f"took task #{order_id} with #{token_id}; due {doc['deadline']}")


@app.command("submit")
@chain_options
def submit(
    order_id: OrderArg,
    result: Annotated[str, typer.Option("--result", help="Content id of the result.")],
    result_hash_hex: Annotated[
        str | None, typer.Option("--result-hash", help="keccak256 of the result (hex).")
    ] = None,
    result_file: Annotated[
        Path | None, typer.Option("--result-file", help="The result file (its keccak256).")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """Provider (or its agent): submit the result by the deadline."""
    digest = _digest(result_hash_hex, result_file, "result")
    orders = opts.sdk(Orders)
    submitted = attempt(opts.json_output, lambda: orders.submit_result(order_id, result, digest))
    paid = closed_json(submitted.closed) if submitted.closed is not None else None
    doc = order_doc(orders, order_id, submitted.tx, payout=paid)
    message = f"result of task #{order_id} submitted"
    if submitted.closed is not None:
        message += "; hash matched: " + closed_message(submitted.closed)
    elif doc["acceptance"] == "hash":
        message += "; the hash does not match the expected one"
    else:
        message += f"; the consumer reviews it until {doc['submittedAt'] + doc['reviewWindow']}"
    done(opts.json_output, doc, message)


app.command("accept")(
    closing_command(
        "accept", "Consumer: accept the submitted result (reward minus the fee to the provider)."
    )
)
app.command("auto-accept")(
    closing_command(
        "auto_accept", "Anyone, after the review window of a submitted result: accept it."
    )
)


@app.command("reject")
@chain_options
def reject(
    order_id: OrderArg,
    reason: Annotated[str, typer.Option("--reason", help="What is wrong with the result.")],
    *,
    opts: ChainOptions,
) -> None:
    """Consumer, within the review window: reject the result (the arbitration committee rules)."""
    orders = opts.sdk(Orders)
    disputed = attempt(opts.json_output, lambda: orders.reject(order_id, reason))
    done(
        opts.json_output,
        {"orderId": order_id, "disputeId": disputed.dispute_id, "tx": tx_json(disputed.tx)},
        f"result of task #{order_id} rejected: Arbitration dispute #{disputed.dispute_id}",
    )


register_shared(app)
