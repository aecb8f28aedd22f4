"""The tokenomics contracts (docs/tokenomics.md): Vesting wallets and the Airdrop.

Each vested allocation (seed, angel, series_a, presale, team, compliance_advisors,
operations_advisors, foundation) is a `Vesting` contract at a fixed address that pays its
beneficiary in installments; anyone may trigger a release. The `Airdrop` pays 500 PVC once to
each registered member or Merkle-tree member. :class:`MerkleTree` builds the tree whose root
the admin sets, and each member's proof, exactly as OpenZeppelin's StandardMerkleTree for
``address`` leaves does (sorted-pair keccak, leaf = keccak(keccak(abi.encode(account)))).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.types import BlockIdentifier

from powerverse.contracts.addresses import AIRDROP, TOKENOMICS_ADDRESSES
from powerverse.economics.allocations import VESTED_NAMES
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import MarketError
from powerverse.market.receipts import TxInfo

__all__ = [
    "Airdrop",
    "AirdropStatus",
    "Claim",
    "MerkleTree",
    "Release",
    "VestingStatus",
    "VestingWallet",
    "merkle_leaf",
    "vesting_address",
]


def vesting_address(allocation: str) -> str:
    """The checksummed address of a vested allocation's Vesting contract."""
    if allocation not in VESTED_NAMES:
        raise MarketError(
            f"no Vesting contract for {allocation!r}; vested allocations are "
            + ", ".join(VESTED_NAMES)
        )
    return to_checksum_address(TOKENOMICS_ADDRESSES[allocation])


@dataclass(frozen=True, kw_only=True)
class Release:
    """A mined `release()`: wei paid to the beneficiary and installments paid so far."""

    beneficiary: str
    amount: int
    released_count: int
    tx: TxInfo

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (amounts as decimal strings of wei)."""
        return {
            "beneficiary": self.beneficiary,
            "amount": str(self.amount),
            "releasedCount": self.released_count,
            "txHash": self.tx.tx_hash,
            "blockNumber": self.tx.block_number,
        }


@dataclass(frozen=True, kw_only=True)
class VestingStatus:
    """A Vesting contract's state at one block."""

    address: str
    beneficiary: str
    total: int
    released: int
    releasable: int
    released_count: int
    installments: tuple[tuple[int, int], ...]
    balance: int

    @property
    def next_installment(self) -> tuple[int, int] | None:
        """The first unpaid installment (time, wei), or None once all are paid."""
        if self.released_count == len(self.installments):
            return None
        return self.installments[self.released_count]

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (amounts as decimal strings of wei, times as unix seconds)."""
        nxt = self.next_installment
        return {
            "address": self.address,
            "beneficiary": self.beneficiary,
            "total": str(self.total),
            "released": str(self.released),
            "releasable": str(self.releasable),
            "releasedCount": self.released_count,
            "installments": [{"time": t, "amount": str(a)} for t, a in self.installments],
            "nextInstallment": None if nxt is None else {"time": nxt[0], "amount": str(nxt[1])},
            "balance": str(self.balance),
        }


class VestingWallet:
    """One Vesting contract: by allocation name (its fixed address) or by address."""

    def __init__(
        self, client: ChainClient, allocation: str | None = None, *, address: str | None = None
    ) -> None:
        if (allocation is None) == (address is None):
            raise MarketError("give exactly one of an allocation name or a Vesting address")
        self.client = client
        self.allocation = allocation
        where = vesting_address(allocation) if allocation is not None else address
        self.contract: Contract = client.contract("Vesting", where)

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    @property
    def address(self) -> str:
        """The contract's checksummed address."""
        return str(self.contract.address)

    def release(self, *, gas: int | None = None) -> Release:
        """Pay the beneficiary every due, unpaid installment (anyone may).

        Refused with `NothingDue(nextTime)` before the next installment, `FullyReleased()` after
        the last. With `gas` the transaction is sent without estimating it first (the estimate
        runs on the head block's time, which may be before the block it lands in)."""
        receipt = self.client.transact(self._fn.release(), gas=gas)
        (event,) = self.client.events(self.contract, "Released", receipt)
        return Release(
            beneficiary=str(event["beneficiary"]),
            amount=int(event["amount"]),
            released_count=int(event["releasedCount"]),
            tx=TxInfo.from_receipt(receipt),
        )

    def beneficiary(self) -> str:
        """Who receives the releases."""
        return str(self.client.call(self._fn.beneficiary()))

    def total(self) -> int:
        """The sum of every installment."""
        return int(self.client.call(self._fn.total()))

    def released(self, *, block: BlockIdentifier = "latest") -> int:
        """Wei paid so far."""
        return int(self.client.call(self._fn.released(), block=block))

    def releasable(self, *, block: BlockIdentifier = "latest") -> int:
        """Wei `release()` would pay at the time of `block`."""
        return int(self.client.call(self._fn.releasable(), block=block))

    def vested_amount(self, timestamp: int, *, block: BlockIdentifier = "latest") -> int:
        """Wei unlocked (paid or not) at `timestamp`."""
        return int(self.client.call(self._fn.vestedAmount(timestamp), block=block))

    def installments(self) -> list[tuple[int, int]]:
        """Every (time, wei) installment, in order."""
        times, amounts = self.client.call(self._fn.installments())
        return [(int(t), int(a)) for t, a in zip(times, amounts, strict=True)]

    def released_count(self, *, block: BlockIdentifier = "latest") -> int:
        """How many installments have been paid."""
        return int(self.client.call(self._fn.releasedCount(), block=block))

    def status(self, *, block: BlockIdentifier = "latest") -> VestingStatus:
        """Everything about the contract at `block`."""
        return VestingStatus(
            address=self.address,
            beneficiary=str(self.client.call(self._fn.beneficiary(), block=block)),
            total=int(self.client.call(self._fn.total(), block=block)),
            released=self.released(block=block),
            releasable=self.releasable(block=block),
            released_count=self.released_count(block=block),
            installments=tuple(self.installments()),
            balance=int(self.client.w3.eth.get_balance(self.contract.address, block)),
        )


