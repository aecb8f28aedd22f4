"""`pv dividends`: JSON output, human output, bad input (exit 2), refusals (exit 1), an
unreachable node (exit 3), and a one-slot month on a real dev node from heartbeat to verify."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from powerverse.crypto.keys import dev_accounts
from powerverse.economics.constants import MONTH
from powerverse.market.client import ChainClient
from powerverse.market.dividends import DividendPool
from tests.cli.chain_cli import addr, chain, head_time, ok, pv, refused, register_verified
from tests.market.market_helpers import list_resource

__all__ = ["chain"]  # the module-scoped dev node fixture

PROVIDER, OTHER = 1, 2
PVC = 10**18


def usage_error(result: Any, text: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert text in result.stderr + result.stdout, result.stderr


def warp_to(node: Any, timestamp: int) -> None:
    now = head_time(node)
    if now < timestamp:
        node.result("evm_increaseTime", timestamp - now)
        node.result("evm_mine", timestamp)


def test_status_and_epoch_on_a_fresh_chain(chain: Any) -> None:
    doc = ok(pv(chain, "dividends", "status", "--json"))
    assert doc["address"] == "0x000000000000000000000000000000000000200A"
    assert doc["currentEpoch"] is None and doc["current"] is None
    assert doc["slotLength"] == 3600 and doc["reserved"] == "0"
    genesis = int(chain.result("eth_getBlockByNumber", "0x0", False)["timestamp"], 16)
    assert doc["firstEpochStart"] == genesis + MONTH
    human = pv(chain, "dividends", "status")
    assert human.exit_code == 0 and "epochs start at" in human.stdout
    epoch = ok(pv(chain, "dividends", "epoch", "0", "--json"))
    assert (epoch["slots"], epoch["requiredHeartbeats"], epoch["closed"]) == (720, 648, False)


def test_bad_usage_and_refusals(chain: Any) -> None:
    usage_error(pv(chain, "dividends", "donate", "lots", signer=OTHER), "bad amount")
    usage_error(pv(chain, "dividends", "donate", "0", signer=OTHER), "more than 0")
    usage_error(pv(chain, "dividends", "epoch", "-1"), "-1")
    usage_error(pv(chain, "dividends", "claimable"), "give one of")
    usage_error(pv(chain, "dividends", "claim", "0", "--for", "0x12", signer=OTHER), "--for")
    usage_error(
        pv(chain, "dividends", "flag", addr(OTHER), "0", "--reason", " ", signer=0), "--reason"
    )
    no_signer = pv(chain, "dividends", "close", "0")
    assert no_signer.exit_code == 1 and "--dev-account" in no_signer.stderr
    doc = refused(pv(chain, "dividends", "heartbeat", "1", "--json", signer=OTHER), "NotStarted")
    assert doc["args"]["firstEpochStart"] > head_time(chain)
    refused(
        pv(chain, "dividends", "flag", addr(PROVIDER), "0", "--reason", "x", signer=OTHER),
        "NotFlagger",
    )
    human = pv(chain, "dividends", "claim", "0", signer=OTHER)
    assert human.exit_code == 1 and "EpochNotClosed" in human.stderr
    unreachable = pv(None, "dividends", "status")
    assert unreachable.exit_code == 3 and "cannot reach" in unreachable.stderr


def test_a_one_slot_month_from_heartbeat_to_verify(
    chain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    foundation = ChainClient(chain.url, _signer(0))
    DividendPool(foundation).set_slot_length(MONTH)  # one slot: one heartbeat makes it online
    token = register_verified(chain, PROVIDER)
    list_resource(ChainClient(chain.url, _signer(PROVIDER)), token, window_days=90)
    donated = ok(pv(chain, "dividends", "donate", "12.5", "--json", signer=OTHER))
    assert donated["amount"] == str(125 * PVC // 10)

    start = ok(pv(chain, "dividends", "status", "--json"))["firstEpochStart"]
    warp_to(chain, start + 5)
    beat = ok(pv(chain, "dividends", "heartbeat", str(token), "--json", signer=PROVIDER))
    assert (beat["epoch"], beat["slot"], beat["becameOnline"], beat["credited"]) == (
        0,
        0,
        True,
        True,
    )
    refused(
        pv(chain, "dividends", "heartbeat", str(token), "--json", signer=PROVIDER),
        "AlreadyBeaten",
    )
    refused(
        pv(chain, "dividends", "heartbeat", str(token), "--json", signer=OTHER),
        "NotOwnerOrAgent",
    )
    dev = ok(pv(chain, "dividends", "device", str(token), "--json"))
    assert (dev["heartbeats"], dev["online"], dev["requiredHeartbeats"]) == (1, True, 1)
    status = ok(pv(chain, "dividends", "status", "--json"))
    assert status["currentEpoch"] == 0 and status["current"]["totalScore"] == beat["points"]

    refused(pv(chain, "dividends", "close", "0", "--json", signer=OTHER), "EpochNotEnded")
    warp_to(chain, start + MONTH)
    closed = ok(pv(chain, "dividends", "close", "0", "--json", signer=OTHER))
    pool = int(closed["pool"])
    assert pool >= 125 * PVC // 10 and closed["carriedOver"] is False
    mine = ok(pv(chain, "dividends", "claimable", "--json", signer=PROVIDER))
    assert mine == {
        "account": addr(PROVIDER),
        "total": str(pool),
        "epochs": [{"epoch": 0, "score": beat["points"], "amount": str(pool)}],
    }
    assert ok(pv(chain, "dividends", "claimable", "--for", addr(OTHER), "--json"))["total"] == "0"

    good = ok(pv(chain, "dividends", "verify", "0", "--json"))
    assert good["ok"] is True and good["pool"] == str(pool) and good["problems"] == []
    assert good["accounts"][0]["expectedPayout"] == str(pool)
    human = pv(chain, "dividends", "verify", "0")
    assert human.exit_code == 0 and "the contract agrees" in human.stdout

    paid = ok(pv(chain, "dividends", "claim", "0", "--json", signer=PROVIDER))
    assert (paid["amount"], paid["account"]) == (str(pool), addr(PROVIDER))
    refused(pv(chain, "dividends", "claim", "0", "--json", signer=PROVIDER), "AlreadyClaimed")
    assert ok(pv(chain, "dividends", "verify", "0", "--json"))["accounts"][0]["claimed"] is True

    # a contract that disagrees with the chain's data is named, with exit 1
    real = DividendPool.score_of
    monkeypatch.setattr(
        DividendPool, "score_of", lambda self, e, a, **kw: real(self, e, a, **kw) + 1
    )
    bad = pv(chain, "dividends", "verify", "0", "--json")
    assert bad.exit_code == 1
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and any("score" in p for p in doc["problems"])


def _signer(i: int) -> LocalAccount:
    signer: LocalAccount = Account.from_key(dev_accounts()[i].private_key)
    return signer
