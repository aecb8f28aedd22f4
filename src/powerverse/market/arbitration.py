"""The arbitration committee over the Arbitration system contract (whitepaper 5.1, 仲裁委员会).

Market and Orders hand disputed orders here with their escrow frozen. A committee member
(ARBITER_ROLE) rules by splitting the escrow — ``consumer_share`` wei back to the consumer, the
rest to the provider minus the platform fee — and the source contract pays out at once; or
escalates the dispute to a DAO vote, after which only GOVERNANCE_ROLE rules. A dispute is ruled
once. Parties and arbiters may attach evidence while it is open (docs/contracts.md,
"Arbitration").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address
from web3.contract import Contract

from powerverse.contracts.addresses import SYSTEM_ADDRESSES
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import MarketError
from powerverse.market.receipts import TxInfo

__all__ = ["Arbitration", "Dispute", "DisputeStatus", "Ruling", "source_address"]

ZERO_ADDRESS = "0x" + "00" * 20


class DisputeStatus(IntEnum):
    """`Arbitration.Status`: OPEN → RULED, or OPEN → ESCALATED → RULED (by governance)."""

    NONE = 0
    OPEN = 1
    ESCALATED = 2
    RULED = 3


@dataclass(frozen=True, kw_only=True)
class Dispute:
    """One dispute: which order of which contract, the frozen amount and the ruling."""

    dispute_id: int
    source: str
    source_name: str | None
    source_id: int
    status: DisputeStatus
    by_dao: bool
    consumer: str
    provider: str
    amount: int
    consumer_share: int
    opened_at: int
    ruled_at: int
    ruled_by: str | None
    reason: str

    @property
    def provider_share(self) -> int | None:
        """What the ruling gave the provider side (before the source's fee); None until ruled."""
        return self.amount - self.consumer_share if self.status == DisputeStatus.RULED else None

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (amounts as decimal strings of wei)."""
        return {
            "disputeId": self.dispute_id,
            "source": self.source_name or self.source,
            "sourceId": self.source_id,
            "status": self.status.name.lower(),
            "byDao": self.by_dao,
            "consumer": self.consumer,
            "provider": self.provider,
            "amount": str(self.amount),
            "consumerShare": str(self.consumer_share),
            "openedAt": self.opened_at,
            "ruledAt": self.ruled_at,
            "ruledBy": self.ruled_by,
            "reason": self.reason,
        }


@dataclass(frozen=True, kw_only=True)
class Ruling:
    """A ruling as emitted: the split and whether the DAO (governance) made it."""

    tx: TxInfo
    dispute_id: int
    by: str
    consumer_share: int
    provider_share: int
    by_dao: bool
    reason: str


def source_address(source: str | bytes) -> str:
    """A source contract's checksummed address from its name ("Market", "Orders") or address."""
    if isinstance(source, str) and source in SYSTEM_ADDRESSES:
        return to_checksum_address(SYSTEM_ADDRESSES[source])
    try:
        return to_checksum_address(source)
    except ValueError:
        raise MarketError(f"{source!r} is neither a system contract name nor an address") from None


class Arbitration:
    """The Arbitration contract for one client (a party, an arbiter, or governance)."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.contract: Contract = client.contract("Arbitration")

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    def _tx(self, fn: Any) -> tuple[TxInfo, dict[str, Any]]:
        receipt = self.client.transact(fn)
        return TxInfo.from_receipt(receipt), receipt

    # ------------------------------------------------------------------ committee

    def rule(self, dispute_id: int, consumer_share: int, reason: str) -> Ruling:
        """ARBITER_ROLE (GOVERNANCE_ROLE once escalated): split the escrow; the source pays."""
        tx, receipt = self._tx(self._fn.rule(dispute_id, consumer_share, reason))
        (event,) = self.client.events(self.contract, "DisputeRuled", receipt)
        return Ruling(
            tx=tx,
            dispute_id=dispute_id,
            by=str(event["by"]),
            consumer_share=int(event["consumerShare"]),
            provider_share=int(event["providerShare"]),
            by_dao=bool(event["byDao"]),
            reason=str(event["reason"]),
        )

    def escalate(self, dispute_id: int, reason: str) -> TxInfo:
        """ARBITER_ROLE: hand an open dispute to a DAO vote (GOVERNANCE_ROLE rules it)."""
        return self._tx(self._fn.escalate(dispute_id, reason))[0]

    def submit_evidence(self, dispute_id: int, evidence: str) -> TxInfo:
        """A party or an arbiter: attach evidence (a content id or text) to an unruled dispute."""
        return self._tx(self._fn.submitEvidence(dispute_id, evidence))[0]

    # ------------------------------------------------------------------ reads

    def dispute(self, dispute_id: int) -> Dispute:
        """Dispute `dispute_id` (MarketError when unknown)."""
        row = self.client.call(self._fn.disputeOf(dispute_id))
        if int(row[1]) == DisputeStatus.NONE:
            raise MarketError(f"no dispute {dispute_id}")
        return _dispute(dispute_id, row)

    def dispute_count(self) -> int:
        """Disputes opened so far (ids 1..n)."""
        return int(self.client.call(self._fn.disputeCount()))

    def dispute_for(self, source: str | bytes, order_id: int) -> int | None:
        """The latest dispute over order `order_id` of `source` ("Market", "Orders" or an
        address), or None."""
        found = int(self.client.call(self._fn.disputeIdOf(source_address(source), order_id)))
        return found or None

    def open_disputes(self) -> list[Dispute]:
        """Every dispute not yet ruled (open or escalated), oldest first."""
        found = (self.dispute(i) for i in range(1, self.dispute_count() + 1))
        return [d for d in found if d.status != DisputeStatus.RULED]

    def is_arbiter(self, account: str | None = None) -> bool:
        """Whether `account` (default: this client) sits on the committee."""
        role = self.client.call(self._fn.ARBITER_ROLE())
        who = to_checksum_address(account or self.client.address)
        return bool(self.client.call(self._fn.hasRole(role, who)))


def _dispute(dispute_id: int, row: Sequence[Any]) -> Dispute:
    (
        source,
        status,
        by_dao,
        opened_at,
        consumer,
        ruled_at,
        provider,
        ruled_by,
        source_id,
        amount,
        consumer_share,
        reason,
    ) = row
    names: dict[str, str] = {str(to_checksum_address(a)): n for n, a in SYSTEM_ADDRESSES.items()}
    return Dispute(
        dispute_id=dispute_id,
        source=str(source),
        source_name=names.get(str(source)),
        source_id=int(source_id),
        status=DisputeStatus(status),
        by_dao=bool(by_dao),
        consumer=str(consumer),
        provider=str(provider),
        amount=int(amount),
        consumer_share=int(consumer_share),
        opened_at=int(opened_at),
        ruled_at=int(ruled_at),
        ruled_by=None if str(ruled_by) == ZERO_ADDRESS else str(ruled_by),
        reason=str(reason),
    )
