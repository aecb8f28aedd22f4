"""Listings and rentals over the Market system contract (whitepaper 5.3.1).

Providers list verified resources (price per day in wei, availability window, minimum and
maximum period in days). Consumers rent for whole days paying exactly price × days, held in
escrow; the provider confirms the start within the confirm window, or anyone can refund the
consumer in full; at the end anyone settles (rent to the provider minus the platform fee to the
treasury). Heartbeats, missed-heartbeat termination (pro rata refund by the second), disputes
and pull withdrawals complete the flow (docs/contracts.md, "Market").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address
from web3.contract import Contract

from powerverse.market.client import ChainClient
from powerverse.market.exceptions import MarketError
from powerverse.market.receipts import TxInfo

__all__ = [
    "BPS",
    "DAY",
    "DisputeOpened",
    "Listing",
    "ListingStatus",
    "MarketConfig",
    "MarketTotals",
    "Rental",
    "RentalClosed",
    "RentalConfirmed",
    "RentalExtended",
    "RentalOpened",
    "RentalState",
    "Rentals",
    "Withdrawal",
]

DAY = 86_400
BPS = 10_000


class ListingStatus(IntEnum):
    """`Market.ListingStatus`."""

    NONE = 0
    ACTIVE = 1
    PAUSED = 2


class RentalState(IntEnum):
    """`Market.RentalState`: PENDING → ACTIVE → SETTLED | TERMINATED; or REFUNDED; or DISPUTED
    → RESOLVED."""

    NONE = 0
    PENDING = 1
    ACTIVE = 2
    SETTLED = 3
    REFUNDED = 4
    TERMINATED = 5
    DISPUTED = 6
    RESOLVED = 7

    @property
    def ended(self) -> bool:
        """True once the escrow has been paid out."""
        return self in (self.SETTLED, self.REFUNDED, self.TERMINATED, self.RESOLVED)


@dataclass(frozen=True, kw_only=True)
class Listing:
    """A resource offered for rent."""

    token_id: int
    provider: str
    status: ListingStatus
    min_days: int
    max_days: int
    available_from: int
    available_until: int
    price_per_day: int


@dataclass(frozen=True, kw_only=True)
class Rental:
    """One rental and its escrow (wei); times are unix seconds (0 until known)."""

    rental_id: int
    token_id: int
    consumer: str
    created_at: int
    period_days: int
    provider: str
    confirm_deadline: int
    fee_bps: int
    state: RentalState
    handed_to_arbitration: bool
    start: int
    end: int
    last_heartbeat: int
    price_per_day: int
    escrow: int
    dispute_id: int


@dataclass(frozen=True, kw_only=True)
class MarketConfig:
    """The governable tunables (seconds, basis points)."""

    treasury: str
    fee_bps: int
    confirm_window: int
    heartbeat_interval: int
    heartbeat_grace: int


@dataclass(frozen=True, kw_only=True)
class MarketTotals:
    """Money the contract holds: escrows, pull balances, and its actual coin balance."""

    escrowed: int
    owed: int
    balance: int

    @property
    def balanced(self) -> bool:
        """The invariant: the balance is exactly what the contract owes."""
        return self.balance == self.escrowed + self.owed


@dataclass(frozen=True, kw_only=True)
class RentalOpened:
    """A rental was paid for and awaits the provider's confirmation."""

    tx: TxInfo
    rental_id: int
    amount: int
    confirm_deadline: int


@dataclass(frozen=True, kw_only=True)
class RentalConfirmed:
    """The provider confirmed: the rental runs from `start` to `end`."""

    tx: TxInfo
    start: int
    end: int


@dataclass(frozen=True, kw_only=True)
class RentalExtended:
    """More days were paid for."""

    tx: TxInfo
    amount: int
    new_end: int


@dataclass(frozen=True, kw_only=True)
class RentalClosed:
    """The escrow was paid out (credited to pull balances)."""

    tx: TxInfo
    rental_id: int
    state: RentalState
    to_consumer: int
    to_provider: int
    fee: int


@dataclass(frozen=True, kw_only=True)
class DisputeOpened:
    """A dispute froze the escrow; `dispute_id` is Arbitration's (0 when kept in the Market)."""

    tx: TxInfo
    dispute_id: int
    handed_to_arbitration: bool


@dataclass(frozen=True, kw_only=True)
class Withdrawal:
    """Coin sent out of the caller's pull balance."""

    tx: TxInfo
    amount: int


