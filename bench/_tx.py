"""Signing of EIP-1559 transactions (memoised, so a compare run signs each tx once) and ABI bits."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi.abi import encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from bench._accounts import Sender

__all__ = [
    "GWEI",
    "Fees",
    "SignedTx",
    "balance_of_data",
    "constructor_args",
    "recipient",
    "sign",
    "transfer_data",
]

GWEI = 10**9
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
BALANCE_OF_SELECTOR = bytes.fromhex("70a08231")  # balanceOf(address)


@dataclass(frozen=True)
class Fees:
    """EIP-1559 fee caps used for every bench transaction."""

    max_fee: int
    tip: int


@dataclass(frozen=True)
class SignedTx:
    """A signed raw transaction and what is needed to track it."""

    sender: str
    nonce: int
    raw: str
    hash: str


def sign(
    sender: Sender,
    *,
    chain_id: int,
    nonce: int,
    to: str | None,
    value: int,
    gas: int,
    fees: Fees,
    data: bytes = b"",
) -> SignedTx:
    """Sign a type-2 transaction; identical inputs reuse the earlier signature."""
    return _sign(sender.key, sender.address, chain_id, nonce, to, value, gas, fees, data)


@lru_cache(maxsize=1 << 18)
def _sign(
    key: bytes,
    address: str,
    chain_id: int,
    nonce: int,
    to: str | None,
    value: int,
    gas: int,
    fees: Fees,
    data: bytes,
) -> SignedTx:
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "maxFeePerGas": fees.max_fee,
        "maxPriorityFeePerGas": fees.tip,
        "gas": gas,
        "value": value,
        "data": data,
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    signed = Account.sign_transaction(tx, key)
    return SignedTx(address, nonce, "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex())


@lru_cache(maxsize=4096)
def recipient(index: int) -> str:
    """Return a deterministic, keyless recipient address (the same on every node)."""
    digest = keccak(b"powerverse-bench-recipient" + index.to_bytes(8, "big"))
    return to_checksum_address(digest[12:])


def transfer_data(to: str, amount: int) -> bytes:
    """ABI-encode an ERC-20 ``transfer(to, amount)`` call."""
    return TRANSFER_SELECTOR + encode(["address", "uint256"], [to, amount])


def balance_of_data(owner: str) -> bytes:
    """ABI-encode an ERC-20 ``balanceOf(owner)`` call."""
    return BALANCE_OF_SELECTOR + encode(["address"], [owner])


def constructor_args(abi: list[dict[str, Any]], deployer: str) -> bytes:
    """ABI-encode plausible constructor arguments (supply, name, symbol, owner) for a token."""
    ctor = next((item for item in abi if item.get("type") == "constructor"), None)
    inputs = ctor.get("inputs", []) if ctor else []
    if not inputs:
        return b""
    types = [str(item["type"]) for item in inputs]
    names = [str(item.get("name", "")) for item in inputs]
    values = [_default_arg(t, n, deployer) for t, n in zip(types, names, strict=True)]
    return encode(types, values)


def _default_arg(abi_type: str, name: str, deployer: str) -> object:
    """Return a sensible value for one constructor parameter of a test token."""
    if abi_type.endswith("]") or abi_type.startswith("tuple"):
        raise ValueError(f"cannot pick a value for constructor parameter {name!r} ({abi_type})")
    if abi_type.startswith("uint"):
        return 10**9 * 10**18
    if abi_type == "address":
        return deployer
    if abi_type == "string":
        return "PVTestToken" if "name" in name.lower() else "PVT"
    if abi_type == "bool":
        return False
    if abi_type.startswith("bytes") and abi_type != "bytes":
        return b"\x00" * int(abi_type[5:])
    if abi_type == "bytes":
        return b""
    raise ValueError(f"cannot pick a value for constructor parameter {name!r} of type {abi_type}")
