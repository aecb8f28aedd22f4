"""A deterministic simulation of the agreement: simulated clock, network, crashes and liars.

Every node runs the real ``Agreement`` and ``Checker``; only time, the network and the
cryptography are simulated (a keyed hash stands in for ed25519 and the VRF, with the real
sortition walk on its output), so thousands of rounds run in seconds and every run is
reproducible from its seed. Blocks are abstract: a value commits to its height, round,
proposer and seed; validating one takes a configurable time.

``Simulation.run`` checks safety after every decision (no two honest nodes decide different
values at one height) and reports how far each node got, so tests can assert liveness once
the network has stabilized (after ``Network.gst``).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from eth_hash.auto import keccak

from powerverse.chain.genesis import ConsensusParams
from powerverse.consensus import sortition
from powerverse.consensus.agreement import (
    Agreement,
    Broadcast,
    BuildBlock,
    Decide,
    Equivocation,
    Me,
    ScheduleTimeout,
    Timeout,
    Timeouts,
    ValidateValue,
)
from powerverse.consensus.certificates import Certificate, verify_certificate
from powerverse.consensus.checks import Checker
from powerverse.consensus.committee import (
    Committee,
    StakeEntry,
    committee_role,
    next_seed,
    proposer_role,
    seed_alpha,
)
from powerverse.consensus.exceptions import ConsensusError, InvalidCertificate
from powerverse.consensus.messages import (
    NIL,
    Chain,
    Credential,
    Message,
    Proposal,
    Vote,
    encode,
)


class SafetyViolation(AssertionError):
    """Two honest nodes decided different values at one height."""


# ---------------------------------------------------------------- simulated cryptography


def _h(*parts: bytes) -> bytes:
    return hashlib.sha512(b"".join(parts)).digest()


@dataclass
class FakeCrypto:
    """Keyed hashes standing in for ed25519 and the VRF; unforgeable without the secret."""

    secrets: dict[bytes, bytes] = field(default_factory=dict)

    def verify_signature(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """Whether the signature is the keyed hash of ``message`` under ``public_key``."""
        secret = self.secrets.get(public_key)
        return secret is not None and _h(b"sig", secret, message) == signature

    def _vrf(self, public_key: bytes, alpha: bytes) -> tuple[bytes, bytes] | None:
        secret = self.secrets.get(public_key)
        if secret is None:
            return None
        beta = _h(b"vrf", secret, alpha)
        return beta, beta + _h(b"proof", secret, alpha)[:16]

    def verify_sort(
        self, public_key: bytes, credential: Credential, seed: bytes, tau: int, role: bytes,
        w: int, total: int,
    ) -> int:  # fmt: skip
        """j of a credential (0 when it is not this key's)."""
        got = self._vrf(public_key, seed + role)
        if got is None or (credential.vrf_hash, credential.proof) != got:
            return 0
        return sortition.select(credential.vrf_hash, tau, w, total)

    def priority(self, credential: Credential) -> bytes:
        """The real priority function on the credential's hash."""
        return sortition.priority(credential.vrf_hash, max(1, min(credential.weight, 64)))

    def vrf_output(self, public_key: bytes, proof: bytes, alpha: bytes) -> bytes | None:
        """The VRF output when ``proof`` is this key's proof of ``alpha``."""
        got = self._vrf(public_key, alpha)
        return got[0] if got is not None and got[1] == proof else None


@dataclass
class FakeSigner:
    """A simulated validator key."""

    public_key: bytes
    secret: bytes
    crypto: FakeCrypto

    def sign(self, message: bytes) -> bytes:
        """The keyed hash of ``message``."""
        return _h(b"sig", self.secret, message)

    def sortition(
        self, seed: bytes, tau: int, role: bytes, w: int, total: int
    ) -> Credential | None:
        """The simulated sortition credential, None when not selected."""
        got = self.crypto._vrf(self.public_key, seed + role)
        assert got is not None
        j = sortition.select(got[0], tau, w, total) if w > 0 else 0
        return Credential(got[0], got[1], j) if j > 0 else None

    def vrf_prove(self, alpha: bytes) -> bytes:
        """The simulated VRF proof."""
        got = self.crypto._vrf(self.public_key, alpha)
        assert got is not None
        return got[1]


# ---------------------------------------------------------------- network and faults


@dataclass(frozen=True)
class Network:
    """Delivery model: seeded uniform delays, drops before ``gst``, optional partitions."""

    min_delay: float = 0.002
    max_delay: float = 0.02
    drop_rate: float = 0.0
    gst: float = 0.0
    """Global stabilization time: afterwards nothing is dropped and no partition holds."""
    partitions: tuple[tuple[float, float, frozenset[int]], ...] = ()
    """(start, end, group): while active, no message crosses between group and the rest."""
    latency: Callable[[int, int, random.Random], float] | None = None
    """A custom one-way delay (the WAN model); overrides min/max_delay."""

    def delay(self, now: float, src: int, dst: int, rng: random.Random) -> float | None:
        """The delivery delay of one message, or None when it is lost."""
        if now < self.gst:
            if self.drop_rate and rng.random() < self.drop_rate:
                return None
            for start, end, group in self.partitions:
                if start <= now < end and ((src in group) != (dst in group)):
                    return None
        if self.latency is not None:
            return self.latency(src, dst, rng)
        return rng.uniform(self.min_delay, self.max_delay)


@dataclass(frozen=True)
class Crash:
    """Node ``node`` is down from ``at`` for ``duration`` seconds (its state survives, as a
    node's write-ahead log keeps it)."""

    node: int
    at: float
    duration: float


BYZANTINE_KINDS = ("equivocate", "silent", "invalid", "random")


@dataclass(frozen=True)
class SimConfig:
    """One simulation: who takes part, how the network behaves, which nodes lie."""

    nodes: int = 4
    byzantine: tuple[tuple[int, str], ...] = ()
    """(node index, behaviour) for each lying node; behaviours: BYZANTINE_KINDS."""
    stakes: tuple[int, ...] | None = None
    params: ConsensusParams = field(default_factory=ConsensusParams)
    timeouts: Timeouts = field(default_factory=lambda: Timeouts(0.05, 0.3, 0.3, 0.3, 0.1))
    network: Network = field(default_factory=Network)
    crashes: tuple[Crash, ...] = ()
    validation_time: float = 0.01
    build_time: float = 0.01
    resend_interval: float = 0.5
    verify_cost: float = 0.0
    """CPU seconds a node spends checking one message; a node checks one at a time."""
    relay: bool = True
    """Honest nodes pass on each message they accept once, as gossip does (costs N^2)."""
    seed: int = 0


# ---------------------------------------------------------------- nodes


@dataclass
class _Node:
    index: int
    signer: FakeSigner
    behaviour: str | None
    height: int = 1
    agreement: Agreement | None = None
    committee: Committee | None = None
    decided: dict[int, bytes] = field(default_factory=dict)
    certificates: dict[int, Certificate] = field(default_factory=dict)
    seeds: dict[int, bytes] = field(default_factory=dict)
    future: list[Message] = field(default_factory=list)
    sent: list[Message] = field(default_factory=list)  # own messages of the current height
    evidence: list[Equivocation] = field(default_factory=list)
    down_until: float = -1.0
    decided_at: dict[int, float] = field(default_factory=dict)
    relayed: set[bytes] = field(default_factory=set)
    vote_times: list[float] = field(default_factory=list)
    busy_until: float = 0.0


@dataclass(frozen=True)
class SimResult:
    """What a run produced."""

    heights: dict[int, int]
    """Per node, the number of heights decided."""
    decisions: dict[int, bytes]
    """The decided value of each height (equal across honest nodes, or the run raised)."""
    empty_heights: int
    rounds: dict[int, int]
    """Per height, the highest round any honest node reached."""
    evidence: int
    finality: list[float]
    """Per height and honest node: seconds from the height's start to the decision there."""
    messages: int
    time: float


class Simulation:
    """Runs ``SimConfig``; see the module docstring."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.crypto = FakeCrypto()
        self.chain = Chain(1337, b"\x5e" * 32)
        self.checker = Checker(self.chain, self.crypto)
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self.messages = 0
        stakes = config.stakes or tuple(1000 for _ in range(config.nodes))
        self.nodes: list[_Node] = []
        behaviours = dict(config.byzantine)
        entries = {}
        for i in range(config.nodes):
            secret = i.to_bytes(4, "big") + bytes(28)
            pk = hashlib.sha256(b"pk" + secret).digest()
            self.crypto.secrets[pk] = secret
            signer = FakeSigner(pk, secret, self.crypto)
            self.nodes.append(_Node(i, signer, behaviours.get(i)))
            entries[pk] = StakeEntry(pk, pk[:20], stakes[i])
        self.stakes = entries
        self.genesis_seed = keccak(b"sim-genesis" + config.seed.to_bytes(8, "big"))
        self.blocks: dict[bytes, tuple[int, bytes, bool]] = {}  # value -> (height, seed, valid)
        self.honest_decisions: dict[int, bytes] = {}
        self.height_start: dict[int, float] = {}
        self.finality: list[float] = []
        self.max_round: dict[int, int] = {}
        self._lowest: int | None = None

    # ---------------------------------------------------------------- event loop

    def _at(self, delay: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, fn))

    def run(self, *, heights: int, max_time: float = 3600.0) -> SimResult:
        """Run until every honest node decided ``heights`` heights or ``max_time`` passes."""
        for node in self.nodes:
            self._start_height(node, 1)
        for crash in self.config.crashes:
            self._at(crash.at, partial(self._crash, crash))
        while self._queue:
            t, _, fn = heapq.heappop(self._queue)
            if t > max_time:
                break
            self.now = t
            fn()
            if self._lowest_honest_height() >= heights:
                break
        return self._result()

    def _lowest_honest_height(self) -> int:
        """Heights decided by the slowest honest node (cheap: cached until a decision)."""
        if self._lowest is None:
            self._lowest = min(len(n.decided) for n in self._honest())
        return self._lowest

    def _honest(self) -> list[_Node]:
        return [n for n in self.nodes if n.behaviour is None]

    def _result(self) -> SimResult:
        empty = sum(1 for v in self.honest_decisions.values() if self.blocks[v][1] == b"empty")
        return SimResult(
            heights={n.index: len(n.decided) for n in self.nodes},
            decisions=dict(self.honest_decisions),
            empty_heights=empty,
            rounds=dict(self.max_round),
            evidence=sum(len(n.evidence) for n in self._honest()),
            finality=list(self.finality),
            messages=self.messages,
            time=self.now,
        )

    # ---------------------------------------------------------------- heights

    def _seed_before(self, node: _Node, height: int) -> bytes:
        return self.genesis_seed if height == 1 else node.seeds[height - 1]

    def _empty_value(self, height: int, prev_seed: bytes) -> bytes:
        value = keccak(b"empty" + height.to_bytes(8, "big") + prev_seed)
        self.blocks[value] = (height, b"empty", True)
        return value

    def _start_height(self, node: _Node, height: int) -> None:
        params = self.config.params
        node.height = height
        node.sent = []
        node.relayed = set()
        prev_seed = self._seed_before(node, height)
        committee = Committee(height, prev_seed, self.stakes, params)
        node.committee = committee
        total = committee.total_stake
        stake = self.stakes[node.signer.public_key].stake
        signer = node.signer
        committee_cred = signer.sortition(
            prev_seed, params.tau_committee, committee_role(height), stake, total
        )

        def proposer(round_: int) -> Credential | None:
            role = proposer_role(height, round_)
            return signer.sortition(prev_seed, params.tau_proposer, role, stake, total)

        me = Me(signer.public_key, signer.sign, committee_cred, proposer)
        node.agreement = Agreement(
            self.chain,
            committee,
            self._empty_value(height, prev_seed),
            self.config.timeouts,
            me,
            self.crypto.priority,
        )
        self.height_start.setdefault(height, self.now)
        self._at(self.config.resend_interval, lambda: self._resend(node, height))
        ready = [m for m in node.future if m.height == height]
        node.future = [m for m in node.future if m.height > height]
        self._apply(node, node.agreement.start())
        for msg in ready:
            if node.height != height:
                break  # decided meanwhile
            self._receive(node, msg, None)

    def _resend(self, node: _Node, height: int) -> None:
        """Gossip again what this node said at its current height (lost messages recover)."""
        if node.height != height or self._down(node):
            return
        for msg in node.sent:
            self._broadcast(node, msg)
        self._at(self.config.resend_interval, lambda: self._resend(node, height))

    def _decide(self, node: _Node, height: int, value: bytes, cert: Certificate | None) -> None:
        if height in node.decided:
            return
        block = self.blocks[value]
        prev = self._seed_before(node, height)
        node.decided[height] = value
        self._lowest = None
        if cert is not None:
            node.certificates[height] = cert
        if block[1] == b"empty":
            node.seeds[height] = next_seed(prev, height, None)
        else:
            node.seeds[height] = block[1]
        node.decided_at[height] = self.now
        if node.behaviour is None:
            agreed = self.honest_decisions.setdefault(height, value)
            if agreed != value:
                raise SafetyViolation(
                    f"height {height}: node {node.index} decided {value.hex()[:12]}, "
                    f"another honest node {agreed.hex()[:12]}"
                )
            self.finality.append(self.now - self.height_start[height])
            if node.agreement is not None and node.agreement.height == height:
                self.max_round[height] = max(self.max_round.get(height, 0), node.agreement.round)
        self._start_height(node, height + 1)

    # ---------------------------------------------------------------- actions

    def _apply(self, node: _Node, actions: list[Any]) -> None:
        agreement = node.agreement
        assert agreement is not None
        height = agreement.height
        for action in actions:
            if isinstance(action, Broadcast):
                outs = self._outgoing(node, action.message)
                if isinstance(action.message, Vote) and outs:
                    node.vote_times.append(self.now)
                node.sent.extend(outs)
                if len(outs) == 2:  # an equivocator: each half of the network sees one
                    self._broadcast(node, outs[0], lambda i: i % 2 == 0)
                    self._broadcast(node, outs[1], lambda i: i % 2 == 1)
                else:
                    for msg in outs:
                        self._broadcast(node, msg)
            elif isinstance(action, ScheduleTimeout):
                self._at(action.delay, partial(self._timeout, node, action))
            elif isinstance(action, BuildBlock):
                self._at(self.config.build_time, partial(self._built, node, action))
            elif isinstance(action, ValidateValue):
                self._at(
                    self.config.validation_time,
                    partial(self._validated, node, height, action.value),
                )
            elif isinstance(action, Decide):
                cert = Certificate(action.height, action.round, action.value, action.certificate)
                self._decide(node, action.height, action.value, cert)
                return
            elif isinstance(action, Equivocation):
                node.evidence.append(action)

    def _timeout(self, node: _Node, action: ScheduleTimeout) -> None:
        agreement = node.agreement
        if self._down(node) or agreement is None or agreement.height != action.height:
            return
        self._apply(node, agreement.on_timeout(action.kind, action.height, action.round))

    def _built(self, node: _Node, action: BuildBlock) -> None:
        agreement = node.agreement
        if self._down(node) or agreement is None or agreement.height != action.height:
            return
        prev = self._seed_before(node, action.height)
        proof = node.signer.vrf_prove(seed_alpha(prev, action.height))
        out = self.crypto.vrf_output(node.signer.public_key, proof, seed_alpha(prev, action.height))
        assert out is not None
        seed = next_seed(prev, action.height, out)
        value = keccak(
            b"block" + action.height.to_bytes(8, "big") + action.round.to_bytes(4, "big")
            + node.signer.public_key + seed
        )  # fmt: skip
        valid = node.behaviour != "invalid"
        self.blocks[value] = (action.height, seed, valid)
        self._apply(node, agreement.on_own_block(action.round, value, proof))

    def _validated(self, node: _Node, height: int, value: bytes) -> None:
        agreement = node.agreement
        if self._down(node) or agreement is None or agreement.height != height:
            return
        block = self.blocks.get(value)
        ok = block is not None and block[0] == height and block[2]
        self._apply(node, agreement.on_validated(value, ok))

    # ---------------------------------------------------------------- byzantine behaviour

    def _outgoing(self, node: _Node, msg: Message) -> list[Message]:
        """What a node actually sends for ``msg``: itself, or its behaviour's lies."""
        kind = node.behaviour
        if kind is None or kind == "invalid":
            return [msg]
        if kind == "silent":
            return []
        signer = node.signer
        if isinstance(msg, Vote):
            if kind == "equivocate":
                other = NIL if msg.value != NIL else keccak(b"other" + msg.value)
                self.blocks.setdefault(other, (msg.height, b"bogus", False))
                twin = replace(msg, value=other, signature=b"")
                twin = replace(twin, signature=signer.sign(twin.signing_bytes(self.chain)))
                return [msg, twin]
            choice = self.rng.choice([NIL, msg.value, *list(self.blocks)[-3:]])
            lie = replace(msg, value=choice, signature=b"")
            return [replace(lie, signature=signer.sign(lie.signing_bytes(self.chain)))]
        if isinstance(msg, Proposal) and kind == "equivocate":
            other = keccak(b"twin" + msg.value)
            self.blocks[other] = (msg.height, b"bogus", False)
            twin_p = replace(msg, value=other, signature=b"")
            return [msg, replace(twin_p, signature=signer.sign(twin_p.signing_bytes(self.chain)))]
        return [msg]

    # ---------------------------------------------------------------- delivery

    def _down(self, node: _Node) -> bool:
        return self.now < node.down_until

    def _crash(self, crash: Crash) -> None:
        node = self.nodes[crash.node]
        node.down_until = self.now + crash.duration
        self._at(crash.duration, lambda: self._recover(node))

    def _recover(self, node: _Node) -> None:
        """Back up: re-arm the current round's timeouts and gossip again."""
        agreement = node.agreement
        if agreement is not None:
            height, round_ = agreement.height, agreement.round
            for kind in (Timeout.PROPOSE, Timeout.PREVOTE, Timeout.PRECOMMIT):
                action = ScheduleTimeout(kind, height, round_, 0.0)
                delay = self.config.timeouts.of(kind, round_)
                self._at(delay, partial(self._timeout, node, action))
        self._resend(node, node.height)

    def _broadcast(self, src: _Node, msg: Message, to: Callable[[int], bool] | None = None) -> None:
        for dst in self.nodes:
            if dst is src or (to is not None and not to(dst.index)):
                continue
            delay = self.config.network.delay(self.now, src.index, dst.index, self.rng)
            if delay is None:
                continue
            self.messages += 1
            self._at(delay, partial(self._arrive, dst, msg, src.index))

    def _arrive(self, node: _Node, msg: Message, src: int) -> None:
        """A message reaches a node; it is handled once the node's CPU is free."""
        cost = self.config.verify_cost
        if cost <= 0:
            self._receive(node, msg, src)
            return
        start = max(self.now, node.busy_until)
        node.busy_until = start + cost
        self._at(node.busy_until - self.now, partial(self._receive, node, msg, src))

    def _receive(self, node: _Node, msg: Message, src: int | None) -> None:
        if self._down(node):
            return
        if msg.height > node.height:
            if msg.height <= node.height + 5:
                node.future.append(msg)
            if src is not None:
                self._sync(node, self.nodes[src])
            return
        agreement, committee = node.agreement, node.committee
        if msg.height < node.height or agreement is None or committee is None:
            return
        try:
            self.checker.check(msg, committee)
        except ConsensusError:
            return
        if self.config.relay and node.behaviour is None and src is not None:
            key = encode(msg)
            if key not in node.relayed:
                node.relayed.add(key)
                self._broadcast(node, msg, lambda i: i != src)
        if isinstance(msg, Vote):
            actions = agreement.on_vote(msg)
        elif isinstance(msg, Proposal):
            actions = agreement.on_proposal(msg)
        else:
            actions = agreement.on_priority(msg)
        self._apply(node, actions)

    def _sync(self, node: _Node, peer: _Node) -> None:
        """Ask a peer for the certificates of missed heights (a round trip on the network)."""
        there = self.config.network.delay(self.now, node.index, peer.index, self.rng)
        back = self.config.network.delay(self.now, peer.index, node.index, self.rng)
        if there is None or back is None:
            return
        certs = [peer.certificates[h] for h in sorted(peer.certificates) if h >= node.height]
        self._at(there + back, lambda: self._apply_certificates(node, certs))

    def _apply_certificates(self, node: _Node, certs: list[Certificate]) -> None:
        """Decide missed heights from certificates, checking each against our committee."""
        for cert in certs:
            if self._down(node) or cert.height != node.height:
                continue
            committee = node.committee
            assert committee is not None
            try:
                verify_certificate(cert, self.checker, committee)
            except InvalidCertificate:
                return
            if self.blocks.get(cert.value, (0, b"", False))[0] != cert.height:
                return
            self._decide(node, cert.height, cert.value, cert)
