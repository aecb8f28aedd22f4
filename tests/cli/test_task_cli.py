"""`pv task` against a real dev node: manual acceptance, hash acceptance, the deadline refund
with the provider's reputation penalty; refusals, usage errors, an unreachable node."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_utils.crypto import keccak

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
REWARD = PVC // 10


def test_help_lists_every_command() -> None:
    from powerverse.cli.app import app

    result = runner.invoke(app, ["task", "--help"])
    assert result.exit_code == 0
    for command in (
        "post",
        "take",
        "submit",
        "accept",
        "auto-accept",
        "reject",
        "cancel",
        "expire",
        "show",
        "withdraw",
    ):
        assert command in result.stdout  # fmt: skip
    post = runner.invoke(app, ["task", "post", "--help"])
    assert post.exit_code == 0 and "--expected-file" in post.stdout


def _post(node: ThreadedNode, consumer: int, *extra: str, due: str = "+1d") -> str:
    args = ("--spec", "ipfs://bafy-task", "--reward", "0.1", "--deadline", due, "--min-cores", "8")
    doc = ok(pv(node, "task", "post", *args, *extra, "--json", signer=consumer))
    assert doc["kind"] == "task" and doc["state"] == "open" and doc["escrow"] == str(REWARD)
    return str(doc["orderId"])


@pytest.mark.slow
def test_manual_and_hash_acceptance(chain: ThreadedNode, tmp_path: Path) -> None:
    token = str(register_verified(chain, 1))
    result = tmp_path / "result.bin"
    result.write_bytes(b"the answer is 42")

    oid = _post(chain, 2)
    refused(pv(chain, "task", "take", oid, token, "--json", signer=2), "SelfOrder")
    refused(pv(chain, "task", "take", oid, token, "--json", signer=3), "NotResourceOwner")
    taken = ok(pv(chain, "task", "take", oid, token, "--json", signer=1))
    assert taken["state"] == "taken" and taken["provider"] == addr(1)
    submitted = ok(pv(chain, "task", "submit", oid, "--result", "ipfs://bafy-result",
                      "--result-file", str(result), "--json", signer=1))  # fmt: skip
    assert submitted["state"] == "submitted" and submitted["payout"] is None
    assert submitted["resultHash"] == "0x" + keccak(b"the answer is 42").hex()
    refused(pv(chain, "task", "accept", oid, "--json", signer=3), "NotConsumer")
    accepted = ok(pv(chain, "task", "accept", oid, "--json", signer=2))
    fee = REWARD * ok(pv(chain, "order", "config", "--json"))["feeBps"] // 10_000
    assert accepted["state"] == "completed" and accepted["toProvider"] == str(REWARD - fee)

    hashed = _post(chain, 2, "--expected-file", str(result))
    assert ok(pv(chain, "task", "show", hashed, "--json"))["acceptance"] == "hash"
    ok(pv(chain, "task", "take", hashed, token, "--json", signer=1))
    refused(pv(chain, "task", "submit", hashed, "--result", "ipfs://wrong", "--result-hash",
               "0x" + "00" * 31 + "01", "--json", signer=1), "ResultHashMismatch")  # fmt: skip
    paid = ok(pv(chain, "task", "submit", hashed, "--result", "ipfs://bafy-result",
                 "--result-file", str(result), "--json", signer=1))  # fmt: skip
    assert paid["state"] == "completed" and paid["payout"]["toProvider"] == str(REWARD - fee)
    assert ok(pv(chain, "task", "owed", addr(1), "--json"))["owed"] == str(2 * (REWARD - fee))
    assert ok(pv(chain, "task", "withdraw", "--json", signer=1))["paid"] == str(2 * (REWARD - fee))


def test_deadline_refund_lowers_the_providers_reputation(chain: ThreadedNode) -> None:
    token = str(register_verified(chain, 4))
    oid = _post(chain, 5, due="+1h")
    ok(pv(chain, "task", "take", oid, token, "--json", signer=4))
    before = ok(pv(chain, "review", "reputation", addr(4), "--json"))
    refused(pv(chain, "task", "expire", oid, "--json", signer=6), "DeadlineNotReached")
    warp_by(chain, 3_601)
    failed = ok(pv(chain, "task", "expire", oid, "--json", signer=6))
    assert failed["state"] == "failed" and failed["toConsumer"] == str(REWARD)
    after = ok(pv(chain, "review", "reputation", addr(4), "--json"))
    assert after["failures"] == before["failures"] + 1
    assert after["reputation"] < before["reputation"]
    late = pv(chain, "task", "submit", oid, "--result", "late", "--json", signer=4)
    assert refused(late, "OrderNotInState")["args"]["actual"] == 8  # FAILED


def test_bad_usage_and_unreachable_node(chain: ThreadedNode, tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"x")
    base = ("task", "post", "--spec", "s", "--reward", "1")
    usage = [
        base,  # no --deadline
        (*base, "--deadline", "+1d", "--expected-hash", "0x12"),
        (*base, "--deadline", "+1d", "--expected-hash", "0x" + "11" * 32,
         "--expected-file", str(f)),
        (*base, "--deadline", "+1d", "--expected-file", str(tmp_path / "missing")),
        ("task", "submit", "1"),  # no --result
        ("task", "reject", "1"),  # no --reason
        ("task", "take", "1", "0"),
    ]  # fmt: skip
    for args in usage:
        assert pv(chain, *args, signer=7).exit_code == 2, args
    assert pv(None, "task", "show", "1").exit_code == 3
    assert pv(None, "task", "accept", "1", signer=7).exit_code == 3
