"""The agreement of one height: Tendermint's locking rules over stake-weighted sortition votes.

A pure state machine: inputs are checked messages (``on_priority``, ``on_proposal``,
``on_vote``), block validation results (``on_validated``), the host's own block
(``on_own_block``) and timeouts (``on_timeout``); every input returns the actions the host
must carry out (broadcast, schedule a timeout, build or validate a block, decide, record
evidence). No clock, network or disk in here, so the same code runs on real sockets and in the
deterministic simulation.

Rounds follow Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus" (2018), with:

* proposers chosen by sortition (expected ``tau_proposer`` per round); they announce their
  priority first, and after a short window the best priority seen is the round's leader, whose
  block is the only one voters validate;
* a committee chosen by sortition once per height; a vote weighs its voter's ``j``, and
  thresholds are fractions of the expected committee weight (``committee.py``);
* the whitepaper's empty block: when no valid proposal arrives in time a voter that is not
  locked prevotes the height's deterministic empty block rather than nil, so a round without a
  usable proposer still finalizes a block.

Safety and liveness arguments: docs/consensus.md.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from powerverse.consensus.committee import Committee
from powerverse.consensus.messages import (
    NIL,
    Chain,
    Credential,
    Message,
    Priority,
    Proposal,
    Step,
    Vote,
)

# ---------------------------------------------------------------- actions


class Timeout(enum.Enum):
    """What a scheduled timeout ends."""

    PRIORITY = "priority"
    PROPOSE = "propose"
    PREVOTE = "prevote"
    PRECOMMIT = "precommit"


@dataclass(frozen=True)
class Broadcast:
    """Send a message to every peer (and treat it as received locally)."""

    message: Message


@dataclass(frozen=True)
class ScheduleTimeout:
    """Call ``on_timeout(kind, height, round)`` after ``delay`` seconds."""

    kind: Timeout
    height: int
    round: int
    delay: float


@dataclass(frozen=True)
class BuildBlock:
    """This node leads (height, round) with nothing to re-propose: build a block, then call
    ``on_own_block``."""

    height: int
    round: int


@dataclass(frozen=True)
class ValidateValue:
    """Validate (execute) the block with this hash, fetching it if needed; then call
    ``on_validated``."""

    value: bytes


@dataclass(frozen=True)
class Decide:
    """The height is decided: commit ``value`` with its certificate (the quorum of precommits)."""

    height: int
    round: int
    value: bytes
    certificate: tuple[Vote, ...]


@dataclass(frozen=True)
class Equivocation:
    """Two signed messages from one sender for one slot: evidence for the chain."""

    first: Message
    second: Message


Action = Broadcast | ScheduleTimeout | BuildBlock | ValidateValue | Decide | Equivocation


@dataclass(frozen=True)
class Timeouts:
    """Step timeouts in seconds; each grows by ``increase`` per round so rounds catch up."""

    priority_window: float = 0.2
    propose: float = 1.0
    prevote: float = 1.0
    precommit: float = 1.0
    increase: float = 0.5

    def of(self, kind: Timeout, round_: int) -> float:
        """The timeout of ``kind`` in ``round_``."""
        base = {
            Timeout.PRIORITY: self.priority_window,
            Timeout.PROPOSE: self.propose,
            Timeout.PREVOTE: self.prevote,
            Timeout.PRECOMMIT: self.precommit,
        }[kind]
        return base + (self.increase * round_ if kind is not Timeout.PRIORITY else 0.0)


class _Step(enum.IntEnum):
    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass
class Me:
    """This node's part in the height: its key and sortition credentials (None: not chosen)."""

    public_key: bytes
    sign: Callable[[bytes], bytes]
    committee: Credential | None
    proposer: Callable[[int], Credential | None]
    """The proposer credential of a round (computed when the round starts)."""


MAX_VALUES_PER_VOTER = 4
"""Distinct values counted from one voter in one (round, step); more is only evidence."""


