"""secp256k1 account keys: addresses, checksums, the dev mnemonic's accounts."""

from __future__ import annotations

import dataclasses

import pytest

from powerverse.crypto.exceptions import InvalidAddress, InvalidKey
from powerverse.crypto.keys import (
    DEV_MNEMONIC,
    SECP256K1_N,
    DevAccount,
    address_of,
    dev_accounts,
    generate_private_key,
    parse_address,
    to_checksum,
    validate_private_key,
)

# Hardhat's / Anvil's well-known accounts of the "test ... junk" mnemonic.
HARDHAT_0 = (
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
)
HARDHAT_1 = (
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
)
HARDHAT_19 = (
    "0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199",
    "df57089febbacf7ba0bc227dafbffa9fc08a93fdc68e1e42411a14efcf23656e",
)


def test_dev_mnemonic_is_hardhats() -> None:
    assert DEV_MNEMONIC == "test test test test test test test test test test test junk"


def test_dev_accounts_match_hardhat() -> None:
    accounts = dev_accounts()
    assert len(accounts) == 20
    assert [a.index for a in accounts] == list(range(20))
    for account, (checksum, key) in zip(
        (accounts[0], accounts[1], accounts[19]), (HARDHAT_0, HARDHAT_1, HARDHAT_19), strict=True
    ):
        assert account.checksum == checksum
        assert account.private_key == bytes.fromhex(key)
        assert account.address == bytes.fromhex(checksum[2:])
    assert len({a.address for a in accounts}) == 20


def test_dev_accounts_count_and_cache() -> None:
    assert dev_accounts(count=0) == []
    first_three = dev_accounts(count=3)
    assert first_three == dev_accounts()[:3]
    assert first_three[0] is dev_accounts(count=1)[0]  # cached, not derived again
    with pytest.raises(ValueError, match="count"):
        dev_accounts(count=-1)


def test_other_mnemonic_gives_other_accounts() -> None:
    other = "abandon " * 11 + "about"
    assert dev_accounts(other, count=1)[0].address != dev_accounts(count=1)[0].address


def test_dev_account_is_frozen_and_hides_its_key() -> None:
    account = dev_accounts(count=1)[0]
    assert isinstance(account, DevAccount)
    with pytest.raises(dataclasses.FrozenInstanceError):
        account.index = 5  # type: ignore[misc]
    assert HARDHAT_0[1] not in repr(account)


def test_address_of_known_key() -> None:
    assert to_checksum(address_of(bytes.fromhex(HARDHAT_0[1]))) == HARDHAT_0[0]
    assert address_of(bytes.fromhex(HARDHAT_0[1])) == bytes.fromhex(HARDHAT_0[0][2:])


@pytest.mark.parametrize(
    "bad",
    [b"", bytes(31), bytes(33), bytes(32), SECP256K1_N.to_bytes(32, "big"), b"\xff" * 32, 32],
)
def test_invalid_private_keys_are_refused(bad: bytes) -> None:
    with pytest.raises(InvalidKey):
        validate_private_key(bad)
    with pytest.raises(InvalidKey):
        address_of(bad)


def test_private_key_range_edges_are_accepted() -> None:
    assert validate_private_key((1).to_bytes(32, "big")) == (1).to_bytes(32, "big")
    top = (SECP256K1_N - 1).to_bytes(32, "big")
    assert len(address_of(top)) == 20


def test_generated_keys_are_valid_and_fresh() -> None:
    keys = {generate_private_key() for _ in range(5)}
    assert len(keys) == 5
    for key in keys:
        assert validate_private_key(key) == key


def test_to_checksum_rejects_wrong_lengths() -> None:
    for bad in (b"", bytes(19), bytes(21)):
        with pytest.raises(InvalidAddress):
            to_checksum(bad)


def test_parse_address_forms() -> None:
    raw = bytes.fromhex(HARDHAT_0[0][2:])
    assert parse_address(HARDHAT_0[0]) == raw
    assert parse_address(HARDHAT_0[0].lower()) == raw
    assert parse_address(HARDHAT_0[0][2:].upper()) == raw
    assert parse_address("  " + HARDHAT_0[0] + "\n") == raw


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0x",
        "0x1234",
        HARDHAT_0[0] + "00",
        "0x" + "g" * 40,
        HARDHAT_0[0].replace("f39F", "F39f"),  # mixed case, wrong checksum
    ],
)
def test_parse_address_rejects_bad_text(bad: str) -> None:
    with pytest.raises(InvalidAddress):
        parse_address(bad)
