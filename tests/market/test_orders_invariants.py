"""Hypothesis stateful test of the Orders contract's money on a real dev node (real EVM, real RPC).

Random sequences of posting demands and tasks (MANUAL and HASH), fills, takes, submissions (right
and wrong hashes), accepts, automatic accepts, rejections, cancels, expiries, settlements,
disputes, committee rulings through the real Arbitration contract, withdrawals and time jumps,
driven against a model that predicts every outcome (success, or the refusal by name; near a
deadline either is allowed). Checked after every step: the contract's balance equals escrows
plus pull balances; every order's state and escrow and every account's pull balance equal the
model's; each payout event matches the model. A withdrawal pays exactly what is owed, and a
second one is refused. At the end of every run time jumps past every deadline and every order is
driven to an end by anyone (or the arbiter, for disputes): each ends paid, refunded or ruled,
none stuck, and after everyone withdraws the contract holds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest
from eth_account.signers.local import LocalAccount
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

from powerverse.market.arbitration import Arbitration
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import ContractError
from powerverse.market.orders import (
    BPS,
    DAY,
    OrderClosed,
    OrderKind,
    Orders,
    OrderState,
    result_hash,
)
from powerverse.market.receipts import TxInfo
from powerverse.market.reviews import Reviews
from tests.market.market_helpers import FOUNDATION, ClientFactory, head_time, register_resource
from tests.market.orders_helpers import MATCHING
from tests.rpc.conftest import ThreadedNode

pytestmark = pytest.mark.slow

CONSUMERS = (1, 2)
PROVIDERS = (3, 4)
KEEPER = 5
ACCOUNTS = (FOUNDATION, *CONSUMERS, *PROVIDERS, KEEPER)
UNIT = 10**15
MARGIN = 30  # seconds around a deadline where either outcome is accepted
FEE_BPS = 250
WINDOW = 86_400
RIGHT = result_hash(b"right")
WRONG = result_hash(b"wrong")
T = TypeVar("T")


@dataclass
class Model:
    """What the contract should hold for one order."""

    kind: OrderKind
    consumer: int
    escrow: int
    deadline: int
    period_days: int = 0
    expected_hash: bytes | None = None
    state: OrderState = OrderState.OPEN
    provider: int | None = None
    token: int | None = None
    end: int = 0
    submitted_at: int = 0


class OrdersMachine(RuleBasedStateMachine):
    """Drives Orders and a model side by side."""

    node: ThreadedNode
    signers: list[LocalAccount]
    tokens: dict[int, list[int]]

    @initialize()
    def start(self) -> None:
        self.snapshot = self.node.result("evm_snapshot")
        # fresh clients: the chain's nonces go back at every revert
        self.c = {i: ChainClient(self.node.url, self.signers[i]) for i in ACCOUNTS}
        self.o = {i: Orders(self.c[i]) for i in ACCOUNTS}
        self.addr = {i: self.c[i].address for i in ACCOUNTS}
        Reviews(self.c[FOUNDATION]).set_min_reputation(0)  # failures must not lock providers out
        self.baseline = self.o[KEEPER].totals()
        self.owed = {i: self.o[KEEPER].owed(self.addr[i]) for i in ACCOUNTS}
        self.orders: dict[int, Model] = {}
        self.busy: dict[int, int] = {}  # token -> order holding it
        # every run starts with one order of each kind on the table
        self.post_demand(CONSUMERS[0], 6, 2, 48)
        self.post_task(CONSUMERS[1], 5, 48, False)
        self.post_task(CONSUMERS[0], 4, 6, True)

    def teardown(self) -> None:
        if not hasattr(self, "snapshot"):
            return
        try:
            self._drain()
        finally:
            assert self.node.result("evm_revert", self.snapshot) is True

    # ------------------------------------------------------------------ helpers

    def _now(self) -> int:
        return head_time(self.c[KEEPER])

    def _past(self, t: int) -> bool | None:
        """Whether the next block's time is after `t`: True, False, or None (too close)."""
        now = self._now()
        if now >= t:
            return True
        if now + MARGIN < t:
            return False
        return None

    def _try(self, call: Callable[[], T], ok: bool | None, *refusals: str) -> T | None:
        """Run `call`: it must succeed when `ok` is True and be refused with one of `refusals`
        when False; None allows either."""
        try:
            result = call()
        except ContractError as err:
            assert ok is not True, f"refused unexpectedly: {err}"
            assert err.name in refusals, f"expected {refusals}, got {err}"
            return None
        assert ok is not False, f"should have been refused with {refusals}"
        return result

    def _has(self, *states: OrderState, kind: OrderKind | None = None) -> bool:
        return any(
            m.state in states and (kind is None or m.kind == kind) for m in self.orders.values()
        )

    def _pick(self, index: int, *states: OrderState, kind: OrderKind | None = None) -> int | None:
        found = [
            i
            for i, m in sorted(self.orders.items())
            if m.state in states and (kind is None or m.kind == kind)
        ]
        return found[index % len(found)] if found else None

    def _close(
        self, order_id: int, closed: OrderClosed | None, to_consumer: int, state: OrderState
    ) -> None:
        """Apply a close to the model and compare the payout event with it."""
        assert closed is not None
        m = self.orders[order_id]
        provider_part = m.escrow - to_consumer
        fee = provider_part * FEE_BPS // BPS
        assert (closed.state, closed.to_consumer, closed.to_provider, closed.fee) == (
            state,
            to_consumer,
            provider_part - fee,
            fee,
        )
        self.owed[m.consumer] += to_consumer
        if m.provider is not None:
            self.owed[m.provider] += provider_part - fee
        self.owed[FOUNDATION] += fee
        m.escrow = 0
        m.state = state
        if m.token is not None:
            self.busy.pop(m.token, None)

    # ------------------------------------------------------------------ posting

    @rule(
        consumer=st.sampled_from(CONSUMERS),
        units=st.integers(1, 12),
        days=st.integers(1, 3),
        hours=st.sampled_from([1, 6, 48]),
    )
    def post_demand(self, consumer: int, units: int, days: int, hours: int) -> None:
        deadline = self._now() + hours * 3600
        posted = self.o[consumer].post_demand(
            MATCHING, period_days=days, budget=units * UNIT, deadline=deadline
        )
        self.orders[posted.order_id] = Model(
            OrderKind.DEMAND, consumer, units * UNIT, deadline, period_days=days
        )

    @rule(
        consumer=st.sampled_from(CONSUMERS),
        units=st.integers(1, 12),
        hours=st.sampled_from([1, 6, 48]),
        by_hash=st.booleans(),
    )
    def post_task(self, consumer: int, units: int, hours: int, by_hash: bool) -> None:
        deadline = self._now() + hours * 3600
        expected = RIGHT if by_hash else None
        posted = self.o[consumer].post_task(
            "ipfs://task", MATCHING, reward=units * UNIT, deadline=deadline, expected_hash=expected
        )
        self.orders[posted.order_id] = Model(
            OrderKind.TASK, consumer, units * UNIT, deadline, expected_hash=expected
        )

    # ------------------------------------------------------------------ providers

    def _free_token(self, provider: int, which: int) -> int | None:
        free = [t for t in self.tokens[provider] if t not in self.busy]
        return free[which % len(free)] if free else None

    @precondition(lambda self: self._has(OrderState.OPEN, kind=OrderKind.DEMAND))
    @rule(
        index=st.integers(0, 99),
        provider=st.sampled_from(PROVIDERS),
        which=st.integers(0, 1),
        units=st.integers(1, 6),
    )
    def fill(self, index: int, provider: int, which: int, units: int) -> None:
        order_id = self._pick(index, OrderState.OPEN, kind=OrderKind.DEMAND)
        token = self._free_token(provider, which)
        if order_id is None or token is None:
            return
        m = self.orders[order_id]
        rent = units * UNIT * m.period_days
        late, over = self._past(m.deadline), rent > m.escrow
        # the deadline is checked before the budget
        ok: bool | None = False if late or over else (None if late is None else True)
        refusals = ("DeadlinePassed",) if late is not False else ()
        refusals += ("OverBudget",) if over and late is not True else ()
        filled = self._try(
            lambda: self.o[provider].fill_demand(order_id, token, units * UNIT), ok, *refusals
        )
        if filled is None:
            return
        assert (filled.rent, filled.refund) == (rent, m.escrow - rent)
        self.owed[m.consumer] += m.escrow - rent
        m.escrow, m.state, m.provider, m.token, m.end = (
            rent,
            OrderState.ACTIVE,
            provider,
            token,
            filled.end,
        )
        self.busy[token] = order_id

    @precondition(lambda self: self._has(OrderState.OPEN, kind=OrderKind.TASK))
    @rule(index=st.integers(0, 99), provider=st.sampled_from(PROVIDERS), which=st.integers(0, 1))
    def take(self, index: int, provider: int, which: int) -> None:
        order_id = self._pick(index, OrderState.OPEN, kind=OrderKind.TASK)
        token = self._free_token(provider, which)
        if order_id is None or token is None:
            return
        m = self.orders[order_id]
        late = self._past(m.deadline)
        done = self._try(
            lambda: self.o[provider].take_task(order_id, token),
            None if late is None else not late,
            "DeadlinePassed",
        )
        if done is not None:
            m.state, m.provider, m.token = OrderState.TAKEN, provider, token
            self.busy[token] = order_id

    @precondition(lambda self: self._has(OrderState.TAKEN))
    @rule(index=st.integers(0, 99), right=st.booleans())
    def submit(self, index: int, right: bool) -> None:
        order_id = self._pick(index, OrderState.TAKEN)
        if order_id is None:
            return
        m = self.orders[order_id]
        assert m.provider is not None
        provider = m.provider
        late = self._past(m.deadline)
        mismatch = m.expected_hash is not None and not right
        ok: bool | None = False if late is True or mismatch else (None if late is None else True)
        refusals = ("DeadlinePassed",) if late is not False else ()
        refusals += ("ResultHashMismatch",) if mismatch else ()
        digest = RIGHT if right else WRONG
        done = self._try(
            lambda: self.o[provider].submit_result(order_id, "ipfs://out", digest), ok, *refusals
        )
        if done is None:
            return
        if m.expected_hash is not None:
            self._close(order_id, done.closed, 0, OrderState.COMPLETED)
        else:
            assert done.closed is None
            m.state = OrderState.SUBMITTED
            m.submitted_at = self.o[KEEPER].order(order_id).submitted_at

    # ------------------------------------------------------------------ consumers and keepers

    @precondition(lambda self: self._has(OrderState.SUBMITTED))
    @rule(index=st.integers(0, 99))
    def accept(self, index: int) -> None:
        order_id = self._pick(index, OrderState.SUBMITTED)
        if order_id is not None:
            m = self.orders[order_id]
            self._close(order_id, self.o[m.consumer].accept(order_id), 0, OrderState.COMPLETED)

    @precondition(lambda self: self._has(OrderState.SUBMITTED))
    @rule(index=st.integers(0, 99))
    def auto_accept(self, index: int) -> None:
        order_id = self._pick(index, OrderState.SUBMITTED)
        if order_id is None:
            return
        m = self.orders[order_id]
        closed = self._try(
            lambda: self.o[KEEPER].auto_accept(order_id),
            self._past(m.submitted_at + WINDOW),
            "ReviewWindowOpen",
        )
        if closed is not None:
            self._close(order_id, closed, 0, OrderState.COMPLETED)

    @precondition(lambda self: self._has(OrderState.SUBMITTED))
    @rule(index=st.integers(0, 99))
    def reject(self, index: int) -> None:
        order_id = self._pick(index, OrderState.SUBMITTED)
        if order_id is None:
            return
        m = self.orders[order_id]
        past = self._past(m.submitted_at + WINDOW)
        done = self._try(
            lambda: self.o[m.consumer].reject(order_id, "bad result"),
            None if past is None else not past,
            "ReviewWindowPassed",
        )
        if done is not None:
            m.state = OrderState.DISPUTED

    @precondition(lambda self: self._has(OrderState.ACTIVE, OrderState.TAKEN))
    @rule(index=st.integers(0, 99), by_provider=st.booleans())
    def dispute(self, index: int, by_provider: bool) -> None:
        order_id = self._pick(index, OrderState.ACTIVE, OrderState.TAKEN)
        if order_id is None:
            return
        m = self.orders[order_id]
        who = m.provider if by_provider else m.consumer
        assert who is not None
        if m.state == OrderState.ACTIVE:
            late, refusal = self._past(m.end - 1), "RentalEnded"  # refused from the end on
        else:
            late, refusal = self._past(m.deadline), "DeadlinePassed"
        done = self._try(
            lambda: self.o[who].open_dispute(order_id, "dispute"),
            None if late is None else not late,
            refusal,
        )
        if done is not None:
            m.state = OrderState.DISPUTED

    @precondition(lambda self: self._has(OrderState.DISPUTED))
    @rule(index=st.integers(0, 99), tenths=st.integers(0, 10))
    def rule_dispute(self, index: int, tenths: int) -> None:
        order_id = self._pick(index, OrderState.DISPUTED)
        if order_id is None:
            return
        m = self.orders[order_id]
        share = m.escrow * tenths // 10
        self._rule(order_id, share)

    def _rule(self, order_id: int, share: int) -> None:
        arbitration = Arbitration(self.c[FOUNDATION])
        dispute_id = arbitration.dispute_for("Orders", order_id)
        assert dispute_id is not None
        receipt = self.c[FOUNDATION].transact(
            arbitration.contract.functions.rule(dispute_id, share, "ruling")
        )
        (event,) = self.c[FOUNDATION].events(self.o[KEEPER].contract, "OrderClosed", receipt)
        closed = OrderClosed(
            tx=TxInfo.from_receipt(receipt),
            order_id=order_id,
            state=OrderState(event["state"]),
            to_consumer=int(event["toConsumer"]),
            to_provider=int(event["toProvider"]),
            fee=int(event["fee"]),
        )
        self._close(order_id, closed, share, OrderState.RESOLVED)

    @precondition(lambda self: self._has(OrderState.OPEN))
    @rule(index=st.integers(0, 99))
    def cancel(self, index: int) -> None:
        order_id = self._pick(index, OrderState.OPEN)
        if order_id is not None:
            m = self.orders[order_id]
            self._close(
                order_id, self.o[m.consumer].cancel(order_id), m.escrow, OrderState.CANCELLED
            )

    @precondition(lambda self: self._has(OrderState.OPEN, OrderState.TAKEN))
    @rule(index=st.integers(0, 99))
    def expire(self, index: int) -> None:
        order_id = self._pick(index, OrderState.OPEN, OrderState.TAKEN)
        if order_id is None:
            return
        m = self.orders[order_id]
        closed = self._try(
            lambda: self.o[KEEPER].expire(order_id), self._past(m.deadline), "DeadlineNotReached"
        )
        if closed is not None:
            state = OrderState.EXPIRED if m.state == OrderState.OPEN else OrderState.FAILED
            self._close(order_id, closed, m.escrow, state)

    @precondition(lambda self: self._has(OrderState.ACTIVE))
    @rule(index=st.integers(0, 99))
    def settle(self, index: int) -> None:
        order_id = self._pick(index, OrderState.ACTIVE)
        if order_id is None:
            return
        m = self.orders[order_id]
        closed = self._try(
            lambda: self.o[KEEPER].settle(order_id), self._past(m.end - 1), "RentalNotEnded"
        )
        if closed is not None:
            self._close(order_id, closed, 0, OrderState.COMPLETED)

    @rule(account=st.sampled_from(ACCOUNTS))
    def withdraw(self, account: int) -> None:
        owed = self.owed[account]
        paid = self._try(lambda: self.o[account].withdraw(), owed > 0, "NothingOwed")
        if paid is not None:
            assert paid.amount == owed
            self.owed[account] = 0
            self._try(lambda: self.o[account].withdraw(), False, "NothingOwed")

    @rule(seconds=st.sampled_from([3_600, 6 * 3_600, DAY, 3 * DAY]))
    def advance(self, seconds: int) -> None:
        self.node.result("evm_increaseTime", seconds)
        self.node.result("evm_mine")

    # ------------------------------------------------------------------ invariants

    @precondition(lambda self: hasattr(self, "orders"))
    @invariant()
    def books_balance(self) -> None:
        totals = self.o[KEEPER].totals()
        assert totals.balanced, totals
        assert totals.escrowed - self.baseline.escrowed == sum(
            m.escrow for m in self.orders.values()
        )

    @precondition(lambda self: hasattr(self, "orders"))
    @invariant()
    def everyone_is_owed_exactly_the_model(self) -> None:
        for i in ACCOUNTS:
            got = self.o[KEEPER].owed(self.addr[i])
            assert got == self.owed[i], (i, got, self.owed[i], self.orders)

    @precondition(lambda self: hasattr(self, "orders"))
    @invariant()
    def orders_match_the_model(self) -> None:
        for order_id, m in self.orders.items():
            got = self.o[KEEPER].order(order_id)
            assert (got.state, got.escrow) == (m.state, m.escrow), (order_id, got, m)

    # ------------------------------------------------------------------ the end

    def _drain(self) -> None:
        """Past every deadline, anyone ends every order; then everyone withdraws."""
        self.node.result("evm_increaseTime", 100 * DAY)
        self.node.result("evm_mine")
        keeper = self.o[KEEPER]
        for order_id, m in sorted(self.orders.items()):
            if m.state in (OrderState.OPEN, OrderState.TAKEN):
                state = OrderState.EXPIRED if m.state == OrderState.OPEN else OrderState.FAILED
                self._close(order_id, keeper.expire(order_id), m.escrow, state)
            elif m.state == OrderState.ACTIVE:
                self._close(order_id, keeper.settle(order_id), 0, OrderState.COMPLETED)
            elif m.state == OrderState.SUBMITTED:
                self._close(order_id, keeper.auto_accept(order_id), 0, OrderState.COMPLETED)
            elif m.state == OrderState.DISPUTED:
                self._rule(order_id, m.escrow // 2)
        for order_id, m in self.orders.items():
            assert m.state.ended, (order_id, m)
            assert keeper.order(order_id).state == m.state
        for i in ACCOUNTS:
            if self.owed[i]:
                assert self.o[i].withdraw().amount == self.owed[i]
                self.owed[i] = 0
        totals = keeper.totals()
        assert totals.balanced and totals.owed == self.baseline.owed
        assert totals.escrowed == self.baseline.escrowed
        assert not self.busy


def test_orders_money_is_always_accounted_for(
    dev_node: ThreadedNode, dev_signers: list[LocalAccount], client: ClientFactory
) -> None:
    OrdersMachine.node = dev_node
    OrdersMachine.signers = dev_signers
    OrdersMachine.tokens = {
        p: [register_resource(client(p), client(FOUNDATION)) for _ in range(2)] for p in PROVIDERS
    }
    run_state_machine_as_test(
        OrdersMachine,
        settings=settings(
            max_examples=8,
            stateful_step_count=30,
            deadline=None,
            # no shrinking: replaying on a real chain is slow, and the failing run is printed
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