@dataclass
class _Tally:
    """Votes of one (round, step).

    A voter's weight counts once in ``total`` but towards every value it voted for: an
    equivocator then cannot hide a quorum from a node that happened to receive its other
    vote first (Tendermint's liveness needs every honest node to see the same quorums).
    Counting both is safe: two quorums for different values would overlap in more than 1/3
    of the weight, all of it equivocating, and that exceeds the Byzantine bound.
    """

    by_voter: dict[bytes, dict[bytes, Vote]] = field(default_factory=dict)
    weight: dict[bytes, int] = field(default_factory=dict)
    total: int = 0

    def add(self, vote: Vote, weight: int) -> Vote | None:
        """Count ``vote``; return an earlier vote of the voter for another value, if any."""
        values = self.by_voter.get(vote.voter)
        if values is None:
            self.by_voter[vote.voter] = {vote.value: vote}
            self.total += weight
        elif vote.value in values or len(values) >= MAX_VALUES_PER_VOTER:
            return None
        else:
            values[vote.value] = vote
        self.weight[vote.value] = self.weight.get(vote.value, 0) + weight
        if values:
            return next(iter(values.values()))
        return None

    def for_value(self, value: bytes) -> tuple[Vote, ...]:
        """The votes for ``value``."""
        return tuple(vs[value] for vs in self.by_voter.values() if value in vs)


