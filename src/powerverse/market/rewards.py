"""Block rewards as the chain paid them (docs/tokenomics.md, "Block rewards").

The chain credits rewards itself (chain/rewards.py); this reads them back: what one block paid
(`pv_getBlockReward`), the sums over a range of blocks per recipient, and the emission pool's
state (balance, the instant up to which emission is paid). Validators' parts sit in Staking:
the commission in ``owed`` (withdraw it with ``pv stake withdraw``), the rest in the bonded pool,
where every delegation grew pro rata.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from web3.types import BlockIdentifier

from powerverse.chain.rewards import DIVIDEND_POOL, EMISSION_POOL, PAID_UNTIL_SLOT
from powerverse.economics.emission import EMISSION_CAP
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import MarketError

__all__ = ["BlockReward", "BlockRewards", "EmissionStatus", "Payout", "RangeSummary"]


@dataclass(frozen=True)
class Payout:
    """One recipient's part of a block reward (``consensus_key`` None for a plain account)."""

    account: str
    consensus_key: str | None
    amount: int
    weight: int | None = None  # vote weight, for committee members


@dataclass(frozen=True)
class BlockReward:
    """What one block paid out of the emission pool, for emission over (since, until]."""

    number: int
    block_hash: str
    since: int
    until: int
    total: int
    dividend: int
    proposer: Payout
    committee: tuple[Payout, ...]

    def payouts(self) -> dict[str, int]:
        """Wei per recipient account (a proposer that also voted gets both parts)."""
        out = {self.proposer.account: self.proposer.amount}
        for member in self.committee:
            out[member.account] = out.get(member.account, 0) + member.amount
        return out

    def to_json(self) -> dict[str, Any]:
        """Amounts as decimal wei strings."""

        def payout(p: Payout) -> dict[str, Any]:
            doc: dict[str, Any] = {
                "account": p.account,
                "consensusKey": p.consensus_key,
                "amount": str(p.amount),
            }
            if p.weight is not None:
                doc["weight"] = p.weight
            return doc

        return {
            "blockNumber": self.number,
            "blockHash": self.block_hash,
            "since": self.since,
            "until": self.until,
            "total": str(self.total),
            "dividend": str(self.dividend),
            "proposer": payout(self.proposer),
            "committee": [payout(m) for m in self.committee],
        }


@dataclass(frozen=True)
class RangeSummary:
    """Rewards paid by blocks ``first``..``last``: totals and wei per recipient account."""

    first: int
    last: int
    blocks_paid: int
    total: int
    dividend: int
    by_account: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """Amounts as decimal wei strings, recipients by amount (largest first)."""
        ranked = sorted(self.by_account.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "from": self.first,
            "to": self.last,
            "blocksPaid": self.blocks_paid,
            "total": str(self.total),
            "dividend": str(self.dividend),
            "recipients": [{"account": a, "amount": str(x)} for a, x in ranked],
        }


@dataclass(frozen=True)
class EmissionStatus:
    """The emission pool: its balance, what it paid so far and up to which instant."""

    pool: int
    paid: int
    paid_until: int
    dividend_pool: int

    def to_json(self) -> dict[str, Any]:
        """Amounts as decimal wei strings."""
        return {
            "emissionPool": str(self.pool),
            "paid": str(self.paid),
            "paidUntil": self.paid_until,
            "dividendPool": str(self.dividend_pool),
        }


MAX_RANGE = 10_000
"""Most blocks one range query reads."""


class BlockRewards:
    """Read block rewards through a node's JSON-RPC."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.client.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            error = response["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise MarketError(f"{method}: {message}")
        return response.get("result")

    def block(self, block: BlockIdentifier = "latest") -> BlockReward | None:
        """What ``block`` (number, tag or hash) paid; None when it paid nothing."""
        ref = hex(block) if isinstance(block, int) else str(block)
        doc = self._rpc("pv_getBlockReward", [ref])
        if doc is None:
            return None

        def num(text: str) -> int:
            return int(text, 16)

        def payout(d: dict[str, Any], weight: bool) -> Payout:
            return Payout(
                account=str(d["account"]),
                consensus_key=d.get("consensusKey"),
                amount=num(d["amount"]),
                weight=num(d["weight"]) if weight else None,
            )

        return BlockReward(
            number=num(doc["blockNumber"]),
            block_hash=str(doc["blockHash"]),
            since=num(doc["since"]),
            until=num(doc["until"]),
            total=num(doc["total"]),
            dividend=num(doc["dividend"]),
            proposer=payout(doc["proposer"], False),
            committee=tuple(payout(m, True) for m in doc["committee"]),
        )

    def blocks(self, first: int, last: int) -> Iterator[BlockReward]:
        """The rewards paid by blocks ``first``..``last`` (those that paid something)."""
        if first < 0 or last < first:
            raise MarketError(f"bad block range {first}..{last}")
        if last - first + 1 > MAX_RANGE:
            raise MarketError(f"at most {MAX_RANGE} blocks per query ({first}..{last} asked)")
        for number in range(first, last + 1):
            reward = self.block(number)
            if reward is not None:
                yield reward

    def summary(self, first: int, last: int) -> RangeSummary:
        """Sums over blocks ``first``..``last``."""
        total = dividend = paid = 0
        by_account: dict[str, int] = {}
        for reward in self.blocks(first, last):
            paid += 1
            total += reward.total
            dividend += reward.dividend
            for account, amount in reward.payouts().items():
                by_account[account] = by_account.get(account, 0) + amount
        return RangeSummary(first, last, paid, total, dividend, by_account)

    def emission(self, block: BlockIdentifier = "latest") -> EmissionStatus:
        """The emission pool's state at ``block``."""
        w3 = self.client.w3
        pool_address = w3.to_checksum_address(EMISSION_POOL)
        pool = int(w3.eth.get_balance(pool_address, block))
        paid_until = int.from_bytes(
            bytes(w3.eth.get_storage_at(pool_address, PAID_UNTIL_SLOT, block)), "big"
        )
        dividend_pool = int(w3.eth.get_balance(w3.to_checksum_address(DIVIDEND_POOL), block))
        # a genesis without a tokenomics section has no pool and has paid nothing
        paid = EMISSION_CAP - pool if (pool or paid_until) and pool <= EMISSION_CAP else 0
        return EmissionStatus(pool, paid, paid_until, dividend_pool)
