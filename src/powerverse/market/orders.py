"""Demand and task orders over the Orders system contract (whitepaper 5.3.2).

A *demand* (rental-type order) names minimum specs, a period in days and an optional region; the
consumer pays the budget into escrow. A provider fills it with a matching verified resource at a
price per day within the budget (the rest is refunded at once); the rental runs from the fill and
anyone settles it at the end (rent minus the platform fee to the provider).

A *task* names a spec content id, resource requirements, a deadline and an acceptance method;
the consumer pays the reward into escrow. A provider takes it with a matching resource, submits
the result content id and hash by the deadline; MANUAL results are accepted by the consumer
(or by anyone after the review window) or rejected into arbitration; HASH results are accepted
at once when the hash equals the expected one. Past the deadline without a result anyone may
expire the task: the consumer is refunded and the provider's reputation drops.

All payouts are pull balances (`owed`, `withdraw`); see docs/contracts.md, "Orders".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract

from powerverse.market.client import ChainClient
from powerverse.market.exceptions import MarketError
from powerverse.market.receipts import TxInfo

__all__ = [
    "BPS",
    "DAY",
    "Acceptance",
    "DemandFilled",
    "Order",
    "OrderClosed",
    "OrderDisputed",
    "OrderKind",
    "OrderPosted",
    "OrderState",
    "Orders",
    "OrdersConfig",
    "OrdersTotals",
    "ResultSubmitted",
    "Specs",
    "Withdrawal",
    "result_hash",
]

DAY = 86_400
BPS = 10_000
ZERO_HASH = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20


class OrderKind(IntEnum):
    """`Orders.Kind`."""

    NONE = 0
    DEMAND = 1
    TASK = 2


class Acceptance(IntEnum):
    """`Orders.Acceptance`: the consumer accepts (MANUAL) or the result hash decides (HASH)."""

    MANUAL = 0
    HASH = 1


class OrderState(IntEnum):
    """`Orders.State`. Demand: OPEN → ACTIVE → COMPLETED; task: OPEN → TAKEN → SUBMITTED →
    COMPLETED, or TAKEN → FAILED; either: OPEN → CANCELLED | EXPIRED, or → DISPUTED → RESOLVED."""

    NONE = 0
    OPEN = 1
    ACTIVE = 2
    TAKEN = 3
    SUBMITTED = 4
    COMPLETED = 5
    CANCELLED = 6
    EXPIRED = 7
    FAILED = 8
    DISPUTED = 9
    RESOLVED = 10

    @property
    def ended(self) -> bool:
        """True once the escrow has been paid out (to the provider, the consumer, or split)."""
        return self in (
            self.COMPLETED,
            self.CANCELLED,
            self.EXPIRED,
            self.FAILED,
            self.RESOLVED,
        )


@dataclass(frozen=True, kw_only=True)
class Specs:
    """Minimum resource requirements, in ResourceNFT units (MHz, MiB, GB); 0 or "" = any.

    `gpu_memory_mib` is per card; `disk_kind` (e.g. "nvme") and `region` must match exactly.
    """

    cpu_cores: int = 0
    cpu_clock_mhz: int = 0
    gpu_memory_mib: int = 0
    gpu_count: int = 0
    ram_mib: int = 0
    disk_gb: int = 0
    disk_kind: str = ""
    region: str = ""

    def to_abi(self) -> tuple[Any, ...]:
        """`Orders.Specs` in ABI order."""
        return (
            self.cpu_cores,
            self.cpu_clock_mhz,
            self.gpu_memory_mib,
            self.gpu_count,
            self.ram_mib,
            self.disk_gb,
            self.disk_kind,
            self.region,
        )

    @classmethod
    def from_abi(cls, row: Sequence[Any]) -> Specs:
        """Decode `Orders.Specs`."""
        cores, clock, gpu_mem, gpus, ram, disk, kind, region = row
        return cls(
            cpu_cores=int(cores),
            cpu_clock_mhz=int(clock),
            gpu_memory_mib=int(gpu_mem),
            gpu_count=int(gpus),
            ram_mib=int(ram),
            disk_gb=int(disk),
            disk_kind=str(kind),
            region=str(region),
        )


@dataclass(frozen=True, kw_only=True)
class Order:
    """One demand or task order. Amounts in wei, times in unix seconds (0 until known);
    `provider` and `token_id` are None/0 until filled or taken."""

    order_id: int
    kind: OrderKind
    state: OrderState
    consumer: str
    provider: str | None
    acceptance: Acceptance
    fee_bps: int
    period_days: int
    deadline: int
    token_id: int
    escrow: int
    price_per_day: int
    created_at: int
    start: int
    end: int
    submitted_at: int
    review_window: int
    expected_hash: bytes | None
    result_hash: bytes | None
    dispute_id: int
    specs: Specs
    spec_cid: str
    result_cid: str

    @property
    def review_until(self) -> int | None:
        """Last moment the consumer may reject a submitted MANUAL result."""
        return self.submitted_at + self.review_window if self.submitted_at else None

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (amounts as decimal strings of wei, hashes as 0x hex)."""
        return {
            "orderId": self.order_id,
            "kind": self.kind.name.lower(),
            "state": self.state.name.lower(),
            "consumer": self.consumer,
            "provider": self.provider,
            "acceptance": self.acceptance.name.lower(),
            "feeBps": self.fee_bps,
            "periodDays": self.period_days,
            "deadline": self.deadline,
            "tokenId": self.token_id,
            "escrow": str(self.escrow),
            "pricePerDay": str(self.price_per_day),
            "createdAt": self.created_at,
            "start": self.start,
            "end": self.end,
            "submittedAt": self.submitted_at,
            "reviewWindow": self.review_window,
            "expectedHash": _hex(self.expected_hash),
            "resultHash": _hex(self.result_hash),
            "disputeId": self.dispute_id,
            "specs": {
                "cpuCores": self.specs.cpu_cores,
                "cpuClockMhz": self.specs.cpu_clock_mhz,
                "gpuMemoryMib": self.specs.gpu_memory_mib,
                "gpuCount": self.specs.gpu_count,
                "ramMib": self.specs.ram_mib,
                "diskGb": self.specs.disk_gb,
                "diskKind": self.specs.disk_kind,
                "region": self.specs.region,
            },
            "specCid": self.spec_cid,
            "resultCid": self.result_cid,
        }


