"""Tokenomics at genesis: the pools, Vesting contracts and Airdrop predeployed, every balance
adding up to the total supply, and `check_genesis` naming each way a genesis can be wrong."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from eth_utils.crypto import keccak

from powerverse.chain.blockchain import genesis_hash
from powerverse.chain.genesis import (
    DEFAULT_STAKE,
    PVC,
    Account,
    Genesis,
    Tokenomics,
    Validator,
    dev_genesis,
    load_genesis,
)
from powerverse.cli.devnet import devnet_genesis
from powerverse.contracts.exceptions import ContractsError
from powerverse.contracts.system import (
    AIRDROP,
    DIVIDEND_POOL,
    EMISSION_POOL,
    STAKING,
    TOKENOMICS_ADDRESSES,
    TOKENOMICS_CONTRACTS,
    dev_system_config,
    dev_tokenomics,
    with_system_contracts,
)
from powerverse.contracts.tokenomics import check_genesis
from powerverse.crypto.keys import dev_accounts
from powerverse.economics.allocations import VESTED_NAMES, allocation
from powerverse.economics.constants import TOTAL_SUPPLY
from powerverse.node.runner import NodeConfig, resolve_genesis
from powerverse.node.validator_key import ValidatorKey

M = 1_000_000 * PVC
T0 = 1_767_225_600


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Genesis:
    return resolve_genesis(NodeConfig(dev=True), tmp_path_factory.mktemp("dev"))


def test_addresses() -> None:
    assert {n: "0x" + a.hex()[-4:] for n, a in TOKENOMICS_ADDRESSES.items()} == {
        "block_rewards": "0x2000",
        "seed": "0x2001",
        "angel": "0x2002",
        "series_a": "0x2003",
        "presale": "0x2004",
        "airdrop": "0x2005",
        "team": "0x2006",
        "compliance_advisors": "0x2007",
        "operations_advisors": "0x2008",
        "foundation": "0x2009",
    }
    assert all(a == bytes(18) + a[-2:] for a in TOKENOMICS_ADDRESSES.values())
    assert (0x200A).to_bytes(20, "big") == DIVIDEND_POOL  # not an allocation
    assert DIVIDEND_POOL not in TOKENOMICS_ADDRESSES.values()
    assert {c.address for c in TOKENOMICS_CONTRACTS} == (
        set(TOKENOMICS_ADDRESSES.values()) - {EMISSION_POOL}
    ) | {DIVIDEND_POOL}


def test_dev_genesis_holds_the_whole_supply(dev: Genesis) -> None:
    assert dev.total_balance() == TOTAL_SUPPLY == 1_400_000_000 * PVC
    assert dev.tokenomics is not None and dev.tokenomics.listing_time == dev.timestamp
    pool = dev.alloc[EMISSION_POOL]
    assert pool.balance == 280 * M and not pool.code and not pool.storage and pool.nonce == 0
    assert dev.alloc[AIRDROP].balance == 28 * M and dev.alloc[AIRDROP].code
    for name in VESTED_NAMES:
        held = allocation(name).total - (28 * M if name == "presale" else 0)
        acct = dev.alloc[TOKENOMICS_ADDRESSES[name]]
        assert acct.balance == held and acct.code and acct.nonce == 1, name
    for a in dev_accounts():
        assert dev.alloc[a.address].balance == 10_000 * PVC  # unchanged
    presale = dev.tokenomics.beneficiaries["presale"]
    # 28M less the 20 dev accounts and the dev validator's stake (minted into Staking)
    assert dev.alloc[presale].balance == 28 * M - 20 * 10_000 * PVC - DEFAULT_STAKE
    assert dev.alloc[STAKING].balance == DEFAULT_STAKE
    assert sum(dev.tokenomics.presale_genesis.values()) == 28 * M
    assert dev.tokenomics.presale_genesis[STAKING] == DEFAULT_STAKE
    dividends = dev.alloc[DIVIDEND_POOL]
    assert dividends.code and dividends.balance == 0
    assert check_genesis(dev).ok, check_genesis(dev).problems


def test_dev_beneficiaries_are_dev_accounts_20_to_27() -> None:
    extra = dev_accounts(count=28)[20:]
    assert list(dev_tokenomics(5).beneficiaries.values()) == [a.address for a in extra]
    assert list(dev_tokenomics(5).beneficiaries) == list(VESTED_NAMES)


def test_devnet_genesis_pays_validators_from_the_presale_part() -> None:
    keys = [ValidatorKey.from_label(f"t-{i}") for i in range(4)]
    g = devnet_genesis(keys, T0)
    assert g.total_balance() == TOTAL_SUPPLY
    assert g.tokenomics is not None
    presale = g.tokenomics.beneficiaries["presale"]
    spent = 24 * 10_000 * PVC + 4 * DEFAULT_STAKE
    assert g.alloc[presale].balance == 28 * M - spent
    assert check_genesis(g).ok, check_genesis(g).problems


def test_round_trip_keeps_the_section_and_the_hash(dev: Genesis, tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    dev.dump(path)
    loaded = load_genesis(path)
    assert loaded == dev
    assert genesis_hash(loaded) == genesis_hash(dev)


def _base(alloc: dict[bytes, Account], **tok: object) -> Genesis:
    tokenomics = replace(dev_tokenomics(T0), **tok)  # type: ignore[arg-type]
    return Genesis(chain_id=9, timestamp=T0, alloc=alloc, tokenomics=tokenomics)


def test_too_much_outside_the_pools_is_refused() -> None:
    rich = {b"\x11" * 20: Account(balance=28 * M + 1)}
    with pytest.raises(ContractsError, match="more than the presale's genesis part"):
        with_system_contracts(_base(rich), dev_system_config())
    exact = with_system_contracts(
        _base({b"\x11" * 20: Account(balance=28 * M)}), dev_system_config()
    )
    assert exact.total_balance() == TOTAL_SUPPLY
    assert check_genesis(exact).ok, check_genesis(exact).problems


def test_validator_stakes_count_against_the_presale_part() -> None:
    v = Validator(b"\x22" * 20, b"\x01" * 32, 28 * M)
    g = replace(_base({}), validators=(v,))
    with pytest.raises(ContractsError, match="more than the presale's genesis part"):
        with_system_contracts(
            replace(g, alloc={b"\x11" * 20: Account(balance=1)}), dev_system_config()
        )
    ok = with_system_contracts(g, dev_system_config())
    assert ok.alloc[STAKING].balance == 28 * M and ok.total_balance() == TOTAL_SUPPLY


def test_a_pool_beneficiary_or_a_taken_pool_address_is_refused() -> None:
    tok = dev_tokenomics(T0)
    bad = {**tok.beneficiaries, "presale": EMISSION_POOL}
    with pytest.raises(ContractsError, match="cannot be a tokenomics pool"):
        with_system_contracts(_base({}, beneficiaries=bad), dev_system_config())
    with pytest.raises(ContractsError, match="already allocates"):
        with_system_contracts(_base({EMISSION_POOL: Account(balance=1)}), dev_system_config())


def test_a_genesis_without_tokenomics_gets_none() -> None:
    plain = dev_genesis(T0, [a.address for a in dev_accounts()])
    g = with_system_contracts(plain, dev_system_config())
    assert g.tokenomics is None and EMISSION_POOL not in g.alloc and AIRDROP not in g.alloc
    report = check_genesis(g)
    assert not report.ok
    assert any("no tokenomics section" in p for p in report.problems)
    assert any("not the total supply" in p for p in report.problems)


# ---------------------------------------------------------------- check_genesis mismatches


def _problems(g: Genesis) -> list[str]:
    return list(check_genesis(g).problems)


def _with_alloc(g: Genesis, address: bytes, **change: object) -> Genesis:
    return replace(g, alloc={**g.alloc, address: replace(g.alloc[address], **change)})  # type: ignore[arg-type]


def test_check_names_a_wrong_pool_balance(dev: Genesis) -> None:
    g = _with_alloc(dev, EMISSION_POOL, balance=280 * M - 1)
    found = _problems(g)
    assert any(
        "block_rewards at 0x0000000000000000000000000000000000002000 holds" in p for p in found
    )
    assert any("not the total supply" in p for p in found)


def test_check_names_a_tampered_installment(dev: Genesis) -> None:
    seed = TOKENOMICS_ADDRESSES["seed"]
    storage = dict(dev.alloc[seed].storage)
    # `_installments` is the array at slot 0: element i at keccak(0) + i, time | amount << 64
    slot = int.from_bytes(keccak((0).to_bytes(32, "big")), "big") + 3
    storage[slot] += 1  # installment 3 one second later
    found = _problems(_with_alloc(dev, seed, storage=storage))
    assert any("seed: the storage at" in p for p in found)
    assert any(p.startswith("seed: installment 3 is 14,000,000 PVC at ") for p in found)


def test_check_names_a_wrong_beneficiary(dev: Genesis) -> None:
    assert dev.tokenomics is not None
    other = {**dev.tokenomics.beneficiaries, "team": b"\x33" * 20}
    g = replace(dev, tokenomics=replace(dev.tokenomics, beneficiaries=other))
    found = _problems(g)
    assert any(p.startswith("team: pays ") and "the genesis names" in p for p in found)
    assert any("team: the code at" in p for p in found)  # the beneficiary is in the code


def test_check_names_a_missing_contract_and_unlisted_balances(dev: Genesis) -> None:
    alloc = dict(dev.alloc)
    del alloc[AIRDROP]
    alloc[b"\x44" * 20] = Account(balance=5)
    found = _problems(replace(dev, alloc=alloc))
    assert any("airdrop: no contract at" in p for p in found)
    assert any("neither a tokenomics pool nor listed in presaleGenesis" in p for p in found)


def test_check_names_a_presale_genesis_list_that_does_not_match(dev: Genesis) -> None:
    assert dev.tokenomics is not None
    listed = dict(dev.tokenomics.presale_genesis)
    first = dev_accounts()[0].address
    listed[first] += 1
    g = replace(dev, tokenomics=replace(dev.tokenomics, presale_genesis=listed))
    found = _problems(g)
    assert any("presaleGenesis lists" in p and "not 28,000,000 PVC" in p for p in found)
    assert any(
        p.startswith(f"presale genesis part: 0x{first.hex()}"[:30])
        or "holds 10,000 PVC, presaleGenesis lists" in p
        for p in found
    )


def test_check_names_a_vesting_moved_to_another_schedule(dev: Genesis) -> None:
    assert dev.tokenomics is not None
    later = replace(dev.tokenomics, listing_time=dev.tokenomics.listing_time + 1)
    found = _problems(replace(dev, tokenomics=later))
    for name in VESTED_NAMES:
        if name != "presale":  # the presale's installments follow 31 May, not the listing
            assert any(p.startswith(f"{name}: installment 0 ") for p in found), name


def test_tokenomics_section_round_trip_without_presale_start() -> None:
    tok = Tokenomics(listing_time=5, beneficiaries=dev_tokenomics(0).beneficiaries)
    assert "presaleUnlockStart" not in tok.to_json()
    withstart = replace(tok, presale_unlock_start=99)
    assert withstart.to_json()["presaleUnlockStart"] == 99
