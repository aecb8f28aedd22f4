"""The pure dividend rule: epochs and slots, the 90 % online threshold, scores with a violator at
0, exact payouts with their dust, donations, unclaimed and empty-epoch carry-over."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from powerverse.economics.constants import DAY, MONTH, PVC
from powerverse.economics.dividends import (
    DeviceBeat,
    OnlineDevice,
    PoolLedger,
    epoch_at,
    epoch_end,
    epoch_start,
    first_epoch_start,
    online_devices,
    payouts,
    required_heartbeats,
    scores,
    slot_of,
    slots_per_epoch,
)
from powerverse.economics.exceptions import ScheduleError

LISTING = 1_767_225_600  # 2026-01-01
A, B, C = "0xA", "0xB", "0xC"


def beats(token: int, owner: str, points: int, slots: range | list[int]) -> list[DeviceBeat]:
    return [DeviceBeat(token_id=token, slot=s, owner=owner, points=points) for s in slots]


def test_epochs_are_30_day_months_from_listing_plus_30_days() -> None:
    start = first_epoch_start(LISTING)
    assert start == LISTING + 30 * DAY
    assert epoch_at(LISTING, start - 1) is None
    assert epoch_at(LISTING, start) == 0
    assert epoch_at(LISTING, start + MONTH - 1) == 0
    assert epoch_at(LISTING, start + MONTH) == 1
    assert epoch_start(LISTING, 2) == start + 2 * MONTH
    assert epoch_end(LISTING, 2) == start + 3 * MONTH
    with pytest.raises(ScheduleError):
        epoch_start(LISTING, -1)


def test_slots_and_the_online_threshold() -> None:
    assert slots_per_epoch(3_600) == 720
    assert required_heartbeats(3_600) == 648  # 90 % of 720
    assert required_heartbeats(3 * DAY) == 9  # 90 % of 10
    assert required_heartbeats(7_200) == 324
    assert required_heartbeats(MONTH) == 1
    assert required_heartbeats(6 * DAY) == 5  # 90 % of 5 = 4.5, rounded up
    for bad in (0, 59, 7 * DAY, MONTH + 1):
        with pytest.raises(ScheduleError):
            slots_per_epoch(bad)
    start = first_epoch_start(LISTING)
    assert slot_of(LISTING, 3 * DAY, start) == (0, 0)
    assert slot_of(LISTING, 3 * DAY, start + 3 * DAY - 1) == (0, 0)
    assert slot_of(LISTING, 3 * DAY, start + MONTH + 3 * DAY) == (1, 1)
    with pytest.raises(ScheduleError):
        slot_of(LISTING, 3 * DAY, start - 1)


def test_a_month_with_online_and_offline_devices_and_a_violator() -> None:
    required = required_heartbeats(3 * DAY)  # 9 of 10 slots
    chain = [
        *beats(1, A, 16_384, range(10)),  # every slot: online
        *beats(2, A, 1_000, [0, 1, 2, 3, 4, 5, 6, 7, 9]),  # 9 slots: online
        *beats(3, B, 5_000, range(8)),  # 8 slots: offline
        *beats(4, B, 7_000, [0, 0, 1, 2, 3, 4, 5, 6, 7]),  # a slot twice counts once: offline
        *beats(5, C, 9_999, range(1, 10)),  # online, but C is flagged
    ]
    devices = online_devices(chain, required)
    assert [d.token_id for d in devices] == [1, 2, 5]
    assert scores(devices, flagged=[C]) == {A: 17_384}
    assert scores(devices) == {A: 17_384, C: 9_999}


def test_the_snapshot_is_taken_at_the_threshold_heartbeat() -> None:
    chain = [
        DeviceBeat(token_id=1, slot=0, owner=A, points=10),
        DeviceBeat(token_id=1, slot=1, owner=B, points=20),  # transferred, re-verified
        DeviceBeat(token_id=1, slot=2, owner=C, points=30),
    ]
    assert online_devices(chain, 2) == (OnlineDevice(token_id=1, owner=B, points=20),)
    with pytest.raises(ScheduleError):
        online_devices(chain, 0)


def test_payouts_are_exact_to_the_wei_with_dust_left_in_the_pool() -> None:
    pool = 10 * PVC + 1
    result = payouts(pool, {A: 1, B: 1, C: 1})
    share = (10 * PVC + 1) // 3
    assert result.amounts == {A: share, B: share, C: share}
    assert result.dust == pool - 3 * share == 2
    assert result.total_score == 3
    empty = payouts(pool, {})
    assert empty.carried_over and empty.dust == pool and empty.amounts == {}
    with pytest.raises(ScheduleError):
        payouts(-1, {A: 1})


@given(
    pool=st.integers(min_value=0, max_value=10**30),
    points=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=20),
)
def test_payouts_never_exceed_the_pool(pool: int, points: list[int]) -> None:
    result = payouts(pool, {f"0x{i}": p for i, p in enumerate(points)})
    assert sum(result.amounts.values()) + result.dust == pool
    assert 0 <= result.dust < len(points)


def test_ledger_donations_unclaimed_and_empty_epoch_carry_over() -> None:
    ledger = PoolLedger().receive(3 * PVC).receive(1 * PVC)  # block-reward shares, a donation
    ledger = ledger.close({A: 2, B: 1})  # epoch 0: 4 PVC, A 2/3, B 1/3
    assert ledger.reserved == 4 * PVC and ledger.unassigned == 0
    ledger, paid_a = ledger.claim(0, A)
    assert paid_a == 4 * PVC * 2 // 3
    with pytest.raises(ScheduleError):
        ledger.claim(0, A)  # twice
    with pytest.raises(ScheduleError):
        ledger.claim(0, C)  # never scored
    # B does not claim yet: its share stays reserved while epoch 1 closes without anyone online
    ledger = ledger.receive(5 * PVC).close({})
    assert ledger.payouts(1).carried_over
    assert ledger.reserved == 4 * PVC - paid_a  # B's share and epoch 0's dust
    assert ledger.unassigned == 5 * PVC
    # epoch 2 gets epoch 1's pool plus its own income
    ledger = ledger.receive(2 * PVC).close({C: 5})
    assert ledger.payouts(2).pool == 7 * PVC
    ledger, paid_b = ledger.claim(0, B)  # long after: still claimable
    assert paid_b == 4 * PVC // 3
    dust0 = 4 * PVC - paid_a - paid_b
    assert dust0 == 1
    assert ledger.unassigned == dust0  # the dust of epoch 0 rolls into the next epoch
    ledger, paid_c = ledger.claim(2, C)
    assert paid_c == 7 * PVC
    assert ledger.reserved == 0 and ledger.balance == dust0
    with pytest.raises(ScheduleError):
        ledger.claim(3, C)  # not closed
