"""A validator (or observer) node: agreement over the p2p network, block execution, sync.

``BftProducer`` is the node's ``BlockProducer`` when it runs a multi-validator chain. Per
height it builds the deterministic empty block, runs ``consensus.Agreement`` with the
committee of that height, answers its actions (gossip messages, timers, build or execute
blocks in the executor process) and commits the decided block with its seal (certificate and
seed proof). A node that sees messages of later heights, or learns of a higher peer, fetches
the missed blocks with their seals from peers, verifies every certificate and re-executes
every block: it trusts no peer.

Crash safety: before any vote or proposal leaves the node, the slot it fills and the node's
lock are written to ``consensus-wal.json`` (fsync'ed), so a restarted validator never signs a
second value for one slot and keeps its lock (see ``wal.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI
from eth_hash.auto import keccak

from powerverse.chain.blockcodec import decode_block, decode_block_attached, encode_block
from powerverse.chain.exceptions import ChainError, InvalidBlock
from powerverse.chain.executor import BuildResult, PendingResult
from powerverse.chain.genesis import Genesis
from powerverse.chain.rewards import Payee, RewardClaim
from powerverse.chain.rlp_guard import RlpShapeError, check_rlp_depth
from powerverse.chain.txpool import PooledTx
from powerverse.chain.txpool_errors import (
    InvalidSenderError,
    InvalidTransactionEncodingError,
    TxPoolError,
    TxTypeNotSupportedError,
)
from powerverse.consensus.agreement import (
    Action,
    Agreement,
    Broadcast,
    BuildBlock,
    Decide,
    Equivocation,
    Me,
    ScheduleTimeout,
    Timeouts,
    ValidateValue,
)
from powerverse.consensus.certificates import Certificate, verify_certificate
from powerverse.consensus.checks import Checker
from powerverse.consensus.committee import (
    Committee,
    GenesisStakes,
    StakeEntry,
    StakeSource,
    committee_for,
    committee_role,
    genesis_seed,
    next_seed,
    proposer_role,
    seed_alpha,
)
from powerverse.consensus.crypto import KeySigner, RealCrypto
from powerverse.consensus.exceptions import ConsensusError, InvalidCertificate
from powerverse.consensus.messages import Chain, Credential, Message, Proposal, Vote
from powerverse.consensus.messages import decode as decode_message
from powerverse.consensus.messages import encode as encode_message
from powerverse.node.evidence_submit import submit_evidence
from powerverse.node.liveness import LivenessReporter
from powerverse.node.service import Node, fill_block
from powerverse.node.staking import ContractStakes
from powerverse.node.txjournal import TxJournal
from powerverse.node.validator_key import ValidatorKey
from powerverse.node.wal import ConsensusWal
from powerverse.p2p import GossipMessage, Host, RequestError, Verdict

log = logging.getLogger(__name__)

TOPIC_TX = 1
TOPIC_CONSENSUS = 2
TOPIC_PROPOSAL = 3
REQ_STATUS = 1
REQ_BLOCKS = 2
REQ_BLOCK = 3

ZERO_ADDRESS = b"\x00" * 20
MAX_FUTURE_DRIFT = 15
"""Seconds a proposed block's timestamp may be ahead of this node's clock."""
SYNC_BATCH = 32
SYNC_THROTTLE = 0.5
MAX_EVIDENCE = 10_000
MAX_BUFFERED = 5_000
"""Messages of the next heights kept until their height starts."""
HEIGHTS_AHEAD = 3
TX_BATCH = 256
"""Transactions per gossip message (one message per transaction would trip rate limits)."""
TX_BATCH_DELAY = 0.02
RESEND_INTERVAL = 1.0
"""Seconds between re-gossiping this node's messages of an undecided height."""
EARLY_START = 1.0
"""Seconds a height may start before its parent's timestamp comes when transactions wait.

Blocks carry whole-second timestamps that must increase, so a chain that waits for each
timestamp makes at most one block per second, and a burst waits half a second on average
for the next height. With transactions pending, a height may start while the head's
timestamp is up to this far ahead of the clock: block times run ahead of the wall clock by
at most this (plus one second), well inside what validators accept (MAX_FUTURE_DRIFT).
"""


def timeouts_of(genesis: Genesis) -> Timeouts:
    """The step timeouts from the genesis consensus parameters."""
    p = genesis.consensus
    step = p.step_timeout_ms / 1000
    return Timeouts(
        priority_window=p.priority_window_ms / 1000,
        propose=p.propose_timeout_ms / 1000,
        prevote=step,
        precommit=step,
        increase=p.timeout_increase_ms / 1000,
    )


def encode_seal(cert: Certificate, seed_proof: bytes) -> bytes:
    """A block's seal: its certificate and its producer's seed proof (empty for empty blocks)."""
    return bytes(rlp.encode([cert.encode(), seed_proof]))


def decode_seal(data: bytes) -> tuple[Certificate, bytes]:
    """Parse a seal; raise InvalidCertificate on garbage."""
    try:
        check_rlp_depth(data, 2)
        items = rlp.decode(data)
    except (RlpShapeError, rlp.exceptions.DecodingError) as exc:
        raise InvalidCertificate(f"malformed seal: {exc}") from exc
    if (
        not isinstance(items, list)
        or len(items) != 2
        or not all(isinstance(i, bytes) for i in items)
    ):
        raise InvalidCertificate("a seal is [certificate, seed proof]")
    return Certificate.decode(items[0]), items[1]


