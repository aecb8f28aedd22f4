"""Parsing JSON-RPC parameters into Python values; every bad input raises `InvalidParams`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from powerverse.rpc.errors import InvalidParams

MAX_QUANTITY = 2**256 - 1


def quantity(value: Any, what: str = "quantity") -> int:
    """A hex quantity ("0x1a"), as Ethereum encodes numbers."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise InvalidParams(f"invalid argument: {what} must be a hex string like 0x1")
    if not value.startswith(("0x", "0X")) or len(value) < 3:
        raise InvalidParams(f"invalid argument: {what} {value!r} is not a 0x-prefixed hex number")
    if len(value) > 66:
        raise InvalidParams(f"invalid argument: {what} is larger than 256 bits")
    try:
        result = int(value[2:], 16)
    except ValueError:
        raise InvalidParams(f"invalid argument: {what} {value!r} is not a hex number") from None
    return result


def data(value: Any, what: str = "data", *, length: int | None = None) -> bytes:
    """0x-prefixed hex bytes, optionally of a fixed length."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise InvalidParams(f"invalid argument: {what} must be a 0x-prefixed hex string")
    body = value[2:]
    if len(body) % 2:
        raise InvalidParams(f"invalid argument: {what} has an odd number of hex digits")
    try:
        result = bytes.fromhex(body)
    except ValueError:
        raise InvalidParams(f"invalid argument: {what} is not valid hex") from None
    if length is not None and len(result) != length:
        raise InvalidParams(f"invalid argument: {what} must be {length} bytes, got {len(result)}")
    return result


def address(value: Any, what: str = "address") -> bytes:
    """A 20-byte address (checksum not enforced, like geth)."""
    return data(value, what, length=20)


def hash32(value: Any, what: str = "hash") -> bytes:
    """A 32-byte hash."""
    return data(value, what, length=32)


def boolean(value: Any, what: str) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise InvalidParams(f"invalid argument: {what} must be true or false")
    return value


BlockRef = int | str | bytes
"""A block number, a tag ("latest", "earliest", "pending", "safe", "finalized") or a hash."""

_TAGS = ("latest", "earliest", "pending", "safe", "finalized")


def block_ref(value: Any, what: str = "block") -> BlockRef:
    """A block number, tag, or EIP-1898 object {blockHash} / {blockNumber}."""
    if value is None:
        return "latest"
    if isinstance(value, dict):
        if "blockHash" in value:
            return hash32(value["blockHash"], f"{what}.blockHash")
        if "blockNumber" in value:
            return block_ref(value["blockNumber"], f"{what}.blockNumber")
        raise InvalidParams(f"invalid argument: {what} needs blockHash or blockNumber")
    if isinstance(value, str) and value in _TAGS:
        return value
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        return hash32(value, what)
    return quantity(value, what)


def params_list(params: Any, names: tuple[str, ...], required: int) -> list[Any]:
    """Positional params, padded with None; wrong count raises InvalidParams."""
    if params is None:
        params = []
    if not isinstance(params, list):
        raise InvalidParams("invalid params: expected an array of positional arguments")
    if len(params) < required:
        missing = names[len(params)]
        raise InvalidParams(f"missing value for required argument {len(params)} ({missing})")
    if len(params) > len(names):
        raise InvalidParams(f"too many arguments, want at most {len(names)}")
    return params + [None] * (len(names) - len(params))


@dataclass(frozen=True)
class CallObject:
    """The transaction object of eth_call / eth_estimateGas."""

    sender: bytes | None
    to: bytes | None
    gas: int | None
    gas_price: int | None
    max_fee_per_gas: int | None
    max_priority_fee_per_gas: int | None
    value: int
    data: bytes


def call_object(value: Any) -> CallObject:
    """Parse a call object; `input` and `data` are both accepted (must agree if both)."""
    if not isinstance(value, dict):
        raise InvalidParams("invalid argument 0: the call must be a JSON object")
    allowed = {
        "from",
        "to",
        "gas",
        "gasPrice",
        "maxFeePerGas",
        "maxPriorityFeePerGas",
        "value",
        "data",
        "input",
        "nonce",
        "type",
        "chainId",
        "accessList",
    }
    unknown = set(value) - allowed
    if unknown:
        raise InvalidParams(f"invalid argument 0: unknown field(s) {sorted(unknown)}")

    def opt_q(key: str) -> int | None:
        return None if value.get(key) is None else quantity(value[key], key)

    payload = b""
    if value.get("input") is not None:
        payload = data(value["input"], "input")
        if value.get("data") is not None and data(value["data"], "data") != payload:
            raise InvalidParams(
                'both "data" and "input" are set and not equal. Please use "input" to pass '
                "transaction call data"
            )
    elif value.get("data") is not None:
        payload = data(value["data"], "data")
    return CallObject(
        sender=None if value.get("from") is None else address(value["from"], "from"),
        to=None if value.get("to") is None else address(value["to"], "to"),
        gas=opt_q("gas"),
        gas_price=opt_q("gasPrice"),
        max_fee_per_gas=opt_q("maxFeePerGas"),
        max_priority_fee_per_gas=opt_q("maxPriorityFeePerGas"),
        value=opt_q("value") or 0,
        data=payload,
    )


def hexq(n: int) -> str:
    """Encode a quantity."""
    return hex(n)


def hexd(b: bytes) -> str:
    """Encode data."""
    return "0x" + bytes(b).hex()
