"""Reviews and reputation over the Reputation system contract (whitepaper 5, 用户评价与信誉体系).

When an order ends with two parties (a Market rental or an Orders demand/task), its contract
records it under an order key; each party may then review the other once, rating quality,
service and efficiency from 1 to 5 with an optional comment content id. Reputation is a
Bayesian average in units of 1/10,000 star (0..50,000), with a prior that makes a new account
start at the prior mean; a failed delivery counts as ``failure_weight`` one-star reviews.
Below ``min_reputation`` an account may not list, rent, post or take orders
(docs/contracts.md, "Reputation").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract

from powerverse.market.client import ChainClient
from powerverse.market.exceptions import MarketError
from powerverse.market.receipts import TxInfo

__all__ = [
    "MAX_RATING",
    "MIN_RATING",
    "SCALE",
    "OrderRecord",
    "ReputationParams",
    "ReputationStats",
    "Review",
    "Reviewed",
    "Reviews",
    "bayesian_reputation",
    "order_key",
    "stars",
]

SCALE = 10_000
"""Reputation units per star: 35,000 = 3.5 stars."""
MIN_RATING = 1
MAX_RATING = 5
ZERO_ADDRESS = "0x" + "00" * 20


def stars(score: int) -> float:
    """A reputation score in stars (35,000 -> 3.5)."""
    return score / SCALE


def order_key(source: str | bytes, order_id: int) -> bytes:
    """The key under which `source` (Market's or Orders' address) records order `order_id`:
    ``keccak256(abi.encode(source, orderId))``."""
    return keccak(abi_encode(["address", "uint256"], [to_checksum_address(source), order_id]))


@dataclass(frozen=True, kw_only=True)
class ReputationParams:
    """The prior (mean in SCALE units, weight in reviews) and the failure penalty."""

    prior_mean: int
    prior_weight: int
    failure_weight: int


@dataclass(frozen=True, kw_only=True)
class ReputationStats:
    """One account's record: its reputation and the counts and rating sums behind it."""

    account: str
    reputation: int
    orders: int
    reviews_received: int
    reviews_given: int
    failures: int
    quality_sum: int
    service_sum: int
    efficiency_sum: int

    @property
    def stars(self) -> float:
        """The reputation in stars."""
        return stars(self.reputation)

    def average(self, axis: str) -> float | None:
        """Mean rating received on `axis` ("quality", "service", "efficiency"); None if unrated."""
        if axis not in ("quality", "service", "efficiency"):
            raise MarketError(f"unknown rating axis {axis!r}")
        if not self.reviews_received:
            return None
        return int(getattr(self, f"{axis}_sum")) / self.reviews_received

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "account": self.account,
            "reputation": self.reputation,
            "stars": self.stars,
            "orders": self.orders,
            "reviewsReceived": self.reviews_received,
            "reviewsGiven": self.reviews_given,
            "failures": self.failures,
            "averages": {a: self.average(a) for a in ("quality", "service", "efficiency")},
        }


@dataclass(frozen=True, kw_only=True)
class OrderRecord:
    """A recorded order: its parties and which of them have reviewed."""

    order_key: bytes
    consumer: str
    provider: str
    recorded_at: int
    consumer_reviewed: bool
    provider_reviewed: bool
    failed: bool
    recorder: str


@dataclass(frozen=True, kw_only=True)
class Review:
    """One review written by `reviewer` about `reviewee`."""

    order_key: bytes
    reviewer: str
    reviewee: str
    quality: int
    service: int
    efficiency: int
    at: int
    comment: str

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "orderKey": "0x" + self.order_key.hex(),
            "reviewer": self.reviewer,
            "reviewee": self.reviewee,
            "quality": self.quality,
            "service": self.service,
            "efficiency": self.efficiency,
            "at": self.at,
            "comment": self.comment,
        }


@dataclass(frozen=True, kw_only=True)
class Reviewed:
    """A review was recorded; `new_reputation` is the reviewee's score after it."""

    tx: TxInfo
    review: Review
    new_reputation: int


def bayesian_reputation(
    params: ReputationParams, *, rating_sum: int, reviews: int, failures: int
) -> int:
    """The contract's formula: `rating_sum` is Σ(quality + service + efficiency) received.

    ``(mean × weight × 3 + (rating_sum + 3 × failures × fw) × SCALE) / (3 × (weight + reviews +
    failures × fw))`` with integer division, as on chain.
    """
    failed = failures * params.failure_weight
    ratings = rating_sum + failed * 3 * MIN_RATING
    weight = params.prior_weight + reviews + failed
    return (params.prior_mean * params.prior_weight * 3 + ratings * SCALE) // (weight * 3)


