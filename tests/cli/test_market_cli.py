"""`pv market` against a real dev node: list, rent, confirm, extend, settle with the fee,
decline, withdraw; refusals by error name, usage errors, an unreachable node."""

from __future__ import annotations

import pytest

from tests.cli.chain_cli import (
    PVC,
    addr,
    chain,
    ok,
    pv,
    refused,
    register_verified,
    runner,
    warp_by,
)
from tests.rpc.conftest import ThreadedNode

__all__ = ["chain"]
DAY = 86_400
PRICE = PVC // 100  # 0.01 PVC a day


def test_help_lists_every_command() -> None:
    from powerverse.cli.app import app

    result = runner.invoke(app, ["market", "--help"])
    assert result.exit_code == 0
    for command in (
        "list",
        "update-price",
        "pause",
        "resume",
        "unlist",
        "show",
        "quote",
        "rent",
        "confirm",
        "decline",
        "claim-refund",
        "settle",
        "extend",
        "heartbeat",
        "report-missed-heartbeat",
        "dispute",
        "withdraw",
        "owed",
        "match",
    ):
        assert command in result.stdout  # fmt: skip
    rent = runner.invoke(app, ["market", "rent", "--help"])
    assert rent.exit_code == 0 and "--value" in rent.stdout


@pytest.mark.slow
def test_rental_lifecycle_through_the_cli(chain: ThreadedNode) -> None:
    token = str(register_verified(chain, 1))
    listed = ok(pv(chain, "market", "list", token, "--price", "0.01", "--max-days", "10",
                   "--json", signer=1))  # fmt: skip
    assert listed["status"] == "active" and listed["pricePerDay"] == str(PRICE)
    assert listed["provider"] == addr(1) and listed["maxDays"] == 10

    assert ok(pv(chain, "market", "quote", token, "2", "--json"))["amount"] == str(2 * PRICE)
    rental = ok(pv(chain, "market", "rent", token, "2", "--json", signer=2))
    rid = str(rental["rentalId"])
    assert rental["state"] == "pending" and rental["escrow"] == str(2 * PRICE)
    assert rental["consumer"] == addr(2) and rental["provider"] == addr(1)
    assert ok(pv(chain, "market", "show", token, "--json"))["currentRental"] == int(rid)

    refused(pv(chain, "market", "confirm", rid, "--json", signer=2), "NotProvider")
    confirmed = ok(pv(chain, "market", "confirm", rid, "--json", signer=1))
    assert confirmed["state"] == "active" and confirmed["end"] == confirmed["start"] + 2 * DAY
    ok(pv(chain, "market", "heartbeat", rid, "--json", signer=1))
    extended = ok(pv(chain, "market", "extend", rid, "1", "--json", signer=2))
    assert extended["escrow"] == str(3 * PRICE) and extended["periodDays"] == 3
    refused(pv(chain, "market", "settle", rid, "--json", signer=3), "RentalNotExpired")

    warp_by(chain, 3 * DAY + 1)
    fee_bps = ok(pv(chain, "market", "config", "--json"))["feeBps"]
    settled = ok(pv(chain, "market", "settle", rid, "--json", signer=3))
    fee = 3 * PRICE * fee_bps // 10_000
    assert settled["state"] == "settled" and settled["fee"] == str(fee)
    assert settled["toProvider"] == str(3 * PRICE - fee) and settled["toConsumer"] == "0"
    assert ok(pv(chain, "market", "rental", rid, "--json"))["state"] == "settled"

    owed = ok(pv(chain, "market", "owed", addr(1), "--json"))["owed"]
    assert owed == str(3 * PRICE - fee)
    paid = ok(pv(chain, "market", "withdraw", "--json", signer=1))
    assert paid["paid"] == owed and paid["to"] == addr(1)
    refused(pv(chain, "market", "withdraw", "--json", signer=1), "NothingOwed")

    # a second rental the provider turns down: the consumer is refunded in full
    second = ok(pv(chain, "market", "rent", token, "1", "--json", signer=2))
    declined = ok(pv(chain, "market", "decline", str(second["rentalId"]), "--json", signer=1))
    assert declined["state"] == "refunded" and declined["toConsumer"] == str(PRICE)
    assert ok(pv(chain, "market", "owed", "--json", signer=2))["owed"] == str(PRICE)

    ok(pv(chain, "market", "update-price", token, "20000000000000000wei", "--json", signer=1))
    assert ok(pv(chain, "market", "quote", token, "1", "--json"))["amount"] == str(2 * PRICE)
    assert ok(pv(chain, "market", "pause", token, "--json", signer=1))["status"] == "paused"
    refused(pv(chain, "market", "rent", token, "1", "--json", signer=2), "ListingNotActive")
    assert ok(pv(chain, "market", "resume", token, "--json", signer=1))["status"] == "active"
    assert ok(pv(chain, "market", "unlist", token, "--json", signer=1))["status"] == "none"
    plain = pv(chain, "market", "rent", token, "1", signer=2)
    refused(plain, "NotListed")


def test_refusals_by_error_name(chain: ThreadedNode) -> None:
    token = str(register_verified(chain, 4))
    ok(pv(chain, "market", "list", token, "--price", "1", "--json", signer=4))
    refused(pv(chain, "market", "rent", token, "1", "--json", signer=4), "SelfRental")
    wrong = pv(chain, "market", "rent", token, "1", "--value", "1wei", "--json", signer=5)
    assert refused(wrong, "WrongPayment")["args"] == {"expected": PVC, "sent": 1}
    refused(pv(chain, "market", "list", token, "--price", "1", "--json", signer=5),
            "NotResourceOwner")  # fmt: skip
    refused(pv(chain, "market", "settle", "999", "--json", signer=5), "UnknownRental")


def test_bad_usage_and_unreachable_node(chain: ThreadedNode) -> None:
    assert pv(chain, "market", "rent", "1", "0", signer=2).exit_code == 2
    assert pv(chain, "market", "list", "1", "--price", "cheap", signer=1).exit_code == 2
    bad_time = pv(chain, "market", "list", "1", "--price", "1", "--available-until", "soon",
                  signer=1)  # fmt: skip
    assert bad_time.exit_code == 2 and "--available-until" in bad_time.stderr
    assert pv(chain, "market", "owed").exit_code == 2  # neither an account nor a signer
    assert pv(chain, "market", "owed", "nobody").exit_code == 2
    assert pv(chain, "market", "withdraw", "--to", "0x1", signer=1).exit_code == 2
    assert pv(chain, "market", "dispute", "1", signer=2).exit_code == 2  # --reason missing
    assert pv(None, "market", "quote", "1", "1").exit_code == 3
    assert pv(None, "market", "settle", "1", signer=3).exit_code == 3