# ---------------------------------------------------------------------------- airdrop


def merkle_leaf(account: str | bytes) -> bytes:
    """The airdrop's Merkle leaf of `account`: keccak256(keccak256(abi.encode(account)))."""
    return keccak(keccak(abi_encode(["address"], [to_checksum_address(account)])))


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


class MerkleTree:
    """A Merkle tree over member addresses; `root` goes to `setMerkleRoot`, `proof(a)` to claim.

    Built as OpenZeppelin's StandardMerkleTree (`@openzeppelin/merkle-tree`, leaves sorted) for
    ``["address"]`` values: the same root and proofs, so either tool can serve the other's tree.
    """

    def __init__(self, accounts: Iterable[str | bytes]) -> None:
        members = sorted({to_checksum_address(a) for a in accounts})
        if not members:
            raise MarketError("a Merkle tree needs at least one member")
        self.members: tuple[str, ...] = tuple(members)
        leaves = sorted(merkle_leaf(a) for a in members)
        # A complete binary tree in an array: node i has children 2i+1 and 2i+2, the leaves
        # fill the end in reverse order.
        tree = [b""] * (2 * len(leaves) - 1)
        for i, leaf in enumerate(leaves):
            tree[len(tree) - 1 - i] = leaf
        for i in range(len(tree) - 1 - len(leaves), -1, -1):
            tree[i] = _pair(tree[2 * i + 1], tree[2 * i + 2])
        self._tree = tree
        self._index = {leaf: len(tree) - 1 - i for i, leaf in enumerate(leaves)}

    @property
    def root(self) -> bytes:
        """The 32-byte root."""
        return self._tree[0]

    def proof(self, account: str | bytes) -> list[bytes]:
        """The sibling hashes from `account`'s leaf up to the root."""
        index = self._index.get(merkle_leaf(account))
        if index is None:
            raise MarketError(f"{to_checksum_address(account)} is not in the tree")
        out = []
        while index > 0:
            out.append(self._tree[index + 1 if index % 2 else index - 1])
            index = (index - 1) // 2
        return out

    @staticmethod
    def verify(proof: Sequence[bytes], root: bytes, account: str | bytes) -> bool:
        """Whether `proof` leads from `account`'s leaf to `root` (what the contract checks)."""
        node = merkle_leaf(account)
        for sibling in proof:
            node = _pair(node, sibling)
        return node == root

    def to_json(self) -> dict[str, Any]:
        """{"root": hex, "proofs": {address: [hex, ...]}} (the file `pv airdrop claim` reads)."""
        return {
            "root": "0x" + self.root.hex(),
            "proofs": {a: ["0x" + p.hex() for p in self.proof(a)] for a in self.members},
        }


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A paid claim."""

    account: str
    amount: int
    by_proof: bool
    tx: TxInfo

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {
            "account": self.account,
            "amount": str(self.amount),
            "byProof": self.by_proof,
            "txHash": self.tx.tx_hash,
            "blockNumber": self.tx.block_number,
        }


@dataclass(frozen=True, kw_only=True)
class AirdropStatus:
    """The airdrop's totals, and one account's standing when asked."""

    address: str
    claim_amount: int
    max_claims: int
    claim_count: int
    registered_count: int
    merkle_root: bytes
    balance: int
    account: str | None = None
    registered: bool | None = None
    claimed: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly fields (amounts as decimal strings of wei)."""
        doc: dict[str, Any] = {
            "address": self.address,
            "claimAmount": str(self.claim_amount),
            "maxClaims": self.max_claims,
            "claimCount": self.claim_count,
            "remainingClaims": self.max_claims - self.claim_count,
            "registeredCount": self.registered_count,
            "merkleRoot": "0x" + self.merkle_root.hex(),
            "balance": str(self.balance),
        }
        if self.account is not None:
            doc.update(
                {"account": self.account, "registered": self.registered, "claimed": self.claimed}
            )
        return doc


