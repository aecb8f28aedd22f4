"""secp256k1 account keys and addresses, exactly as Ethereum's (eth-keys on coincurve)."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field

from eth_account import Account
from eth_keys.main import KeyAPI
from eth_utils.address import is_checksum_address, to_checksum_address

from powerverse.crypto._checks import exact_bytes
from powerverse.crypto.exceptions import InvalidAddress, InvalidKey

__all__ = [
    "DEV_MNEMONIC",
    "SECP256K1_N",
    "DevAccount",
    "address_of",
    "dev_accounts",
    "generate_private_key",
    "parse_address",
    "to_checksum",
    "validate_private_key",
]

DEV_MNEMONIC = "test test test test test test test test test test test junk"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ADDRESS_LEN = 20
PRIVATE_KEY_LEN = 32

_keys = KeyAPI("eth_keys.backends.CoinCurveECCBackend")


def validate_private_key(private_key: bytes) -> bytes:
    """Return the key as bytes if it is a valid secp256k1 secret (32 bytes, 0 < k < n)."""
    key = exact_bytes(private_key, PRIVATE_KEY_LEN, "private key", InvalidKey)
    if not 0 < int.from_bytes(key, "big") < SECP256K1_N:
        raise InvalidKey("private key is outside the secp256k1 range 1 .. n-1")
    return key


def generate_private_key() -> bytes:
    """Return a fresh random secp256k1 private key from the OS's CSPRNG."""
    while True:
        candidate = secrets.token_bytes(PRIVATE_KEY_LEN)
        if 0 < int.from_bytes(candidate, "big") < SECP256K1_N:
            return candidate


def address_of(private_key: bytes) -> bytes:
    """Return the 20-byte Ethereum address of a secp256k1 private key."""
    key = _keys.PrivateKey(validate_private_key(private_key))
    return bytes(key.public_key.to_canonical_address())


def to_checksum(address: bytes) -> str:
    """Return the EIP-55 mixed-case hex form (0x...) of a 20-byte address."""
    address = exact_bytes(address, ADDRESS_LEN, "address", InvalidAddress)
    return str(to_checksum_address(address))


def parse_address(text: str) -> bytes:
    """Parse 40 hex digits (0x optional); a mixed-case address must carry a valid checksum."""
    body = text.strip()
    body = body[2:] if body[:2].lower() == "0x" else body
    if len(body) != 2 * ADDRESS_LEN:
        raise InvalidAddress(f"address must be {2 * ADDRESS_LEN} hex digits: {text!r}")
    try:
        address = bytes.fromhex(body)
    except ValueError as err:
        raise InvalidAddress(f"address is not hexadecimal: {text!r}") from err
    mixed_case = body != body.lower() and body != body.upper()
    if mixed_case and not is_checksum_address("0x" + body):
        raise InvalidAddress(f"address has a wrong EIP-55 checksum: {text!r}")
    return address


@dataclass(frozen=True)
class DevAccount:
    """One account of the dev mnemonic: its HD index, address and private key."""

    index: int
    address: bytes
    private_key: bytes = field(repr=False)

    @property
    def checksum(self) -> str:
        """The EIP-55 form of the address."""
        return to_checksum(self.address)


def dev_accounts(mnemonic: str = DEV_MNEMONIC, count: int = 20) -> list[DevAccount]:
    """Return the first `count` accounts m/44'/60'/0'/0/i of a mnemonic (Hardhat's by default)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return [_dev_account(mnemonic, index) for index in range(count)]


@functools.cache
def _dev_account(mnemonic: str, index: int) -> DevAccount:
    """Derive one BIP-44 account; cached because each derivation runs PBKDF2 (slow)."""
    Account.enable_unaudited_hdwallet_features()
    local = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
    private_key = bytes(local.key)
    return DevAccount(index=index, address=address_of(private_key), private_key=private_key)