@dataclass(frozen=True, kw_only=True)
class OrdersConfig:
    """The governable tunables (basis points, seconds)."""

    treasury: str
    fee_bps: int
    review_window: int


@dataclass(frozen=True, kw_only=True)
class OrdersTotals:
    """Money the contract holds: escrows, pull balances, and its actual coin balance."""

    escrowed: int
    owed: int
    balance: int

    @property
    def balanced(self) -> bool:
        """The invariant: the balance is exactly what the contract owes."""
        return self.balance == self.escrowed + self.owed


@dataclass(frozen=True, kw_only=True)
class OrderPosted:
    """A demand or task was posted with `escrow` wei held."""

    tx: TxInfo
    order_id: int
    escrow: int
    deadline: int


@dataclass(frozen=True, kw_only=True)
class DemandFilled:
    """A demand became a running rental; `refund` wei of the budget went back to the consumer."""

    tx: TxInfo
    order_id: int
    token_id: int
    rent: int
    refund: int
    start: int
    end: int


@dataclass(frozen=True, kw_only=True)
class OrderClosed:
    """The escrow was paid out (credited to pull balances)."""

    tx: TxInfo
    order_id: int
    state: OrderState
    to_consumer: int
    to_provider: int
    fee: int


@dataclass(frozen=True, kw_only=True)
class ResultSubmitted:
    """A task result was submitted; `closed` is set when HASH acceptance paid it at once."""

    tx: TxInfo
    order_id: int
    result_cid: str
    result_hash: bytes
    closed: OrderClosed | None = field(default=None)


@dataclass(frozen=True, kw_only=True)
class OrderDisputed:
    """The escrow is frozen and Arbitration opened dispute `dispute_id`."""

    tx: TxInfo
    order_id: int
    dispute_id: int


@dataclass(frozen=True, kw_only=True)
class Withdrawal:
    """Coin sent out of the caller's pull balance."""

    tx: TxInfo
    amount: int


def result_hash(data: bytes) -> bytes:
    """The hash a HASH task compares: keccak256 of the result's bytes."""
    return keccak(data)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def _hash32(value: bytes | str | None) -> bytes:
    if value is None:
        return ZERO_HASH
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise MarketError(f"hash {value!r} is not hex") from None
    if len(value) != 32:
        raise MarketError(f"a hash is 32 bytes, got {len(value)}")
    return value


