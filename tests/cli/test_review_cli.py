"""`pv review` against a real dev node: both sides of a settled rental review each other;
reputation, the record, the gate; refusals, usage errors, an unreachable node."""

from __future__ import annotations

from tests.cli.chain_cli import (
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


def test_help_lists_every_command() -> None:
    from powerverse.cli.app import app

    result = runner.invoke(app, ["review", "--help"])
    assert result.exit_code == 0
    for command in ("give", "show", "reputation", "params", "set-min-reputation"):
        assert command in result.stdout
    give = runner.invoke(app, ["review", "give", "--help"])
    assert give.exit_code == 0 and "--efficiency" in give.stdout and "--rental" in give.stdout


def _settled_rental(node: ThreadedNode, provider: int, consumer: int) -> str:
    token = str(register_verified(node, provider))
    ok(pv(node, "market", "list", token, "--price", "0.01", "--json", signer=provider))
    rid = str(ok(pv(node, "market", "rent", token, "1", "--json", signer=consumer))["rentalId"])
    ok(pv(node, "market", "confirm", rid, "--json", signer=provider))
    warp_by(node, DAY + 1)
    ok(pv(node, "market", "settle", rid, "--json", signer=consumer))
    return rid


def test_both_sides_review_a_settled_rental(chain: ThreadedNode) -> None:
    rid = _settled_rental(chain, 1, 2)
    prior = ok(pv(chain, "review", "params", "--json"))
    record = ok(pv(chain, "review", "show", "--rental", rid, "--json"))
    assert record["consumer"] == addr(2) and record["provider"] == addr(1)
    assert record["consumerReview"] is None and record["providerReview"] is None

    rating = ("--quality", "5", "--service", "4", "--efficiency", "5")
    given = ok(pv(chain, "review", "give", "--rental", rid, *rating, "--comment",
                  "ipfs://bafy-comment", "--json", signer=2))  # fmt: skip
    assert given["reviewer"] == addr(2) and given["reviewee"] == addr(1)
    assert given["newReputation"] > prior["priorMean"]
    ok(pv(chain, "review", "give", "--key", record["orderKey"], "--quality", "3", "--service",
          "3", "--efficiency", "3", "--json", signer=1))  # fmt: skip
    refused(pv(chain, "review", "give", "--rental", rid, "--quality", "1", "--service", "1",
               "--efficiency", "1", "--json", signer=2), "AlreadyReviewed")  # fmt: skip
    refused(pv(chain, "review", "give", "--rental", rid, "--quality", "1", "--service", "1",
               "--efficiency", "1", "--json", signer=3), "NotOrderParty")  # fmt: skip

    both = ok(pv(chain, "review", "show", "--rental", rid, "--json"))
    assert both["consumerReview"]["comment"] == "ipfs://bafy-comment"
    assert (both["providerReview"]["quality"], both["providerReview"]["reviewee"]) == (3, addr(2))
    rep = ok(pv(chain, "review", "reputation", addr(1), "--json"))
    assert rep["reviewsReceived"] == 1 and rep["orders"] == 1
    assert rep["reputation"] == given["newReputation"]
    assert rep["averages"] == {"quality": 5.0, "service": 4.0, "efficiency": 5.0}
    text = pv(chain, "review", "reputation", addr(1))
    assert text.exit_code == 0 and "stars from 1 reviews" in text.stdout


def test_governance_of_the_gate(chain: ThreadedNode) -> None:
    before = ok(pv(chain, "review", "params", "--json"))["minReputation"]
    denied = pv(chain, "review", "set-min-reputation", "2.5", "--json", signer=4)
    refused(denied, "AccessControlUnauthorizedAccount")
    doc = ok(pv(chain, "review", "set-min-reputation", "2.5", "--json", signer=0))
    assert doc["minReputation"] == 25_000
    ok(pv(chain, "review", "set-min-reputation", f"{before}u", "--json", signer=0))
    assert ok(pv(chain, "review", "params", "--json"))["minReputation"] == before


def test_bad_usage_and_unreachable_node(chain: ThreadedNode) -> None:
    rate = ("--quality", "5", "--service", "5", "--efficiency", "5")
    usage = [
        ("review", "give", *rate),  # which order?
        ("review", "give", "--rental", "1", "--order", "1", *rate),
        ("review", "give", "--rental", "1", "--quality", "6", "--service", "5",
         "--efficiency", "5"),
        ("review", "give", "--key", "0x12", *rate),
        ("review", "reputation", "someone"),
        ("review", "set-min-reputation", "6"),
        ("review", "set-min-reputation", "lots"),
    ]  # fmt: skip
    for args in usage:
        assert pv(chain, *args, signer=5).exit_code == 2, args
    unrecorded = pv(chain, "review", "show", "--order", "999")
    assert unrecorded.exit_code == 1 and "not recorded" in unrecorded.stderr
    assert pv(None, "review", "reputation", addr(1)).exit_code == 3
    assert pv(None, "review", "give", "--rental", "1", *rate, signer=5).exit_code == 3
