"""The dev accounts of the Hardhat mnemonic, and more accounts derived from it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic

__all__ = ["DEV_ACCOUNT_BALANCE", "DEV_ACCOUNT_COUNT", "DEV_MNEMONIC", "Sender", "derive_senders"]

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 20
DEV_ACCOUNT_BALANCE = 10_000 * 10**18


@dataclass(frozen=True)
class Sender:
    """An account that signs bench transactions."""

    index: int
    address: str
    key: bytes

    @property
    def is_dev(self) -> bool:
        """True for the 20 accounts the dev chain funds at genesis."""
        return self.index < DEV_ACCOUNT_COUNT


@cache
def _seed() -> bytes:
    return seed_from_mnemonic(DEV_MNEMONIC, "")


@cache
def _sender(index: int) -> Sender:
    key = key_from_seed(_seed(), f"m/44'/60'/0'/0/{index}")
    return Sender(index, Account.from_key(key).address, key)


def derive_senders(count: int) -> list[Sender]:
    """Return accounts 0..count-1 of the dev mnemonic (BIP-44 path m/44'/60'/0'/0/i)."""
    if count < 1:
        raise ValueError(f"need at least one account, got {count}")
    return [_sender(i) for i in range(count)]