class Orders:
    """The Orders contract for one client (consumer, provider, keeper or governance)."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.contract: Contract = client.contract("Orders")

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    def _tx(self, fn: Any, value: int = 0) -> tuple[TxInfo, dict[str, Any]]:
        receipt = self.client.transact(fn, value=value)
        return TxInfo.from_receipt(receipt), receipt

    def _events(self, name: str, receipt: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self.client.events(self.contract, name, receipt)

    def _closed_event(self, tx: TxInfo, receipt: Mapping[str, Any]) -> OrderClosed:
        (event,) = self._events("OrderClosed", receipt)
        return OrderClosed(
            tx=tx,
            order_id=int(event["orderId"]),
            state=OrderState(event["state"]),
            to_consumer=int(event["toConsumer"]),
            to_provider=int(event["toProvider"]),
            fee=int(event["fee"]),
        )

    def _closed(self, fn: Any) -> OrderClosed:
        return self._closed_event(*self._tx(fn))

    # ------------------------------------------------------------------ demands

    def post_demand(
        self, specs: Specs, *, period_days: int, budget: int, deadline: int
    ) -> OrderPosted:
        """Post a rental-type demand paying `budget` wei into escrow; open until `deadline`."""
        fn = self._fn.postDemand(specs.to_abi(), period_days, deadline)
        tx, receipt = self._tx(fn, budget)
        (event,) = self._events("DemandPosted", receipt)
        return OrderPosted(
            tx=tx, order_id=int(event["orderId"]), escrow=int(event["budget"]), deadline=deadline
        )

    def fill_demand(self, order_id: int, token_id: int, price_per_day: int) -> DemandFilled:
        """Provider: fill demand `order_id` with resource `token_id` at `price_per_day` wei."""
        budget = int(self.client.call(self._fn.orderOf(order_id))[9])  # escrow before the fill
        tx, receipt = self._tx(self._fn.fillDemand(order_id, token_id, price_per_day))
        (event,) = self._events("DemandFilled", receipt)
        rent = int(event["rent"])
        return DemandFilled(
            tx=tx,
            order_id=order_id,
            token_id=token_id,
            rent=rent,
            refund=budget - rent,
            start=int(event["start"]),
            end=int(event["end"]),
        )

    def settle(self, order_id: int) -> OrderClosed:
        """Anyone, after the rental's end: pay the provider the rent minus the fee."""
        return self._closed(self._fn.settle(order_id))

    # ------------------------------------------------------------------ tasks

    def post_task(
        self,
        spec_cid: str,
        specs: Specs,
        *,
        reward: int,
        deadline: int,
        expected_hash: bytes | str | None = None,
    ) -> OrderPosted:
        """Post a task paying `reward` wei into escrow. With `expected_hash` the task is
        accepted automatically when the submitted hash matches (HASH); without, MANUAL."""
        acceptance = Acceptance.MANUAL if expected_hash is None else Acceptance.HASH
        fn = self._fn.postTask(
            spec_cid, specs.to_abi(), deadline, acceptance, _hash32(expected_hash)
        )
        tx, receipt = self._tx(fn, reward)
        (event,) = self._events("TaskPosted", receipt)
        return OrderPosted(
            tx=tx, order_id=int(event["orderId"]), escrow=int(event["reward"]), deadline=deadline
        )

    def take_task(self, order_id: int, token_id: int) -> TxInfo:
        """Provider: take task `order_id` with resource `token_id` (marked rented)."""
        return self._tx(self._fn.takeTask(order_id, token_id))[0]

    def submit_result(
        self, order_id: int, result_cid: str, result_hash: bytes | str | None = None
    ) -> ResultSubmitted:
        """Provider (or its agent): submit the result by the deadline."""
        digest = _hash32(result_hash)
        tx, receipt = self._tx(self._fn.submitResult(order_id, result_cid, digest))
        closed = self._closed_event(tx, receipt) if self._events("OrderClosed", receipt) else None
        return ResultSubmitted(
            tx=tx, order_id=order_id, result_cid=result_cid, result_hash=digest, closed=closed
        )

    def accept(self, order_id: int) -> OrderClosed:
        """Consumer: accept the submitted result (reward minus fee to the provider)."""
        return self._closed(self._fn.accept(order_id))

    def auto_accept(self, order_id: int) -> OrderClosed:
        """Anyone, after the review window of a submitted MANUAL result: accept it."""
        return self._closed(self._fn.autoAccept(order_id))

    def reject(self, order_id: int, reason: str) -> OrderDisputed:
        """Consumer, within the review window: reject the result (opens a dispute)."""
        return self._disputed(order_id, self._fn.reject(order_id, reason))

    # ------------------------------------------------------------------ both kinds

    def cancel(self, order_id: int) -> OrderClosed:
        """Consumer: cancel an open order; the escrow is credited back."""
        return self._closed(self._fn.cancel(order_id))

    def expire(self, order_id: int) -> OrderClosed:
        """Anyone, after the deadline: expire an open order or fail a task taken without a
        result (the consumer is credited in full either way)."""
        return self._closed(self._fn.expire(order_id))

    def open_dispute(self, order_id: int, reason: str) -> OrderDisputed:
        """A party: dispute a running order; the escrow goes to arbitration."""
        return self._disputed(order_id, self._fn.openDispute(order_id, reason))

    def _disputed(self, order_id: int, fn: Any) -> OrderDisputed:
        tx, receipt = self._tx(fn)
        (event,) = self._events("DisputeOpened", receipt)
        return OrderDisputed(tx=tx, order_id=order_id, dispute_id=int(event["disputeId"]))

    # ------------------------------------------------------------------ money

    def owed(self, account: str | None = None) -> int:
        """Wei `account` (default: this client) can withdraw."""
        who = to_checksum_address(account or self.client.address)
        return int(self.client.call(self._fn.owed(who)))

    def withdraw(self, to: str | None = None) -> Withdrawal:
        """Send this client's pull balance to itself or to `to`."""
        fn = self._fn.withdraw() if to is None else self._fn.withdrawTo(to_checksum_address(to))
        tx, receipt = self._tx(fn)
        (event,) = self._events("Withdrawn", receipt)
        return Withdrawal(tx=tx, amount=int(event["amount"]))

    def totals(self) -> OrdersTotals:
        """Escrowed and owed sums next to the contract's balance."""
        return OrdersTotals(
            escrowed=int(self.client.call(self._fn.totalEscrowed())),
            owed=int(self.client.call(self._fn.totalOwed())),
            balance=self.client.balance(self.contract.address),
        )

    # ------------------------------------------------------------------ reads

    def order(self, order_id: int) -> Order:
        """Order `order_id` (MarketError when unknown)."""
        row = self.client.call(self._fn.orderOf(order_id))
        if int(row[1]) == OrderKind.NONE:
            raise MarketError(f"no order {order_id}")
        return _order(order_id, row)

    def order_count(self) -> int:
        """Orders posted so far (ids 1..n)."""
        return int(self.client.call(self._fn.orderCount()))

    def order_key(self, order_id: int) -> bytes:
        """The key Reputation records order `order_id` under (for reviews)."""
        return bytes(self.client.call(self._fn.orderKey(order_id)))

    def config(self) -> OrdersConfig:
        """The current tunables."""
        fn = self._fn
        return OrdersConfig(
            treasury=str(self.client.call(fn.treasury())),
            fee_bps=int(self.client.call(fn.feeBps())),
            review_window=int(self.client.call(fn.reviewWindow())),
        )

    # ------------------------------------------------------------------ governance

    def set_fee(self, bps: int) -> TxInfo:
        """GOVERNANCE_ROLE: platform fee of future orders."""
        return self._tx(self._fn.setFee(bps))[0]

    def set_treasury(self, treasury: str) -> TxInfo:
        """GOVERNANCE_ROLE: fee recipient."""
        return self._tx(self._fn.setTreasury(to_checksum_address(treasury)))[0]

    def set_review_window(self, seconds: int) -> TxInfo:
        """GOVERNANCE_ROLE: review window of MANUAL tasks posted from now on."""
        return self._tx(self._fn.setReviewWindow(seconds))[0]


