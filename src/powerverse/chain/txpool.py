"""The transaction pool: admits signed transactions and hands them to the block builder.

Per sender, transactions whose nonces run without a gap from the account's state nonce are
*pending* (executable in the next block); the others are *queued* until the gap fills. The
pool is pure: callers pass the head state, base fee and block gas limit in, and call
``on_new_head`` after every block. Refusals raise the ``TxPoolError`` subclasses of
``powerverse.chain.txpool_errors``, whose ``message`` is geth's wording.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from eth.abc import LegacyTransactionFieldsAPI, SignedTransactionAPI
from eth.constants import CREATE_CONTRACT_ADDRESS, SECPK1_N
from eth.vm.forks.prague.constants import SET_CODE_TRANSACTION_TYPE
from eth.vm.forks.prague.state import PragueTransactionExecutor
from eth.vm.forks.shanghai.constants import INITCODE_WORD_COST, MAX_INITCODE_SIZE
from eth_hash.auto import keccak
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError

from powerverse.chain.txdecode import SUPPORTED_TX_TYPES, decode_raw_transaction, sender_of
from powerverse.chain.txpool_errors import (
    AccountLimitExceededError,
    AlreadyKnownError,
    EmptyAuthListError,
    FeeCapVeryHighError,
    FloorDataGasTooLowError,
    GasLimitExceededError,
    InsufficientFundsError,
    IntrinsicGasTooLowError,
    InvalidChainIdError,
    InvalidSenderError,
    MaxInitCodeSizeExceededError,
    NonceMaxError,
    NonceTooHighError,
    NonceTooLowError,
    NotReplayProtectedError,
    OversizedDataError,
    ReplacementUnderpricedError,
    SetCodeTxCreateError,
    TipAboveFeeCapError,
    TipVeryHighError,
    TxPoolOverflowError,
    TxTypeNotSupportedError,
    UnderpricedError,
)

__all__ = [
    "PooledTx",
    "StateView",
    "TxPool",
    "TxPoolConfig",
    "decode_raw_transaction",
]

_UINT256_CEILING: Final = 2**256
_NONCE_MAX: Final = 2**64 - 1  # EIP-2681: a nonce must stay incrementable
_UNPROTECTED_V: Final = (27, 28)
_INVALID_SIG: Final = "invalid transaction v, r, s values"


class StateView(Protocol):
    """Read access to the head state that the pool validates against."""

    def get_nonce(self, address: bytes) -> int: ...

    def get_balance(self, address: bytes) -> int: ...


@dataclass(frozen=True)
class TxPoolConfig:
    """Limits and prices of the pool; the defaults follow geth's."""

    max_tx_size: int = 128 * 1024
    account_slots: int = 64
    global_slots: int = 8192
    global_queue: int = 2048
    price_bump_percent: int = 10
    max_nonce_gap: int = 1024
    min_priority_fee: int = 0

    def __post_init__(self) -> None:
        """Rejects limits that would make the pool refuse everything or misbehave."""
        for name in ("max_tx_size", "account_slots", "global_slots"):
            if getattr(self, name) < 1:
                raise ValueError(f"TxPoolConfig.{name} must be at least 1")
        for name in ("global_queue", "price_bump_percent", "max_nonce_gap", "min_priority_fee"):
            if getattr(self, name) < 0:
                raise ValueError(f"TxPoolConfig.{name} must not be negative")


@dataclass(frozen=True)
class PooledTx:
    """A transaction admitted to the pool, with what the pool learnt about it."""

    tx: SignedTransactionAPI
    hash: bytes
    sender: bytes
    nonce: int
    raw: bytes
    size: int
    received: int  # admission sequence number; later admissions get larger numbers

    @property
    def fee_cap(self) -> int:
        """maxFeePerGas, or gasPrice for legacy and access-list transactions."""
        return self.tx.max_fee_per_gas

    @property
    def tip_cap(self) -> int:
        """maxPriorityFeePerGas, or gasPrice for legacy and access-list transactions."""
        return self.tx.max_priority_fee_per_gas

    @functools.cached_property
    def cost(self) -> int:
        """The most the transaction can take from the sender: gas * fee cap + value."""
        return int(self.tx.gas * self.fee_cap + self.tx.value)

    def effective_tip(self, base_fee: int) -> int:
        """The tip per gas a block producer earns at this base fee (negative if unpayable)."""
        return min(self.tip_cap, self.fee_cap - base_fee)


