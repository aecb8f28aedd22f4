"""Errors of the market SDK.

MarketError
├── ContractError      (a contract refused: the custom error's name and arguments)
└── TransactionFailed  (the node refused the transaction, or it was not mined in time)
"""

from __future__ import annotations

from typing import Any


class MarketError(Exception):
    """Base class of every error raised by powerverse.market."""


class ContractError(MarketError):
    """A contract reverted; `name` is its custom error (e.g. ``NotLessee``), `args` its fields."""

    def __init__(
        self,
        name: str,
        args: dict[str, Any],
        data: bytes,
        *,
        message: str | None = None,
        contract: str | None = None,
    ) -> None:
        self.name = name
        self.args_by_name = args
        self.data = data
        self.contract = contract
        if message is None:
            inner = ", ".join(f"{k}={v}" for k, v in args.items())
            where = f"{contract}." if contract else ""
            message = f"{where}{name}({inner})"
        self.message = message
        super().__init__(message)


class TransactionFailed(MarketError):
    """The transaction never executed: refused by the node or not mined in time."""
