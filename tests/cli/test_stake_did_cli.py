"""`pv stake` and `pv did` against a real dev node: JSON output, refusals and exit codes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from typer.testing import CliRunner

from powerverse.cli.app import _register_subcommands, app
from powerverse.cli.stake import parse_amount
from powerverse.crypto.keys import dev_accounts
from powerverse.market.did import format_did
from powerverse.node.runner import NodeConfig
from tests.market.conftest import increase_time
from tests.rpc.conftest import ThreadedNode, run_threaded, stop_threaded

_register_subcommands()
runner = CliRunner()
PVC = 10**18
KEY = "0x" + "5a" * 32


@pytest.fixture(scope="module")
def dev_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedNode]:
    """One real dev node for this module."""
    node = run_threaded(
        NodeConfig(data_dir=tmp_path_factory.mktemp("cli") / "data", dev=True, rpc_port=0)
    )
    try:
        yield node
    finally:
        stop_threaded(node)


def addr(i: int) -> str:
    from eth_utils.address import to_checksum_address

    return to_checksum_address(dev_accounts()[i].address)


def pv(node: ThreadedNode, *args: str, signer: int | None = None) -> Any:
    """Run `pv ...` against the node; the result object."""
    extra = ["--rpc-url", node.url] + (["--dev-account", str(signer)] if signer is not None else [])
    return runner.invoke(app, [*args, *extra])


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_parse_amount() -> None:
    assert parse_amount("1.5") == 3 * PVC // 2
    assert parse_amount("2pvc") == 2 * PVC
    assert parse_amount("1000wei") == 1000
    for bad in ("-1", "abc", "1e-30", "1.5wei"):
        with pytest.raises(Exception):  # noqa: B017 - typer.Exit from fail()
            parse_amount(bad)


def test_stake_lifecycle_through_the_cli(dev_node: ThreadedNode) -> None:
    doc = ok(
        pv(
            dev_node,
            "stake", "register", "--consensus-key", KEY, "--amount", "2", "--commission-bps",
            "300", "--json",
            signer=1,
        )
    )  # fmt: skip
    assert doc["account"] == addr(1) and doc["totalStake"] == str(2 * PVC) and doc["active"]
    doc = ok(pv(dev_node, "stake", "delegate", addr(1), "3", "--json", signer=2))
    assert doc["delegation"] == str(3 * PVC)
    rows = ok(pv(dev_node, "stake", "validators", "--json"))["validators"]
    assert any(r["consensusKey"] == KEY and r["totalStake"] == str(5 * PVC) for r in rows)

    entry = ok(pv(dev_node, "stake", "undelegate", addr(1), "1000wei", "--json", signer=2))
    assert entry["amount"] == "1000"
    refused = pv(dev_node, "stake", "withdraw", "--json", signer=2)
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"] == "NothingToWithdraw"
    info = ok(pv(dev_node, "stake", "info", addr(2), "--json"))
    assert [u["amount"] for u in info["unbondings"]] == ["1000"] and info["validator"] is None

    head = int(dev_node.result("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    increase_time(dev_node, entry["completionTime"] - head + 1)
    assert ok(pv(dev_node, "stake", "withdraw", "--json", signer=2))["paid"] == "1000"

    # the foundation (dev account 0) holds SLASHER_ROLE
    denied = pv(dev_node, "stake", "jail", KEY, "--reason", "x", "--json", signer=2)
    assert denied.exit_code == 1
    assert json.loads(denied.stdout)["error"] == "AccessControlUnauthorizedAccount"
    slashed = ok(
        pv(
            dev_node,
            "stake", "slash", KEY, "--evidence-hash", "0x" + "01" * 32, "--fraction-bps", "1000",
            "--json",
            signer=0,
        )
    )  # fmt: skip
    assert slashed["jailed"] and slashed["slashed"] == str((5 * PVC - 1000) // 10)
    again = pv(dev_node, "stake", "slash", KEY, "--evidence-hash", "0x" + "01" * 32, signer=0)
    assert again.exit_code == 1 and "EvidenceAlreadyUsed" in again.stderr


def test_stake_usage_errors(dev_node: ThreadedNode, tmp_path: Path) -> None:
    no_signer = pv(dev_node, "stake", "withdraw")
    assert no_signer.exit_code == 1 and "--dev-account" in no_signer.stderr
    bad_key = pv(
        dev_node, "stake", "register", "--consensus-key", "0x12", "--amount", "1", signer=3
    )
    assert bad_key.exit_code == 2
    bad_amount = pv(dev_node, "stake", "delegate", addr(1), "lots", signer=3)
    assert bad_amount.exit_code == 2
    both = pv(dev_node, "stake", "slash", KEY, signer=0)
    assert both.exit_code == 2
    unreachable = runner.invoke(app, ["stake", "validators", "--rpc-url", "http://127.0.0.1:9"])
    assert unreachable.exit_code == 3
    evidence = tmp_path / "e.json"
    evidence.write_text(json.dumps({"validator": KEY, "height": 3}))
    doc = ok(
        pv(
            dev_node,
            "stake", "slash", KEY, "--evidence-file", str(evidence), "--fraction-bps", "100",
            "--json",
            signer=0,
        )
    )  # fmt: skip
    assert doc["evidenceHash"].startswith("0x") and len(doc["evidenceHash"]) == 66


def test_did_through_the_cli(dev_node: ThreadedNode, tmp_path: Path) -> None:
    me = format_did(addr(4))
    raw = b"\x07" * 32
    doc = ok(
        pv(
            dev_node,
            "did", "add-key", "me", "--id", "key-1", "--type", "Ed25519VerificationKey2020",
            "--key", raw.hex(), "--purpose", "authentication,assertionMethod", "--json",
            signer=4,
        )
    )  # fmt: skip
    assert doc == {"did": me, "ok": True}
    name = b"ssh-ed25519"
    blob = len(name).to_bytes(4, "big") + name + (32).to_bytes(4, "big") + raw
    pub = tmp_path / "id.pub"
    pub.write_text("ssh-ed25519 " + base64.b64encode(blob).decode() + " me@vm\n")
    ok(pv(dev_node, "did", "add-key", me, "--id", "ssh", "--ssh-key", str(pub), "--json", signer=4))
    ok(
        pv(
            dev_node,
            "did", "add-service", "me", "--id", "agent", "--type", "PowerVerseAgent",
            "--endpoint", "https://agent.example", "--json",
            signer=4,
        )
    )  # fmt: skip
    ok(pv(dev_node, "did", "add-delegate", "me", "--delegate", addr(5), "--type", "vmAccess",
          "--json", signer=4))  # fmt: skip

    result = ok(pv(dev_node, "did", "show", me, "--json"))
    document = result["didDocument"]
    assert document["id"] == me
    assert f"{me}#key-1" in document["assertionMethod"]
    assert f"{me}#delegate-1" in document["capabilityInvocation"]
    assert document["service"][0]["serviceEndpoint"] == "https://agent.example"
    assert "creditRecord" in result["didDocumentMetadata"]

    events = [c["event"] for c in ok(pv(dev_node, "did", "history", me, "--json"))["changes"]]
    assert events == ["KeyAdded", "KeyAdded", "ServiceAdded", "DelegateAdded"]

    denied = pv(dev_node, "did", "remove-key", me, "key-1", "--json", signer=5)
    assert denied.exit_code == 1 and json.loads(denied.stdout)["error"] == "NotController"
    ok(pv(dev_node, "did", "remove-key", me, "key-1", "--json", signer=4))
    assert pv(dev_node, "did", "deactivate", "me", signer=4).exit_code == 2  # needs --yes
    ok(pv(dev_node, "did", "deactivate", "me", "--yes", "--json", signer=4))
    gone = ok(pv(dev_node, "did", "show", me, "--json"))
    assert gone["didDocumentMetadata"]["deactivated"] is True


def test_did_usage_errors(dev_node: ThreadedNode) -> None:
    assert pv(dev_node, "did", "show", "did:pv:nope").exit_code == 1
    assert pv(dev_node, "did", "show", "me").exit_code == 2
    assert pv(dev_node, "did", "remove-key", "did:pv:zzz", "k", signer=6).exit_code == 2
    missing = pv(dev_node, "did", "add-key", "me", "--id", "k", signer=6)
    assert missing.exit_code == 2 and "--key" in missing.stderr
    bad_purpose = pv(
        dev_node, "did", "add-key", "me", "--id", "k", "--type", "T", "--key", "01",
        "--purpose", "everything", signer=6,
    )  # fmt: skip
    assert bad_purpose.exit_code == 2


def test_submit_evidence_through_the_cli(dev_node: ThreadedNode, tmp_path: Path) -> None:
    # Last in the module: it jails the dev validator (dev blocks keep coming regardless).
    from powerverse.node.runner import dev_validator
    from tests.market.test_staking_evidence import _votes

    key = "0x" + dev_validator().consensus.public_key.hex()
    record = tmp_path / "evidence.json"
    record.write_text(json.dumps({"messages": _votes(dev_node, dev_validator().consensus, 9)}))
    doc = ok(pv(dev_node, "stake", "submit-evidence", str(record), "--json", signer=5))
    assert doc["height"] == 9 and doc["jailed"] is True
    assert doc["consensusKey"] == key
    again = pv(dev_node, "stake", "submit-evidence", str(record), "--json", signer=5)
    assert again.exit_code == 1
    assert json.loads(again.stdout)["error"] == "EvidenceAlreadyUsed"
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"messages": ["0x00", "0x01"]}')
    refused = pv(dev_node, "stake", "submit-evidence", str(garbage), "--json", signer=5)
    assert refused.exit_code == 1 and json.loads(refused.stdout)["error"] == "InvalidEvidence"
    garbage.write_text("not json")
    assert pv(dev_node, "stake", "submit-evidence", str(garbage), signer=5).exit_code == 2


def test_liveness_and_downtime_through_the_cli(tmp_path: Path) -> None:
    from powerverse.node.runner import dev_validator
    from tests.market.test_staking_liveness import _mine

    node = run_threaded(NodeConfig(data_dir=tmp_path / "data", dev=True, rpc_port=0))
    try:
        key = "0x" + dev_validator().consensus.public_key.hex()
        doc = ok(pv(node, "stake", "liveness", key, "--json"))
        assert doc["liveUntil"] == doc["lastLive"] + 10_000 and doc["down"] is False
        early = pv(node, "stake", "report-downtime", key, "--json", signer=5)
        assert early.exit_code == 1 and json.loads(early.stdout)["error"] == "NotDown"
        from powerverse.market.staking import Staking
        from tests.market.conftest import make_factory

        signers = [Account.from_key(a.private_key) for a in dev_accounts(count=1)]
        Staking(make_factory(node, signers)(0)).set_liveness_window(16, "cli test")
        _mine(node, 20)
        assert ok(pv(node, "stake", "liveness", key, "--json"))["down"] is True
        jailed = ok(pv(node, "stake", "report-downtime", key, "--json", signer=5))
        assert jailed["jailed"] is True and jailed["active"] is False
        unknown = pv(node, "stake", "report-downtime", "0x" + "77" * 32, "--json", signer=5)
        assert json.loads(unknown.stdout)["error"] == "UnknownConsensusKey"
        assert pv(node, "stake", "liveness", "0x1234").exit_code == 2  # not a 32-byte key
    finally:
        stop_threaded(node)
