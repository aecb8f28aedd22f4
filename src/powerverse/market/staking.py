"""Validator staking over the Staking system contract: register, delegate, unbond, withdraw.

Stake is PVC in wei. A validator is identified by its operator account (user-facing calls) or
by its ed25519 consensus key (slashing and jailing, which the chain performs). The validator set
consensus uses is :meth:`Staking.active_validators` (docs/contracts.md, "Staking").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import astuple, dataclass
from typing import Any

import rlp
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.types import BlockIdentifier

from powerverse.market.client import ChainClient
from powerverse.market.exceptions import MarketError

__all__ = [
    "BPS",
    "ActiveValidator",
    "Staking",
    "StakingParams",
    "StakingTotals",
    "UnbondingEntry",
    "ValidatorInfo",
    "evidence_hash",
    "parse_consensus_key",
]

BPS = 10_000
EVIDENCE_DOMAIN = b"powerverse/equivocation/v1"


@dataclass(frozen=True, kw_only=True)
class StakingParams:
    """The contract's tunables (`Staking.Params`)."""

    min_self_stake: int
    unbonding_period: int
    jail_period: int
    max_commission_bps: int
    max_commission_change_bps: int
    commission_change_interval: int
    max_validators: int


@dataclass(frozen=True, kw_only=True)
class ValidatorInfo:
    """One registered validator; `active` means consensus counts its `total_stake`."""

    account: str
    consensus_key: bytes
    total_stake: int
    self_stake: int
    commission_bps: int
    jailed: bool
    jailed_until: int
    active: bool
    unbonding: int
    slashed: int

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (key as 0x hex, amounts as decimal strings of wei)."""
        return {
            "account": self.account,
            "consensusKey": "0x" + self.consensus_key.hex(),
            "totalStake": str(self.total_stake),
            "selfStake": str(self.self_stake),
            "commissionBps": self.commission_bps,
            "jailed": self.jailed,
            "jailedUntil": self.jailed_until,
            "active": self.active,
            "unbonding": str(self.unbonding),
            "slashed": str(self.slashed),
        }


@dataclass(frozen=True)
class ActiveValidator:
    """A member of the validator set consensus uses: key, fee-recipient account, stake in wei."""

    account: str
    consensus_key: bytes
    stake: int


@dataclass(frozen=True)
class UnbondingEntry:
    """A pending undelegation: withdrawable from `completion_time`, worth `amount` wei now."""

    id: int
    validator: str
    completion_time: int
    amount: int

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "id": self.id,
            "validator": self.validator,
            "completionTime": self.completion_time,
            "amount": str(self.amount),
        }


@dataclass(frozen=True)
class StakingTotals:
    """The contract's books: its balance equals bonded + unbonding + owed."""

    bonded: int
    unbonding: int
    owed: int
    balance: int


def parse_consensus_key(value: str | bytes) -> bytes:
    """A 32-byte ed25519 consensus public key from bytes or hex (0x optional)."""
    if isinstance(value, str):
        digits = value.removeprefix("0x").removeprefix("0X")
        try:
            value = bytes.fromhex(digits)
        except ValueError:
            raise MarketError(f"consensus key {value!r} is not hex") from None
    if len(value) != 32:
        raise MarketError(f"a consensus key is 32 bytes, got {len(value)}")
    return value


def evidence_hash(evidence: Mapping[str, Any]) -> bytes:
    """The hash under which a `pv_getEvidence` record is slashed (once per validator and height).

    ``keccak256(abi.encode("powerverse/equivocation/v1", validatorKey, height))``: two records of
    the same validator at the same height (e.g. a double prevote and a double precommit) count
    as one offence.
    """
    key = parse_consensus_key(str(evidence["validator"]))
    height = int(evidence["height"])
    return keccak(abi_encode(["bytes", "bytes32", "uint256"], [EVIDENCE_DOMAIN, key, height]))


