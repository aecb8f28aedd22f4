"""What every state-changing SDK call returns about its transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TxInfo"]


@dataclass(frozen=True, kw_only=True)
class TxInfo:
    """The mined transaction: hash, block and gas used (for fees and gas tables)."""

    tx_hash: str
    block_number: int
    gas_used: int

    @classmethod
    def from_receipt(cls, receipt: Mapping[str, Any]) -> TxInfo:
        """Take the fields from a web3 receipt."""
        raw = receipt["transactionHash"]
        tx_hash = raw if isinstance(raw, str) else "0x" + bytes(raw).hex()
        return cls(
            tx_hash=tx_hash,
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
        )
