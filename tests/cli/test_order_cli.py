"""`pv order` (demand orders) against a real dev node: post, fill, settle with the fee,
withdraw, cancel; refusals by error name, usage errors, an unreachable node."""

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
MATCHING = ("--min-cores", "16", "--min-memory", "64GiB", "--min-gpu-memory", "24GiB",
            "--min-gpus", "2", "--disk-type", "nvme", "--region", "cn-east")  # fmt: skip


def test_help_lists_every_command() -> None:
    from powerverse.cli.app import app

    result = runner.invoke(app, ["order", "--help"])
    assert result.exit_code == 0
    for command in (
        "post",
        "fill",
        "settle",
        "show",
        "cancel",
        "expire",
        "dispute",
        "owed",
        "withdraw",
    ):
        assert command in result.stdout  # fmt: skip
    post = runner.invoke(app, ["order", "post", "--help"])
    assert post.exit_code == 0 and "--min-gpu-memory" in post.stdout


@pytest.mark.slow
def test_demand_lifecycle_through_the_cli(chain: ThreadedNode) -> None:
    token = str(register_verified(chain, 1))
    posted = ok(pv(chain, "order", "post", "--days", "2", "--budget", "0.1", *MATCHING,
                   "--json", signer=2))  # fmt: skip
    oid = str(posted["orderId"])
    assert posted["kind"] == "demand" and posted["state"] == "open"
    assert posted["escrow"] == str(PVC // 10) and posted["consumer"] == addr(2)
    assert posted["specs"]["ramMib"] == 65536 and posted["specs"]["gpuMemoryMib"] == 24576

    refused(pv(chain, "order", "fill", oid, token, "--price", "0.06", "--json", signer=1),
            "OverBudget")  # fmt: skip
    filled = ok(pv(chain, "order", "fill", oid, token, "--price", "0.01", "--json", signer=1))
    assert filled["state"] == "active" and filled["provider"] == addr(1)
    assert filled["rent"] == str(2 * PVC // 100) and filled["refund"] == str(8 * PVC // 100)
    assert filled["end"] == filled["start"] + 2 * DAY
    refused(pv(chain, "order", "settle", oid, "--json", signer=3), "RentalNotEnded")

    warp_by(chain, 2 * DAY + 1)
    fee_bps = ok(pv(chain, "order", "config", "--json"))["feeBps"]
    settled = ok(pv(chain, "order", "settle", oid, "--json", signer=3))
    rent = 2 * PVC // 100
    fee = rent * fee_bps // 10_000
    assert settled["state"] == "completed" and settled["fee"] == str(fee)
    assert settled["toProvider"] == str(rent - fee)
    assert ok(pv(chain, "order", "show", oid, "--json"))["state"] == "completed"

    assert ok(pv(chain, "order", "owed", "--json", signer=2))["owed"] == str(8 * PVC // 100)
    paid = ok(pv(chain, "order", "withdraw", "--json", signer=1))
    assert paid["paid"] == str(rent - fee)
    refused(pv(chain, "order", "withdraw", "--json", signer=1), "NothingOwed")


def test_refusals_by_error_name(chain: ThreadedNode) -> None:
    token = str(register_verified(chain, 4))
    big = ok(pv(chain, "order", "post", "--days", "1", "--budget", "1", "--min-gpus", "8",
                "--json", signer=5))  # fmt: skip
    oid = str(big["orderId"])
    refused(pv(chain, "order", "fill", oid, token, "--price", "0.1", "--json", signer=4),
            "SpecsNotMet")  # fmt: skip
    refused(pv(chain, "order", "cancel", oid, "--json", signer=4), "NotConsumer")
    plain = pv(chain, "order", "expire", oid, signer=4)
    refused(plain, "DeadlineNotReached")
    cancelled = ok(pv(chain, "order", "cancel", oid, "--json", signer=5))
    assert cancelled["state"] == "cancelled" and cancelled["toConsumer"] == str(PVC)
    refused(pv(chain, "order", "post", "--days", "1", "--budget", "0", "--json", signer=5),
            "ZeroEscrow")  # fmt: skip
    unknown = pv(chain, "order", "show", "999", "--json")
    assert refused(unknown, "MarketError")["message"] == "no order 999"


def test_bad_usage_and_unreachable_node(chain: ThreadedNode) -> None:
    usage = [
        ("order", "post", "--budget", "1"),  # no --days
        ("order", "post", "--days", "1", "--budget", "lots"),
        ("order", "post", "--days", "1", "--budget", "1", "--min-memory", "huge"),
        ("order", "post", "--days", "1", "--budget", "1", "--deadline", "soon"),
        ("order", "fill", "1", "1"),  # no --price
        ("order", "owed", "0x123"),
    ]
    for args in usage:
        assert pv(chain, *args, signer=6).exit_code == 2, args
    assert pv(chain, "order", "owed").exit_code == 2  # neither an account nor a signer
    assert pv(None, "order", "show", "1").exit_code == 3
    assert pv(None, "order", "post", "--days", "1", "--budget", "1", signer=6).exit_code == 3