class Agreement:
    """The agreement of one height; see the module docstring."""

    def __init__(
        self,
        chain: Chain,
        committee: Committee,
        empty_value: bytes,
        timeouts: Timeouts,
        me: Me | None,
        priority_of: Callable[[Credential], bytes],
    ) -> None:
        self.chain = chain
        self.committee = committee
        self.height = committee.height
        self.empty_value = empty_value
        self.timeouts = timeouts
        self.me = me
        self._priority_of = priority_of
        self.round = -1
        self.step = _Step.PROPOSE
        self.locked_value: bytes | None = None
        self.locked_round = -1
        self.valid_value: bytes | None = None
        self.valid_round = -1
        self.decision: Decide | None = None
        self._best: dict[int, tuple[bytes, bytes]] = {}  # round -> (priority, proposer)
        self._announced: dict[int, set[bytes]] = {}  # round -> proposers whose priority is in
        self._leader: dict[int, bytes | None] = {}  # set when the priority window closes
        self._proposals: dict[tuple[int, bytes], Proposal] = {}  # (round, proposer)
        self._by_value: dict[bytes, Proposal] = {}  # first proposal seen for each value
        self._validity: dict[bytes, bool | None] = {empty_value: True}
        self._tallies: dict[tuple[int, Step], _Tally] = {}
        self._round_weight: dict[int, dict[bytes, int]] = {}
        self._once: set[tuple[str, int]] = set()
        self._out: list[Action] = []

    # ---------------------------------------------------------------- inputs

    def start(self) -> list[Action]:
        """Begin round 0."""
        self._start_round(0)
        return self._flush()

    def restore(
        self, round_: int, locked: tuple[bytes | None, int], valid: tuple[bytes | None, int]
    ) -> list[Action]:
        """Resume after a restart: the saved lock and valid value, at the saved round."""
        self.locked_value, self.locked_round = locked
        self.valid_value, self.valid_round = valid
        self._start_round(round_)
        return self._flush()

    def on_priority(self, msg: Priority) -> list[Action]:
        """A checked priority announcement of this height."""
        if msg.height == self.height and self.decision is None:
            self._note_priority(msg.round, msg.proposer, msg.credential)
            self._run_rules()
        return self._flush()

    def on_proposal(self, msg: Proposal) -> list[Action]:
        """A checked proposal of this height (its block travels beside it)."""
        if msg.height != self.height:
            return []
        key = (msg.round, msg.proposer)
        seen = self._proposals.get(key)
        if seen is not None:
            if seen.value != msg.value:
                self._out.append(Equivocation(seen, msg))
            return self._flush()
        self._proposals[key] = msg
        self._by_value.setdefault(msg.value, msg)
        self._note_priority(msg.round, msg.proposer, msg.credential)
        self._run_rules()
        return self._flush()

    def on_vote(self, vote: Vote) -> list[Action]:
        """A checked vote of this height."""
        if vote.height != self.height:
            return []
        weight = vote.credential.weight  # checked against the committee role by the caller
        if weight <= 0:
            return []
        tally = self._tallies.setdefault((vote.round, vote.step), _Tally())
        before = tally.weight.get(vote.value, 0)
        earlier = tally.add(vote, weight)
        if earlier is not None:
            self._out.append(Equivocation(earlier, vote))
        if tally.weight.get(vote.value, 0) == before:
            return self._flush()  # nothing new
        self._round_weight.setdefault(vote.round, {})[vote.voter] = weight
        self._run_rules()
        return self._flush()

    def on_validated(self, value: bytes, ok: bool) -> list[Action]:
        """The result of a ValidateValue."""
        if value != self.empty_value:
            self._validity[value] = ok
        self._run_rules()
        return self._flush()

    def on_own_block(self, round_: int, value: bytes, seed_proof: bytes) -> list[Action]:
        """The block this node built for BuildBlock(round_) is ready (and valid)."""
        me = self.me
        if me is None or round_ != self.round or self.decision is not None:
            return []
        credential = me.proposer(round_)
        if credential is None:
            return []
        self._validity[value] = True
        self._propose(round_, value, -1, seed_proof, credential)
        self._run_rules()
        return self._flush()

    def on_timeout(self, kind: Timeout, height: int, round_: int) -> list[Action]:
        """A timeout scheduled earlier fired."""
        if height != self.height or round_ != self.round or self.decision is not None:
            return []
        if kind is Timeout.PRIORITY:
            self._close_priority_window(round_)
        elif kind is Timeout.PROPOSE and self.step is _Step.PROPOSE:
            if self._validating_leader_block(round_):
                pass  # its result decides the prevote
            elif self._leader.get(round_) is not None and self._first("propose-grace", round_):
                # The leader announced itself but its block is late (a big block takes a
                # while to build): give it one more propose period before the empty block.
                self._schedule(Timeout.PROPOSE, round_)
            else:
                self._prevote_fallback()
        elif kind is Timeout.PREVOTE and self.step is _Step.PREVOTE:
            self._vote(Step.PRECOMMIT, NIL)
            self._enter(_Step.PRECOMMIT)
        elif kind is Timeout.PRECOMMIT:
            self._start_round(round_ + 1)
        self._run_rules()
        return self._flush()

    # ---------------------------------------------------------------- queries

    def proposal_for(self, value: bytes) -> Proposal | None:
        """The first proposal seen carrying ``value`` (its seed proof travels with the block)."""
        return self._by_value.get(value)

    def leader(self, round_: int) -> bytes | None:
        """The leader of a round once its priority window closed (None: no proposer seen)."""
        return self._leader.get(round_)

    def votes(self, round_: int, step: Step) -> tuple[Vote, ...]:
        """The (first) votes received for a round and step."""
        tally = self._tallies.get((round_, step))
        return tuple(v for vs in tally.by_voter.values() for v in vs.values()) if tally else ()

    # ---------------------------------------------------------------- round mechanics

    def _flush(self) -> list[Action]:
        out, self._out = self._out, []
        return out

    def _first(self, what: str, round_: int) -> bool:
        key = (what, round_)
        if key in self._once:
            return False
        self._once.add(key)
        return True

    def _schedule(self, kind: Timeout, round_: int) -> None:
        delay = self.timeouts.of(kind, round_)
        self._out.append(ScheduleTimeout(kind, self.height, round_, delay))

    def _start_round(self, round_: int) -> None:
        self.round = round_
        self.step = _Step.PROPOSE
        me = self.me
        if me is not None:
            credential = me.proposer(round_)
            if credential is not None:
                msg = Priority(self.height, round_, me.public_key, credential)
                msg = Priority(
                    msg.height,
                    msg.round,
                    msg.proposer,
                    credential,
                    me.sign(msg.signing_bytes(self.chain)),
                )
                self._note_priority(round_, me.public_key, credential)
                self._out.append(Broadcast(msg))
        self._schedule(Timeout.PRIORITY, round_)
        self._schedule(Timeout.PROPOSE, round_)

    def _note_priority(self, round_: int, proposer: bytes, credential: Credential) -> None:
        if round_ in self._leader:
            return  # the window has closed: later announcements do not change the leader
        announced = self._announced.setdefault(round_, set())
        announced.add(proposer)
        prio = self._priority_of(credential)
        best = self._best.get(round_)
        if best is None or (prio, proposer) < best:
            self._best[round_] = (prio, proposer)
        if round_ == self.round and self._everyone_announced(announced):
            self._close_priority_window(round_)

    def _everyone_announced(self, announced: set[bytes]) -> bool:
        """Every validator of the height has announced its priority: no later announcement
        can change the leader, so the window may close at once rather than at its timeout."""
        stakes = self.committee.stakes
        return all(key in announced for key, entry in stakes.items() if entry.stake > 0)

    def _close_priority_window(self, round_: int) -> None:
        if round_ in self._leader:
            return
        best = self._best.get(round_)
        leader = best[1] if best else None
        self._leader[round_] = leader
        me = self.me
        if me is None or leader != me.public_key:
            return
        if self.valid_value is not None and self.valid_value != self.empty_value:
            first = self._by_value.get(self.valid_value)
            credential = me.proposer(round_)
            if first is not None and credential is not None:
                self._propose(
                    round_, self.valid_value, self.valid_round, first.seed_proof, credential
                )
                return
        self._out.append(BuildBlock(self.height, round_))

    def _propose(
        self, round_: int, value: bytes, valid_round: int, seed_proof: bytes, cred: Credential
    ) -> None:
        me = self.me
        assert me is not None
        unsigned = Proposal(
            self.height, round_, value, valid_round, me.public_key, cred, seed_proof
        )
        signed = Proposal(
            unsigned.height,
            unsigned.round,
            unsigned.value,
            unsigned.valid_round,
            unsigned.proposer,
            cred,
            seed_proof,
            me.sign(unsigned.signing_bytes(self.chain)),
        )
        self._proposals[(round_, me.public_key)] = signed
        self._by_value.setdefault(value, signed)
        self._out.append(Broadcast(signed))

    def _vote(self, step: Step, value: bytes) -> None:
        me = self.me
        if me is None or me.committee is None:
            return
        unsigned = Vote(self.height, self.round, step, value, me.public_key, me.committee)
        vote = Vote(
            unsigned.height,
            unsigned.round,
            step,
            value,
            me.public_key,
            me.committee,
            me.sign(unsigned.signing_bytes(self.chain)),
        )
        self._out.append(Broadcast(vote))
        # Count our own vote now, as any other.
        weight = me.committee.weight
        if weight > 0:
            self._tallies.setdefault((vote.round, step), _Tally()).add(vote, weight)
            self._round_weight.setdefault(vote.round, {})[me.public_key] = weight

    def _validating_leader_block(self, round_: int) -> bool:
        """The leader's block arrived in time and is being executed: wait for the result.

        Execution is bounded by the block gas limit, so this cannot stall a round forever;
        prevoting the empty block while a valid block is half-executed would waste the round.
        """
        leader = self._leader.get(round_)
        proposal = self._proposals.get((round_, leader)) if leader is not None else None
        return proposal is not None and self._validity.get(proposal.value, False) is None

    def _enter(self, step: _Step) -> None:
        """Move to a voting step and arm its timeout.

        Tendermint arms these only once 2/3 of the votes of a step arrived; arming them on
        entry as well keeps a node that is alone in its round (it started late, or was cut
        off) moving to the next round instead of waiting forever. Changing rounds never
        touches the lock, so this costs no safety.
        """
        self.step = step
        kind = Timeout.PREVOTE if step is _Step.PREVOTE else Timeout.PRECOMMIT
        if self._first(f"{kind.value}-timeout", self.round):
            self._schedule(kind, self.round)

    def _unlocked_for(self, value: bytes) -> bool:
        return self.locked_round == -1 or self.locked_value == value

    def _prevote_fallback(self) -> None:
        """No usable proposal: the empty block, unless locked on something else (then nil)."""
        self._vote(Step.PREVOTE, self.empty_value if self._unlocked_for(self.empty_value) else NIL)
        self._enter(_Step.PREVOTE)

    def _validity_of(self, value: bytes) -> bool | None:
        """True/False when known; None (and a ValidateValue request, once) when not yet."""
        if value in self._validity:
            return self._validity[value]
        self._validity[value] = None
        self._out.append(ValidateValue(value))
        return None

    def _polka(self, round_: int, value: bytes) -> bool:
        tally = self._tallies.get((round_, Step.PREVOTE))
        return tally is not None and self.committee.is_quorum(tally.weight.get(value, 0))

    # ---------------------------------------------------------------- the rules

    def _run_rules(self) -> None:
        """Apply every enabled rule until none is (rules only move forward, so this ends)."""
        while self.decision is None and self._apply_one():
            pass

    def _apply_one(self) -> bool:
        r = self.round
        # Decide: a quorum of precommits for a value in any round (paper line 49).
        for (rnd, step), votes in list(self._tallies.items()):
            if step is not Step.PRECOMMIT:
                continue
            for value, weight in votes.weight.items():
                quorum = value != NIL and self.committee.is_quorum(weight)
                if quorum and self._validity_of(value):
                    cert = votes.for_value(value)
                    self.decision = Decide(self.height, rnd, value, cert)
                    self._out.append(self.decision)
                    return True
        # Skip ahead: more than 1/3 of the weight is voting in a later round (line 55).
        for rnd in sorted(self._round_weight):
            if rnd > r and self.committee.is_skip(sum(self._round_weight[rnd].values())):
                self._start_round(rnd)
                return True
        if self.step is _Step.PROPOSE and r in self._leader and self._propose_step_rules(r):
            return True
        tally = self._tallies.get((r, Step.PREVOTE))
        if tally is not None and self.step >= _Step.PREVOTE:
            # A quorum of prevotes of any kind: start the prevote timeout (line 34).
            if (
                self.step is _Step.PREVOTE
                and self.committee.is_quorum(tally.total)
                and self._first("prevote-timeout", r)
            ):
                self._schedule(Timeout.PREVOTE, r)
                return True
            # A polka for a value we hold and know valid: lock and precommit (line 36).
            for value, weight in list(tally.weight.items()):
                if value == NIL or not self.committee.is_quorum(weight):
                    continue
                if self._validity_of(value) and self._first("polka", r):
                    if self.step is _Step.PREVOTE:
                        self.locked_value, self.locked_round = value, r
                        self._vote(Step.PRECOMMIT, value)
                        self._enter(_Step.PRECOMMIT)
                    self.valid_value, self.valid_round = value, r
                    return True
            # A polka for nil: precommit nil (line 44).
            if self.step is _Step.PREVOTE and self.committee.is_quorum(tally.weight.get(NIL, 0)):
                self._vote(Step.PRECOMMIT, NIL)
                self._enter(_Step.PRECOMMIT)
                return True
        ptally = self._tallies.get((r, Step.PRECOMMIT))
        if (
            ptally is not None
            and self.committee.is_quorum(ptally.total)
            and self._first("precommit-timeout", r)
        ):
            self._schedule(Timeout.PRECOMMIT, r)  # line 47
            return True
        return False

    def _propose_step_rules(self, r: int) -> bool:
        """Prevote on the leader's proposal (lines 22 and 28)."""
        leader = self._leader[r]
        if leader is None:
            self._prevote_fallback()  # nobody announced a priority in time
            return True
        proposal = self._proposals.get((r, leader))
        if proposal is None:
            return False
        valid = self._validity_of(proposal.value)
        if valid is None:
            return False
        vr = proposal.valid_round
        if vr == -1:
            if valid and self._unlocked_for(proposal.value):
                choice = proposal.value
            else:
                choice = self.empty_value if self._unlocked_for(self.empty_value) else NIL
        elif vr < r and self._polka(vr, proposal.value):
            if valid and (self.locked_round <= vr or self.locked_value == proposal.value):
                choice = proposal.value
            else:
                choice = NIL
        else:
            return False  # wait for the polka it claims, or the propose timeout
        self._vote(Step.PREVOTE, choice)
        self._enter(_Step.PREVOTE)
        return True


def all_messages(actions: Iterable[Action]) -> list[Message]:
    """The messages among ``actions`` (for tests and the simulation)."""
    return [a.message for a in actions if isinstance(a, Broadcast)]
