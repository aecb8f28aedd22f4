"""Hypothesis stateful test of the Market's money on a real dev node (real EVM, real RPC).

Random sequences of rent, confirm, decline, refund, settle, extend, heartbeat, fault report,
dispute, ruling (through the real Arbitration contract), withdraw and time jumps. Checked after
every step: the contract's balance equals escrows plus pull balances; each account's pull
balance equals what the closed rentals credited it (a model kept from events); each closed
rental paid out exactly what was paid in. A withdrawal pays exactly what is owed, once. When
time is clearly past a deadline or an end, refunds and settlements must go through (no rental
is stuck); at the end of every run all open rentals are driven to an end and everyone
withdraws, leaving the contract empty.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from powerverse.market.exceptions import ContractError
from powerverse.market.rentals import BPS, DAY, Rental, Rentals, RentalState
from tests.market.market_helpers import (
    FOUNDATION,
    PRICE,
    ClientFactory,
    head_time,
    listed_resource,
    warp_to,
)
from tests.rpc.conftest import ThreadedNode

PROVIDERS = (1, 2)
CONSUMERS = (3, 4)
KEEPER = 5
PARTIES = (FOUNDATION, *PROVIDERS, *CONSUMERS, KEEPER)
MAX_DAYS = 3
TOKENS_EACH = 2
MARGIN = 30  # seconds of slack around deadlines (blocks may be mined a little after the head)
OPEN = (RentalState.PENDING, RentalState.ACTIVE, RentalState.DISPUTED)
MARKET_ERRORS = {
    "WrongPayment",
    "ResourceBusy",
    "PeriodOutOfRange",
    "OutsideAvailability",
    "RentalNotInState",
    "RentalNotOpen",
    "ConfirmDeadlinePassed",
    "ConfirmDeadlineNotReached",
    "RentalNotExpired",
    "RentalExpired",
    "HeartbeatNotMissed",
    "NothingOwed",
    "NotConsumer",
    "NotProvider",
}

T = TypeVar("T")


@dataclass
class Tracked:
    """What the test knows about one rental it made."""

    rental_id: int
    token: int
    consumer: int
    provider: int
    paid: int
    dispute_id: int = 0
    closed: tuple[int, int, int] | None = None  # to consumer, to provider, fee


@dataclass
class Env:
    """The node and clients shared by every run."""

    node: ThreadedNode
    client: ClientFactory
    withdrawn: dict[int, int] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)


class MarketMachine(RuleBasedStateMachine):
    """Drives the real Market; the model is just who is owed what and which rentals are open."""

    env: Env

    def __init__(self) -> None:
        super().__init__()
        self.client = self.env.client
        self.market = Rentals(self.client(KEEPER))
        self.tokens: list[int] = []
        self.token_provider: dict[int, int] = {}
        self.rentals: list[Tracked] = []
        self.owed = {p: self.market.owed(self.client(p).address) for p in PARTIES}
        self.states: dict[int, RentalState] = {}  # refreshed from the chain after every step

    def has(self, *states: RentalState) -> bool:
        """True when some open rental is in one of `states` (as of the last step)."""
        return any(s in states for s in self.states.values())

    # ------------------------------------------------------------------ helpers

    def now(self) -> int:
        return head_time(self.client(KEEPER))

    def state(self, t: Tracked) -> Rental:
        rental = self.market.rental(t.rental_id)
        self.states[t.rental_id] = rental.state
        return rental

    def attempt(self, action: Callable[[], T]) -> tuple[T | None, ContractError | None]:
        """Run `action`; a refusal must be one of the Market's named errors."""
        try:
            result = action()
        except ContractError as err:
            assert err.name in MARKET_ERRORS, f"unexpected refusal {err}"
            self.env.outcomes[err.name] += 1
            return None, err
        self.env.outcomes[type(result).__name__] += 1
        return result, None

    def busy(self, token: int) -> bool:
        return any(t.token == token and t.closed is None for t in self.rentals)

    def credit_closed(self, t: Tracked, to_consumer: int, to_provider: int, fee: int) -> None:
        assert t.closed is None, f"rental {t.rental_id} closed twice"
        assert to_consumer + to_provider + fee == t.paid, "payout differs from what was paid in"
        t.closed = (to_consumer, to_provider, fee)
        self.owed[t.consumer] += to_consumer
        self.owed[t.provider] += to_provider
        self.owed[FOUNDATION] += fee  # the dev treasury

    def pick(self, index: int, states: tuple[RentalState, ...] = OPEN) -> Tracked | None:
        candidates = [t for t in self.rentals if t.closed is None and self.state(t).state in states]
        return candidates[index % len(candidates)] if candidates else None

    # ------------------------------------------------------------------ setup

    @initialize()
    def list_resources(self) -> None:
        for provider in PROVIDERS * TOKENS_EACH:
            token = listed_resource(
                self.client, provider, min_days=1, max_days=MAX_DAYS, window_days=365
            )
            self.tokens.append(token)
            self.token_provider[token] = provider

    # ------------------------------------------------------------------ rules

    @rule(
        token_index=st.integers(0, len(PROVIDERS) * TOKENS_EACH - 1),
        consumer=st.sampled_from(CONSUMERS),
        days=st.integers(1, MAX_DAYS),
        overpay=st.sampled_from([0] * 8 + [1, -1]),
    )
    def rent(self, token_index: int, consumer: int, days: int, overpay: int) -> None:
        token = self.tokens[token_index]
        amount = PRICE * days + overpay
        opened, err = self.attempt(
            lambda: Rentals(self.client(consumer)).rent(token, days, value=amount)
        )
        if overpay:
            assert err is not None and err.name == "WrongPayment"
        elif self.busy(token):
            assert err is not None and err.name == "ResourceBusy"
        else:
            assert opened is not None, f"a free listed resource could not be rented: {err}"
            provider = self.token_provider[token]
            self.rentals.append(Tracked(opened.rental_id, token, consumer, provider, amount))

    @precondition(lambda self: self.has(RentalState.PENDING))
    @rule(index=st.integers(0, 100))
    def confirm(self, index: int) -> None:
        t = self.pick(index, (RentalState.PENDING,))
        if t is None:
            return
        deadline = self.state(t).confirm_deadline
        now = self.now()
        _, err = self.attempt(lambda: Rentals(self.client(t.provider)).confirm(t.rental_id))
        if now + MARGIN < deadline:
            assert err is None, f"confirm before the deadline refused: {err}"
        elif now >= deadline:
            assert err is not None and err.name == "ConfirmDeadlinePassed"

    @precondition(lambda self: self.has(RentalState.PENDING))
    @rule(index=st.integers(0, 100))
    def decline(self, index: int) -> None:
        t = self.pick(index, (RentalState.PENDING,))
        if t is None:
            return
        closed = Rentals(self.client(t.provider)).decline(t.rental_id)
        assert closed.to_consumer == t.paid
        self.credit_closed(t, closed.to_consumer, closed.to_provider, closed.fee)

    @precondition(lambda self: self.has(RentalState.PENDING))
    @rule(index=st.integers(0, 100))
    def claim_refund(self, index: int) -> None:
        t = self.pick(index, (RentalState.PENDING,))
        if t is None:
            return
        deadline = self.state(t).confirm_deadline
        now = self.now()
        closed, err = self.attempt(lambda: self.market.claim_refund(t.rental_id))
        if now >= deadline:
            assert closed is not None, f"refund past the deadline refused: {err}"
        elif now + MARGIN < deadline:
            assert err is not None and err.name == "ConfirmDeadlineNotReached"
        if closed is not None:
            assert (closed.to_consumer, closed.to_provider, closed.fee) == (t.paid, 0, 0)
            self.credit_closed(t, closed.to_consumer, closed.to_provider, closed.fee)

    @precondition(lambda self: self.has(RentalState.ACTIVE))
    @rule(index=st.integers(0, 100))
    def settle(self, index: int) -> None:
        t = self.pick(index, (RentalState.ACTIVE,))
        if t is None:
            return
        end = self.state(t).end
        now = self.now()
        closed, err = self.attempt(lambda: self.market.settle(t.rental_id))
        if now >= end:
            assert closed is not None, f"settlement after the end refused: {err}"
        elif now + MARGIN < end:
            assert err is not None and err.name == "RentalNotExpired"
        if closed is not None:
            fee = t.paid * self.state(t).fee_bps // BPS
            assert (closed.to_consumer, closed.to_provider, closed.fee) == (0, t.paid - fee, fee)
            self.credit_closed(t, closed.to_consumer, closed.to_provider, closed.fee)

    @precondition(lambda self: self.has(RentalState.ACTIVE))
    @rule(index=st.integers(0, 100), days=st.integers(1, 2))
    def extend(self, index: int, days: int) -> None:
        t = self.pick(index, (RentalState.ACTIVE,))
        if t is None:
            return
        r = self.state(t)
        now = self.now()
        value = r.price_per_day * days
        ext, err = self.attempt(
            lambda: Rentals(self.client(t.consumer)).extend(t.rental_id, days, value=value)
        )
        if r.period_days + days > MAX_DAYS:
            assert err is not None and err.name in {"PeriodOutOfRange", "RentalExpired"}
        elif now + MARGIN < r.end:
            assert ext is not None, f"extension before the end refused: {err}"
        if ext is not None:
            t.paid += value

    @precondition(lambda self: self.has(RentalState.ACTIVE))
    @rule(index=st.integers(0, 100))
    def heartbeat(self, index: int) -> None:
        t = self.pick(index, (RentalState.ACTIVE,))
        if t is None:
            return
        end = self.state(t).end
        now = self.now()
        _, err = self.attempt(lambda: Rentals(self.client(t.provider)).heartbeat(t.rental_id))
        if now + MARGIN < end:
            assert err is None, f"heartbeat refused: {err}"

    @precondition(lambda self: self.has(RentalState.ACTIVE))
    @rule(index=st.integers(0, 100))
    def report_missed_heartbeat(self, index: int) -> None:
        t = self.pick(index, (RentalState.ACTIVE,))
        if t is None:
            return
        r = self.state(t)
        cfg_fault = r.last_heartbeat + 300 + 600
        now = self.now()
        closed, err = self.attempt(lambda: self.market.report_missed_heartbeat(t.rental_id))
        if now > cfg_fault and now + MARGIN < r.end:
            assert closed is not None, f"fault report refused: {err}"
        elif now + MARGIN < cfg_fault:
            assert err is not None and err.name == "HeartbeatNotMissed"
        if closed is not None:
            refund = t.paid * (r.end - r.last_heartbeat) // (r.end - r.start)
            assert closed.to_consumer == refund
            self.credit_closed(t, closed.to_consumer, closed.to_provider, closed.fee)

    @precondition(lambda self: self.has(RentalState.PENDING, RentalState.ACTIVE))
    @rule(index=st.integers(0, 100), by_consumer=st.booleans())
    def open_dispute(self, index: int, by_consumer: bool) -> None:
        t = self.pick(index, (RentalState.PENDING, RentalState.ACTIVE))
        if t is None:
            return
        who = t.consumer if by_consumer else t.provider
        opened = Rentals(self.client(who)).open_dispute(t.rental_id, "hypothesis says so")
        self.env.outcomes["DisputeOpened"] += 1
        assert opened.handed_to_arbitration
        t.dispute_id = opened.dispute_id

    @precondition(lambda self: self.has(RentalState.DISPUTED))
    @rule(index=st.integers(0, 100), share=st.sampled_from([0, 1, 2, 3]))
    def rule_dispute(self, index: int, share: int) -> None:
        t = self.pick(index, (RentalState.DISPUTED,))
        if t is None:
            return
        self.arbitrate(t, t.paid * share // 3)

    @precondition(lambda self: any(self.owed.values()))
    @rule(party=st.sampled_from(PARTIES))
    def withdraw(self, party: int) -> None:
        self.withdraw_all(party)

    @rule(seconds=st.sampled_from([40, 700, 1_000, 3_700, DAY, 2 * DAY]))
    def time_passes(self, seconds: int) -> None:
        warp_to(self.env.node, self.client(KEEPER), self.now() + seconds)

    # ------------------------------------------------------------------ shared actions

    def arbitrate(self, t: Tracked, consumer_share: int) -> None:
        foundation = self.client(FOUNDATION)
        arbitration = foundation.contract("Arbitration")
        receipt = foundation.transact(
            arbitration.functions.rule(t.dispute_id, consumer_share, "hypothesis ruling")
        )
        (closed,) = foundation.events(self.market.contract, "RentalClosed", receipt)
        self.env.outcomes["Ruled"] += 1
        assert closed["toConsumer"] == consumer_share
        self.credit_closed(t, closed["toConsumer"], closed["toProvider"], closed["fee"])

    def withdraw_all(self, party: int) -> None:
        account = self.client(party)
        expected = self.owed[party]
        before = account.balance()
        got, err = self.attempt(lambda: Rentals(account).withdraw())
        if expected == 0:
            assert err is not None and err.name == "NothingOwed"
            return
        assert got is not None, f"withdrawal of {expected} refused: {err}"
        assert got.amount == expected
        receipt = account.w3.eth.get_transaction_receipt(got.tx.tx_hash)  # type: ignore[arg-type]
        gas_cost = got.tx.gas_used * int(receipt["effectiveGasPrice"])
        assert account.balance() == before + expected - gas_cost
        self.owed[party] = 0
        self.env.withdrawn[party] = self.env.withdrawn.get(party, 0) + expected
        _, again = self.attempt(lambda: Rentals(account).withdraw())
        assert again is not None and again.name == "NothingOwed"

    # ------------------------------------------------------------------ invariants

    @invariant()
    def balance_is_escrow_plus_owed(self) -> None:
        totals = self.market.totals()
        assert totals.balanced, totals

    @invariant()
    def owed_matches_the_model(self) -> None:
        for party in PARTIES:
            assert self.market.owed(self.client(party).address) == self.owed[party], party

    @invariant()
    def chain_states_match(self) -> None:
        for t in self.rentals:
            state = self.state(t).state
            assert (t.closed is None) == (state in OPEN), (t, state)

    # ------------------------------------------------------------------ end of a run

    def teardown(self) -> None:
        """Every open rental reaches an end; everyone withdraws; nothing is left inside."""
        for t in self.rentals:
            if t.closed is None and self.state(t).state is RentalState.DISPUTED:
                self.arbitrate(t, 0)
        latest = max(
            [max(self.state(t).end, self.state(t).confirm_deadline) for t in self.rentals],
            default=0,
        )
        warp_to(self.env.node, self.client(KEEPER), latest + 1)
        for t in self.rentals:
            if t.closed is not None:
                continue
            state = self.state(t).state
            closed = (
                self.market.claim_refund(t.rental_id)
                if state is RentalState.PENDING
                else self.market.settle(t.rental_id)
            )
            self.credit_closed(t, closed.to_consumer, closed.to_provider, closed.fee)
        for t in self.rentals:
            assert self.state(t).state.ended and t.closed is not None
        for party in PARTIES:
            if self.owed[party]:
                self.withdraw_all(party)
        totals = self.market.totals()
        assert (totals.escrowed, totals.owed, totals.balance) == (0, 0, 0), totals
        for token in self.tokens:
            Rentals(self.client(self.token_provider[token])).unlist(token)


@pytest.mark.slow
def test_market_money_is_never_lost_or_stuck(dev_node: ThreadedNode, client: ClientFactory) -> None:
    MarketMachine.env = Env(dev_node, client)
    run_state_machine_as_test(
        MarketMachine,
        settings=settings(
            max_examples=5,
            stateful_step_count=25,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        ),
    )
    outcomes = MarketMachine.env.outcomes
    print(dict(outcomes))
    assert sum(MarketMachine.env.withdrawn.values()) > 0  # money actually moved
