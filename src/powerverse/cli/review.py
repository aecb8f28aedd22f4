"""`pv review`: rate the other party of a finished order; read reputations and reviews.

An order is named by ``--rental ID`` (a Market rental), ``--order ID`` (a demand or task of
Orders) or ``--key HEX`` (its Reputation order key). Ratings are 1 to 5 stars for quality,
service and efficiency, once per side per order. Reputation is shown in stars (0 to 5; the
contract stores 10,000 units per star). Exit status: 0 done, 1 refused (the contract's error
name is printed, or the JSON document with ``--json``), 2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from powerverse.cli.chainfmt import attempt, done, parse_account, parse_hash32, tx_json
from powerverse.cli.chainopts import (
    DEFAULT_RPC,
    ChainOptions,
    JsonOption,
    RpcOption,
    chain_options,
    sdk,
)
from powerverse.cli.common import EXIT_USAGE, fail
from powerverse.contracts.system import SYSTEM_ADDRESSES
from powerverse.market.reviews import SCALE, ReputationParams, Reviews, order_key

app = typer.Typer(
    help="Reviews and reputation: rate the other party of an order, look up reputations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

RentalOption = Annotated[int | None, typer.Option("--rental", min=1, help="A Market rental id.")]
OrderOption = Annotated[
    int | None, typer.Option("--order", min=1, help="An Orders demand or task id.")
]
KeyOption = Annotated[str | None, typer.Option("--key", help="A Reputation order key (hex).")]


_reviews = functools.partial(sdk, Reviews)
"""The SDK object for a command: node, signer, and whether one is needed."""


def _key(rental: int | None, order: int | None, key: str | None) -> bytes:
    given = [x for x in (rental, order, key) if x is not None]
    if len(given) != 1:
        fail("name the order with exactly one of --rental, --order or --key", EXIT_USAGE)
    if rental is not None:
        return order_key(SYSTEM_ADDRESSES["Market"], rental)
    if order is not None:
        return order_key(SYSTEM_ADDRESSES["Orders"], order)
    assert key is not None
    return parse_hash32(key, "--key")


def _stars(text: str, option: str) -> int:
    """Reputation units from stars (`3.5`) or raw units with a `u` suffix (`35000u`)."""
    raw = text.strip().lower()
    try:
        units = int(raw[:-1]) if raw.endswith("u") else int(Decimal(raw) * SCALE)
    except (ValueError, InvalidOperation):
        fail(f"{option} {text!r}: expected stars (e.g. 3.5) or units (e.g. 35000u)", EXIT_USAGE)
    if not 0 <= units <= 5 * SCALE:
        fail(f"{option} {text!r}: must be between 0 and 5 stars", EXIT_USAGE)
    return units


@app.command("give")
@chain_options
def give(
    quality: Annotated[int, typer.Option("--quality", min=1, max=5, help="1 to 5 stars.")],
    service: Annotated[int, typer.Option("--service", min=1, max=5, help="1 to 5 stars.")],
    efficiency: Annotated[int, typer.Option("--efficiency", min=1, max=5, help="1 to 5 stars.")],
    comment: Annotated[str, typer.Option("--comment", help="Content id of a comment.")] = "",
    rental: RentalOption = None,
    order: OrderOption = None,
    key: KeyOption = None,
    *,
    opts: ChainOptions,
) -> None:
    """A party of a finished order: review the other party (once per side)."""
    digest = _key(rental, order, key)
    reviews = opts.sdk(Reviews)
    reviewed = attempt(
        opts.json_output, lambda: reviews.review(digest, quality, service, efficiency, comment)
    )
    doc = {
        **reviewed.review.to_json(),
        "newReputation": reviewed.new_reputation,
        "newStars": reviewed.new_reputation / SCALE,
        "tx": tx_json(reviewed.tx),
    }
    done(
        opts.json_output,
        doc,
        f"reviewed {reviewed.review.reviewee}: quality {quality}, service {service}, "
        f"efficiency {efficiency}; their reputation is now {doc['newStars']:.2f} stars",
    )


@app.command("show")
def show(
    rental: RentalOption = None,
    order: OrderOption = None,
    key: KeyOption = None,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """An order's record in Reputation and the reviews both sides gave."""
    digest = _key(rental, order, key)
    reviews = _reviews(rpc_url, need_signer=False)
    record = attempt(json_output, lambda: reviews.order(digest))
    if record is None:
        fail(f"order 0x{digest.hex()} is not recorded (not finished, or unknown)")
    by_consumer = reviews.review_of(digest, record.consumer)
    by_provider = reviews.review_of(digest, record.provider)
    doc: dict[str, Any] = {
        "orderKey": "0x" + digest.hex(),
        "consumer": record.consumer,
        "provider": record.provider,
        "recordedAt": record.recorded_at,
        "failed": record.failed,
        "recorder": record.recorder,
        "consumerReview": by_consumer.to_json() if by_consumer else None,
        "providerReview": by_provider.to_json() if by_provider else None,
    }
    lines = [f"order 0x{digest.hex()}: consumer {record.consumer}, provider {record.provider}"]
    for side, r in (("consumer", by_consumer), ("provider", by_provider)):
        lines.append(
            f"  {side}'s review: "
            + (f"{r.quality}/{r.service}/{r.efficiency} {r.comment}".rstrip() if r else "none")
        )
    done(json_output, doc, "\n".join(lines))


