"""`pv admin` against a real dev node: freezes, blacklists, the emergency stop, roles."""

from __future__ import annotations

from tests.cli.chain_cli import (
    RESOURCE_OPTIONS,
    addr,
    chain,
    ok,
    pv,
    refused,
    runner,
)
from tests.rpc.conftest import ThreadedNode

__all__ = ["chain"]


def test_help_lists_every_command() -> None:
    from powerverse.cli.app import app

    result = runner.invoke(app, ["admin", "--help"])
    assert result.exit_code == 0
    for command in (
        "freeze-account",
        "unfreeze-account",
        "blacklist-account",
        "unblacklist-account",
        "freeze-resource",
        "unfreeze-resource",
        "blacklist-resource",
        "unblacklist-resource",
        "pause",
        "unpause",
        "status",
        "grant-role",
    ):
        assert command in result.stdout  # fmt: skip
    freeze = runner.invoke(app, ["admin", "freeze-account", "--help"])
    assert freeze.exit_code == 0 and "--reason" in freeze.stdout


def test_freeze_and_blacklist_accounts_and_resources(chain: ThreadedNode) -> None:
    frozen = ok(pv(chain, "admin", "freeze-account", addr(5), "--reason", "spam", "--json",
                   signer=0))  # fmt: skip
    assert frozen["account"] == addr(5) and frozen["frozen"] and not frozen["blacklisted"]
    assert frozen["reason"] == "spam" and frozen["tx"]["gasUsed"] > 0
    refused(pv(chain, "admin", "freeze-account", addr(5), "--reason", "again", "--json",
               signer=0), "AccountAlreadyFrozen")  # fmt: skip
    # a frozen account starts nothing new
    refused(pv(chain, "resource", "register", *RESOURCE_OPTIONS, "--json", signer=5),
            "AccountBlocked")  # fmt: skip
    assert not ok(pv(chain, "admin", "unfreeze-account", addr(5), "--reason", "ok", "--json",
                     signer=0))["frozen"]  # fmt: skip

    banned = ok(pv(chain, "admin", "blacklist-account", addr(6), "--reason", "fraud", "--json",
                   signer=0))  # fmt: skip
    assert banned["blacklisted"]
    ok(pv(chain, "admin", "freeze-resource", "1", "--reason", "audit", "--json", signer=0))
    ok(pv(chain, "admin", "blacklist-resource", "2", "--reason", "fake", "--json", signer=0))
    status = ok(pv(chain, "admin", "status", "--account", addr(5), "--account", addr(6),
                   "--resource", "1", "--resource", "2", "--json"))  # fmt: skip
    assert status == {
        "paused": False,
        "accounts": [
            {"account": addr(5), "frozen": False, "blacklisted": False},
            {"account": addr(6), "frozen": False, "blacklisted": True},
        ],
        "resources": [
            {"tokenId": 1, "frozen": True, "blacklisted": False},
            {"tokenId": 2, "frozen": False, "blacklisted": True},
        ],
    }
    ok(pv(chain, "admin", "unblacklist-account", addr(6), "--reason", "appeal", "--json",
          signer=0))  # fmt: skip
    ok(pv(chain, "admin", "unfreeze-resource", "1", "--reason", "done", "--json", signer=0))
    ok(pv(chain, "admin", "unblacklist-resource", "2", "--reason", "ok", "--json", signer=0))
    refused(pv(chain, "admin", "unfreeze-resource", "1", "--reason", "x", "--json", signer=0),
            "ResourceNotFrozen")  # fmt: skip
    text = pv(chain, "admin", "status", "--resource", "1")
    assert text.exit_code == 0 and "resource #1: frozen False" in text.stdout


def test_pause_and_roles(chain: ThreadedNode) -> None:
    denied = pv(chain, "admin", "pause", "--reason", "x", "--json", signer=7)
    assert refused(denied, "AccessControlUnauthorizedAccount")["args"]["account"] == addr(7)
    assert ok(pv(chain, "admin", "pause", "--reason", "incident", "--json", signer=0))["paused"]
    assert ok(pv(chain, "admin", "status", "--json"))["paused"] is True
    refused(pv(chain, "admin", "pause", "--reason", "twice", "--json", signer=0), "EnforcedPause")
    # new rentals stop first thing while paused
    refused(pv(chain, "market", "rent", "9", "1", "--json", signer=8), "MarketPaused")
    assert not ok(pv(chain, "admin", "unpause", "--reason", "fixed", "--json", signer=0))["paused"]

    granted = ok(pv(chain, "admin", "grant-role", "ResourceNFT", "verifier", addr(7), "--json",
                    signer=0))  # fmt: skip
    assert granted["role"] == "VERIFIER_ROLE" and granted["hasRole"] is True
    held = ok(pv(chain, "admin", "has-role", "ResourceNFT", "VERIFIER_ROLE", addr(7), "--json"))
    assert held["hasRole"] is True
    revoked = ok(pv(chain, "admin", "revoke-role", "ResourceNFT", "verifier", addr(7), "--json",
                    signer=0))  # fmt: skip
    assert revoked["hasRole"] is False


def test_bad_usage_and_unreachable_node(chain: ThreadedNode) -> None:
    assert pv(chain, "admin", "freeze-account", addr(5), signer=0).exit_code == 2  # no --reason
    assert pv(chain, "admin", "freeze-account", "0xzz", "--reason", "r", signer=0).exit_code == 2
    assert pv(chain, "admin", "freeze-resource", "0", "--reason", "r", signer=0).exit_code == 2
    unknown = pv(chain, "admin", "grant-role", "Nope", "verifier", addr(1), signer=0)
    assert unknown.exit_code == 2 and "ResourceNFT" in unknown.stderr
    assert pv(chain, "admin", "has-role", "Market", "king", addr(1)).exit_code == 2
    assert pv(None, "admin", "status").exit_code == 3
    assert pv(None, "admin", "pause", "--reason", "r", signer=0).exit_code == 3