class Rentals:
    """The Market contract for one client (provider, consumer, keeper, arbiter or governance)."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.contract: Contract = client.contract("Market")

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    def _tx(self, fn: Any, value: int = 0) -> tuple[TxInfo, dict[str, Any]]:
        receipt = self.client.transact(fn, value=value)
        return TxInfo.from_receipt(receipt), receipt

    def _event(self, name: str, receipt: Mapping[str, Any]) -> dict[str, Any]:
        (event,) = self.client.events(self.contract, name, receipt)
        return event

    def _closed(self, fn: Any) -> RentalClosed:
        tx, receipt = self._tx(fn)
        event = self._event("RentalClosed", receipt)
        return RentalClosed(
            tx=tx,
            rental_id=int(event["rentalId"]),
            state=RentalState(event["state"]),
            to_consumer=int(event["toConsumer"]),
            to_provider=int(event["toProvider"]),
            fee=int(event["fee"]),
        )

    # ------------------------------------------------------------------ listings

    def list_resource(
        self,
        token_id: int,
        *,
        price_per_day: int,
        available_from: int,
        available_until: int,
        min_days: int = 1,
        max_days: int = 30,
    ) -> TxInfo:
        """List a verified resource the caller owns."""
        fn = self._fn.list(
            token_id, price_per_day, available_from, available_until, min_days, max_days
        )
        return self._tx(fn)[0]

    def update_price(self, token_id: int, price_per_day: int) -> TxInfo:
        """Change the price per day of future rentals."""
        return self._tx(self._fn.updatePrice(token_id, price_per_day))[0]

    def pause_listing(self, token_id: int) -> TxInfo:
        """Stop taking rentals for now."""
        return self._tx(self._fn.pauseListing(token_id))[0]

    def resume_listing(self, token_id: int) -> TxInfo:
        """Take rentals again."""
        return self._tx(self._fn.resumeListing(token_id))[0]

    def unlist(self, token_id: int) -> TxInfo:
        """Remove the listing."""
        return self._tx(self._fn.unlist(token_id))[0]

    # ------------------------------------------------------------------ rentals

    def quote(self, token_id: int, days: int) -> int:
        """Wei that renting `token_id` for `days` days costs now."""
        return int(self.client.call(self._fn.quote(token_id, days)))

    def rent(self, token_id: int, days: int, *, value: int | None = None) -> RentalOpened:
        """Rent for `days` days, paying `value` (default: the quoted price)."""
        if days <= 0:
            raise MarketError(f"a rental lasts at least one day, not {days}")
        amount = self.quote(token_id, days) if value is None else value
        tx, receipt = self._tx(self._fn.rent(token_id, days), value=amount)
        event = self._event("Rented", receipt)
        return RentalOpened(
            tx=tx,
            rental_id=int(event["rentalId"]),
            amount=int(event["amount"]),
            confirm_deadline=int(event["confirmDeadline"]),
        )

    def confirm(self, rental_id: int) -> RentalConfirmed:
        """Provider or agent: confirm the start."""
        tx, receipt = self._tx(self._fn.confirm(rental_id))
        event = self._event("RentalConfirmed", receipt)
        return RentalConfirmed(tx=tx, start=int(event["start"]), end=int(event["end"]))

    def decline(self, rental_id: int) -> RentalClosed:
        """Provider or agent: turn a pending rental down (full refund)."""
        return self._closed(self._fn.decline(rental_id))

    def claim_refund(self, rental_id: int) -> RentalClosed:
        """Anyone: refund an unconfirmed rental after its confirm deadline."""
        return self._closed(self._fn.claimRefund(rental_id))

    def settle(self, rental_id: int) -> RentalClosed:
        """Anyone: pay out a rental that reached its end."""
        return self._closed(self._fn.settle(rental_id))

    def extend(
        self, rental_id: int, extra_days: int, *, value: int | None = None
    ) -> RentalExtended:
        """Consumer: add days before the end, paying `value` (default: the rental's price)."""
        if value is None:
            value = self.rental(rental_id).price_per_day * extra_days
        tx, receipt = self._tx(self._fn.extend(rental_id, extra_days), value=value)
        event = self._event("RentalExtended", receipt)
        return RentalExtended(tx=tx, amount=int(event["amount"]), new_end=int(event["newEnd"]))

    def heartbeat(self, rental_id: int) -> TxInfo:
        """Provider or agent: the resource is alive."""
        return self._tx(self._fn.heartbeat(rental_id))[0]

    def report_missed_heartbeat(self, rental_id: int) -> RentalClosed:
        """Anyone: end a rental whose heartbeats stopped (pro rata refund)."""
        return self._closed(self._fn.reportMissedHeartbeat(rental_id))

    def open_dispute(self, rental_id: int, reason: str) -> DisputeOpened:
        """Consumer or provider: freeze the escrow for arbitration."""
        tx, receipt = self._tx(self._fn.openDispute(rental_id, reason))
        event = self._event("DisputeOpened", receipt)
        return DisputeOpened(
            tx=tx,
            dispute_id=int(event["disputeId"]),
            handed_to_arbitration=bool(event["handedToArbitration"]),
        )

    def resolve_dispute(self, rental_id: int, consumer_share: int) -> RentalClosed:
        """Arbiter: give `consumer_share` wei back to the consumer, the rest to the provider."""
        return self._closed(self._fn.resolveDispute(rental_id, consumer_share))

    # ------------------------------------------------------------------ money

    def owed(self, account: str | None = None) -> int:
        """Wei `account` (default: this client) can withdraw."""
        who = to_checksum_address(account or self.client.address)
        return int(self.client.call(self._fn.owed(who)))

    def withdraw(self, to: str | None = None) -> Withdrawal:
        """Send this client's pull balance to itself or to `to`."""
        fn = self._fn.withdraw() if to is None else self._fn.withdrawTo(to_checksum_address(to))
        tx, receipt = self._tx(fn)
        return Withdrawal(tx=tx, amount=int(self._event("Withdrawn", receipt)["amount"]))

    def totals(self) -> MarketTotals:
        """Escrowed and owed sums next to the contract's balance."""
        return MarketTotals(
            escrowed=int(self.client.call(self._fn.totalEscrowed())),
            owed=int(self.client.call(self._fn.totalOwed())),
            balance=self.client.balance(self.contract.address),
        )

    # ------------------------------------------------------------------ reads

    def listing(self, token_id: int) -> Listing:
        """The listing of `token_id` (status NONE when not listed)."""
        row = self.client.call(self._fn.listingOf(token_id))
        provider, status, min_days, max_days, start, until, price = row
        return Listing(
            token_id=token_id,
            provider=str(provider),
            status=ListingStatus(status),
            min_days=int(min_days),
            max_days=int(max_days),
            available_from=int(start),
            available_until=int(until),
            price_per_day=int(price),
        )

    def rental(self, rental_id: int) -> Rental:
        """Rental `rental_id` (state NONE when unknown)."""
        return _rental(rental_id, self.client.call(self._fn.rentalOf(rental_id)))

    def current_rental(self, token_id: int) -> int:
        """Id of the Market rental holding `token_id` now (0 when none)."""
        return int(self.client.call(self._fn.currentRentalOf(token_id)))

    def rental_count(self) -> int:
        """Rentals made so far (ids 1..n)."""
        return int(self.client.call(self._fn.rentalCount()))

    def order_key(self, rental_id: int) -> bytes:
        """The key Reputation records rental `rental_id` under."""
        return bytes(self.client.call(self._fn.orderKey(rental_id)))

    def config(self) -> MarketConfig:
        """The current tunables."""
        fn = self._fn
        return MarketConfig(
            treasury=str(self.client.call(fn.treasury())),
            fee_bps=int(self.client.call(fn.feeBps())),
            confirm_window=int(self.client.call(fn.confirmWindow())),
            heartbeat_interval=int(self.client.call(fn.heartbeatInterval())),
            heartbeat_grace=int(self.client.call(fn.heartbeatGrace())),
        )

    # ------------------------------------------------------------------ governance

    def set_fee(self, bps: int) -> TxInfo:
        """Platform fee of future rentals (GOVERNANCE_ROLE)."""
        return self._tx(self._fn.setFee(bps))[0]

    def set_treasury(self, treasury: str) -> TxInfo:
        """Fee recipient (GOVERNANCE_ROLE)."""
        return self._tx(self._fn.setTreasury(to_checksum_address(treasury)))[0]

    def set_confirm_window(self, seconds: int) -> TxInfo:
        """Seconds a provider has to confirm (GOVERNANCE_ROLE)."""
        return self._tx(self._fn.setConfirmWindow(seconds))[0]

    def set_heartbeat(self, interval: int, grace: int) -> TxInfo:
        """Heartbeat period and grace in seconds (GOVERNANCE_ROLE)."""
        return self._tx(self._fn.setHeartbeat(interval, grace))[0]


def _rental(rental_id: int, row: Sequence[Any]) -> Rental:
    (
        token_id,
        consumer,
        created_at,
        period_days,
        provider,
        deadline,
        fee_bps,
        state,
        handed,
        start,
        end,
        last_heartbeat,
        price,
        escrow,
        dispute_id,
    ) = row
    return Rental(
        rental_id=rental_id,
        token_id=int(token_id),
        consumer=str(consumer),
        created_at=int(created_at),
        period_days=int(period_days),
        provider=str(provider),
        confirm_deadline=int(deadline),
        fee_bps=int(fee_bps),
        state=RentalState(state),
        handed_to_arbitration=bool(handed),
        start=int(start),
        end=int(end),
        last_heartbeat=int(last_heartbeat),
        price_per_day=int(price),
        escrow=int(escrow),
        dispute_id=int(dispute_id),
    )
