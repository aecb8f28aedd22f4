"""`pv resource` against a real dev node: register, read, update, verify, flag, weights."""

from __future__ import annotations

from pathlib import Path

from eth_utils.crypto import keccak

from tests.cli.chain_cli import (
    EVIDENCE,
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

    result = runner.invoke(app, ["resource", "--help"])
    assert result.exit_code == 0
    for command in (
        "register",
        "show",
        "list",
        "update-params",
        "set-metadata",
        "set-location",
        "set-agent",
        "verify",
        "flag",
        "score",
        "set-weights",
    ):
        assert command in result.stdout  # fmt: skip
    register = runner.invoke(app, ["resource", "register", "--help"])
    assert register.exit_code == 0 and "--gpu-memory-mib" in register.stdout


def test_register_verify_update_through_the_cli(chain: ThreadedNode, tmp_path: Path) -> None:
    doc = ok(pv(chain, "resource", "register", *RESOURCE_OPTIONS, "--agent", addr(9), "--json",
                signer=1))  # fmt: skip
    token = doc["tokenId"]
    assert doc["owner"] == addr(1) and doc["agent"] == addr(9)
    assert doc["verification"]["status"] == "pending" and doc["performPoints"] == 0
    assert doc["performPara"]["gpu"] == {
        "model": "NVIDIA RTX 4090", "memory_mib": 24576, "cuda_cores": 16384, "count": 2
    }  # fmt: skip
    assert doc["location"] == {"region": "cn-east", "latitude": 31.2304, "longitude": 121.4737}
    assert doc["tx"]["gasUsed"] > 0

    preview = ok(pv(chain, "resource", "score", *RESOURCE_OPTIONS[2:-8], "--json"))
    assert preview["performPoints"] > 0
    verified = ok(pv(chain, "resource", "verify", str(token), "--evidence-hash", EVIDENCE,
                     "--json", signer=0))  # fmt: skip
    assert verified["verification"]["status"] == "verified"
    assert verified["verification"]["verifier"] == addr(0)
    assert verified["performPoints"] == preview["performPoints"]

    mine = ok(pv(chain, "resource", "list", "--json", signer=1))
    assert mine["owner"] == addr(1) and [r["tokenId"] for r in mine["resources"]] == [token]
    assert ok(pv(chain, "resource", "list", "--owner", addr(2), "--json"))["resources"] == []

    updated = ok(pv(chain, "resource", "update-params", str(token), "--ram-mib", "131072",
                    "--json", signer=1))  # fmt: skip
    assert updated["performPara"]["ram"]["size_mib"] == 131072
    assert updated["performPara"]["cpu"]["cores"] == 16  # unchanged options stay
    assert updated["verification"]["status"] == "pending"

    ok(pv(chain, "resource", "set-metadata", str(token), "ipfs://v2", "--json", signer=1))
    ok(pv(chain, "resource", "set-location", str(token), "--region", "eu-west", "--lat",
          "48.85", "--lon", "2.35", "--json", signer=1))  # fmt: skip
    ok(pv(chain, "resource", "set-agent", str(token), "--endpoint", "https://b.example",
          "--json", signer=1))  # fmt: skip
    evidence = tmp_path / "bench.json"
    evidence.write_bytes(b'{"gflops": 1}')
    again = ok(pv(chain, "resource", "verify", str(token), "--evidence-file", str(evidence),
                  "--json", signer=0))  # fmt: skip
    assert again["verification"]["evidenceHash"] == "0x" + keccak(b'{"gflops": 1}').hex()

    shown = ok(pv(chain, "resource", "show", str(token), "--json"))
    assert shown["metadata"] == "ipfs://v2" and shown["location"]["region"] == "eu-west"
    assert shown["agentEndpoint"] == "https://b.example"
    assert shown["agent"] == "0x0000000000000000000000000000000000000000"
    text = pv(chain, "resource", "show", str(token))
    assert text.exit_code == 0 and f"resource #{token}" in text.stdout

    flagged = ok(pv(chain, "resource", "flag", str(token), "--evidence-hash", EVIDENCE,
                    "--reason", "benchmark mismatch", "--json", signer=0))  # fmt: skip
    assert flagged["verification"]["status"] == "flagged"


def test_weights_are_governed(chain: ThreadedNode) -> None:
    before = ok(pv(chain, "resource", "weights", "--json"))
    denied = pv(chain, "resource", "set-weights", "--gpu-memory", "7", "--json", signer=3)
    assert refused(denied, "AccessControlUnauthorizedAccount")["args"]["account"] == addr(3)
    changed = ok(pv(chain, "resource", "set-weights", "--gpu-memory", "7", "--json", signer=0))
    assert changed["gpu_memory"] == 7
    assert {k: v for k, v in changed.items() if k not in ("gpu_memory", "tx")} == {
        k: v for k, v in before.items() if k != "gpu_memory"
    }
    assert ok(pv(chain, "resource", "weights", "--json"))["gpu_memory"] == 7


def test_refusals_by_error_name(chain: ThreadedNode) -> None:
    token = ok(pv(chain, "resource", "register", *RESOURCE_OPTIONS, "--json", signer=4))
    token_id = str(token["tokenId"])
    refused(pv(chain, "resource", "verify", token_id, "--evidence-hash", EVIDENCE, "--json",
               signer=5), "AccessControlUnauthorizedAccount")  # fmt: skip
    refused(pv(chain, "resource", "set-metadata", token_id, "x", "--json", signer=5),
            "NotResourceOwner")  # fmt: skip
    plain = pv(chain, "resource", "set-metadata", token_id, "x", signer=5)
    refused(plain, "NotResourceOwner")  # message on stderr without --json
    refused(pv(chain, "resource", "show", "999", "--json"), "ERC721NonexistentToken")


def test_bad_usage_and_unreachable_node(chain: ThreadedNode) -> None:
    missing = pv(chain, "resource", "register", "--metadata", "m", "--cpu-model", "x", signer=6)
    assert missing.exit_code == 2 and "--ram-mib" in missing.stderr
    no_location = pv(chain, "resource", "register", *RESOURCE_OPTIONS[:-8], signer=6)
    assert no_location.exit_code == 2 and "--region" in no_location.stderr
    bad_agent = pv(chain, "resource", "register", *RESOURCE_OPTIONS, "--agent", "0x12", signer=6)
    assert bad_agent.exit_code == 2
    assert pv(chain, "resource", "verify", "1", signer=0).exit_code == 2  # no evidence
    assert pv(chain, "resource", "verify", "1", "--evidence-hash", "0x12", signer=0).exit_code == 2
    assert pv(chain, "resource", "set-weights", signer=0).exit_code == 2
    assert pv(chain, "resource", "show", "0").exit_code == 2
    no_signer = pv(chain, "resource", "set-metadata", "1", "x")
    assert no_signer.exit_code == 1 and "--dev-account" in no_signer.stderr
    assert pv(None, "resource", "show", "1").exit_code == 3
    assert pv(None, "resource", "register", *RESOURCE_OPTIONS, signer=1).exit_code == 3
