"""`pv arbitration` against a real dev node: a disputed rental ruled with a split, a rejected
task escalated to governance; refusals by error name, usage errors, an unreachable node."""

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
)
from tests.rpc.conftest import ThreadedNode

__all__ = ["chain"]


def test_help_lists_every_command() -> None:
    from powerverse.cli.app import app

    result = runner.invoke(app, ["arbitration", "--help"])
    assert result.exit_code == 0
    for command in ("list", "show", "evidence", "rule", "escalate"):
        assert command in result.stdout
    rule = runner.invoke(app, ["arbitration", "rule", "--help"])
    assert rule.exit_code == 0 and "--consumer-share" in rule.stdout


@pytest.mark.slow
def test_disputed_rental_is_ruled_with_a_split(chain: ThreadedNode) -> None:
    token = str(register_verified(chain, 1))
    ok(pv(chain, "market", "list", token, "--price", "0.1", "--json", signer=1))
    rid = str(ok(pv(chain, "market", "rent", token, "2", "--json", signer=2))["rentalId"])
    ok(pv(chain, "market", "confirm", rid, "--json", signer=1))
    opened = ok(pv(chain, "market", "dispute", rid, "--reason", "GPU missing", "--json",
                   signer=2))  # fmt: skip
    assert opened["handedToArbitration"] is True
    did = str(opened["disputeId"])

    listed = ok(pv(chain, "arbitration", "list", "--json"))["disputes"]
    assert [d["disputeId"] for d in listed] == [int(did)]
    shown = ok(pv(chain, "arbitration", "show", "--rental", rid, "--json"))
    assert shown["source"] == "Market" and shown["sourceId"] == int(rid)
    assert shown["status"] == "open" and shown["amount"] == str(2 * PVC // 10)
    assert shown["consumer"] == addr(2) and shown["provider"] == addr(1)
    ok(pv(chain, "arbitration", "evidence", did, "ipfs://bafy-logs", "--json", signer=2))
    refused(pv(chain, "arbitration", "evidence", did, "x", "--json", signer=3), "NotParty")

    share = "0.15"
    refused(pv(chain, "arbitration", "rule", did, "--consumer-share", share, "--reason", "r",
               "--json", signer=3), "NotArbiter")  # fmt: skip
    refused(pv(chain, "arbitration", "rule", did, "--consumer-share", "1", "--reason", "r",
               "--json", signer=0), "ShareExceedsAmount")  # fmt: skip
    ruled = ok(pv(chain, "arbitration", "rule", did, "--consumer-share", share, "--reason",
                  "half a GPU", "--json", signer=0))  # fmt: skip
    assert ruled["status"] == "ruled" and ruled["consumerShare"] == str(15 * PVC // 100)
    assert ruled["providerShare"] == str(5 * PVC // 100) and ruled["ruledBy"] == addr(0)
    assert ok(pv(chain, "market", "rental", rid, "--json"))["state"] == "resolved"
    assert ok(pv(chain, "market", "owed", addr(2), "--json"))["owed"] == str(15 * PVC // 100)
    refused(pv(chain, "arbitration", "rule", did, "--consumer-share", "0", "--reason", "again",
               "--json", signer=0), "AlreadyRuled")  # fmt: skip
    assert ok(pv(chain, "arbitration", "list", "--json"))["disputes"] == []
    assert len(ok(pv(chain, "arbitration", "list", "--all", "--json"))["disputes"]) == 1


@pytest.mark.slow
def test_rejected_task_is_escalated_to_governance(chain: ThreadedNode) -> None:
    token = str(register_verified(chain, 4))
    oid = str(ok(pv(chain, "task", "post", "--spec", "ipfs://t", "--reward", "1", "--deadline",
                    "+1d", "--json", signer=5))["orderId"])  # fmt: skip
    ok(pv(chain, "task", "take", oid, token, "--json", signer=4))
    ok(pv(chain, "task", "submit", oid, "--result", "ipfs://r", "--json", signer=4))
    rejected = ok(pv(chain, "task", "reject", oid, "--reason", "wrong output", "--json",
                     signer=5))  # fmt: skip
    did = str(rejected["disputeId"])
    assert ok(pv(chain, "arbitration", "show", "--order", oid, "--json"))["disputeId"] == int(did)

    # an arbiter without GOVERNANCE_ROLE escalates; then only governance may rule
    ok(pv(chain, "admin", "grant-role", "Arbitration", "arbiter", addr(7), "--json", signer=0))
    escalated = ok(pv(chain, "arbitration", "escalate", did, "--reason", "precedent",
                      "--json", signer=7))  # fmt: skip
    assert escalated["status"] == "escalated"
    refused(pv(chain, "arbitration", "escalate", did, "--reason", "x", "--json", signer=7),
            "AlreadyEscalated")  # fmt: skip
    refused(pv(chain, "arbitration", "rule", did, "--consumer-share", "0", "--reason", "r",
               "--json", signer=7), "NotGovernance")  # fmt: skip
    ruled = ok(pv(chain, "arbitration", "rule", did, "--consumer-share", "1", "--reason",
                  "DAO vote", "--json", signer=0))  # fmt: skip
    assert ruled["byDao"] is True and ruled["consumerShare"] == str(PVC)
    assert ok(pv(chain, "task", "show", oid, "--json"))["state"] == "resolved"
    text = pv(chain, "arbitration", "show", did)
    assert text.exit_code == 0 and "(DAO)" in text.stdout


def test_bad_usage_and_unreachable_node(chain: ThreadedNode) -> None:
    usage = [
        ("arbitration", "show"),
        ("arbitration", "show", "1", "--rental", "1"),
        ("arbitration", "rule", "1", "--consumer-share", "1"),  # no --reason
        ("arbitration", "rule", "1", "--consumer-share", "half", "--reason", "r"),
        ("arbitration", "escalate", "0", "--reason", "r"),
    ]
    for args in usage:
        assert pv(chain, *args, signer=0).exit_code == 2, args
    assert pv(chain, "arbitration", "show", "--rental", "999").exit_code == 1
    unknown = pv(chain, "arbitration", "rule", "999", "--consumer-share", "0", "--reason", "r",
                 signer=0)  # fmt: skip
    refused(unknown, "UnknownDispute")
    assert pv(None, "arbitration", "list").exit_code == 3
    assert pv(None, "arbitration", "escalate", "1", "--reason", "r", signer=0).exit_code == 3
