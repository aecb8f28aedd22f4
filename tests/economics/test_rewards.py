"""Dividing a block reward: 3% to the pool, proposer 20% / committee 80% of the rest by vote
weight, then commission and delegators pro rata — every part exact, the sum always the whole."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from powerverse.economics.constants import PVC
from powerverse.economics.emission import EMISSION_CAP
from powerverse.economics.exceptions import ScheduleError
from powerverse.economics.rewards import split_block_reward, split_validator_reward

A, B, C = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20


def test_a_round_reward_divides_as_the_whitepaper_says() -> None:
    split = split_block_reward(100 * PVC, A, {B: 3, C: 1})
    assert split.dividend == 3 * PVC  # 3%
    # 97 PVC: proposer 20% = 19.4, committee 80% = 77.6 by weight 3:1
    assert split.proposer_amount == 194 * PVC // 10
    assert split.committee == ((B, 3, 582 * PVC // 10), (C, 1, 194 * PVC // 10))
    assert split.payouts() == {A: 194 * PVC // 10, B: 582 * PVC // 10, C: 194 * PVC // 10}


def test_leftover_wei_go_to_the_proposer() -> None:
    split = split_block_reward(1000, A, {B: 1, C: 2})
    # dividend 30; validators 970; proposer 194; committee 776 -> B 258, C 517, 1 left over
    assert (split.dividend, split.committee) == (30, ((B, 1, 258), (C, 2, 517)))
    assert split.proposer_amount == 194 + 1


def test_a_proposer_that_voted_gets_both_parts() -> None:
    split = split_block_reward(100 * PVC, A, {A: 1, B: 1})
    payouts = split.payouts()
    assert payouts[A] == split.proposer_amount + 388 * PVC // 10
    assert sum(payouts.values()) + split.dividend == 100 * PVC


def test_no_committee_gives_the_proposer_the_committee_part() -> None:
    split = split_block_reward(100 * PVC, A, {})
    assert split.committee == ()
    assert split.proposer_amount == 97 * PVC
    zero = split_block_reward(100 * PVC, A, {B: 0})
    assert zero.proposer_amount == 97 * PVC and zero.committee == ()


def test_governed_proposer_share() -> None:
    assert split_block_reward(100, A, {B: 1}, proposer_bps=0).proposer_amount == 0
    assert split_block_reward(100, A, {B: 1}, proposer_bps=10_000).committee == ((B, 1, 0),)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: split_block_reward(-1, A, {}), "negative"),
        (lambda: split_block_reward(1, A, {}, proposer_bps=10_001), "proposer_bps"),
        (lambda: split_block_reward(1, A, {B: -1}), "weight"),
        (lambda: split_validator_reward(-1, 0, {}), "negative"),
        (lambda: split_validator_reward(1, 10_001, {}), "commission"),
        (lambda: split_validator_reward(1, 0, {B: -1}), "stake"),
    ],
)
def test_bad_input_is_refused(call: object, words: str) -> None:
    with pytest.raises(ScheduleError, match=words):
        call()  # type: ignore[operator]


def test_commission_then_delegators_pro_rata() -> None:
    split = split_validator_reward(100 * PVC, 1_000, {A: 1 * PVC, B: 3 * PVC})
    assert split.commission == 10 * PVC
    assert split.delegators == ((A, 225 * PVC // 10), (B, 675 * PVC // 10))
    odd = split_validator_reward(10, 0, {A: 1, B: 1, C: 1})
    assert odd.delegators == ((A, 3), (B, 3), (C, 3)) and odd.commission == 1  # leftover wei
    assert split_validator_reward(7, 500, {}).commission == 7


accounts = st.sampled_from(["0x" + f"{i:02x}" * 20 for i in range(1, 12)])


@given(
    reward=st.integers(0, EMISSION_CAP),
    committee=st.dictionaries(accounts, st.integers(0, 10**27), max_size=10),
    proposer=accounts,
    proposer_bps=st.integers(0, 10_000),
)
def test_the_parts_always_add_up_to_the_reward(
    reward: int, committee: dict[str, int], proposer: str, proposer_bps: int
) -> None:
    split = split_block_reward(reward, proposer, committee, proposer_bps=proposer_bps)
    assert split.dividend == reward * 3 // 100
    assert split.dividend + sum(split.payouts().values()) == reward
    committee_total = reward - split.dividend - (reward - split.dividend) * proposer_bps // 10_000
    weight = sum(committee.values())
    for _, w, amount in split.committee:
        assert amount == committee_total * w // weight  # exactly pro rata, rounded down
    assert split.proposer_amount >= (reward - split.dividend) * proposer_bps // 10_000


@given(
    amount=st.integers(0, EMISSION_CAP),
    commission_bps=st.integers(0, 10_000),
    stakes=st.dictionaries(accounts, st.integers(0, 10**27), max_size=10),
)
def test_validator_and_delegators_add_up(
    amount: int, commission_bps: int, stakes: dict[str, int]
) -> None:
    split = split_validator_reward(amount, commission_bps, stakes)
    assert split.commission + sum(v for _, v in split.delegators) == amount
    assert split.commission >= amount * commission_bps // 10_000