def _order(order_id: int, row: Sequence[Any]) -> Order:
    (
        consumer,
        kind,
        state,
        acceptance,
        fee_bps,
        period_days,
        provider,
        deadline,
        token_id,
        escrow,
        price,
        created_at,
        start,
        end,
        submitted_at,
        review_window,
        expected,
        result,
        dispute_id,
        specs,
        spec_cid,
        result_cid,
    ) = row
    return Order(
        order_id=order_id,
        kind=OrderKind(kind),
        state=OrderState(state),
        consumer=str(consumer),
        provider=None if str(provider) == ZERO_ADDRESS else str(provider),
        acceptance=Acceptance(acceptance),
        fee_bps=int(fee_bps),
        period_days=int(period_days),
        deadline=int(deadline),
        token_id=int(token_id),
        escrow=int(escrow),
        price_per_day=int(price),
        created_at=int(created_at),
        start=int(start),
        end=int(end),
        submitted_at=int(submitted_at),
        review_window=int(review_window),
        expected_hash=None if bytes(expected) == ZERO_HASH else bytes(expected),
        result_hash=None if bytes(result) == ZERO_HASH else bytes(result),
        dispute_id=int(dispute_id),
        specs=Specs.from_abi(specs),
        spec_cid=str(spec_cid),
        result_cid=str(result_cid),
    )
