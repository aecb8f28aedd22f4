"""Formatting and error handling every chain-writing command group shares.

Amounts are PVC (decimals allowed, e.g. ``1.5``) or wei with a ``wei`` suffix (``1000wei``).
A contract's refusal ends the command with exit status 1 and prints the custom error's name
(or, with ``--json``, a JSON document ``{"error": name, "args": {...}, "message": ...}``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, TypeVar

import typer
from eth_utils.address import to_checksum_address
from rich.console import Console

from powerverse.cli.chainopts import contract_failure
from powerverse.cli.common import EXIT_USAGE, EXIT_USER_ERROR, fail, print_json
from powerverse.crypto.exceptions import CryptoError
from powerverse.crypto.keys import parse_address
from powerverse.market.exceptions import MarketError
from powerverse.market.receipts import TxInfo

__all__ = [
    "PVC",
    "attempt",
    "done",
    "format_pvc",
    "parse_account",
    "parse_amount",
    "parse_hash32",
    "refused",
    "tx_json",
]

PVC = 10**18
T = TypeVar("T")


def parse_amount(text: str) -> int:
    """Wei from `1.5` (PVC) or `1500wei`; refuses negative, fractional wei and garbage."""
    raw = text.strip().lower()
    try:
        if raw.endswith("wei"):
            wei = int(raw[:-3].strip())
        else:
            value = Decimal(raw.removesuffix("pvc").strip()) * PVC
            if not value.is_finite() or value != value.to_integral_value():
                raise ValueError
            wei = int(value)
    except (ValueError, InvalidOperation):
        fail(f"bad amount {text!r}: give PVC (e.g. 1.5) or wei (e.g. 1000wei)", EXIT_USAGE)
    if wei < 0:
        fail(f"bad amount {text!r}: must not be negative", EXIT_USAGE)
    return wei


def parse_account(text: str, what: str) -> str:
    """A checksummed address from 40 hex digits (``0x`` optional); exit 2 otherwise."""
    try:
        return to_checksum_address(parse_address(text))
    except CryptoError as exc:
        fail(f"{what}: {exc}", EXIT_USAGE)


def parse_hash32(text: str, option: str) -> bytes:
    """32 bytes from 64 hex digits (``0x`` optional); exit 2 otherwise."""
    try:
        value = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        value = b""
    if len(value) != 32:
        fail(f"{option} must be 32 bytes of hex (64 digits), got {text!r}", EXIT_USAGE)
    return value


def format_pvc(wei: int) -> str:
    """`1.5 PVC` from wei, exact."""
    return f"{Decimal(wei) / PVC:f} PVC"


def tx_json(tx: TxInfo) -> dict[str, Any]:
    """A transaction's hash, block and gas for JSON output."""
    return {"txHash": tx.tx_hash, "blockNumber": tx.block_number, "gasUsed": tx.gas_used}


def refused(exc: MarketError, json_output: bool) -> NoReturn:
    """End the command with exit 1: the refusal as a JSON document or a one-line error."""
    doc = contract_failure(exc)
    if json_output:
        print_json(doc)
        raise typer.Exit(EXIT_USER_ERROR)
    fail(f"refused: {doc['message']}")


def attempt(json_output: bool, action: Callable[[], T]) -> T:
    """Run `action`; a MarketError (a contract's refusal) ends the command with exit 1."""
    try:
        return action()
    except MarketError as exc:
        refused(exc, json_output)


def done(json_output: bool, doc: Any, message: str) -> None:
    """Print `doc` as JSON, or `message` for people."""
    if json_output:
        print_json(doc)
    else:
        Console(highlight=False, soft_wrap=True).print(message)