class _PendingSet(dict[int, PooledTx]):
    """A sender's pending transactions by nonce, with their total cost kept up to date."""

    def __init__(self) -> None:
        super().__init__()
        self.total_cost = 0

    def __setitem__(self, nonce: int, ptx: PooledTx) -> None:
        old = self.get(nonce)
        if old is not None:
            self.total_cost -= old.cost
        super().__setitem__(nonce, ptx)
        self.total_cost += ptx.cost

    def __delitem__(self, nonce: int) -> None:
        self.total_cost -= self[nonce].cost
        super().__delitem__(nonce)

    def pop(self, nonce: int) -> PooledTx:  # type: ignore[override]
        """Remove and return the transaction with this nonce."""
        ptx = super().pop(nonce)
        self.total_cost -= ptx.cost
        return ptx


@dataclass
class _Account:
    """One sender's pooled transactions; pending holds nonces base, base+1, ... without gaps."""

    sender: bytes
    base: int
    pending: _PendingSet = field(default_factory=_PendingSet)
    queued: dict[int, PooledTx] = field(default_factory=dict)

    @property
    def next_nonce(self) -> int:
        """The nonce that would extend the pending run."""
        return self.base + len(self.pending)

    def __len__(self) -> int:
        return len(self.pending) + len(self.queued)

    def tail(self, pending: bool) -> PooledTx | None:
        """The highest-nonce transaction of one set: the one that can go without a gap."""
        if pending:
            return self.pending.get(self.next_nonce - 1)
        return self.queued[max(self.queued)] if self.queued else None


