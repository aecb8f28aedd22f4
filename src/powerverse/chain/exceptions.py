"""Errors of the chain layer.

ChainError
├── StoreError
│   └── DataDirLocked
├── GenesisError
├── BlockNotFound
├── TransactionNotFound
├── ExecutionError
│   └── Reverted              (carries the revert data)
├── InvalidBlock              (a received block breaks a rule; nothing was committed)
│   └── BlockNotOnHead        (it does not extend the current head: stale, or from the future)
├── PendingBlockError         (commit_pending cannot commit that block)
│   ├── UnknownPendingBlock   (no pending block with that hash)
│   └── StalePendingBlock     (its parent is no longer the head)
└── DevModeOnly
"""

from __future__ import annotations


class ChainError(Exception):
    """Base class of every chain-layer error."""


class StoreError(ChainError):
    """The persistent store could not be opened or written."""


class DataDirLocked(StoreError):
    """Another process holds the data directory."""


class GenesisError(ChainError):
    """A genesis file is malformed or does not match the stored chain."""


class BlockNotFound(ChainError):
    """No block with that number or hash."""


class TransactionNotFound(ChainError):
    """No transaction with that hash."""


class ExecutionError(ChainError):
    """A call or gas estimate could not be executed."""


class Reverted(ExecutionError):
    """Execution reverted; `data` holds the revert bytes (maybe an ABI-encoded error)."""

    def __init__(self, data: bytes, reason: str | None = None) -> None:
        super().__init__(reason or "execution reverted")
        self.data = data
        self.reason = reason


class DevModeOnly(ChainError):
    """A development-only operation was asked of a non-dev chain."""


class InvalidBlock(ChainError):
    """A block proposed by another node breaks a rule; the message says which."""


class BlockNotOnHead(InvalidBlock):
    """A block whose parent is not the current head (stale, or ahead of this node)."""


class PendingBlockError(ChainError):
    """A pending block cannot be committed."""


class UnknownPendingBlock(PendingBlockError):
    """No block with that hash is pending (never executed, dropped, or its executor restarted)."""


class StalePendingBlock(PendingBlockError):
    """A pending block whose parent is no longer the head."""