def slot_delay(head_time: int, now: float, *, pending: bool, lead: float = EARLY_START) -> float:
    """Seconds before the height after a head with timestamp ``head_time`` may start.

    Without pending transactions a height waits for the head's timestamp (at most one block
    a second); with some it may start ``lead`` seconds earlier.
    """
    return max(0.0, head_time - (lead if pending else 0.0) - now)


def seed_of(header: BlockHeaderAPI, genesis_hash: bytes) -> bytes:
    """The sortition seed a block hands to the next height."""
    if header.block_number == 0:
        return genesis_seed(genesis_hash)
    return bytes(header.mix_hash)


@dataclass
class _Event:
    kind: str
    data: Any


class BftProducer:
    """Runs agreement for every height; see the module docstring."""

    def __init__(
        self,
        genesis: Genesis,
        host: Host,
        data_dir: Path,
        key: ValidatorKey | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.genesis = genesis
        self.host = host
        self.key = key
        self.clock = clock
        # The genesis set until run() reads the Staking contract through the node's chain.
        self.stakes: StakeSource = GenesisStakes.of(genesis)
        self.timeouts = timeouts_of(genesis)
        self.crypto = RealCrypto()
        self.signer = KeySigner(key.consensus) if key is not None else None
        self.wal = ConsensusWal(data_dir / "consensus-wal.json")
        self.journal = TxJournal(data_dir / "tx-journal.bin")
        self.node: Node | None = None
        self.chain_ctx: Chain | None = None
        self.checker: Checker | None = None
        self._verified_certs: OrderedDict[bytes, None] = OrderedDict()  # keccak of certificates
        self.agreement: Agreement | None = None
        self.committee: Committee | None = None
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._future: dict[int, list[Message]] = defaultdict(list)
        self._buffered = 0
        self._bodies: OrderedDict[bytes, bytes] = OrderedDict()  # block hash -> wire bytes
        self._seed_proofs: dict[bytes, bytes] = {}
        self._pending: dict[bytes, PendingResult] = {}
        self._exec_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self._syncing = False
        self._sync_due = True  # ask peers' heights before the next height starts
        self._last_sync = 0.0
        self._last_cert: Certificate | None = None
        self._tx_out: list[bytes] = []
        self._own: list[tuple[int, bytes]] = []
        self._tx_flush: asyncio.TimerHandle | None = None
        self.evidence: list[Equivocation] = []
        self._evidence_keys: set[tuple[int, int, int, bytes]] = set()
        self.evidence_path = data_dir / "evidence.jsonl"
        self.liveness: LivenessReporter | None = None

    # ---------------------------------------------------------------- lifecycle

    async def run(self, node: Node) -> None:
        """Produce (agree on) blocks until cancelled."""
        self.node = node
        if node.dev_clock:  # a devnet whose time scripts move (evm_increaseTime)
            wall = self.clock
            self.clock = lambda: wall() + node.block_time.offset
        self.stakes = ContractStakes(node.chain, self.genesis)
        self.chain_ctx = Chain(self.genesis.chain_id, node.chain.genesis_hash)
        self.checker = Checker(self.chain_ctx, self.crypto)
        if self.key is not None:
            self.liveness = LivenessReporter(
                node, self.key.account_key, self.key.consensus.public_key
            )
        node.consensus = self
        node.tx_listeners.append(self._gossip_tx)
        self._resubmit_journal()
        self.host.subscribe(TOPIC_TX, self._validate_tx, self._deliver_nothing)
        self.host.subscribe(TOPIC_CONSENSUS, self._validate_consensus, self._deliver_consensus)
        self.host.subscribe(TOPIC_PROPOSAL, self._validate_proposal, self._deliver_consensus)
        self.host.on_request(REQ_STATUS, self._serve_status)
        self.host.on_request(REQ_BLOCKS, self._serve_blocks)
        self.host.on_request(REQ_BLOCK, self._serve_block)
        self.host.on_connect(lambda peer: self._post("peer", peer))
        try:
            while True:
                try:
                    if self._sync_due:
                        self._sync_due = False
                        await self._sync_from_peers()
                    await self._wait_for_slot()
                    await self._run_height()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("consensus height failed; starting it again")
                    self._sync_due = True
                    await asyncio.sleep(0.5)
        finally:
            for timer in self._timers:
                timer.cancel()
            for task in list(self._tasks):
                task.cancel()
            self.journal.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("consensus task failed", exc_info=task.exception())

    def _post(self, kind: str, data: Any) -> None:
        self._events.put_nowait(_Event(kind, data))

    @property
    def _node(self) -> Node:
        assert self.node is not None
        return self.node

    # ---------------------------------------------------------------- one height

    async def _wait_for_slot(self) -> None:
        """Wait until the next height may start (see ``slot_delay``); a transaction arriving
        meanwhile may end the wait early."""
        node = self._node
        while True:
            head_time = int(node.chain.head.timestamp)
            pending = node.has_work()
            delay = slot_delay(head_time, self.clock(), pending=pending)
            if delay <= 0:
                return
            if pending:
                await asyncio.sleep(min(delay, 2.0))
                return
            await node.wait_for_work(min(delay, 2.0))

    async def _run_height(self) -> None:
        node = self._node
        chain = node.chain
        parent = chain.head
        height = int(parent.block_number) + 1
        prev_seed = seed_of(parent, chain.genesis_hash)
        committee = committee_for(height, prev_seed, self.stakes, self.genesis.consensus)
        self.committee = committee
        self._pending.clear()
        empty = await self._exec(
            "propose",
            [],
            timestamp=int(parent.timestamp) + 1,
            coinbase=ZERO_ADDRESS,
            mix_hash=next_seed(prev_seed, height, None),
            extra_data=b"",
        )
        self._remember(empty, b"")
        agreement = Agreement(
            self._ctx,
            committee,
            empty.block_hash,
            self.timeouts,
            self._me(committee, prev_seed),
            self.crypto.priority,
        )
        self.agreement = agreement
        self._own = []
        resend = asyncio.get_running_loop().call_later(RESEND_INTERVAL, self._post, "resend", None)
        self._timers.append(resend)
        saved = self.wal.restore(height)
        if saved is not None:
            actions = agreement.restore(saved.round, saved.locked, saved.valid)
        else:
            actions = agreement.start()
        await self._apply(actions)
        for msg in self._take_buffered(height, committee):
            await self._handle_message(msg)
        while agreement.decision is None and chain.height < height:
            event = await self._events.get()
            await self._handle(event, height)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _take_buffered(self, height: int, committee: Committee) -> list[Message]:
        """The messages buffered for `height` that pass the checks of its committee.

        They arrived before this node had the committee to check them against (see
        ``_classify``), so they are checked now: forged ones are dropped here and never
        reach the agreement.
        """
        msgs = self._future.pop(height, [])
        self._buffered -= len(msgs)
        checker = self.checker
        assert checker is not None
        kept = []
        for msg in msgs:
            try:
                checker.check(msg, committee)
            except ConsensusError as exc:
                log.debug("dropped a buffered message of height %d: %s", height, exc)
                continue
            kept.append(msg)
        return kept

    def _me(self, committee: Committee, prev_seed: bytes) -> Me | None:
        signer = self.signer
        if signer is None:
            return None
        stake = committee.stake_of(signer.public_key)
        if stake <= 0:
            return None
        params = committee.params
        total = committee.total_stake
        height = committee.height
        committee_cred = signer.sortition(
            prev_seed, params.tau_committee, committee_role(height), stake, total
        )
        cache: dict[int, Credential | None] = {}

        def proposer(round_: int) -> Credential | None:
            if round_ not in cache:
                role = proposer_role(height, round_)
                cache[round_] = signer.sortition(prev_seed, params.tau_proposer, role, stake, total)
            return cache[round_]

        return Me(signer.public_key, self._sign, committee_cred, proposer)

    def _sign(self, message: bytes) -> bytes:
        assert self.signer is not None
        return self.signer.sign(message)

    @property
    def _ctx(self) -> Chain:
        assert self.chain_ctx is not None
        return self.chain_ctx

    async def _handle(self, event: _Event, height: int) -> None:
        agreement = self.agreement
        assert agreement is not None
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "h%d r%d %s: %s %s",
                height,
                agreement.round,
                agreement.step.name,
                event.kind,
                type(event.data).__name__ if event.kind == "message" else event.data,
            )
        if event.kind == "message":
            await self._handle_message(event.data)
        elif event.kind == "timeout":
            kind, h, r = event.data
            await self._apply(agreement.on_timeout(kind, h, r))
        elif event.kind == "validated":
            value, ok = event.data
            await self._apply(agreement.on_validated(value, ok))
        elif event.kind == "built":
            round_, result, seed_proof = event.data
            self._remember(result, seed_proof)
            await self._apply(agreement.on_own_block(round_, result.block_hash, seed_proof))
        elif event.kind == "resend":
            self._resend()
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(RESEND_INTERVAL, self._post, "resend", None))
        elif event.kind == "ahead" and event.data <= height:
            pass  # a message of a height this node has reached by itself since
        elif event.kind in ("ahead", "peer"):
            if event.kind == "peer":
                self._resend()
            now = time.monotonic()
            # Every message of a later height says "ahead": ask peers at most twice a second.
            if event.kind == "peer" or now - self._last_sync >= SYNC_THROTTLE:
                self._last_sync = now
                await self._sync_from_peers()

    async def _handle_message(self, msg: Message) -> None:
        agreement = self.agreement
        if agreement is None or msg.height != agreement.height:
            return
        if isinstance(msg, Vote):
            actions = agreement.on_vote(msg)
        elif isinstance(msg, Proposal):
            actions = agreement.on_proposal(msg)
        else:
            actions = agreement.on_priority(msg)
        await self._apply(actions)

    # ---------------------------------------------------------------- actions

    async def _apply(self, actions: list[Action]) -> None:
        agreement = self.agreement
        assert agreement is not None
        for action in actions:
            if isinstance(action, Broadcast):
                self._broadcast(action.message)
            elif isinstance(action, ScheduleTimeout):
                loop = asyncio.get_running_loop()
                data = (action.kind, action.height, action.round)
                self._timers.append(loop.call_later(action.delay, self._post, "timeout", data))
            elif isinstance(action, BuildBlock):
                self._spawn(self._build(action))
            elif isinstance(action, ValidateValue):
                self._spawn(self._validate(agreement.height, action.value))
            elif isinstance(action, Decide):
                await self._commit(action)
            elif isinstance(action, Equivocation):
                self._record_evidence(action)

    def _broadcast(self, msg: Message) -> None:
        if isinstance(msg, Vote | Proposal):
            value = msg.value
            step = int(msg.step) if isinstance(msg, Vote) else 0
            if not self.wal.may_sign(msg.height, msg.round, step, value):
                log.warning(
                    "not signing a second value for height %d round %d", msg.height, msg.round
                )
                return
            agreement = self.agreement
            assert agreement is not None
            self.wal.record(
                msg.height,
                msg.round,
                step,
                value,
                locked=(agreement.locked_value, agreement.locked_round),
                valid=(agreement.valid_value, agreement.valid_round),
            )
        if isinstance(msg, Proposal):
            body = self._bodies.get(msg.value, b"")
            sent = (TOPIC_PROPOSAL, bytes(rlp.encode([encode_message(msg), body])))
        else:
            sent = (TOPIC_CONSENSUS, encode_message(msg))
        self._own.append(sent)
        self._publish(*sent)

    def _resend(self) -> None:
        """Gossip this height's own messages again: peers that connected late, or lost them,
        get them now (peers that have them drop the copies unprocessed)."""
        for topic, payload in self._own[-32:]:
            self._publish(topic, payload)

    def _publish(self, topic: int, payload: bytes) -> None:
        try:
            self.host.publish(topic, payload)
        except Exception:
            log.exception("gossip publish failed")

    def _remember(self, result: PendingResult, seed_proof: bytes) -> None:
        self._pending[result.block_hash] = result
        self._bodies[result.block_hash] = result.encoded()
        self._seed_proofs[result.block_hash] = seed_proof
        while len(self._bodies) > 64:
            old, _ = self._bodies.popitem(last=False)
            self._seed_proofs.pop(old, None)

    async def _exec(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the block executor (one call at a time; it runs in its own process)."""
        executor = self._node.executor
        async with self._exec_lock:
            return await asyncio.to_thread(getattr(executor, method), *args, **kwargs)

    async def _build(self, action: BuildBlock) -> None:
        made = await self._make_block(action.height, action.round)
        if made is not None:
            self._post("built", (action.round, *made))

    async def _make_block(self, height: int, round_: int) -> tuple[PendingResult, bytes] | None:
        """Build a block for (height, round) on the head: the block and its seed proof."""
        node = self._node
        parent = node.chain.head
        signer, key = self.signer, self.key
        if signer is None or key is None or int(parent.block_number) + 1 != height:
            return None
        prev_seed = seed_of(parent, node.chain.genesis_hash)
        alpha = seed_alpha(prev_seed, height)
        seed_proof = signer.vrf_prove(alpha)
        output = self.crypto.vrf_output(signer.public_key, seed_proof, alpha)
        assert output is not None
        timestamp = max(int(parent.timestamp) + 1, int(self.clock()))
        candidates = node.pool.select(node.next_base_fee())
        # The block carries its parent's certificate and pays the parent's block reward.
        attachment, reward = b"", None
        seal = node.chain.seal_of(bytes(parent.hash)) if height > 1 else None
        if seal:
            try:
                cert, _ = decode_seal(seal)
                reward = self._reward_claim(parent, cert, signer.public_key)
                attachment = cert.encode()
            except (InvalidBlock, ConsensusError):
                log.exception("cannot claim the parent's block reward")
        try:
            result = await self._exec(
                "propose",
                fill_block(candidates, int(parent.gas_limit)),
                timestamp=timestamp,
                coinbase=key.address,
                mix_hash=next_seed(prev_seed, height, output),
                extra_data=signer.public_key,
                reward=reward,
                attachment=attachment,
            )
        except ChainError:
            log.exception("building a proposal failed")
            return None
        log.info(
            "built proposal for height %d round %d: %d of %d candidates",
            height,
            round_,
            len(result.tx_payloads),
            len(candidates),
        )
        for tx_hash, reason in result.rejected[:3]:
            log.info("proposal left out 0x%s: %s", tx_hash.hex()[:16], reason)
        return result, seed_proof

    async def _validate(self, height: int, value: bytes) -> None:
        ok = await self._check_block(height, value)
        self._post("validated", (value, ok))

    async def _check_block(self, height: int, value: bytes) -> bool:
        """Fetch (if needed), check the seal rules of, and execute a proposed block."""
        if value in self._pending:
            return True
        body = self._bodies.get(value)
        seed_proof = self._seed_proofs.get(value)
        if body is None or seed_proof is None:
            fetched = await self._fetch_block(value)
            if fetched is None:
                return False
            body, seed_proof = fetched
        try:
            header, payloads, attachment = decode_block_attached(body)
            if bytes(header.hash) != value:
                return False
            self._check_header(header, seed_proof)
            reward = self._claim_of(header, attachment)
            known = self._node.pool.known_senders(payloads)
            result = await self._exec(
                "execute",
                header,
                payloads,
                known_senders=known,
                reward=reward,
                attachment=attachment,
            )
        except (InvalidBlock, ConsensusError) as exc:
            log.info("block 0x%s refused: %s", value.hex()[:16], exc)
            return False
        except ChainError as exc:
            log.info("block 0x%s not executed: %s", value.hex()[:16], exc)
            return False
        self._remember(result, seed_proof)
        return True

    def _claim_of(self, header: BlockHeaderAPI, attachment: bytes) -> RewardClaim | None:
        """The reward claim of a received non-empty block: its parent's certificate must come
        with it (none on genesis) and verify; InvalidBlock or ConsensusError otherwise."""
        chain = self._node.chain
        parent = chain.header_by_hash(bytes(header.parent_hash))
        if int(parent.block_number) == 0:
            if attachment:
                raise InvalidBlock("a block on the genesis block carries no certificate")
            return None
        if not attachment:
            raise InvalidBlock("the block does not carry its parent's finality certificate")
        cert = Certificate.decode(attachment)
        if cert.value != bytes(parent.hash):
            raise InvalidBlock("the block carries a certificate of another block than its parent")
        digest = keccak(attachment)
        own = chain.seal_of(bytes(parent.hash))
        if own and decode_seal(own)[0].encode() == attachment:
            self._verified_certs[digest] = None  # the certificate this node decided it with
        if digest not in self._verified_certs:
            grandparent = chain.header_by_hash(bytes(parent.parent_hash))
            committee = committee_for(
                int(parent.block_number),
                seed_of(grandparent, chain.genesis_hash),
                self.stakes,
                self.genesis.consensus,
            )
            assert self.checker is not None
            verify_certificate(cert, self.checker, committee)
            self._verified_certs[digest] = None
            while len(self._verified_certs) > 64:
                self._verified_certs.popitem(last=False)
        return self._reward_claim(parent, cert, bytes(header.extra_data))

    def _reward_claim(
        self, parent: BlockHeaderAPI, cert: Certificate, producer: bytes
    ) -> RewardClaim:
        """The emission up to ``parent``'s time, for ``parent``'s proposer (the ``producer`` of
        the block that pays it, when ``parent`` is empty) and ``cert``'s voters by weight."""
        height = int(parent.block_number)
        stakes = self._stakes_for(height)
        proposer = bytes(parent.extra_data) or producer
        entry = stakes.get(proposer) or self._stakes_for(height + 1).get(proposer)
        if entry is None:
            raise InvalidBlock("the rewarded proposer is not a validator")

        def payee(key: bytes) -> Payee:
            found = stakes.get(key)
            if found is None:  # verify_certificate admitted only committee members
                raise InvalidBlock("a certificate voter is not a validator")
            return Payee(key, found.account)

        return RewardClaim(
            until=int(parent.timestamp),
            proposer=Payee(proposer, entry.account),
            committee=tuple((payee(v.voter), v.credential.weight) for v in cert.votes),
        )

    def _stakes_for(self, height: int) -> Mapping[bytes, StakeEntry]:
        """The validator set that weighs height `height` (stakes at height - lookback)."""
        return self.stakes.stakes_at(max(0, height - self.genesis.consensus.lookback))

    def _check_header(self, header: BlockHeaderAPI, seed_proof: bytes) -> None:
        """The consensus rules of a non-empty block: producer, fee recipient, seed, time."""
        chain = self._node.chain
        parent = chain.header_by_hash(bytes(header.parent_hash))
        height = int(header.block_number)
        prev_seed = seed_of(parent, chain.genesis_hash)
        producer = bytes(header.extra_data)
        entry = self._stakes_for(height).get(producer)
        if entry is None:
            raise InvalidBlock("the block's producer (extraData) is not a validator")
        if bytes(header.coinbase) != entry.account:
            raise InvalidBlock("the block's fee recipient is not its producer's account")
        output = self.crypto.vrf_output(producer, seed_proof, seed_alpha(prev_seed, height))
        if output is None:
            raise InvalidBlock("the block's seed proof does not verify")
        if bytes(header.mix_hash) != next_seed(prev_seed, height, output):
            raise InvalidBlock("the block's mixHash is not the seed its proof gives")
        if int(header.timestamp) > self.clock() + MAX_FUTURE_DRIFT:
            raise InvalidBlock("the block's timestamp is too far in the future")

    async def _commit(self, decision: Decide) -> None:
        cert = Certificate(decision.height, decision.round, decision.value, decision.certificate)
        seal = encode_seal(cert, self._seed_proofs.get(decision.value, b""))
        result: BuildResult = await self._exec("commit_pending", decision.value, seal)
        self._last_cert = cert
        self._node.adopt_block(result)
        self.wal.clear_below(decision.height + 1)
        pool = self._node.pool
        self.journal.compact_if_large(lambda raw: pool.get(keccak(raw)) is not None)
        log.info(
            "finalized block %d (round %d, %d txs) 0x%s",
            decision.height,
            decision.round,
            result.tx_count,
            decision.value.hex()[:16],
        )
        if self.liveness is not None:
            try:  # keep this validator's liveness proven; report validators that are down
                self.liveness.after_commit(decision.height, cert)
            except Exception:
                log.exception("liveness bookkeeping failed")

    def _record_evidence(self, evidence: Equivocation) -> None:
        """Keep both signed messages, in memory and appended to ``evidence.jsonl``."""
        first = evidence.first
        sender = first.voter if isinstance(first, Vote) else first.proposer
        step = int(first.step) if isinstance(first, Vote) else 0
        key = (first.height, first.round, step, sender)
        if key in self._evidence_keys or len(self.evidence) >= MAX_EVIDENCE:
            return
        self._evidence_keys.add(key)
        self.evidence.append(evidence)
        record = evidence_json(evidence)
        try:
            with open(self.evidence_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError:
            log.exception("could not write %s", self.evidence_path)
        log.warning(
            "equivocation by validator 0x%s at height %d round %d recorded",
            sender.hex()[:16],
            first.height,
            first.round,
        )
        if self.key is not None and self.node is not None:
            try:  # prove it on chain (skipped when already proven or without Staking)
                submit_evidence(
                    self.node,
                    self.key.account_key,
                    [bytes.fromhex(m[2:]) for m in record["messages"]],
                )
            except Exception:
                log.exception("could not submit the equivocation evidence")

    # ---------------------------------------------------------------- gossip in

    def _validate_tx(self, message: GossipMessage) -> Verdict:
        """A batch of raw transactions from a peer: pool the new ones.

        Malformed data or a transaction no honest node would send (bad encoding or
        signature) is a REJECT; transactions that are merely stale here (known, nonce too
        low, underpriced, over a limit) are normal in gossip and only IGNOREd.
        """
        try:
            check_rlp_depth(message.payload, 1)
            raws = rlp.decode(message.payload)
        except (RlpShapeError, rlp.exceptions.DecodingError):
            return Verdict.REJECT
        if not isinstance(raws, list) or not raws or len(raws) > TX_BATCH:
            return Verdict.REJECT
        fresh = 0
        for raw in raws:
            if not isinstance(raw, bytes):
                return Verdict.REJECT
            try:
                self._node.submit_raw(raw, from_peer=True)
                fresh += 1
            except (InvalidTransactionEncodingError, InvalidSenderError, TxTypeNotSupportedError):
                return Verdict.REJECT
            except TxPoolError:
                continue
        return Verdict.ACCEPT if fresh else Verdict.IGNORE

    def _deliver_nothing(self, message: GossipMessage) -> None:
        return None

    def _classify(self, msg: Message) -> Verdict:
        agreement, committee, checker = self.agreement, self.committee, self.checker
        current = agreement.height if agreement is not None else self._node.chain.height + 1
        if msg.height < current:
            return Verdict.IGNORE
        if msg.height > current:
            if msg.height <= current + HEIGHTS_AHEAD and self._buffered < MAX_BUFFERED:
                self._future[msg.height].append(msg)
                self._buffered += 1
            self._post("ahead", msg.height)
            return Verdict.IGNORE
        if committee is None or checker is None or committee.height != msg.height:
            # Between heights (the next committee is set while its empty block is made) a late
            # message of the decided height would be checked against the wrong committee and
            # its honest sender penalized.
            return Verdict.IGNORE
        try:
            checker.check(msg, committee)
        except ConsensusError:
            return Verdict.REJECT
        return Verdict.ACCEPT

    def _validate_consensus(self, message: GossipMessage) -> Verdict:
        try:
            msg = decode_message(message.payload)
        except ConsensusError:
            return Verdict.REJECT
        if isinstance(msg, Proposal):
            return Verdict.REJECT  # proposals travel on their own topic with the block
        return self._classify(msg)

    def _validate_proposal(self, message: GossipMessage) -> Verdict:
        try:
            check_rlp_depth(message.payload, 2)
            items = rlp.decode(message.payload)
            if not isinstance(items, list) or len(items) != 2:
                return Verdict.REJECT
            msg = decode_message(items[0])
            body = items[1]
        except (RlpShapeError, rlp.exceptions.DecodingError, ConsensusError):
            return Verdict.REJECT
        if not isinstance(msg, Proposal) or not isinstance(body, bytes):
            return Verdict.REJECT
        verdict = self._classify(msg)
        if verdict is Verdict.ACCEPT and body:
            self._bodies[msg.value] = body
            self._seed_proofs[msg.value] = msg.seed_proof
        return verdict

    def _deliver_consensus(self, message: GossipMessage) -> None:
        payload = message.payload
        if message.topic == TOPIC_PROPOSAL:
            payload = rlp.decode(payload)[0]
        self._post("message", decode_message(payload))

    def _resubmit_journal(self) -> None:
        """Give the pool and the network the client transactions of before a restart."""
        raws = self.journal.read()
        self.journal.rewrite([])
        kept = 0
        for raw in raws:
            try:
                self._node.submit_raw(raw)  # journals and gossips it again
                kept += 1
            except TxPoolError:
                continue  # already in a block, or replaced: nothing to do
        if raws:
            log.info("transaction journal: %d of %d resubmitted", kept, len(raws))

    def _gossip_tx(self, ptx: PooledTx) -> None:
        """Journal a client's transaction, then queue it for gossip (sent in batches)."""
        self.journal.append(ptx.raw)
        self._tx_out.append(ptx.raw)
        if len(self._tx_out) >= TX_BATCH:
            self._flush_txs()
        elif self._tx_flush is None:
            loop = asyncio.get_running_loop()
            self._tx_flush = loop.call_later(TX_BATCH_DELAY, self._flush_txs)

    def _flush_txs(self) -> None:
        if self._tx_flush is not None:
            self._tx_flush.cancel()
            self._tx_flush = None
        batch, self._tx_out = self._tx_out, []
        if batch:
            self._publish(TOPIC_TX, bytes(rlp.encode(batch)))

    # ---------------------------------------------------------------- serving peers

    async def _serve_status(self, peer: bytes, payload: bytes) -> bytes:
        chain = self._node.chain
        return bytes(rlp.encode([chain.height, bytes(chain.head.hash)]))

    async def _serve_blocks(self, peer: bytes, payload: bytes) -> bytes:
        try:
            first, count = (int.from_bytes(x, "big") for x in rlp.decode(payload))
        except Exception:
            return bytes(rlp.encode([]))
        chain = self._node.chain
        out = []
        for number in range(
            max(1, first), min(chain.height, first + min(count, SYNC_BATCH) - 1) + 1
        ):
            header, payloads = chain.raw_block(number)
            seal = chain.seal_of(bytes(header.hash)) or b""
            attachment = chain.attachment_of(bytes(header.hash))
            out.append([encode_block(header, payloads, attachment), seal])
        return bytes(rlp.encode(out))

    async def _serve_block(self, peer: bytes, payload: bytes) -> bytes:
        body = self._bodies.get(payload)
        if body is None:
            return b""
        return bytes(rlp.encode([body, self._seed_proofs.get(payload, b"")]))

    async def _fetch_block(self, value: bytes) -> tuple[bytes, bytes] | None:
        for info in self.host.peers():
            try:
                reply = await self.host.request(info.peer_id, REQ_BLOCK, value, timeout=2.0)
                if not reply:
                    continue
                check_rlp_depth(reply, 2)
                body, proof = rlp.decode(reply)
                if isinstance(body, bytes) and isinstance(proof, bytes):
                    return body, proof
            except (RequestError, RlpShapeError, rlp.exceptions.DecodingError, ValueError):
                continue
        return None

    # ---------------------------------------------------------------- sync

    async def _sync_from_peers(self) -> None:
        """Fetch and verify the blocks that peers ahead of us have.

        Every peer is asked for its height; the missing range is split into batches that
        are requested from different peers at once (each batch from a peer that has it),
        then verified and executed in order. A peer whose block does not verify is
        penalized and its batch asked of another peer.
        """
        if self._syncing:
            return
        self._syncing = True
        try:
            while True:
                heights = await self._peer_heights()
                if not heights or max(heights.values()) <= self._node.chain.height:
                    return
                if not await self._sync_round(heights):
                    return
        finally:
            self._syncing = False

    async def _peer_heights(self) -> dict[bytes, int]:
        async def ask(peer: bytes) -> tuple[bytes, int]:
            try:
                reply = await self.host.request(peer, REQ_STATUS, b"", timeout=2.0)
                check_rlp_depth(reply, 1)
                status = rlp.decode(reply)
                return peer, int.from_bytes(status[0], "big")
            except (RequestError, RlpShapeError, rlp.exceptions.DecodingError):
                return peer, -1
            except (IndexError, TypeError, ValueError):
                return peer, -1

        answers = await asyncio.gather(*(ask(i.peer_id) for i in self.host.peers()))
        return {peer: height for peer, height in answers if height >= 0}

    async def _fetch_range(self, peer: bytes, start: int) -> list[list[bytes]] | None:
        request = bytes(rlp.encode([start, SYNC_BATCH]))
        try:
            reply = await self.host.request(peer, REQ_BLOCKS, request, timeout=10.0)
            check_rlp_depth(reply, 3)
            items = rlp.decode(reply)
        except (RequestError, RlpShapeError, rlp.exceptions.DecodingError):
            return None
        if not isinstance(items, list) or not all(_is_pair(i) for i in items):
            self.host.penalize(peer, 20.0, "malformed blocks reply")
            return None
        return items

    async def _sync_round(self, heights: dict[bytes, int]) -> bool:
        """Fetch up to one batch per peer in parallel and import them in order."""
        chain = self._node.chain
        ahead = sorted(
            (p for p, h in heights.items() if h > chain.height), key=lambda p: heights[p]
        )
        starts = []
        next_start = chain.height + 1
        for _ in ahead:
            if next_start > max(heights.values()):
                break
            starts.append(next_start)
            next_start += SYNC_BATCH
        # Each batch from a distinct peer that has its first block, most advanced peers last.
        plan: list[tuple[int, bytes]] = []
        free = list(ahead)
        for start in starts:
            peer = next((p for p in free if heights[p] >= start), None)
            if peer is None:
                break
            free.remove(peer)
            plan.append((start, peer))
        batches = await asyncio.gather(*(self._fetch_range(p, s) for s, p in plan))
        advanced = False
        for (_start, peer), items in zip(plan, batches, strict=True):
            if not items:
                break
            for item in items:
                number = _block_number(item[0])
                if number is not None and number <= chain.height:
                    continue  # already imported from an earlier batch
                if not await self._import_checked(item):
                    self.host.penalize(peer, 50.0, "sent a block that does not verify")
                    return advanced
                advanced = True
        return advanced

    async def _import_checked(self, item: list[bytes]) -> bool:
        """Verify a synced block's seal and execute it; False when it does not verify."""
        chain = self._node.chain
        body, seal = item
        try:
            header, payloads, attachment = decode_block_attached(body)
            height = int(header.block_number)
            if height != chain.height + 1:
                return False
            cert, seed_proof = decode_seal(seal)
            prev_seed = seed_of(chain.head, chain.genesis_hash)
            committee = committee_for(height, prev_seed, self.stakes, self.genesis.consensus)
            assert self.checker is not None
            verify_certificate(cert, self.checker, committee)
            if cert.value != bytes(header.hash):
                raise InvalidCertificate("the certificate is for another block")
            reward = None
            if header.extra_data:
                self._check_header(header, seed_proof)
                reward = self._claim_of(header, attachment)
            elif bytes(header.mix_hash) != next_seed(prev_seed, height, None):
                raise InvalidBlock("the empty block's mixHash is not its height's seed")
            elif attachment:
                raise InvalidBlock("an empty block carries no certificate")
            result = await self._exec(
                "import_block", header, payloads, seal, reward=reward, attachment=attachment
            )
        except (InvalidBlock, ConsensusError) as exc:
            log.warning("synced block refused: %s", exc)
            return False
        self._last_cert = cert
        self._node.adopt_block(result)
        log.info("synced block %d", height)
        return True

    # ---------------------------------------------------------------- ConsensusView

    def status(self) -> dict[str, Any]:
        """pv_consensusStatus."""
        agreement = self.agreement
        cert = self._last_cert
        return {
            "height": agreement.height if agreement is not None else self._node.chain.height + 1,
            "round": agreement.round if agreement is not None else 0,
            "step": agreement.step.name.lower() if agreement is not None else "sync",
            "peers": self.peer_count(),
            "validator": self.signer is not None,
            "lockedRound": agreement.locked_round if agreement is not None else -1,
            "evidence": len(self.evidence),
            "lastCertificate": None
            if cert is None
            else {
                "height": cert.height,
                "round": cert.round,
                "blockHash": "0x" + cert.value.hex(),
                "votes": len(cert.votes),
                "weight": cert.weight,
            },
        }

    def certificate(self, number: int) -> dict[str, Any] | None:
        """pv_getCertificate: the certificate the next block carries (the one the chain paid
        rewards by, the same on every node) when there is one, else this node's own."""
        chain = self._node.chain
        if number < 1 or number > chain.height:
            return None
        header = chain.header_by_number(number)
        seal = chain.seal_of(bytes(header.hash))
        if not seal:
            return None
        cert, seed_proof = decode_seal(seal)
        onchain = False
        if number < chain.height:
            carried = chain.attachment_of(bytes(chain.header_by_number(number + 1).hash))
            if carried:
                cert, onchain = Certificate.decode(carried), True
        return {
            "onChain": onchain,
            "height": cert.height,
            "round": cert.round,
            "blockHash": "0x" + cert.value.hex(),
            "weight": cert.weight,
            "seedProof": "0x" + seed_proof.hex(),
            "votes": [
                {
                    "voter": "0x" + v.voter.hex(),
                    "weight": v.credential.weight,
                    "vrfHash": "0x" + v.credential.vrf_hash.hex(),
                    "vrfProof": "0x" + v.credential.proof.hex(),
                    "signature": "0x" + v.signature.hex(),
                }
                for v in cert.votes
            ],
        }

    def validators(self) -> list[dict[str, Any]]:
        """pv_validators."""
        unit = self.genesis.consensus.stake_unit_wei
        return [
            {
                "consensusKey": "0x" + e.public_key.hex(),
                "address": "0x" + e.account.hex(),
                "stake": hex(e.stake * unit),
                "stakeUnits": e.stake,
            }
            for e in self._stakes_for(self._node.chain.height + 1).values()
        ]

    def peer_count(self) -> int:
        """Connected peers."""
        return len(self.host.peers())

    def evidence_list(self) -> list[dict[str, Any]]:
        """pv_getEvidence: every equivocation seen, oldest first (also in evidence.jsonl)."""
        recorded: list[dict[str, Any]] = []
        if self.evidence_path.exists():
            for line in self.evidence_path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    recorded.append(json.loads(line))
        return recorded


def _is_pair(item: Any) -> bool:
    return isinstance(item, list) and len(item) == 2 and all(isinstance(i, bytes) for i in item)


def _block_number(body: bytes) -> int | None:
    try:
        header, _ = decode_block(body)
    except InvalidBlock:
        return None
    return int(header.block_number)


def _value(msg: Message) -> bytes:
    return msg.value if isinstance(msg, Vote | Proposal) else b""


def evidence_json(evidence: Equivocation) -> dict[str, Any]:
    """Equivocation as JSON: both messages in their signed wire encoding, ready to submit."""
    first, second = evidence.first, evidence.second
    sender = first.voter if isinstance(first, Vote) else first.proposer
    return {
        "kind": "vote" if isinstance(first, Vote) else "proposal",
        "validator": "0x" + sender.hex(),
        "height": first.height,
        "round": first.round,
        "step": first.step.name.lower() if isinstance(first, Vote) else "propose",
        "values": ["0x" + _value(first).hex(), "0x" + _value(second).hex()],
        "messages": ["0x" + encode_message(first).hex(), "0x" + encode_message(second).hex()],
    }
