"""The monthly dividend pool (whitepaper 8.2; docs/tokenomics.md "Monthly dividends").

:class:`DividendPool` wraps the `DividendPool` contract at 0x…200a: device heartbeats, donations,
violation flags, closing an epoch and claiming its dividends, and :meth:`DividendPool.verify`,
which recomputes an epoch's scores, pool and payouts from the chain's logs and state with the
pure rule of :mod:`powerverse.economics.dividends` and compares them with what the contract says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from eth_utils.address import to_checksum_address
from web3.contract import Contract
from web3.types import BlockIdentifier, FilterParams, LogReceipt

from powerverse.contracts.addresses import DIVIDEND_POOL
from powerverse.economics.dividends import (
    EPOCH_LENGTH,
    DeviceBeat,
    OnlineDevice,
    online_devices,
    payouts,
    required_heartbeats,
    scores,
)
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import ContractError, MarketError
from powerverse.market.receipts import TxInfo

__all__ = [
    "ClaimRecord",
    "Closing",
    "DeviceStatus",
    "DividendPool",
    "EpochInfo",
    "FlagRecord",
    "HeartbeatRecord",
    "PoolStatus",
    "VerifyReport",
    "VerifyRow",
]

LOG_CHUNK = 10_000
"""Blocks per eth_getLogs request (the node's maximum range)."""
T = TypeVar("T")


def _account(a: str | bytes) -> str:
    return str(to_checksum_address(a))


@dataclass(frozen=True, kw_only=True)
class PoolStatus:
    """The pool as a whole at one block."""

    address: str
    balance: int
    reserved: int
    first_epoch_start: int
    slot_length: int
    current_epoch: int | None
    next_epoch_to_close: int
    time: int

    @property
    def unassigned(self) -> int:
        """Wei no closed epoch owes: the pool of the next epoch to close, so far."""
        return self.balance - self.reserved

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (wei as decimal strings, times in unix seconds)."""
        return {
            "address": self.address,
            "balance": str(self.balance),
            "reserved": str(self.reserved),
            "unassigned": str(self.unassigned),
            "firstEpochStart": self.first_epoch_start,
            "slotLength": self.slot_length,
            "currentEpoch": self.current_epoch,
            "nextEpochToClose": self.next_epoch_to_close,
            "time": self.time,
        }


@dataclass(frozen=True, kw_only=True)
class EpochInfo:
    """One epoch as the contract keeps it."""

    epoch: int
    start: int
    end: int
    slot_length: int
    slots: int
    required: int
    closed: bool
    pool: int
    total_score: int
    claimed_score: int
    claimed_amount: int

    @classmethod
    def from_tuple(cls, row: Any) -> EpochInfo:
        """From the contract's `EpochView`."""
        v = [int(x) for x in row]
        return cls(
            epoch=v[0],
            start=v[1],
            end=v[2],
            slot_length=v[3],
            slots=v[4],
            required=v[5],
            closed=bool(row[6]),
            pool=v[7],
            total_score=v[8],
            claimed_score=v[9],
            claimed_amount=v[10],
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "epoch": self.epoch,
            "start": self.start,
            "end": self.end,
            "slotLength": self.slot_length,
            "slots": self.slots,
            "requiredHeartbeats": self.required,
            "closed": self.closed,
            "pool": str(self.pool),
            "totalScore": str(self.total_score),
            "claimedScore": str(self.claimed_score),
            "claimedAmount": str(self.claimed_amount),
            "carriedOver": self.closed and self.total_score == 0,
        }


@dataclass(frozen=True, kw_only=True)
class DeviceStatus:
    """A device's heartbeats in one epoch."""

    epoch: int
    token_id: int
    heartbeats: int
    last_slot: int | None
    online: bool

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "epoch": self.epoch,
            "tokenId": self.token_id,
            "heartbeats": self.heartbeats,
            "lastSlot": self.last_slot,
            "online": self.online,
        }


@dataclass(frozen=True, kw_only=True)
class HeartbeatRecord:
    """A mined device heartbeat; `online` when it was the one that made the device online."""

    epoch: int
    token_id: int
    slot: int
    online: bool
    points: int | None
    credited: bool | None
    tx: TxInfo

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "epoch": self.epoch,
            "tokenId": self.token_id,
            "slot": self.slot,
            "becameOnline": self.online,
            "points": None if self.points is None else str(self.points),
            "credited": self.credited,
            "txHash": self.tx.tx_hash,
            "blockNumber": self.tx.block_number,
        }