class Reviews:
    """The Reputation contract for one client (a party, or governance)."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.contract: Contract = client.contract("Reputation")

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    def _tx(self, fn: Any) -> tuple[TxInfo, dict[str, Any]]:
        receipt = self.client.transact(fn)
        return TxInfo.from_receipt(receipt), receipt

    # ------------------------------------------------------------------ parties

    def review(
        self, key: bytes, quality: int, service: int, efficiency: int, comment: str = ""
    ) -> Reviewed:
        """Review the other party of recorded order `key` (ratings 1..5, once per side)."""
        tx, receipt = self._tx(self._fn.review(key, quality, service, efficiency, comment))
        (event,) = self.client.events(self.contract, "Reviewed", receipt)
        at = int(self.client.w3.eth.get_block(tx.block_number)["timestamp"])
        return Reviewed(
            tx=tx, review=_review_event(event, at), new_reputation=int(event["newReputation"])
        )

    # ------------------------------------------------------------------ reads

    def reputation(self, account: str | None = None) -> int:
        """Score of `account` (default: this client) in SCALE units."""
        who = to_checksum_address(account or self.client.address)
        return int(self.client.call(self._fn.reputationOf(who)))

    def stats(self, account: str | None = None) -> ReputationStats:
        """Reputation, counts and rating sums of `account` (default: this client)."""
        who = to_checksum_address(account or self.client.address)
        row = self.client.call(self._fn.statsOf(who))
        orders, received, given, failures, quality, service, efficiency = (int(v) for v in row)
        return ReputationStats(
            account=who,
            reputation=self.reputation(who),
            orders=orders,
            reviews_received=received,
            reviews_given=given,
            failures=failures,
            quality_sum=quality,
            service_sum=service,
            efficiency_sum=efficiency,
        )

    def order(self, key: bytes) -> OrderRecord | None:
        """The recorded order `key`, or None when it was never recorded."""
        consumer, at, provider, c_rev, p_rev, failed, recorder = self.client.call(
            self._fn.orderOf(key)
        )
        if str(consumer) == ZERO_ADDRESS and not failed:
            return None
        return OrderRecord(
            order_key=bytes(key),
            consumer=str(consumer),
            provider=str(provider),
            recorded_at=int(at),
            consumer_reviewed=bool(c_rev),
            provider_reviewed=bool(p_rev),
            failed=bool(failed),
            recorder=str(recorder),
        )

    def review_of(self, key: bytes, reviewer: str) -> Review | None:
        """The review `reviewer` gave on order `key`, or None."""
        who = to_checksum_address(reviewer)
        reviewee, quality, service, efficiency, at, comment = self.client.call(
            self._fn.reviewOf(key, who)
        )
        if int(at) == 0:
            return None
        return Review(
            order_key=bytes(key),
            reviewer=who,
            reviewee=str(reviewee),
            quality=int(quality),
            service=int(service),
            efficiency=int(efficiency),
            at=int(at),
            comment=str(comment),
        )

    def min_reputation(self) -> int:
        """The gate below which accounts may not trade (0 = none)."""
        return int(self.client.call(self._fn.minReputation()))

    def params(self) -> ReputationParams:
        """The prior and the failure weight."""
        mean, weight, failure = self.client.call(self._fn.params())
        return ReputationParams(
            prior_mean=int(mean), prior_weight=int(weight), failure_weight=int(failure)
        )

    # ------------------------------------------------------------------ governance

    def set_min_reputation(self, value: int) -> TxInfo:
        """GOVERNANCE_ROLE: the trading gate in SCALE units (0 disables it)."""
        return self._tx(self._fn.setMinReputation(value))[0]

    def set_params(self, params: ReputationParams) -> TxInfo:
        """GOVERNANCE_ROLE: replace the prior and the failure weight (applies to everyone)."""
        fn = self._fn.setParams(params.prior_mean, params.prior_weight, params.failure_weight)
        return self._tx(fn)[0]


def _review_event(event: Mapping[str, Any], at: int) -> Review:
    return Review(
        order_key=bytes(event["orderKey"]),
        reviewer=str(event["reviewer"]),
        reviewee=str(event["reviewee"]),
        quality=int(event["quality"]),
        service=int(event["service"]),
        efficiency=int(event["efficiency"]),
        at=at,
        comment=str(event["comment"]),
    )