class Airdrop:
    """The Airdrop contract (the predeployed one unless `address` is given)."""

    def __init__(self, client: ChainClient, *, address: str | bytes | None = None) -> None:
        self.client = client
        self.contract: Contract = client.contract("Airdrop", address or AIRDROP)

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    def register(self, accounts: Sequence[str]) -> tuple[int, TxInfo]:
        """REGISTRAR_ROLE: make `accounts` eligible; returns (newly registered, tx)."""
        fn = self._fn.register([to_checksum_address(a) for a in accounts])
        receipt = self.client.transact(fn)
        added = self.client.events(self.contract, "MemberRegistered", receipt)
        return len(added), TxInfo.from_receipt(receipt)

    def set_merkle_root(self, root: bytes) -> TxInfo:
        """DEFAULT_ADMIN_ROLE: set the Merkle root of eligible addresses (zero clears it)."""
        if len(root) != 32:
            raise MarketError(f"a Merkle root is 32 bytes, got {len(root)}")
        return TxInfo.from_receipt(self.client.transact(self._fn.setMerkleRoot(root)))

    def claim(self, proof: Sequence[bytes] = (), *, account: str | None = None) -> Claim:
        """Claim for the signing account, or for `account` (the coin goes to the member)."""
        proof_list = [bytes(p) for p in proof]
        if account is None:
            fn = self._fn.claim(proof_list)
        else:
            fn = self._fn.claimFor(to_checksum_address(account), proof_list)
        receipt = self.client.transact(fn)
        (event,) = self.client.events(self.contract, "Claimed", receipt)
        return Claim(
            account=str(event["account"]),
            amount=int(event["amount"]),
            by_proof=bool(event["byProof"]),
            tx=TxInfo.from_receipt(receipt),
        )

    def can_claim(self, account: str, proof: Sequence[bytes] = ()) -> bool:
        """Whether `account` could claim now with `proof`."""
        fn = self._fn.canClaim(to_checksum_address(account), [bytes(p) for p in proof])
        return bool(self.client.call(fn))

    def is_registered(self, account: str) -> bool:
        """Whether a registrar registered `account`."""
        return bool(self.client.call(self._fn.isRegistered(to_checksum_address(account))))

    def has_claimed(self, account: str) -> bool:
        """Whether `account` has been paid."""
        return bool(self.client.call(self._fn.hasClaimed(to_checksum_address(account))))

    def status(self, account: str | None = None) -> AirdropStatus:
        """Totals, and `account`'s standing when given."""
        fn = self._fn
        return AirdropStatus(
            address=str(self.contract.address),
            claim_amount=int(self.client.call(fn.claimAmount())),
            max_claims=int(self.client.call(fn.maxClaims())),
            claim_count=int(self.client.call(fn.claimCount())),
            registered_count=int(self.client.call(fn.registeredCount())),
            merkle_root=bytes(self.client.call(fn.merkleRoot())),
            balance=self.client.balance(str(self.contract.address)),
            account=to_checksum_address(account) if account else None,
            registered=self.is_registered(account) if account else None,
            claimed=self.has_claimed(account) if account else None,
        )