def _required_bump(old: int, percent: int) -> int:
    """The least fee that beats ``old`` by ``percent`` percent, rounded up."""
    return -(-old * (100 + percent) // 100)


class TxPool:
    """Pending and queued transactions of all senders, within the configured limits."""

    def __init__(self, *, chain_id: int, config: TxPoolConfig = TxPoolConfig()) -> None:
        self._chain_id = chain_id
        self._config = config
        self._accounts: dict[bytes, _Account] = {}
        self._by_hash: dict[bytes, PooledTx] = {}
        self._pending_count = 0
        self._queued_count = 0
        self._received = itertools.count()
        self._base_fee = 0
        self._subscribers: list[Callable[[PooledTx], None]] = []

    # ------------------------------------------------------------------ admission

    def add_raw(
        self, raw: bytes, state: StateView, *, base_fee: int, block_gas_limit: int
    ) -> PooledTx:
        """Decodes and admits a raw transaction (as given to eth_sendRawTransaction)."""
        self._check_size(len(raw))
        tx = decode_raw_transaction(raw)
        return self.add(tx, state, base_fee=base_fee, block_gas_limit=block_gas_limit, raw=raw)

    def add(
        self,
        tx: SignedTransactionAPI,
        state: StateView,
        *,
        base_fee: int,
        block_gas_limit: int,
        raw: bytes | None = None,
    ) -> PooledTx:
        """Validates a signed transaction against ``state`` and admits it, or raises."""
        self._base_fee = base_fee
        if raw is None:
            raw = tx.encode()
        self._check_size(len(raw))
        if tx.type_id is not None and tx.type_id not in SUPPORTED_TX_TYPES:
            raise TxTypeNotSupportedError()
        tx_hash = bytes(tx.hash)
        if tx_hash in self._by_hash:
            raise AlreadyKnownError()
        sender = self._recover_sender(tx)
        self._check_stateless(tx, block_gas_limit)
        state_nonce = state.get_nonce(sender)
        account = self._sync_sender(sender, state_nonce)
        self._check_nonce(tx, sender, state_nonce)
        self._check_funds(tx, sender, account, state.get_balance(sender))
        ptx = PooledTx(
            tx=tx,
            hash=tx_hash,
            sender=sender,
            nonce=tx.nonce,
            raw=raw,
            size=len(raw),
            received=next(self._received),
        )
        existing = self._find(account, tx.nonce)
        if existing is not None:
            self._replace(existing, ptx)
        else:
            self._insert_new(ptx, account or _Account(sender=sender, base=state_nonce))
        for callback in list(self._subscribers):
            callback(ptx)
        return ptx

    def _check_size(self, size: int) -> None:
        """Refuses transactions larger than the pool handles."""
        if size > self._config.max_tx_size:
            raise OversizedDataError(size, self._config.max_tx_size)

    def _recover_sender(self, tx: SignedTransactionAPI) -> bytes:
        """Checks replay protection and signature values, then recovers the sender."""
        if tx.type_id is None and isinstance(tx, LegacyTransactionFieldsAPI):
            if tx.v in _UNPROTECTED_V:
                raise NotReplayProtectedError()
        elif tx.y_parity not in (0, 1):
            raise InvalidSenderError(_INVALID_SIG)
        if tx.chain_id != self._chain_id:
            raise InvalidChainIdError()
        if not (0 < tx.r < SECPK1_N and 0 < tx.s <= SECPK1_N // 2):
            raise InvalidSenderError(_INVALID_SIG)
        try:
            return sender_of(tx)
        except (BadSignature, ValidationError, ValueError) as exc:
            raise InvalidSenderError("recovery failed") from exc

    def _check_stateless(self, tx: SignedTransactionAPI, block_gas_limit: int) -> None:
        """Checks gas, fee and shape rules that need no state (geth's ValidateTransaction)."""
        if tx.gas > block_gas_limit:
            raise GasLimitExceededError()
        if tx.max_fee_per_gas >= _UINT256_CEILING:
            raise FeeCapVeryHighError()
        if tx.max_priority_fee_per_gas >= _UINT256_CEILING:
            raise TipVeryHighError()
        if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
            raise TipAboveFeeCapError()
        if tx.nonce >= _NONCE_MAX:
            raise NonceMaxError()
        is_create = tx.to == CREATE_CONTRACT_ADDRESS
        if is_create and len(tx.data) > MAX_INITCODE_SIZE:
            raise MaxInitCodeSizeExceededError(len(tx.data), MAX_INITCODE_SIZE)
        intrinsic = tx.intrinsic_gas
        if is_create:  # EIP-3860 word cost: geth counts it as intrinsic, py-evm charges it later
            intrinsic += INITCODE_WORD_COST * ((len(tx.data) + 31) // 32)
        if tx.gas < intrinsic:
            raise IntrinsicGasTooLowError(tx.gas, intrinsic)
        floor = PragueTransactionExecutor.calc_data_floor_gas(tx, 0, 0)
        if tx.gas < floor:
            raise FloorDataGasTooLowError(tx.gas, floor)
        if tx.max_priority_fee_per_gas < self._config.min_priority_fee:
            raise UnderpricedError(self._config.min_priority_fee, tx.max_priority_fee_per_gas)
        if tx.type_id == SET_CODE_TRANSACTION_TYPE:
            if is_create:
                raise SetCodeTxCreateError()
            if len(tx.authorization_list) == 0:
                raise EmptyAuthListError()

    def _check_nonce(self, tx: SignedTransactionAPI, sender: bytes, state_nonce: int) -> None:
        """Refuses used nonces and nonces too far ahead of the account."""
        if tx.nonce < state_nonce:
            raise NonceTooLowError(sender, tx.nonce, state_nonce)
        if tx.nonce > state_nonce + self._config.max_nonce_gap:
            raise NonceTooHighError(sender, tx.nonce, state_nonce)

    def _check_funds(
        self, tx: SignedTransactionAPI, sender: bytes, account: _Account | None, balance: int
    ) -> None:
        """Refuses a transaction the sender cannot pay, alone or with its pending ones."""
        cost = tx.gas * tx.max_fee_per_gas + tx.value
        if balance < cost:
            raise InsufficientFundsError.for_tx(sender, balance, cost)
        if account is None:
            return
        spent = account.pending.total_cost
        replaced = account.pending.get(tx.nonce)
        if replaced is not None:
            spent -= replaced.cost
        if spent + cost > balance:
            raise InsufficientFundsError.overdraft(balance, spent, cost, spent + cost - balance)

    def _find(self, account: _Account | None, nonce: int) -> PooledTx | None:
        """The pooled transaction of a sender with this nonce, if any."""
        if account is None:
            return None
        return account.pending.get(nonce) or account.queued.get(nonce)

    def _replace(self, old: PooledTx, new: PooledTx) -> None:
        """Swaps a same-nonce transaction for one paying enough more, in the same set."""
        bump = self._config.price_bump_percent
        if not (
            new.fee_cap > old.fee_cap
            and new.tip_cap > old.tip_cap
            and new.fee_cap >= _required_bump(old.fee_cap, bump)
            and new.tip_cap >= _required_bump(old.tip_cap, bump)
        ):
            raise ReplacementUnderpricedError()
        account = self._accounts[old.sender]
        target = account.pending if old.nonce in account.pending else account.queued
        target[old.nonce] = new
        del self._by_hash[old.hash]
        self._by_hash[new.hash] = new

    def _insert_new(self, ptx: PooledTx, account: _Account) -> None:
        """Adds a transaction with a new nonce, evicting cheaper ones if a limit is hit."""
        own_victim: PooledTx | None = None
        if len(account) >= self._config.account_slots:
            # Room for a nonce below the sender's furthest queued one: that one goes instead.
            own_victim = account.tail(pending=False)
            if own_victim is None or own_victim.nonce < ptx.nonce:
                raise AccountLimitExceededError(len(account))
        to_pending = ptx.nonce == account.next_nonce
        if to_pending:
            full = self._pending_count >= self._config.global_slots
        else:
            full = own_victim is None and self._queued_count >= self._config.global_queue
        victim = self._cheapest_tail(pending=to_pending, exclude=ptx.sender) if full else None
        if full and (victim is None or self._price(victim) >= self._price(ptx)):
            raise TxPoolOverflowError()
        for dropped in (own_victim, victim):
            if dropped is not None:
                self._drop(dropped)
        self._accounts[ptx.sender] = account
        self._link(account, ptx, pending=to_pending)
        if to_pending:
            self._promote(account)

    # ------------------------------------------------------------------ queries

    def known_senders(self, payloads: Sequence[bytes]) -> dict[bytes, bytes]:
        """Senders this pool already recovered, by hash, for the raw transactions given."""
        out: dict[bytes, bytes] = {}
        for raw in payloads:
            tx_hash = keccak(raw)
            ptx = self._by_hash.get(tx_hash)
            if ptx is not None:
                out[tx_hash] = ptx.sender
        return out

    def get(self, tx_hash: bytes) -> PooledTx | None:
        """The pooled transaction with this hash, if any."""
        return self._by_hash.get(tx_hash)

    def pending_nonce(self, address: bytes, state: StateView) -> int:
        """The next nonce of ``address`` counting its gapless pending transactions."""
        nonce = state.get_nonce(address)
        account = self._accounts.get(address)
        if account is not None:
            while nonce in account.pending:
                nonce += 1
        return nonce

    def select(self, base_fee: int) -> list[PooledTx]:
        """Pending transactions in block-building order.

        Each sender's transactions come in nonce order; across senders the highest effective
        tip goes first (earliest received on ties). A sender's run stops at the first
        transaction whose fee cap is below ``base_fee``. When a transaction fails to execute,
        the builder must skip that sender's later transactions itself.
        """
        runs: dict[bytes, Iterator[PooledTx]] = {}
        heap: list[tuple[int, int, bytes, PooledTx]] = []
        for sender, account in self._accounts.items():
            run = itertools.takewhile(
                lambda p: p.fee_cap >= base_fee,
                (account.pending[n] for n in range(account.base, account.next_nonce)),
            )
            runs[sender] = iter(list(run))
            self._push_next(heap, runs[sender], base_fee)
        ordered: list[PooledTx] = []
        while heap:
            _, _, sender, ptx = heapq.heappop(heap)
            ordered.append(ptx)
            self._push_next(heap, runs[sender], base_fee)
        return ordered

    @staticmethod
    def _push_next(
        heap: list[tuple[int, int, bytes, PooledTx]], run: Iterator[PooledTx], base_fee: int
    ) -> None:
        """Puts a sender's next transaction, if any, on the selection heap."""
        ptx = next(run, None)
        if ptx is not None:
            heapq.heappush(heap, (-ptx.effective_tip(base_fee), ptx.received, ptx.sender, ptx))

    def status(self) -> tuple[int, int]:
        """(pending, queued) transaction counts, as txpool_status reports them."""
        return self._pending_count, self._queued_count

    def content(self) -> dict[str, dict[bytes, dict[int, PooledTx]]]:
        """All transactions by set, sender and nonce, as txpool_content reports them."""
        pending: dict[bytes, dict[int, PooledTx]] = {}
        queued: dict[bytes, dict[int, PooledTx]] = {}
        for sender, account in self._accounts.items():
            if account.pending:
                pending[sender] = dict(sorted(account.pending.items()))
            if account.queued:
                queued[sender] = dict(sorted(account.queued.items()))
        return {"pending": pending, "queued": queued}

    def __len__(self) -> int:
        return len(self._by_hash)

    # ------------------------------------------------------------------ notifications

    def subscribe(self, callback: Callable[[PooledTx], None]) -> None:
        """Calls ``callback`` with every newly admitted transaction (replacements included).

        Callbacks run inside ``add``, after the pool has changed; an exception they raise
        reaches the caller of ``add``.
        """
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[PooledTx], None]) -> None:
        """Stops calling ``callback``; unknown callbacks are ignored."""
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    # ------------------------------------------------------------------ maintenance

    def on_new_head(self, state: StateView, *, base_fee: int) -> None:
        """Brings the pool in line with a new head state.

        Drops transactions whose nonce is used and ones the sender can no longer afford,
        demotes pending transactions left behind a gap, and promotes queued ones that the
        new state nonce made executable.
        """
        self._base_fee = base_fee
        for sender in list(self._accounts):
            account = self._accounts[sender]
            self._resync(account, state.get_nonce(sender), state.get_balance(sender))
        self._promote_all()
        self._truncate_queue()

    def clear(self) -> None:
        """Drops every transaction (dev-mode evm_revert rewinds the chain under the pool)."""
        self._accounts.clear()
        self._by_hash.clear()
        self._pending_count = 0
        self._queued_count = 0

    def remove(self, tx_hash: bytes) -> None:
        """Drops a transaction (the builder found it invalid); its successors become queued."""
        ptx = self._by_hash.get(tx_hash)
        if ptx is None:
            return
        self._drop(ptx)
        self._promote_all()
        self._truncate_queue()

    def _sync_sender(self, sender: bytes, nonce: int) -> _Account | None:
        """Re-bases one sender on its state nonce if that moved since the last head."""
        account = self._accounts.get(sender)
        if account is None:
            return None
        if account.base != nonce:
            self._resync(account, nonce, None)
            self._promote_all()
            self._truncate_queue()
        return self._accounts.get(sender)

    def _resync(self, account: _Account, nonce: int, balance: int | None) -> None:
        """Drops used (and, given a balance, unaffordable) txs and re-splits pending/queued."""
        for ptx in [*account.pending.values(), *account.queued.values()]:
            if ptx.nonce < nonce or (balance is not None and ptx.cost > balance):
                self._unlink(account, ptx)
        old_pending = account.pending
        account.base = nonce
        account.pending = _PendingSet()
        n = nonce
        while n in old_pending:
            account.pending[n] = old_pending.pop(n)
            n += 1
        for ptx in old_pending.values():
            account.queued[ptx.nonce] = ptx
        self._pending_count -= len(old_pending)
        self._queued_count += len(old_pending)
        self._forget_if_empty(account)

    def _promote(self, account: _Account) -> None:
        """Moves a sender's queued transactions that extend its pending run, while room lasts."""
        while account.next_nonce in account.queued and self._has_pending_room():
            self._move_to_pending(account)

    def _promote_all(self) -> None:
        """Promotes executable queued transactions of all senders, best paying first."""
        heap: list[tuple[tuple[int, int], int, bytes]] = []
        for sender, account in self._accounts.items():
            self._push_promotable(heap, sender, account)
        while heap and self._has_pending_room():
            _, _, sender = heapq.heappop(heap)
            account = self._accounts[sender]
            self._move_to_pending(account)
            self._push_promotable(heap, sender, account)

    def _push_promotable(
        self, heap: list[tuple[tuple[int, int], int, bytes]], sender: bytes, account: _Account
    ) -> None:
        """Puts a sender's next promotable transaction, if any, on the promotion heap."""
        ptx = account.queued.get(account.next_nonce)
        if ptx is not None:
            price = self._price(ptx)
            heapq.heappush(heap, ((-price[0], -price[1]), ptx.received, sender))

    def _has_pending_room(self) -> bool:
        return self._pending_count < self._config.global_slots

    def _move_to_pending(self, account: _Account) -> None:
        """Moves the queued transaction at ``next_nonce`` into the pending run."""
        ptx = account.queued.pop(account.next_nonce)
        account.pending[ptx.nonce] = ptx
        self._queued_count -= 1
        self._pending_count += 1

    def _truncate_queue(self) -> None:
        """Drops the cheapest queued tails until the queue is within its global limit."""
        while self._queued_count > self._config.global_queue:
            victim = self._cheapest_tail(pending=False, exclude=None)
            assert victim is not None  # a positive count means some sender has queued txs
            self._drop(victim)

    # ------------------------------------------------------------------ bookkeeping

    def _price(self, ptx: PooledTx) -> tuple[int, int]:
        """What a transaction is worth to the pool now: effective tip, then fee cap."""
        return ptx.effective_tip(self._base_fee), ptx.fee_cap

    def _cheapest_tail(self, *, pending: bool, exclude: bytes | None) -> PooledTx | None:
        """The cheapest evictable tail (latest received among equals) of other senders."""
        best: PooledTx | None = None
        best_key: tuple[tuple[int, int], int] | None = None
        for sender, account in self._accounts.items():
            if sender == exclude:
                continue
            tail = account.tail(pending)
            if tail is None:
                continue
            key = (self._price(tail), -tail.received)
            if best_key is None or key < best_key:
                best, best_key = tail, key
        return best

    def _link(self, account: _Account, ptx: PooledTx, *, pending: bool) -> None:
        """Records a transaction in one of a sender's sets."""
        if pending:
            account.pending[ptx.nonce] = ptx
            self._pending_count += 1
        else:
            account.queued[ptx.nonce] = ptx
            self._queued_count += 1
        self._by_hash[ptx.hash] = ptx

    def _unlink(self, account: _Account, ptx: PooledTx) -> None:
        """Forgets a transaction without touching its sender's other transactions."""
        if account.pending.get(ptx.nonce) is ptx:
            del account.pending[ptx.nonce]
            self._pending_count -= 1
        else:
            del account.queued[ptx.nonce]
            self._queued_count -= 1
        del self._by_hash[ptx.hash]

    def _drop(self, ptx: PooledTx) -> None:
        """Forgets a transaction and queues the pending ones it leaves behind a gap."""
        account = self._accounts[ptx.sender]
        was_pending = account.pending.get(ptx.nonce) is ptx
        self._unlink(account, ptx)
        if was_pending:
            for nonce in sorted(n for n in account.pending if n > ptx.nonce):
                account.queued[nonce] = account.pending.pop(nonce)
                self._pending_count -= 1
                self._queued_count += 1
        self._forget_if_empty(account)

    def _forget_if_empty(self, account: _Account) -> None:
        """Removes a sender with no transactions left."""
        if len(account) == 0 and self._accounts.get(account.sender) is account:
            del self._accounts[account.sender]
