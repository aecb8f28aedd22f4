"""The genesis file's `tokenomics` section: round trip, and every malformed field named."""

from __future__ import annotations

from typing import Any

import pytest

from powerverse.chain.exceptions import GenesisError
from powerverse.chain.genesis import Tokenomics, parse_genesis
from powerverse.economics.allocations import VESTED_NAMES

PVC = 10**18
NAMES = {n: "0x" + f"{i + 1:02x}" * 20 for i, n in enumerate(VESTED_NAMES)}


def _doc(**tok: Any) -> dict[str, Any]:
    section: dict[str, Any] = {"listingTime": 1_767_225_600, "beneficiaries": dict(NAMES)}
    section.update(tok)
    return {"chainId": 7, "timestamp": 1000, "tokenomics": section}


def test_section_round_trip() -> None:
    doc = _doc(
        presaleUnlockStart="0x6a1b5d00",
        presaleGenesis={"0x" + "ab" * 20: str(27_000_000 * PVC), "0x" + "cd" * 20: 10**24},
    )
    g = parse_genesis(doc)
    assert g.tokenomics is not None
    t = g.tokenomics
    assert t.listing_time == 1_767_225_600 and t.presale_unlock_start == 0x6A1B5D00
    assert t.beneficiaries["team"] == bytes.fromhex(NAMES["team"][2:])
    assert sum(t.presale_genesis.values()) == 28_000_000 * PVC
    assert parse_genesis(g.to_json()) == g
    params = t.params(1000)
    assert params.genesis_time == 1000 and params.presale_start == 0x6A1B5D00


def test_no_section_is_none_and_not_written() -> None:
    g = parse_genesis({"chainId": 7, "timestamp": 1000})
    assert g.tokenomics is None and "tokenomics" not in g.to_json()


def test_empty_presale_genesis_is_allowed_before_the_genesis_is_built() -> None:
    t = parse_genesis(_doc()).tokenomics
    assert isinstance(t, Tokenomics) and t.presale_genesis == {} and t.presale_unlock_start is None


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in NAMES.items() if k != name}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"chainId": 7, "timestamp": 1, "tokenomics": []}, "tokenomics must be an object"),
        (
            {"chainId": 7, "timestamp": 1, "tokenomics": {"beneficiaries": NAMES}},
            "lacks 'listingTime'",
        ),
        (_doc(listingTime="soon"), "tokenomics.listingTime: 'soon' is not a number"),
        (_doc(listingTime=-1), "tokenomics.listingTime: must not be negative"),
        (_doc(presaleUnlockStart=True), "tokenomics.presaleUnlockStart: expected a number"),
        (_doc(extra=1), "unknown field(s) 'extra'"),
        (_doc(beneficiaries=[]), "beneficiaries must be an object"),
        (_doc(beneficiaries={**NAMES, "dao": NAMES["seed"]}), "unknown allocation 'dao'"),
        (
            _doc(beneficiaries={**NAMES, "block_rewards": NAMES["seed"]}),
            "block_rewards is held by the emission pool",
        ),
        (
            _doc(beneficiaries={**NAMES, "airdrop": NAMES["seed"]}),
            "airdrop is held by the Airdrop contract",
        ),
        (_doc(beneficiaries=_without("team")), "beneficiaries lacks 'team'"),
        (
            _doc(beneficiaries={**NAMES, "seed": "0x1234"}),
            "beneficiaries.seed: '0x1234' is not an address",
        ),
        (_doc(beneficiaries={**NAMES, "seed": "0x" + "00" * 20}), "seed is the zero address"),
        (_doc(presaleGenesis=[]), "presaleGenesis must be an object"),
        (_doc(presaleGenesis={"nope": "1"}), "presaleGenesis key nope"),
        (_doc(presaleGenesis={"0x" + "ab" * 20: "x"}), "is not a number"),
        (
            _doc(presaleGenesis={"0x" + "ab" * 20: str(28_000_000 * PVC - 1)}),
            "presaleGenesis adds up to 27999999999999999999999999 wei",
        ),
    ],
)
def test_malformed_sections_are_named(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(GenesisError) as info:
        parse_genesis(doc)
    assert message in str(info.value)
