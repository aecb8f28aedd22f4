"""`pv tokenomics`, `pv airdrop` and the tokenomics options of `pv genesis init`: JSON output,
human tables, bad input (exit 2), refusals (exit 1), against a real dev node where needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from powerverse.chain.genesis import load_genesis
from powerverse.contracts.system import TOKENOMICS_ADDRESSES
from powerverse.economics.allocations import ALLOCATION_NAMES, VESTED_NAMES, TokenomicsParams
from powerverse.economics.schedule import schedule_at
from powerverse.market.tokenomics import MerkleTree
from tests.cli.chain_cli import GROUPS, PVC, addr, chain, head_time, ok, pv, refused, runner

__all__ = ["chain"]  # the module-scoped dev node fixture

JAN_1_2026 = 1_767_225_600
DAY = 86_400


def run(*args: str) -> Any:
    """`pv ...` without a node."""
    group = GROUPS[args[0]]
    assert group is not None
    return runner.invoke(group, list(args[1:]))


def usage_error(result: Any, text: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert text in result.stderr + result.stdout, result.stderr


# ---------------------------------------------------------------- schedule


def test_schedule_json_is_exactly_the_table() -> None:
    result = run(
        "tokenomics", "schedule", "--listing", "2026-01-01", "--at", "2026-03-02", "--json"
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert list(doc) == ["allocations"]
    rows = doc["allocations"]
    assert [r["name"] for r in rows] == list(ALLOCATION_NAMES)
    assert all(list(r) == ["name", "total", "unlocked", "locked"] for r in rows)
    params = TokenomicsParams(listing_time=JAN_1_2026, genesis_time=JAN_1_2026)
    expected = schedule_at(params, JAN_1_2026 + 60 * DAY)
    assert rows == [
        {
            "name": s.name,
            "total": str(s.total),
            "unlocked": str(s.unlocked),
            "locked": str(s.locked),
        }
        for s in expected
    ]
    seed = rows[1]
    assert seed == {
        "name": "seed",
        "total": str(140_000_000 * PVC),
        "unlocked": str(14_000_000 * PVC),
        "locked": str(126_000_000 * PVC),
    }


def test_schedule_accepts_times_and_unix_seconds() -> None:
    a = run("tokenomics", "schedule", "--listing", "2026-01-01T00:00:00Z", "--at",
            str(JAN_1_2026 + 60 * DAY - 1), "--json")  # fmt: skip
    b = run("tokenomics", "schedule", "--listing", str(JAN_1_2026), "--at",
            "2026-03-01T23:59:59+00:00", "--json")  # fmt: skip
    assert a.exit_code == b.exit_code == 0
    assert a.stdout == b.stdout
    assert json.loads(a.stdout)["allocations"][1]["unlocked"] == "0"  # a second before


def test_schedule_presale_unlock_start() -> None:
    result = run("tokenomics", "schedule", "--listing", "2026-01-01", "--presale-unlock-start",
                 "2026-02-01", "--at", "2026-02-01", "--json")  # fmt: skip
    presale = json.loads(result.stdout)["allocations"][4]
    assert presale["unlocked"] == str(35_000_000 * PVC)


def test_schedule_human_table() -> None:
    result = run("tokenomics", "schedule", "--listing", "2026-01-01", "--at", "2026-03-02")
    assert result.exit_code == 0
    for name in ALLOCATION_NAMES:
        assert name in result.stdout
    assert "1,400,000,000.0000" in result.stdout and "14,000,000.0000" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "2026-01-01"], "exactly one of --genesis FILE or --listing DATE"),
        (["--listing", "2026-01-01", "--genesis", "g.json", "--at", "2026-01-01"], "exactly one"),
        (["--listing", "2026-13-01", "--at", "2026-01-01"], "--listing '2026-13-01'"),
        (["--listing", "2026-01-01", "--at", "tomorrow"], "--at 'tomorrow'"),
        (["--listing", "1969-12-31", "--at", "2026-01-01"], "from 1970 on"),
        (["--genesis", "/nonexistent/g.json", "--at", "2026-01-01"], "does not exist"),
    ],
)
def test_schedule_bad_input(args: list[str], message: str) -> None:
    usage_error(run("tokenomics", "schedule", *args), message)


def test_schedule_needs_at() -> None:
    assert run("tokenomics", "schedule", "--listing", "2026-01-01").exit_code == 2


# ---------------------------------------------------------------- genesis files and check


@pytest.fixture(scope="module")
def dev_genesis_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("g") / "dev.json"
    result = run("genesis", "dev", "--timestamp", str(JAN_1_2026), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_schedule_from_a_genesis_equals_its_listing(dev_genesis_file: Path) -> None:
    a = run("tokenomics", "schedule", "--genesis", str(dev_genesis_file), "--at", "2027-06-01",
            "--json")  # fmt: skip
    b = run("tokenomics", "schedule", "--listing", "2026-01-01", "--at", "2027-06-01", "--json")
    assert a.exit_code == 0 and a.stdout == b.stdout


def test_check_passes_the_dev_genesis(dev_genesis_file: Path) -> None:
    result = run("tokenomics", "check", str(dev_genesis_file), "--json")
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["problems"] == [] and doc["totalBalance"] == str(1_400_000_000 * PVC)
    assert [r["name"] for r in doc["allocations"]] == list(ALLOCATION_NAMES)
    human = run("tokenomics", "check", str(dev_genesis_file))
    assert human.exit_code == 0 and "holds the tokenomics table" in human.stdout


def test_check_names_each_mismatch(dev_genesis_file: Path, tmp_path: Path) -> None:
    doc = json.loads(dev_genesis_file.read_text())
    pool = "0x0000000000000000000000000000000000002000"
    doc["alloc"][pool]["balance"] = str(280_000_000 * PVC - 1)
    stranger = "0x" + "77" * 20
    doc["alloc"][stranger] = {"balance": "1"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = run("tokenomics", "check", str(bad))
    assert result.exit_code == 1
    assert "block_rewards at 0x0000000000000000000000000000000000002000 holds" in result.stderr
    assert "neither a tokenomics pool nor listed in presaleGenesis" in result.stderr
    assert "BAD block_rewards" in result.stdout
    as_json = run("tokenomics", "check", str(bad), "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert not report["ok"] and len(report["problems"]) == 2
    assert not report["allocations"][0]["ok"] and report["allocations"][1]["ok"]


def test_check_bad_files(tmp_path: Path) -> None:
    usage_error(run("tokenomics", "check", str(tmp_path / "nope.json")), "does not exist")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    usage_error(run("tokenomics", "check", str(broken)), "not valid JSON")
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"chainId": 5, "timestamp": 1}))
    result = run("tokenomics", "check", str(plain))
    assert result.exit_code == 1 and "no tokenomics section" in result.stderr
    usage_error(
        run("tokenomics", "schedule", "--genesis", str(plain), "--at", "2026-01-01"),
        "has no tokenomics section",
    )


def _validator_key(tmp_path: Path) -> Path:
    key = tmp_path / "v.json"
    assert run("genesis", "validator-key", "--out", str(key)).exit_code == 0
    return key


def test_genesis_init_with_tokenomics(tmp_path: Path) -> None:
    names = {"seed": "0x" + "a1" * 20, "team": "0x" + "a2" * 20, "presale": "0x" + "a3" * 20}
    file = tmp_path / "beneficiaries.json"
    file.write_text(json.dumps(names))
    out = tmp_path / "g.json"
    foundation = "0x" + "f0" * 20
    result = run(
        "genesis", "init", "--chain-id", "9", "--validator-key", str(_validator_key(tmp_path)),
        "--timestamp", str(JAN_1_2026 - 10 * DAY), "--listing-time", "2026-01-01",
        "--presale-unlock-start", "2026-07-01", "--beneficiaries", str(file),
        "--beneficiary", "angel=0x" + "a4" * 20, "--beneficiary", "team=0x" + "a5" * 20,
        "--foundation", foundation, "--alloc", "0x" + "11" * 20 + "=1000000", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "vest to the foundation" in result.stderr and "series_a" in result.stderr
    genesis = load_genesis(out)
    t = genesis.tokenomics
    assert t is not None and t.listing_time == JAN_1_2026
    assert t.presale_unlock_start == 1_782_864_000  # 2026-07-01
    assert t.beneficiaries["seed"] == bytes.fromhex("a1" * 20)
    assert t.beneficiaries["angel"] == bytes.fromhex("a4" * 20)
    assert t.beneficiaries["team"] == bytes.fromhex("a5" * 20)  # the option wins over the file
    assert t.beneficiaries["foundation"] == bytes.fromhex("f0" * 20)  # defaulted
    presale = bytes.fromhex("a3" * 20)
    # 28M less the --alloc and the validator's 1,000 PVC stake
    assert genesis.alloc[presale].balance == (28_000_000 - 1_000_000 - 1_000) * PVC
    assert genesis.total_balance() == 1_400_000_000 * PVC
    checked = run("tokenomics", "check", str(out), "--json")
    assert checked.exit_code == 0, checked.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--beneficiary", "dao=0x" + "a1" * 20], "unknown allocation"),
        (["--beneficiary", "airdrop=0x" + "a1" * 20], "takes no beneficiary"),
        (["--beneficiary", "seed"], "expected ALLOCATION=ADDRESS"),
        (["--beneficiary", "seed=0x12"], "is not a 0x-prefixed 20-byte address"),
        (["--beneficiary", "seed=0x" + "00" * 20], "zero address"),
        (["--listing-time", "next week"], "--listing-time 'next week'"),
        (["--presale-unlock-start", "2026-02-30"], "--presale-unlock-start"),
        (["--beneficiaries", "/nonexistent.json"], "cannot read JSON"),
    ],
)
def test_genesis_init_bad_tokenomics_options(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "g.json"
    result = run("genesis", "init", "--chain-id", "9", "--validator-key",
                 str(_validator_key(tmp_path)), "--out", str(out), *extra)  # fmt: skip
    usage_error(result, message)
    assert not out.exists()


def test_genesis_init_refuses_balances_beyond_the_presale_part(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    result = run("genesis", "init", "--chain-id", "9", "--validator-key",
                 str(_validator_key(tmp_path)), "--alloc", "0x" + "11" * 20 + "=28000000",
                 "--out", str(out))  # fmt: skip
    assert result.exit_code == 1
    assert "more than the presale's genesis part" in result.stderr
    assert not out.exists()


# ---------------------------------------------------------------- release on a dev node


def test_release_bad_allocation_names(chain: Any) -> None:
    usage_error(pv(chain, "tokenomics", "release", "nope", signer=1), "unknown allocation 'nope'")
    usage_error(pv(chain, "tokenomics", "release", "block_rewards", signer=1), "no Vesting")
    usage_error(pv(chain, "tokenomics", "release", "airdrop", signer=1), "pv airdrop claim")
    usage_error(pv(chain, "tokenomics", "vesting", "nope"), "unknown allocation")


def test_release_needs_a_signer_and_a_node() -> None:
    result = pv(None, "tokenomics", "release", "seed", signer=1)
    assert result.exit_code == 3


def test_release_before_and_after_the_first_installment(chain: Any) -> None:
    listing = int(chain.result("eth_getBlockByNumber", "0x0", False)["timestamp"], 16)
    early = pv(chain, "tokenomics", "release", "seed", signer=1)
    assert early.exit_code == 1 and "nothing due yet for seed" in early.stderr
    as_json = refused(pv(chain, "tokenomics", "release", "seed", "--json", signer=1), "NothingDue")
    assert as_json["args"]["nextTime"] == listing + 60 * DAY
    first = listing + 60 * DAY
    if head_time(chain) < first - 1:
        chain.result("evm_mine", first - 1)  # calls run one second after the head
    doc = ok(pv(chain, "tokenomics", "release", "seed", "--json", signer=1))
    assert doc["allocation"] == "seed" and doc["amount"] == str(14_000_000 * PVC)
    assert doc["releasedCount"] == 1
    assert (
        doc["beneficiary"]
        == ok(pv(chain, "tokenomics", "vesting", "seed", "--json"))["vesting"][0]["beneficiary"]
    )
    again = pv(chain, "tokenomics", "release", "seed", signer=2)
    assert again.exit_code == 1 and "next installment unlocks at" in again.stderr
    rows = ok(pv(chain, "tokenomics", "vesting", "--json"))["vesting"]
    assert [r["allocation"] for r in rows] == list(VESTED_NAMES)
    assert rows[0]["released"] == str(14_000_000 * PVC)
    assert rows[0]["address"].lower() == "0x" + TOKENOMICS_ADDRESSES["seed"].hex()
    human = pv(chain, "tokenomics", "vesting")
    assert human.exit_code == 0 and "operations_advisors" in human.stdout


# ---------------------------------------------------------------- airdrop


def _fresh(i: int) -> str:
    return str(Account.from_key((0xC11 + i).to_bytes(32, "big")).address)


def test_airdrop_register_claim_status(chain: Any) -> None:
    refused(pv(chain, "airdrop", "register", addr(5), "--json", signer=4),
            "AccessControlUnauthorizedAccount")  # fmt: skip
    doc = ok(pv(chain, "airdrop", "register", addr(5), addr(6), addr(5), "--json", signer=0))
    assert doc["registered"] == 2 and doc["skipped"] == 0 and len(doc["transactions"]) == 1
    again = ok(pv(chain, "airdrop", "register", addr(5), "--json", signer=0))
    assert again == {**again, "registered": 0, "skipped": 1}
    claim = ok(pv(chain, "airdrop", "claim", "--json", signer=5))
    assert claim["account"] == addr(5) and claim["amount"] == str(500 * PVC)
    assert not claim["byProof"]
    refused(pv(chain, "airdrop", "claim", "--json", signer=5), "AlreadyClaimed")
    for_other = ok(pv(chain, "airdrop", "claim", "--for", addr(6), "--json", signer=9))
    assert for_other["account"] == addr(6)
    refused(pv(chain, "airdrop", "claim", "--json", signer=7), "NotEligible")
    human = pv(chain, "airdrop", "claim", signer=7)
    assert human.exit_code == 1 and "NotEligible" in human.stderr
    status = ok(pv(chain, "airdrop", "status", addr(5), "--json"))
    assert status["claimAmount"] == str(500 * PVC) and status["maxClaims"] == 56_000
    assert status["claimCount"] >= 2 and status["remainingClaims"] == 56_000 - status["claimCount"]
    assert status["registered"] and status["claimed"]
    text = pv(chain, "airdrop", "status")
    assert text.exit_code == 0 and "500 PVC per claim" in text.stdout


def test_airdrop_tree_root_and_proof_claims(chain: Any, tmp_path: Path) -> None:
    members = [addr(11), addr(12)] + [_fresh(i) for i in range(3)]
    listing = tmp_path / "members.txt"
    listing.write_text("\n".join(members) + "\n")
    tree_file = tmp_path / "tree.json"
    built = run("airdrop", "tree", str(listing), "--out", str(tree_file), "--json")
    assert built.exit_code == 0, built.stderr
    doc = json.loads(built.stdout)
    assert doc == json.loads(tree_file.read_text()) == MerkleTree(members).to_json()
    refused(pv(chain, "airdrop", "set-root", doc["root"], "--json", signer=3),
            "AccessControlUnauthorizedAccount")  # fmt: skip
    set_doc = ok(pv(chain, "airdrop", "set-root", doc["root"], "--json", signer=0))
    assert set_doc["merkleRoot"] == doc["root"]
    # the tree file picks the signer's own proof
    claim = ok(pv(chain, "airdrop", "claim", "--proof", str(tree_file), "--json", signer=11))
    assert claim["byProof"] and claim["account"] == addr(11)
    # a bare proof list for someone else is refused by the contract
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(doc["proofs"][members[2]]))
    refused(
        pv(chain, "airdrop", "claim", "--proof", str(wrong), "--json", signer=12), "NotEligible"
    )
    right = tmp_path / "right.json"
    right.write_text(json.dumps(doc["proofs"][addr(12)]))
    assert ok(pv(chain, "airdrop", "claim", "--proof", str(right), "--json", signer=12))["byProof"]
    # claimed for a member without coin
    paid = ok(pv(chain, "airdrop", "claim", "--proof", str(tree_file), "--for", members[2],
                 "--json", signer=13))  # fmt: skip
    assert paid["account"] == members[2]
    # not in the tree file
    usage_error(pv(chain, "airdrop", "claim", "--proof", str(tree_file), signer=14),
                "is not in this tree")  # fmt: skip


def test_airdrop_bad_input(chain: Any, tmp_path: Path) -> None:
    usage_error(pv(chain, "airdrop", "set-root", "0x1234", signer=0), "ROOT must be 32 bytes")
    usage_error(pv(chain, "airdrop", "register", "0xnope", signer=0), "address")
    usage_error(pv(chain, "airdrop", "claim", "--for", "12", signer=0), "--for")
    bad = tmp_path / "bad.json"
    bad.write_text('{"proofs": 5}')
    usage_error(pv(chain, "airdrop", "claim", "--proof", str(bad), signer=0), "tree file")
    bad.write_text('["0x12"]')
    usage_error(pv(chain, "airdrop", "claim", "--proof", str(bad), signer=0), "32 bytes")
    usage_error(pv(chain, "airdrop", "claim", "--proof", str(tmp_path / "x"), signer=0),
                "cannot read JSON")  # fmt: skip
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    usage_error(run("airdrop", "tree", str(empty)), "non-empty JSON list")
    usage_error(run("airdrop", "tree", str(tmp_path / "missing")), "cannot read")
    result = pv(chain, "airdrop", "claim")
    assert result.exit_code == 1 and "--dev-account" in result.stderr