class Staking:
    """Typed access to the Staking contract through a :class:`ChainClient`."""

    def __init__(self, client: ChainClient, *, address: str | bytes | None = None) -> None:
        self.client = client
        self.contract: Contract = client.contract("Staking", address)

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    # ------------------------------------------------------------------ transactions

    def register(self, consensus_key: bytes | str, commission_bps: int, self_stake: int) -> None:
        """Register the client's account as a validator, self-staking `self_stake` wei."""
        key = parse_consensus_key(consensus_key)
        fn = self._fn.registerValidator(key, commission_bps)
        self.client.transact(fn, value=self_stake)

    def delegate(self, validator: str, amount: int) -> None:
        """Delegate `amount` wei to `validator` (a validator's own account adds self-stake)."""
        fn = self._fn.delegate(to_checksum_address(validator))
        self.client.transact(fn, value=amount)

    def undelegate(self, validator: str, amount: int) -> UnbondingEntry:
        """Start unbonding `amount` wei from `validator`; returns the new unbonding entry."""
        fn = self._fn.undelegate(to_checksum_address(validator), amount)
        receipt = self.client.transact(fn)
        (event,) = self.client.events(self.contract, "Undelegated", receipt)
        return UnbondingEntry(
            int(event["unbondingId"]),
            str(event["validator"]),
            int(event["completionTime"]),
            int(event["amount"]),
        )

    def withdraw(self) -> int:
        """Complete matured unbondings and receive everything owed; returns the wei paid."""
        receipt = self.client.transact(self._fn.withdraw())
        (event,) = self.client.events(self.contract, "Withdrawn", receipt)
        return int(event["amount"])

    def set_commission(self, commission_bps: int) -> None:
        """Change the client's validator commission (bounded size and rate of change)."""
        self.client.transact(self._fn.setCommission(commission_bps))

    def unjail(self) -> None:
        """Leave jail after the jail period (self-stake must be at the minimum)."""
        self.client.transact(self._fn.unjail())

    def slash(self, consensus_key: bytes | str, evidence: bytes, fraction_bps: int) -> None:
        """SLASHER_ROLE: slash and jail the validator with `consensus_key` for `evidence`."""
        key = parse_consensus_key(consensus_key)
        self.client.transact(self._fn.slash(key, evidence, fraction_bps))

    def submit_evidence(self, evidence: Mapping[str, Any] | bytes) -> tuple[bytes, int]:
        """Prove an equivocation on chain (anyone may): a `pv_getEvidence` record, or the raw
        ``RLP([first, second])`` of the two signed messages. Returns (consensus key, height)."""
        if isinstance(evidence, bytes):
            raw = evidence
        else:
            messages = [bytes.fromhex(str(m).removeprefix("0x")) for m in evidence["messages"]]
            raw = bytes(rlp.encode(messages))
        receipt = self.client.transact(self._fn.submitEvidence(raw))
        (event,) = self.client.events(self.contract, "EvidenceSubmitted", receipt)
        return bytes(event["consensusKey"]), int(event["height"])

    def prove_liveness(self, vote: bytes | str) -> tuple[bytes, int]:
        """Prove a validator takes part in consensus (anyone may): the wire bytes of one of its
        signed precommits for a block among the last 256. Returns (consensus key, height)."""
        raw = vote if isinstance(vote, bytes) else bytes.fromhex(vote.removeprefix("0x"))
        receipt = self.client.transact(self._fn.proveLiveness(raw))
        (event,) = self.client.events(self.contract, "LivenessProven", receipt)
        return bytes(event["consensusKey"]), int(event["height"])

    def report_downtime(self, consensus_key: bytes | str) -> None:
        """Jail a validator with no liveness proof for more than the liveness window (anyone)."""
        self.client.transact(self._fn.reportDowntime(parse_consensus_key(consensus_key)))

    def set_liveness_window(self, blocks: int, reason: str) -> None:
        """GOVERNANCE_ROLE: blocks without a liveness proof before downtime jailing."""
        self.client.transact(self._fn.setLivenessWindow(blocks, reason))

    def liveness(
        self, consensus_key: bytes | str, *, block: BlockIdentifier = "latest"
    ) -> tuple[int, int]:
        """(block of the last liveness proof, last block before downtime jailing is allowed)."""
        fn = self._fn.livenessOf(parse_consensus_key(consensus_key))
        last, until = self.client.call(fn, block=block)
        return int(last), int(until)

    def liveness_window(self, *, block: BlockIdentifier = "latest") -> int:
        """Blocks without a liveness proof before a validator may be jailed for downtime."""
        return int(self.client.call(self._fn.livenessWindow(), block=block))

    def jail(self, consensus_key: bytes | str, reason: str) -> None:
        """SLASHER_ROLE: jail the validator with `consensus_key` (e.g. for downtime)."""
        self.client.transact(self._fn.jail(parse_consensus_key(consensus_key), reason))

    def set_params(self, params: StakingParams, reason: str) -> None:
        """GOVERNANCE_ROLE: replace the tunables."""
        self.client.transact(self._fn.setParams(astuple(params), reason))

    # ------------------------------------------------------------------ views

    def params(self, *, block: BlockIdentifier = "latest") -> StakingParams:
        """The current tunables."""
        p = self.client.call(self._fn.params(), block=block)
        return StakingParams(
            min_self_stake=p[0],
            unbonding_period=p[1],
            jail_period=p[2],
            max_commission_bps=p[3],
            max_commission_change_bps=p[4],
            commission_change_interval=p[5],
            max_validators=p[6],
        )

    def validators(self, *, block: BlockIdentifier = "latest") -> list[ValidatorInfo]:
        """Every registered validator, in registration order."""
        count = int(self.client.call(self._fn.validatorCount(), block=block))
        return [
            _validator(self.client.call(self._fn.validatorAt(i), block=block)) for i in range(count)
        ]

    def validator(self, account: str, *, block: BlockIdentifier = "latest") -> ValidatorInfo:
        """The validator operated by `account` (ContractError NotValidator if none)."""
        fn = self._fn.validatorOf(to_checksum_address(account))
        return _validator(self.client.call(fn, block=block))

    def validator_by_key(
        self, consensus_key: bytes | str, *, block: BlockIdentifier = "latest"
    ) -> ValidatorInfo:
        """The validator with `consensus_key` (ContractError UnknownConsensusKey if none)."""
        fn = self._fn.validatorByKey(parse_consensus_key(consensus_key))
        return _validator(self.client.call(fn, block=block))

    def active_validators(self, *, block: BlockIdentifier = "latest") -> list[ActiveValidator]:
        """The validator set consensus reads at `block`: not jailed, self-stake at the minimum."""
        accounts, keys, stakes = self.client.call(self._fn.activeValidators(), block=block)
        return [
            ActiveValidator(str(a), bytes(k), int(s))
            for a, k, s in zip(accounts, keys, stakes, strict=True)
        ]

    def delegation(self, validator: str, delegator: str) -> int:
        """Wei of `delegator`'s delegation to `validator`, after slashes."""
        fn = self._fn.delegationOf(to_checksum_address(validator), to_checksum_address(delegator))
        return int(self.client.call(fn))

    def unbondings(self, delegator: str) -> list[UnbondingEntry]:
        """`delegator`'s pending unbonding entries with their current value."""
        rows = self.client.call(self._fn.unbondingsOf(to_checksum_address(delegator)))
        return [UnbondingEntry(int(i), str(v), int(t), int(a)) for i, v, t, a in rows]

    def withdrawable(self, account: str) -> int:
        """What `withdraw()` would pay `account` now."""
        return int(self.client.call(self._fn.withdrawable(to_checksum_address(account))))

    def owed(self, account: str) -> int:
        """Wei credited to `account` and not yet withdrawn (the treasury's slashed stake)."""
        return int(self.client.call(self._fn.owed(to_checksum_address(account))))

    def evidence_used(self, evidence: bytes) -> bool:
        """Whether `evidence` (a hash from :func:`evidence_hash`) was already slashed."""
        return bool(self.client.call(self._fn.evidenceUsed(evidence)))

    def totals(self) -> StakingTotals:
        """Bonded, unbonding and owed wei, and the contract's balance."""
        return StakingTotals(
            bonded=int(self.client.call(self._fn.totalBonded())),
            unbonding=int(self.client.call(self._fn.totalUnbonding())),
            owed=int(self.client.call(self._fn.totalOwed())),
            balance=self.client.w3.eth.get_balance(self.contract.address),
        )


def _validator(row: Any) -> ValidatorInfo:
    return ValidatorInfo(
        account=str(row[0]),
        consensus_key=bytes(row[1]),
        total_stake=int(row[2]),
        self_stake=int(row[3]),
        commission_bps=int(row[4]),
        jailed=bool(row[5]),
        jailed_until=int(row[6]),
        active=bool(row[7]),
        unbonding=int(row[8]),
        slashed=int(row[9]),
    )
