"""`pv rewards` against a real dev node: a dev node's blocks pay their coinbase once emission has
started (30 days after the dev genesis's listing), exactly what accrued since the last paid
instant; JSON output, human output, bad input (exit 2), an unreachable node (exit 3)."""

from __future__ import annotations

from typing import Any

from powerverse.chain.rewards import EMISSION_POOL
from powerverse.economics.emission import EMISSION_CAP, emission_start, emitted
from tests.cli.chain_cli import chain, head_time, ok, pv, warp_by
from tests.rpc.conftest import ThreadedNode

__all__ = ["chain"]  # the module-scoped dev node fixture

DAY = 86_400


def _genesis_time(node: ThreadedNode) -> int:
    return int(node.result("eth_getBlockByNumber", "0x0", False)["timestamp"], 16)


def _coinbase(node: ThreadedNode) -> str:
    return str(node.result("pv_nodeInfo")["coinbase"])


def test_blocks_pay_nothing_before_emission_then_exactly_what_accrued(chain: ThreadedNode) -> None:
    listing = _genesis_time(chain)  # the dev genesis lists the coin at its own time
    node = chain
    warp_by(node, 60)
    assert ok(pv(node, "rewards", "block", "latest", "--json")) == {"reward": None}
    before = ok(pv(node, "rewards", "emission", "--json"))
    assert before == {
        "emissionPool": str(EMISSION_CAP),
        "paid": "0",
        "paidUntil": 0,
        "dividendPool": before["dividendPool"],
    }
    first_block = int(node.result("eth_blockNumber"), 16) + 1
    t1 = warp_by(node, 31 * DAY)
    assert t1 > emission_start(listing)
    reward = ok(pv(node, "rewards", "block", "latest", "--json"))["reward"]
    assert reward["until"] == t1 and reward["since"] == 0
    assert int(reward["total"]) == emitted(t1, listing)
    assert int(reward["dividend"]) == int(reward["total"]) * 3 // 100
    assert reward["proposer"]["account"] == _coinbase(node)
    assert reward["proposer"]["consensusKey"] is None and reward["committee"] == []
    assert int(reward["proposer"]["amount"]) == int(reward["total"]) - int(reward["dividend"])
    t2 = warp_by(node, 3600)
    second = ok(pv(node, "rewards", "block", "latest", "--json"))["reward"]
    assert second["since"] == t1 and int(second["total"]) == emitted(t2, listing) - emitted(
        t1, listing
    )
    last = int(node.result("eth_blockNumber"), 16)
    summary = ok(pv(node, "rewards", "range", str(first_block), str(last), "--json"))
    assert summary["blocksPaid"] == 2 and int(summary["total"]) == emitted(t2, listing)
    assert summary["recipients"] == [
        {"account": _coinbase(node), "amount": str(emitted(t2, listing) - int(summary["dividend"]))}
    ]
    status = ok(pv(node, "rewards", "emission", "--json"))
    assert status["paidUntil"] == t2 and int(status["paid"]) == emitted(t2, listing)
    pool = int(node.result("eth_getBalance", "0x" + EMISSION_POOL.hex(), "latest"), 16)
    assert int(status["emissionPool"]) == pool == EMISSION_CAP - emitted(t2, listing)
    assert int(status["dividendPool"]) - int(before["dividendPool"]) == int(summary["dividend"])
    # for people
    shown = pv(node, "rewards", "block", str(last))
    assert shown.exit_code == 0 and "dividend pool" in shown.stdout and "proposer" in shown.stdout
    assert head_time(node) == t2


def test_bad_input_and_an_unreachable_node(chain: ThreadedNode) -> None:
    bad = pv(chain, "rewards", "block", "soon")
    assert bad.exit_code == 2 and "BLOCK must be" in bad.stderr
    backwards = pv(chain, "rewards", "range", "5", "3")
    assert backwards.exit_code == 2 and "before FIRST" in backwards.stderr
    huge = pv(chain, "rewards", "range", "0", "20000")
    assert huge.exit_code == 2
    future = pv(chain, "rewards", "block", "999999", "--json")
    assert future.exit_code == 1
    unreachable: Any = pv(None, "rewards", "emission")
    assert unreachable.exit_code == 3
    assert ok(pv(chain, "rewards", "block", "0", "--json")) == {"reward": None}  # genesis
