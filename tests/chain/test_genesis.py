"""Genesis files: round trip and every malformed field refused with a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from powerverse.chain.blockchain import genesis_hash
from powerverse.chain.exceptions import GenesisError
from powerverse.chain.genesis import (
    DEV_BALANCE,
    DEV_CHAIN_ID,
    PVC,
    Account,
    Genesis,
    Validator,
    dev_genesis,
    load_genesis,
    parse_genesis,
)

ADDR = "0x" + "ab" * 20


def _doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"chainId": 7, "timestamp": 1000, "alloc": {ADDR: {"balance": "5"}}}
    doc.update(over)
    return doc


def _validator(key: int, stake: int = 1000 * PVC) -> dict[str, Any]:
    return {"address": ADDR, "consensusKey": "0x" + f"{key:02x}" * 32, "stake": str(stake)}


def test_round_trip(tmp_path: Path) -> None:
    g = Genesis(
        chain_id=9,
        timestamp=123,
        alloc={
            b"\x01" * 20: Account(balance=10**30, nonce=3, code=b"\x60\x00", storage={1: 2}),
        },
        validators=(Validator(b"\x02" * 20, b"\x03" * 32, 1000 * PVC),),
        extra_data=b"pv",
    )
    path = tmp_path / "g.json"
    g.dump(path)
    assert load_genesis(path) == g


def test_dev_genesis_funds_accounts() -> None:
    g = dev_genesis(1, [b"\x01" * 20, b"\x02" * 20])
    assert g.chain_id == DEV_CHAIN_ID
    assert all(a.balance == DEV_BALANCE for a in g.alloc.values())


def test_numbers_in_three_spellings() -> None:
    g = parse_genesis(_doc(gasLimit="0x1c9c380", alloc={ADDR: {"balance": 5, "nonce": "2"}}))
    assert g.gas_limit == 30_000_000
    acct = g.alloc[bytes.fromhex("ab" * 20)]
    assert (acct.balance, acct.nonce) == (5, 2)


def test_genesis_hash_is_deterministic_and_content_bound() -> None:
    g = parse_genesis(_doc())
    assert genesis_hash(g) == genesis_hash(parse_genesis(_doc()))
    assert genesis_hash(g) != genesis_hash(parse_genesis(_doc(timestamp=1001)))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "must be a JSON object"),
        ({"timestamp": 1}, "lacks 'chainId'"),
        (_doc(chainId=0), "chainId must be between"),
        (_doc(chainId="seven"), "is not a number"),
        (_doc(chainId=True), "got a boolean"),
        (_doc(timestamp=-1), "must not be negative"),
        (_doc(alloc=[]), "alloc must be an object"),
        (_doc(alloc={"0x12": {}}), "is not an address"),
        (_doc(alloc={ADDR: 5}), "must be an object"),
        (_doc(alloc={ADDR: {"code": "zz"}}), "0x-prefixed hex"),
        (_doc(alloc={ADDR: {"code": "0xzz"}}), "not valid hex"),
        (_doc(alloc={ADDR: {"storage": []}}), "storage must be an object"),
        (_doc(validators={}), "validators must be a list"),
        (_doc(validators=[{"address": ADDR, "consensusKey": "0x00"}]), "must be 32 bytes"),
        (_doc(gasLimit=10), "at least 5000"),
        (_doc(extraData="0x" + "00" * 33), "capped at 32 bytes"),
        (_doc(consensus=[]), "consensus must be an object"),
        (_doc(consensus={"stakeUnitWei": 0}), "stakeUnitWei must be positive"),
        (_doc(consensus={"tauCommittee": 0}), "must be positive"),
        (_doc(consensus={"tauProposer": 0}), "must be positive"),
        (_doc(consensus={"thresholdNumerator": 1, "thresholdDenominator": 2}), "at least 2/3"),
        (_doc(consensus={"thresholdNumerator": 3, "thresholdDenominator": 3}), "below 1"),
        (_doc(consensus={"thresholdDenominator": 0}), "at least 2/3"),
        (_doc(consensus={"priorityWindowMs": 2000}), "below proposeTimeoutMs"),
        (_doc(consensus={"stepTimeoutMs": 0}), "timeouts must be positive"),
        (_doc(validators=[_validator(1), _validator(1)]), "share a consensus key"),
        (_doc(validators=[_validator(1, stake=PVC - 1)]), "below one stake unit"),
    ],
)
def test_malformed_genesis_is_refused(doc: Any, message: str) -> None:
    with pytest.raises(GenesisError, match=message):
        parse_genesis(doc)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(GenesisError, match="does not exist"):
        load_genesis(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenesisError, match="not valid JSON"):
        load_genesis(bad)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(_doc()))
    assert load_genesis(ok).chain_id == 7