@app.command("reputation")
def reputation(
    account: Annotated[str, typer.Argument(help="An account address.")],
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """An account's reputation (stars), orders, reviews and failures."""
    who = parse_account(account, "ACCOUNT")
    reviews = _reviews(rpc_url, need_signer=False)
    stats = attempt(json_output, lambda: reviews.stats(who))
    done(
        json_output,
        stats.to_json(),
        f"{who}: {stats.stars:.2f} stars from {stats.reviews_received} reviews, "
        f"{stats.orders} orders, {stats.failures} failures",
    )


@app.command("params")
def params(
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """The prior of the Bayesian average, the failure penalty, and the trading gate."""
    reviews = _reviews(rpc_url, need_signer=False)
    p = attempt(json_output, reviews.params)
    gate = reviews.min_reputation()
    doc = {
        "priorMean": p.prior_mean,
        "priorWeight": p.prior_weight,
        "failureWeight": p.failure_weight,
        "minReputation": gate,
    }
    done(
        json_output,
        doc,
        f"prior {p.prior_mean / SCALE:.2f} stars weighing {p.prior_weight} reviews; a failure "
        f"counts as {p.failure_weight} one-star reviews; trading needs "
        f"{gate / SCALE:.2f} stars",
    )


@app.command("set-min-reputation")
@chain_options
def set_min_reputation(
    value: Annotated[str, typer.Argument(help="Stars (3.5) or units (35000u); 0 disables.")],
    *,
    opts: ChainOptions,
) -> None:
    """GOVERNANCE_ROLE: the reputation below which accounts may not list, rent or take orders."""
    units = _stars(value, "VALUE")
    reviews = opts.sdk(Reviews)
    tx = attempt(opts.json_output, lambda: reviews.set_min_reputation(units))
    done(
        opts.json_output,
        {"minReputation": reviews.min_reputation(), "tx": tx_json(tx)},
        f"trading now needs {units / SCALE:.2f} stars",
    )


@app.command("set-params")
@chain_options
def set_params(
    prior_mean: Annotated[str, typer.Option("--prior-mean", help="Stars (3.5) or units.")],
    prior_weight: Annotated[int, typer.Option("--prior-weight", min=1, help="In reviews.")],
    failure_weight: Annotated[
        int, typer.Option("--failure-weight", min=0, help="One-star reviews per failure.")
    ],
    *,
    opts: ChainOptions,
) -> None:
    """GOVERNANCE_ROLE: replace the prior and the failure penalty (applies to everyone)."""
    new = ReputationParams(
        prior_mean=_stars(prior_mean, "--prior-mean"),
        prior_weight=prior_weight,
        failure_weight=failure_weight,
    )
    reviews = opts.sdk(Reviews)
    tx = attempt(opts.json_output, lambda: reviews.set_params(new))
    done(
        opts.json_output,
        {
            "priorMean": new.prior_mean,
            "priorWeight": new.prior_weight,
            "failureWeight": new.failure_weight,
            "tx": tx_json(tx),
        },
        "reputation parameters updated",
    )