@dataclass(frozen=True, kw_only=True)
class Closing:
    """A mined `close(epoch)`: the pool it fixed (carried over when nobody scored)."""

    epoch: int
    pool: int
    total_score: int
    balance: int
    reserved_before: int
    tx: TxInfo

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "epoch": self.epoch,
            "pool": str(self.pool),
            "totalScore": str(self.total_score),
            "balance": str(self.balance),
            "reservedBefore": str(self.reserved_before),
            "carriedOver": self.total_score == 0,
            "txHash": self.tx.tx_hash,
            "blockNumber": self.tx.block_number,
        }


@dataclass(frozen=True, kw_only=True)
class ClaimRecord:
    """A mined claim: wei paid to `account` for `epoch` and the score it was paid for."""

    epoch: int
    account: str
    amount: int
    score: int
    tx: TxInfo

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "epoch": self.epoch,
            "account": self.account,
            "amount": str(self.amount),
            "score": str(self.score),
            "txHash": self.tx.tx_hash,
            "blockNumber": self.tx.block_number,
        }


@dataclass(frozen=True, kw_only=True)
class FlagRecord:
    """A mined violation flag: `account` scores 0 in `epoch`."""

    epoch: int
    account: str
    removed_score: int
    reason: str
    tx: TxInfo

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "epoch": self.epoch,
            "account": self.account,
            "removedScore": str(self.removed_score),
            "reason": self.reason,
            "txHash": self.tx.tx_hash,
            "blockNumber": self.tx.block_number,
        }


@dataclass(frozen=True, kw_only=True)
class VerifyRow:
    """One account in a verified epoch: the recomputed and the contract's figures."""

    account: str
    expected_score: int
    chain_score: int
    flagged: bool
    expected_payout: int | None
    chain_payout: int | None
    claimed: bool

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""

        def s(v: int | None) -> str | None:
            return None if v is None else str(v)

        return {
            "account": self.account,
            "expectedScore": str(self.expected_score),
            "chainScore": str(self.chain_score),
            "flagged": self.flagged,
            "expectedPayout": s(self.expected_payout),
            "chainPayout": s(self.chain_payout),
            "claimed": self.claimed,
        }


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """`verify(epoch)`: what the chain's data give, what the contract says, every mismatch."""

    epoch: int
    closed: bool
    slot_length: int
    required: int
    devices: tuple[OnlineDevice, ...]
    rows: tuple[VerifyRow, ...]
    expected_total: int
    chain_total: int
    pool: int | None
    dust: int | None
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the contract agrees with the recomputation."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "epoch": self.epoch,
            "ok": self.ok,
            "closed": self.closed,
            "slotLength": self.slot_length,
            "requiredHeartbeats": self.required,
            "onlineDevices": [
                {"tokenId": d.token_id, "owner": d.owner, "points": str(d.points)}
                for d in self.devices
            ],
            "accounts": [r.to_json() for r in self.rows],
            "expectedTotalScore": str(self.expected_total),
            "chainTotalScore": str(self.chain_total),
            "pool": None if self.pool is None else str(self.pool),
            "dust": None if self.dust is None else str(self.dust),
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class _Log:
    name: str
    block: int
    index: int
    args: dict[str, Any]


