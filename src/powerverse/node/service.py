"""The running node: chain + transaction pool + block production, and events for RPC.

Block production sits behind `BlockProducer`, so the dev producer here (a block
as soon as transactions are pending, or every `--block-time` seconds) and the
consensus engine of a validator network plug in the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eth.abc import BlockHeaderAPI, StateAPI
from eth_typing import Address

from powerverse.chain.blockchain import Blockchain, BuiltBlock
from powerverse.chain.devtime import BlockTime, save_clock_offset
from powerverse.chain.exceptions import BlockNotFound, DevModeOnly
from powerverse.chain.executor import BlockExecutor, BuildResult
from powerverse.chain.txpool import PooledTx, TxPool

log = logging.getLogger(__name__)

BlockListener = Callable[[BuiltBlock], Awaitable[None]]
PendingListener = Callable[[PooledTx], None]


class HeadState:
    """Nonce and balance reads against the head state (the pool's `StateView`)."""

    def __init__(self, state: StateAPI) -> None:
        self._state = state

    def get_nonce(self, address: bytes) -> int:
        """Account nonce at the head."""
        return int(self._state.get_nonce(Address(address)))

    def get_balance(self, address: bytes) -> int:
        """Balance at the head."""
        return int(self._state.get_balance(Address(address)))


@dataclass
class _Snapshot:
    height: int
    offset: int
    pinned_next: int | None


class BlockProducer(Protocol):
    """Decides when blocks are made; runs as a task of the node."""

    async def run(self, node: Node) -> None:
        """Produce blocks until cancelled."""
        ...


class ConsensusView(Protocol):
    """What a node running agreement tells JSON-RPC (pv_consensusStatus and friends)."""

    def status(self) -> dict[str, Any]:
        """Height, round, step, peers and a summary of the last certificate."""
        ...

    def certificate(self, number: int) -> dict[str, Any] | None:
        """The finality certificate of a committed block, as JSON; None if it has none."""
        ...

    def validators(self) -> list[dict[str, Any]]:
        """The validator set with stakes."""
        ...

    def peer_count(self) -> int:
        """Connected peers."""
        ...

    def evidence_list(self) -> list[dict[str, Any]]:
        """Equivocations recorded (both signed messages of each)."""
        ...


@dataclass
class Node:
    """Chain, pool and block production; the RPC layer reads and drives it."""

    chain: Blockchain
    pool: TxPool
    block_time: BlockTime
    coinbase: bytes
    executor: BlockExecutor
    dev: bool = False
    # Set on a validator network started with --dev-clock (devnets): evm_increaseTime moves
    # this node's clock forward (for consensus too) and the offset is kept in this file.
    clock_file: Path | None = None
    block_listeners: list[BlockListener] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _head_state: HeadState | None = None
    _next_base_fee: int | None = None
    _snapshots: dict[int, _Snapshot] = field(default_factory=dict)
    _snapshot_seq: int = 0
    _build_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _publishing: asyncio.Task[None] | None = None
    consensus: ConsensusView | None = None
    tx_listeners: list[Callable[[PooledTx], None]] = field(default_factory=list)
    # Whether block listeners want blocks published now (some filter or subscription
    # exists); None: always. Loading a block to publish decodes every transaction and receipt.
    listening: Callable[[], bool] | None = None
    # The highest block number block listeners have seen (or that nobody listened for).
    _published: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        self._published = int(self.chain.head.block_number)

    # ---------------------------------------------------------------- reads

    def head_state(self) -> HeadState:
        """State view at the head, cached until the next block."""
        if self._head_state is None:
            self._head_state = HeadState(self.chain.state_at(self.chain.head))
        return self._head_state

    def next_base_fee(self) -> int:
        """Base fee of the next block (EIP-1559)."""
        if self._next_base_fee is None:
            header = self.chain.chain.create_header_from_parent(self.chain.head)
            self._next_base_fee = int(header.base_fee_per_gas)
        return self._next_base_fee

    def peer_count(self) -> int:
        """Connected peers (a single dev node has none)."""
        return self.consensus.peer_count() if self.consensus is not None else 0

    def pending_nonce(self, address: bytes) -> int:
        """Next nonce for `address`, counting its pending pool transactions."""
        return self.pool.pending_nonce(address, self.head_state())

    # ---------------------------------------------------------------- writes

    def submit_raw(self, raw: bytes, *, from_peer: bool = False) -> PooledTx:
        """Validate and pool a signed transaction, then wake the producer.

        Transactions from clients are passed to ``tx_listeners`` (gossip to peers); those
        that came from a peer are not (the gossip layer relays them itself).
        """
        ptx = self.pool.add_raw(
            raw,
            self.head_state(),
            base_fee=self.next_base_fee(),
            block_gas_limit=int(self.chain.head.gas_limit),
        )
        self._wake.set()
        if not from_peer:
            for listener in self.tx_listeners:
                listener(ptx)
        return ptx

    def adopt_block(self, result: BuildResult) -> None:
        """A block committed by consensus (or sync): move the pool on and publish it."""
        self._after_new_head(result.rejected)
        self.publish_later(result)

    async def build_block(self, *, timestamp: int | None = None) -> BuiltBlock:
        """Make one block from the pool now; returns once block listeners have seen it."""
        result = await self.commit_block(timestamp=timestamp)
        return await self.publish(result)

    async def commit_block(self, *, timestamp: int | None = None) -> BuildResult:
        """Execute and commit one block; the pool moves on at once, publishing is separate."""
        async with self._build_lock:
            self._wake.clear()  # what arrives from now on wakes the producer for the next block
            head = self.chain.head
            if timestamp is None:
                timestamp = self.block_time.next_timestamp(int(head.timestamp))
            # Execution runs off the event loop (in the executor process, or a thread), so
            # the RPC server keeps accepting transactions meanwhile for the next block.
            result = await asyncio.to_thread(
                self.executor.build,
                fill_block(self.pool.select(self.next_base_fee()), int(head.gas_limit)),
                timestamp=timestamp,
                coinbase=self.coinbase,
            )
            self.block_time.block_committed()
            self._after_new_head(result.rejected)
        for tx_hash, reason in result.rejected:
            log.info("dropped transaction 0x%s: %s", tx_hash.hex(), reason)
        return result

    async def publish(self, result: BuildResult) -> BuiltBlock:
        """Tell block listeners (filters, subscriptions) about a committed block, in order."""
        previous = self._publishing
        if previous is not None:
            await asyncio.shield(previous)
        return await self._publish_now(result)

    def publish_later(self, result: BuildResult) -> None:
        """Publish in the background (after earlier blocks), so the next block can start now."""
        previous = self._publishing

        async def run() -> None:
            if previous is not None:
                await previous
            if self.listening is None or self.listening():
                await self._publish_now(result)
            else:
                log.info(
                    "block %d: %d txs, hash 0x%s",
                    result.number,
                    result.tx_count,
                    result.block_hash.hex()[:16],
                )
                self._published = max(self._published, result.number)

        self._publishing = asyncio.create_task(run())

    async def drain_publications(self) -> None:
        """Wait until every committed block was published (clean shutdown)."""
        if self._publishing is not None:
            with contextlib.suppress(Exception):
                await self._publishing

    async def caught_up(self, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout`` seconds) until block listeners have seen every block up
        to the head: a block is committed, and readable by clients, a moment before it is
        published, so a filter poll waits here to reflect every block a client can see."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        target = int(self.chain.head.block_number)
        while self._published < target and loop.time() < deadline:
            task = self._publishing
            if task is not None and not task.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(task), deadline - loop.time())
            else:
                await asyncio.sleep(0.005)

    async def _publish_now(self, result: BuildResult) -> BuiltBlock:
        bundle = self.chain.bundle(self.chain.header_by_hash(result.block_hash))
        built = BuiltBlock(bundle.block, bundle.receipts, bundle.senders, result.rejected)
        log.info(
            "block %d: %d txs, gas %d, hash 0x%s",
            built.block.number,
            len(built.block.transactions),
            built.block.header.gas_used,
            bytes(built.block.hash).hex()[:16],
        )
        for listener in list(self.block_listeners):
            try:
                await listener(built)
            except Exception:
                log.exception("a block listener failed")
        self._published = max(self._published, int(built.block.number))
        return built

    def _after_new_head(self, rejected: tuple[tuple[bytes, str], ...] = ()) -> None:
        self._head_state = None
        self._next_base_fee = None
        for tx_hash, _reason in rejected:
            self.pool.remove(tx_hash)
        self.pool.on_new_head(self.head_state(), base_fee=self.next_base_fee())

    def has_work(self) -> bool:
        """Whether some pooled transaction could go into the next block."""
        return bool(self.pool.status()[0])

    async def wait_for_work(self, timeout: float | None) -> None:
        """Sleep until a transaction arrives or `timeout` passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    # ---------------------------------------------------------------- dev-mode controls

    def _require_dev(self, method: str) -> None:
        if not self.dev:
            raise DevModeOnly(f"{method} is only available on a dev chain (pv node --dev)")

    @property
    def dev_clock(self) -> bool:
        """Whether evm_increaseTime works on this validator network node (--dev-clock)."""
        return self.clock_file is not None

    def increase_time(self, seconds: int) -> int:
        """evm_increaseTime: move chain time forward; returns the total offset.

        On a --dev-clock validator node the offset moves this node's clock, which consensus
        uses too; every validator of the network must be moved alike (``pv devnet warp``).
        """
        if self.clock_file is None:
            self._require_dev("evm_increaseTime")
        offset = self.block_time.increase(seconds)
        if self.clock_file is not None:
            save_clock_offset(self.clock_file, offset)
        return offset

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """evm_setNextBlockTimestamp."""
        self._require_dev("evm_setNextBlockTimestamp")
        self.block_time.pin_next(timestamp, int(self.chain.head.timestamp))

    async def mine(self, timestamp: int | None = None) -> BuiltBlock:
        """evm_mine: one block now, optionally at a given timestamp."""
        self._require_dev("evm_mine")
        if timestamp is not None:
            self.block_time.pin_next(timestamp, int(self.chain.head.timestamp))
        return await self.build_block()

    def snapshot(self) -> int:
        """evm_snapshot: remember the head and chain time; returns an id."""
        self._require_dev("evm_snapshot")
        self._snapshot_seq += 1
        self._snapshots[self._snapshot_seq] = _Snapshot(
            self.chain.height, self.block_time.offset, self.block_time.pinned_next
        )
        return self._snapshot_seq

    async def revert(self, snapshot_id: int) -> bool:
        """evm_revert: back to a snapshot (which is used up, with later ones)."""
        self._require_dev("evm_revert")
        snap = self._snapshots.get(snapshot_id)
        if snap is None:
            return False
        async with self._build_lock:
            for sid in [s for s in self._snapshots if s >= snapshot_id]:
                del self._snapshots[sid]
            await asyncio.to_thread(self.executor.rewind, snap.height)
            self.block_time.offset = snap.offset
            self.block_time.pinned_next = snap.pinned_next
            self.pool.clear()
            self._after_new_head()
        return True

    def resolve_header(self, number: int) -> BlockHeaderAPI:
        """Canonical header by number, with a clear error when past the head."""
        if number > self.chain.height:
            raise BlockNotFound(f"block {number} is beyond the head {self.chain.height}")
        return self.chain.header_by_number(number)


def fill_block(candidates: list[PooledTx], gas_limit: int) -> list[PooledTx]:
    """The first candidates whose gas limits add up to a block and a quarter.

    The executor decodes every candidate it is sent; a backlog of several blocks would be
    decoded again for each block. The quarter covers candidates the builder skips.
    """
    budget = gas_limit + gas_limit // 4
    total = 0
    for i, ptx in enumerate(candidates):
        total += ptx.tx.gas
        if total > budget:
            return candidates[:i]
    return candidates


class DevProducer:
    """Dev mode: a block as soon as transactions are pending; optionally one every interval."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval

    async def run(self, node: Node) -> None:
        """Produce blocks until cancelled."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        stalled = False
        while True:
            try:
                if self.interval is None:
                    if stalled or not node.has_work():
                        # Nothing executable (or only txs the base fee excludes): wait for
                        # a new transaction instead of making empty blocks.
                        await node.wait_for_work(None)
                        # Let requests already on the sockets land in this block too.
                        await asyncio.sleep(0)
                    stalled = False
                    if node.has_work():
                        result = await node.commit_block()
                        node.publish_later(result)
                        stalled = result.tx_count == 0
                else:
                    await asyncio.sleep(max(0.0, last + self.interval - loop.time()))
                    last = loop.time()
                    await node.build_block()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A failed block leaves the chain at its last committed block; say why and
                # try again shortly rather than stop producing.
                log.exception("building a block failed; retrying")
                await asyncio.sleep(0.5)
