"""Hypothesis stateful test: random delegations, undelegations, withdrawals, slashes and time on
the real Staking contract of a real dev node, against an exact (rational) model.

Each example starts from the same chain state (evm_snapshot / evm_revert). After every step:
- the contract's balance equals bonded + unbonding + owed;
- every delegation and every withdrawable amount is its exact pro-rata entitlement up to a few
  wei of rounding (rounding favours the pool, so one holder can gain at most the dust another
  left behind), and never more than that;
- a slash lowers each delegation and each unbonding entry of the validator by the fraction.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from powerverse.market.client import ChainClient
from powerverse.market.exceptions import ContractError
from powerverse.market.staking import Staking
from tests.market.conftest import increase_time
from tests.rpc.conftest import ThreadedNode

pytestmark = pytest.mark.slow

PVC = 10**18
DAY = 86_400
ACTORS = (1, 2, 3, 4, 5)  # 4 and 5 are the validators
VALIDATORS = (4, 5)
MAX_ENTRIES = 16

amounts = st.one_of(st.integers(1, 1_000), st.integers(1, 5 * PVC))


class StakingMachine(RuleBasedStateMachine):
    """Drives the contract and an exact model side by side."""

    node: ThreadedNode
    signers: list[Any]

    @initialize()
    def start(self) -> None:
        self.snapshot = self.node.result("evm_snapshot")
        # fresh clients: the chain's nonces go back at every revert
        self.s = {i: Staking(ChainClient(self.node.url, self.signers[i])) for i in range(6)}
        self.addr = {i: self.s[i].client.address for i in range(6)}
        self.deleg: dict[tuple[int, int], Fraction] = {}
        self.entries: dict[int, list[list[Any]]] = {i: [] for i in ACTORS}  # [validator, t, v]
        self.ops = 0
        self.evidence = 0
        for v in VALIDATORS:
            self.s[v].register(bytes([0xAA, v]) + bytes(30), 0, 2 * PVC)
            self.deleg[(v, v)] = Fraction(2 * PVC)

    def teardown(self) -> None:
        if hasattr(self, "snapshot"):
            assert self.node.result("evm_revert", self.snapshot) is True

    def _now(self) -> int:
        return int(self.node.result("eth_getBlockByNumber", "latest", False)["timestamp"], 16)

    @property
    def tolerance(self) -> int:
        return 4 + 2 * self.ops

    @rule(actor=st.sampled_from(ACTORS), validator=st.sampled_from(VALIDATORS), amount=amounts)
    def delegate(self, actor: int, validator: int, amount: int) -> None:
        self.s[actor].delegate(self.addr[validator], amount)
        key = (actor, validator)
        self.deleg[key] = self.deleg.get(key, Fraction(0)) + amount
        self.ops += 1

    @rule(
        actor=st.sampled_from(ACTORS),
        validator=st.sampled_from(VALIDATORS),
        percent=st.integers(1, 100),
    )
    def undelegate(self, actor: int, validator: int, percent: int) -> None:
        available = self.s[actor].delegation(self.addr[validator], self.addr[actor])
        amount = available * percent // 100
        if amount == 0:
            return
        if len(self.entries[actor]) >= MAX_ENTRIES:
            with pytest.raises(ContractError, match="TooManyUnbondings"):
                self.s[actor].undelegate(self.addr[validator], amount)
            return
        entry = self.s[actor].undelegate(self.addr[validator], amount)
        assert entry.amount == amount
        key = (actor, validator)
        self.deleg[key] -= amount
        if self.deleg[key] < 1 and percent == 100:
            self.deleg[key] = Fraction(0)  # the contract takes worthless leftover shares too
        self.entries[actor].append([validator, entry.completion_time, Fraction(amount)])
        self.ops += 1

    @rule(actor=st.sampled_from(ACTORS))
    def withdraw(self, actor: int) -> None:
        now = self._now()
        matured = [e for e in self.entries[actor] if e[1] <= now]
        if not matured:
            with pytest.raises(ContractError, match="NothingToWithdraw"):
                self.s[actor].withdraw()
            return
        expected = sum((e[2] for e in matured), Fraction(0))
        paid = self.s[actor].withdraw()
        # exactly what is owed, up to rounding; never more than the rounding dust
        assert abs(paid - expected) <= self.tolerance, (paid, expected)
        self.entries[actor] = [e for e in self.entries[actor] if e[1] > now]
        self.ops += 1

    @rule(validator=st.sampled_from(VALIDATORS), fraction_bps=st.integers(1, 9_999))
    def slash(self, validator: int, fraction_bps: int) -> None:
        self.evidence += 1
        before = {a: self.s[0].delegation(self.addr[validator], self.addr[a]) for a in ACTORS}
        self.s[0].slash(
            bytes([0xAA, validator]) + bytes(30), self.evidence.to_bytes(32, "big"), fraction_bps
        )
        keep = Fraction(10_000 - fraction_bps, 10_000)
        for (a, v), value in self.deleg.items():
            if v == validator:
                self.deleg[(a, v)] = value * keep
        for entries in self.entries.values():
            for e in entries:
                if e[0] == validator:
                    e[2] *= keep
        for a in ACTORS:
            after = self.s[0].delegation(self.addr[validator], self.addr[a])
            assert abs(after - before[a] * keep) <= 2, (a, before[a], after)
        self.ops += 1

    # No run of consecutive steps adds up to within hours of the 1-day unbonding period, so
    # whether an entry has matured never hinges on the seconds a step takes.
    @rule(days=st.sampled_from([Fraction(2, 5), Fraction(13, 10)]))
    def advance(self, days: Fraction) -> None:
        increase_time(self.node, int(days * DAY))

    @invariant()
    def books_balance(self) -> None:
        if not hasattr(self, "s"):
            return
        t = self.s[0].totals()
        assert t.balance == t.bonded + t.unbonding + t.owed

    @precondition(lambda self: hasattr(self, "s"))
    @invariant()
    def delegations_match_entitlement(self) -> None:
        for a in ACTORS:
            for v in VALIDATORS:
                got = self.s[0].delegation(self.addr[v], self.addr[a])
                want = self.deleg.get((a, v), Fraction(0))
                assert abs(got - want) <= self.tolerance, (a, v, got, want)

    @precondition(lambda self: hasattr(self, "s"))
    @invariant()
    def unbondings_match_entitlement(self) -> None:
        for a in ACTORS:
            got = sorted(e.amount for e in self.s[0].unbondings(self.addr[a]))
            want = sorted(e[2] for e in self.entries[a])
            assert len(got) == len(want)
            for g, w in zip(got, want, strict=True):
                assert abs(g - w) <= self.tolerance, (a, g, w)


def test_staking_books_and_entitlements(dev_node: ThreadedNode, dev_signers: list[Any]) -> None:
    StakingMachine.node = dev_node
    StakingMachine.signers = dev_signers
    run_state_machine_as_test(
        StakingMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