class DividendPool:
    """The DividendPool contract (the predeployed one unless `address` is given)."""

    def __init__(self, client: ChainClient, *, address: str | bytes | None = None) -> None:
        self.client = client
        self.contract: Contract = client.contract("DividendPool", address or DIVIDEND_POOL)
        self._topics = {
            bytes.fromhex(str(self.contract.events[name].topic).removeprefix("0x")): name
            for name in _EVENTS
        }

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    @property
    def address(self) -> str:
        """The contract's checksummed address."""
        return str(self.contract.address)

    def _named(self, action: Callable[[], T]) -> T:
        """Run `action`, naming this contract in a refusal."""
        try:
            return action()
        except ContractError as exc:
            if exc.contract in (None, self.address, "DividendPool"):
                raise ContractError(
                    exc.name, exc.args_by_name, exc.data, contract="DividendPool"
                ) from None
            raise

    def _call(self, fn: Any, block: BlockIdentifier = "latest") -> Any:
        return self._named(lambda: self.client.call(fn, block=block))

    def _send(self, fn: Any, *, value: int = 0, gas: int | None = None) -> dict[str, Any]:
        return self._named(lambda: self.client.transact(fn, value=value, gas=gas))

    def deployed(self) -> bool:
        """Whether the contract exists (a genesis without a tokenomics section has none)."""
        return bool(self.client.w3.eth.get_code(self.contract.address))

    # ------------------------------------------------------------------ transactions

    def heartbeat(self, token_id: int, *, gas: int | None = None) -> HeartbeatRecord:
        """The device's owner or agent: `token_id` is online in this slot (once per slot)."""
        receipt = self._send(self._fn.heartbeat(token_id), gas=gas)
        (beat,) = self.client.events(self.contract, "Heartbeat", receipt)
        online = self.client.events(self.contract, "DeviceOnline", receipt)
        return HeartbeatRecord(
            epoch=int(beat["epoch"]),
            token_id=int(beat["tokenId"]),
            slot=int(beat["slot"]),
            online=bool(online),
            points=int(online[0]["points"]) if online else None,
            credited=bool(online[0]["credited"]) if online else None,
            tx=TxInfo.from_receipt(receipt),
        )

    def donate(self, amount: int) -> TxInfo:
        """Add `amount` wei to the pool."""
        if amount <= 0:
            raise MarketError("a donation must be more than 0 wei")
        return TxInfo.from_receipt(self._send(self._fn.donate(), value=amount))

    def close(self, epoch: int, *, gas: int | None = None) -> Closing:
        """Anyone, after `epoch` ended and the earlier ones are closed: fix its pool."""
        receipt = self._send(self._fn.close(epoch), gas=gas)
        (event,) = self.client.events(self.contract, "EpochClosed", receipt)
        return Closing(
            epoch=int(event["epoch"]),
            pool=int(event["pool"]),
            total_score=int(event["totalScore"]),
            balance=int(event["balance"]),
            reserved_before=int(event["reservedBefore"]),
            tx=TxInfo.from_receipt(receipt),
        )

    def claim(self, epoch: int, *, account: str | None = None) -> ClaimRecord:
        """Claim the signer's dividend of `epoch`, or `account`'s (the coin goes to it)."""
        if account is None:
            fn = self._fn.claim(epoch)
        else:
            fn = self._fn.claimFor(epoch, _account(account))
        receipt = self._send(fn)
        (event,) = self.client.events(self.contract, "Claimed", receipt)
        return ClaimRecord(
            epoch=int(event["epoch"]),
            account=_account(event["account"]),
            amount=int(event["amount"]),
            score=int(event["score"]),
            tx=TxInfo.from_receipt(receipt),
        )

    def flag(self, account: str, epoch: int, reason: str) -> FlagRecord:
        """PlatformAdmin ADMIN_ROLE or FLAGGER_ROLE: `account` scores 0 in `epoch`."""
        receipt = self._send(self._fn.flagViolation(_account(account), epoch, reason))
        return self._flag_record(receipt)

    def flag_ruling(self, dispute_id: int) -> FlagRecord:
        """Anyone: flag the provider of a dispute ruled against it, in the ruling's epoch."""
        return self._flag_record(self._send(self._fn.flagRuling(dispute_id)))

    def _flag_record(self, receipt: dict[str, Any]) -> FlagRecord:
        (event,) = self.client.events(self.contract, "ViolationFlagged", receipt)
        return FlagRecord(
            epoch=int(event["epoch"]),
            account=_account(event["account"]),
            removed_score=int(event["removedScore"]),
            reason=str(event["reason"]),
            tx=TxInfo.from_receipt(receipt),
        )

    def set_slot_length(self, seconds: int) -> TxInfo:
        """GOVERNANCE_ROLE: the heartbeat slot length from the next epoch on."""
        return TxInfo.from_receipt(self._send(self._fn.setSlotLength(seconds)))

    # ------------------------------------------------------------------ views

    def status(self, *, block: BlockIdentifier = "latest") -> PoolStatus:
        """The pool as a whole."""
        fn = self._fn
        first = int(self._call(fn.firstEpochStart(), block))
        time = int(self.client.w3.eth.get_block(block)["timestamp"])
        return PoolStatus(
            address=self.address,
            balance=int(self.client.w3.eth.get_balance(self.contract.address, block)),
            reserved=int(self._call(fn.reserved(), block)),
            first_epoch_start=first,
            slot_length=int(self._call(fn.slotLength(), block)),
            current_epoch=None if time < first else (time - first) // EPOCH_LENGTH,
            next_epoch_to_close=int(self._call(fn.nextEpochToClose(), block)),
            time=time,
        )

    def epoch(self, epoch: int, *, block: BlockIdentifier = "latest") -> EpochInfo:
        """Epoch `epoch` as the contract keeps it."""
        return EpochInfo.from_tuple(self._call(self._fn.epochInfo(epoch), block))

    def device(
        self, epoch: int, token_id: int, *, block: BlockIdentifier = "latest"
    ) -> DeviceStatus:
        """A device's heartbeats in `epoch`."""
        count, last, online = self._call(self._fn.deviceOf(epoch, token_id), block)
        return DeviceStatus(
            epoch=epoch,
            token_id=token_id,
            heartbeats=int(count),
            last_slot=int(last) - 1 if int(last) else None,
            online=bool(online),
        )

    def score_of(self, epoch: int, account: str, *, block: BlockIdentifier = "latest") -> int:
        """`account`'s score in `epoch`."""
        return int(self._call(self._fn.scoreOf(epoch, _account(account)), block))

    def is_flagged(self, epoch: int, account: str, *, block: BlockIdentifier = "latest") -> bool:
        """Whether `account` was flagged in `epoch`."""
        return bool(self._call(self._fn.isFlagged(epoch, _account(account)), block))

    def has_claimed(self, epoch: int, account: str, *, block: BlockIdentifier = "latest") -> bool:
        """Whether `account` claimed `epoch`."""
        return bool(self._call(self._fn.hasClaimed(epoch, _account(account)), block))

    def claimable(self, epoch: int, account: str, *, block: BlockIdentifier = "latest") -> int:
        """Wei `account` may claim for `epoch` now."""
        return int(self._call(self._fn.claimable(epoch, _account(account)), block))

    def claimable_all(self, account: str) -> list[tuple[int, int, int]]:
        """(epoch, score, wei) for every closed epoch in which `account` has something to claim."""
        out = []
        for e in range(int(self._call(self._fn.nextEpochToClose()))):
            wei = self.claimable(e, account)
            score = self.score_of(e, account)
            if score and not self.has_claimed(e, account):
                out.append((e, score, wei))
        return out

    def heartbeat_due(self, token_id: int) -> bool:
        """Whether `token_id` has no heartbeat in the head block's slot yet (False before the
        first epoch). The agent asks this before sending one."""
        head = self.client.w3.eth.get_block("latest")
        first = int(self._call(self._fn.firstEpochStart()))
        now = int(head["timestamp"])
        if now < first:
            return False
        info = self.epoch((now - first) // EPOCH_LENGTH)
        slot = (now - info.start) // info.slot_length
        return self.device(info.epoch, token_id).last_slot != slot

    # ------------------------------------------------------------------ verification

    def verify(self, epoch: int) -> VerifyReport:
        """Recompute `epoch` from the chain's logs and state and compare with the contract.

        Online devices: the pool's `Heartbeat` logs (distinct slots per device, 90 % of the
        epoch's slots); each device's owner, performPoints and eligibility are read from the
        chain's state at the block of its threshold heartbeat. Flags: `ViolationFlagged` logs.
        The slot length: the last `SlotLengthChanged` before the epoch began. The pool: the
        pool's balance at the close (the balance before the close's block plus the donations
        and minus the claims logged before it in that block; a credit without a log in that
        block, e.g. the block reward's share, may come before or after) minus what earlier
        epochs still owed, recomputed from their `EpochClosed`, `Claimed` and `DustReleased`
        logs. Payouts: the pure rule over those, against each account's claim or claimable.
        """
        info = self.epoch(epoch)
        head = self.client.w3.eth.get_block("latest")
        if int(head["timestamp"]) < info.start:
            raise MarketError(f"epoch {epoch} has not started (it starts at {info.start})")
        problems: list[str] = []
        start_block = self._first_block_at_or_after(info.start)
        history = self._logs(0, int(head["number"]))
        closed_at = next(
            (lg for lg in history if lg.name == "EpochClosed" and int(lg.args["epoch"]) == epoch),
            None,
        )
        # everything the contract did for this epoch, up to its close
        mine = [
            lg
            for lg in history
            if int(lg.args.get("epoch", -1)) == epoch
            and (closed_at is None or (lg.block, lg.index) <= (closed_at.block, closed_at.index))
        ]
        slot_length = self._slot_length_before(history, start_block)
        if slot_length != info.slot_length:
            problems.append(
                f"slot length: the contract uses {info.slot_length} s, the SlotLengthChanged "
                f"logs before the epoch give {slot_length} s"
            )
        required = required_heartbeats(info.slot_length)
        beats = [lg for lg in mine if lg.name == "Heartbeat"]
        devices, device_problems = self._online_devices(beats, required)
        problems += device_problems
        logged = [
            (int(lg.args["tokenId"]), _account(lg.args["owner"]), int(lg.args["points"]))
            for lg in mine
            if lg.name == "DeviceOnline"
        ]
        recomputed = [(d.token_id, d.owner, d.points) for d in devices]
        if logged != recomputed:
            problems.append(
                f"online devices: the contract logged {logged}, the heartbeats give {recomputed}"
            )
        flagged = {_account(lg.args["account"]) for lg in mine if lg.name == "ViolationFlagged"}
        expected_scores = scores(devices, flagged)
        expected_total = sum(expected_scores.values())
        if info.total_score != expected_total:
            problems.append(
                f"total score: the contract has {info.total_score}, expected {expected_total}"
            )
        pool: int | None = None
        dust: int | None = None
        expected_pay: dict[str, int] = {}
        if info.closed and closed_at is not None:
            pool = self._verify_pool(epoch, info, closed_at, history, problems)
            result = payouts(pool, expected_scores)
            expected_pay, dust = result.amounts, result.dust
        elif info.closed:
            problems.append(f"epoch {epoch} is closed but no EpochClosed log was found")
        claims = {
            _account(lg.args["account"]): int(lg.args["amount"])
            for lg in history
            if lg.name == "Claimed" and int(lg.args["epoch"]) == epoch
        }
        accounts = sorted(set(expected_scores) | {o for _, o, _ in logged} | flagged | set(claims))
        rows = []
        for account in accounts:
            chain_score = self.score_of(epoch, account)
            want = expected_scores.get(account, 0)
            if chain_score != want:
                problems.append(f"{account}: score {chain_score} on chain, expected {want}")
            chain_pay: int | None = None
            want_pay: int | None = None
            if info.closed and pool is not None:
                want_pay = expected_pay.get(account, 0)
                chain_pay = claims[account] if account in claims else self.claimable(epoch, account)
                if chain_pay != want_pay:
                    problems.append(
                        f"{account}: payout {chain_pay} wei on chain, expected {want_pay} wei"
                    )
            rows.append(
                VerifyRow(
                    account=account,
                    expected_score=want,
                    chain_score=chain_score,
                    flagged=account in flagged,
                    expected_payout=want_pay,
                    chain_payout=chain_pay,
                    claimed=account in claims,
                )
            )
        return VerifyReport(
            epoch=epoch,
            closed=info.closed,
            slot_length=info.slot_length,
            required=required,
            devices=devices,
            rows=tuple(rows),
            expected_total=expected_total,
            chain_total=info.total_score,
            pool=pool,
            dust=dust,
            problems=tuple(problems),
        )

    def _online_devices(
        self, beats: list[_Log], required: int
    ) -> tuple[tuple[OnlineDevice, ...], list[str]]:
        """The pure rule over the heartbeat logs, each device's snapshot read from the chain at
        the block of the heartbeat that reached `required` distinct slots."""
        problems: list[str] = []
        slots: dict[int, set[int]] = {}
        snapshot: dict[int, tuple[str, int]] = {}
        for lg in beats:
            token = int(lg.args["tokenId"])
            seen = slots.setdefault(token, set())
            seen.add(int(lg.args["slot"]))
            if len(seen) == required and token not in snapshot:
                snapshot[token] = self._device_state(token, lg.block, problems)
        device_beats = [
            DeviceBeat(
                token_id=int(lg.args["tokenId"]),
                slot=int(lg.args["slot"]),
                owner=snapshot.get(int(lg.args["tokenId"]), ("", 0))[0],
                points=snapshot.get(int(lg.args["tokenId"]), ("", 0))[1],
            )
            for lg in beats
        ]
        return online_devices(device_beats, required), problems

    def _device_state(self, token_id: int, block: int, problems: list[str]) -> tuple[str, int]:
        """Owner and performPoints of `token_id` after `block`; eligibility problems noted."""
        nft = self.client.contract("ResourceNFT")
        market = self.client.contract("Market")
        admin = self.client.contract("PlatformAdmin")
        owner = _account(self.client.call(nft.functions.ownerOf(token_id), block=block))
        points = int(self.client.call(nft.functions.performPointsOf(token_id), block=block))
        verified = bool(self.client.call(nft.functions.isVerified(token_id), block=block))
        listing = self.client.call(market.functions.listingOf(token_id), block=block)
        blocked = bool(self.client.call(admin.functions.isResourceBlocked(token_id), block=block))
        owner_blocked = bool(self.client.call(admin.functions.isAccountBlocked(owner), block=block))
        listed = int(listing[1]) != 0 and _account(listing[0]) == owner
        if not (verified and listed) or blocked or owner_blocked:
            problems.append(
                f"device #{token_id} became online at block {block} while verified={verified}, "
                f"listed={listed}, blocked={blocked}, owner blocked={owner_blocked}"
            )
        return owner, points

    def _verify_pool(
        self, epoch: int, info: EpochInfo, closed_at: _Log, history: list[_Log], problems: list[str]
    ) -> int:
        """The epoch's pool recomputed from balances and logs; mismatches appended."""
        reserved = 0
        for lg in history:
            if (lg.block, lg.index) >= (closed_at.block, closed_at.index):
                break
            if lg.name == "EpochClosed" and int(lg.args["totalScore"]) > 0:
                reserved += int(lg.args["pool"])
            elif lg.name in ("Claimed", "DustReleased"):
                reserved -= int(lg.args["amount"])
        logged_reserved = int(closed_at.args["reservedBefore"])
        logged_balance = int(closed_at.args["balance"])
        if reserved != logged_reserved:
            problems.append(
                f"reserved before the close: the contract had {logged_reserved} wei, "
                f"the logs give {reserved} wei"
            )
        block = closed_at.block
        before = int(self.client.w3.eth.get_balance(self.contract.address, block - 1))
        after = int(self.client.w3.eth.get_balance(self.contract.address, block))
        in_block = [lg for lg in history if lg.block == block]

        def flow(lg: _Log) -> int:
            if lg.name == "Donated":
                return int(lg.args["amount"])
            return -int(lg.args["amount"]) if lg.name == "Claimed" else 0

        base = before + sum(flow(lg) for lg in in_block if lg.index < closed_at.index)
        silent = after - before - sum(flow(lg) for lg in in_block)
        if logged_balance not in (base, base + silent):
            problems.append(
                f"balance at the close: the contract saw {logged_balance} wei, the chain's "
                f"balances and logs give {base} wei"
                + (f" (or {base + silent} with this block's {silent} wei credit)" if silent else "")
            )
        pool = logged_balance - reserved
        if info.pool != pool:
            problems.append(f"pool: the contract fixed {info.pool} wei, expected {pool} wei")
        return pool

    def _slot_length_before(self, history: list[_Log], start_block: int) -> int:
        """The slot length in force when the block `start_block` began (0: none logged)."""
        length = 0
        for lg in history:
            if lg.block >= start_block:
                break
            if lg.name == "SlotLengthChanged":
                length = int(lg.args["newLength"])
        return length

    def _first_block_at_or_after(self, timestamp: int) -> int:
        """The first block whose timestamp is at least `timestamp` (head + 1 if none)."""
        lo, hi = 0, int(self.client.w3.eth.block_number) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if int(self.client.w3.eth.get_block(mid)["timestamp"]) >= timestamp:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _logs(self, from_block: int, to_block: int) -> list[_Log]:
        """Every log of this contract in the range, decoded, in chain order."""
        out: list[_Log] = []
        for lo in range(from_block, to_block + 1, LOG_CHUNK):
            params = {
                "address": self.contract.address,
                "fromBlock": lo,
                "toBlock": min(lo + LOG_CHUNK - 1, to_block),
            }
            for raw in self.client.w3.eth.get_logs(cast(FilterParams, params)):
                decoded = self._decode(raw)
                if decoded is not None:
                    out.append(decoded)
        out.sort(key=lambda lg: (lg.block, lg.index))
        return out

    def _decode(self, raw: LogReceipt) -> _Log | None:
        topics = raw["topics"]
        if not topics:
            return None
        name = self._topics.get(bytes(topics[0]))
        if name is None:
            return None
        ev = self.contract.events[name]().process_log(raw)
        return _Log(name, int(raw["blockNumber"]), int(raw["logIndex"]), dict(ev["args"]))


_EVENTS: tuple[str, ...] = (
    "Heartbeat",
    "DeviceOnline",
    "ViolationFlagged",
    "EpochClosed",
    "Claimed",
    "DustReleased",
    "Donated",
    "SlotLengthChanged",
)
