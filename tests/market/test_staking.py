"""The Staking system contract on a real dev node through the SDK: every path and every refusal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from powerverse.contracts.system import SystemConfig, dev_system_config
from powerverse.market.exceptions import ContractError, MarketError
from powerverse.market.staking import (
    Staking,
    StakingParams,
    evidence_hash,
    parse_consensus_key,
)
from tests.market.conftest import ClientFactory, increase_time
from tests.rpc.conftest import ThreadedNode

PVC = 10**18
DAY = 86_400
CONFIG: SystemConfig = dev_system_config()


def key(n: int) -> bytes:
    """A distinct 32-byte consensus key per test validator."""
    return bytes([0xC0]) + n.to_bytes(31, "big")


def staking(client: ClientFactory, i: int) -> Staking:
    return Staking(client(i))


def advance(node: ThreadedNode, seconds: int) -> int:
    """Move chain time at least `seconds` past the head block's timestamp; the new timestamp.

    Dev blocks may run ahead of the wall clock (one second per block), so a plain
    ``evm_increaseTime`` of `seconds` can land short of ``head + seconds``.
    """
    head = int(node.result("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    now = increase_time(node, seconds)
    if now < head + seconds:
        now = increase_time(node, head + seconds - now)
    return now


def refused(name: str) -> pytest.RaisesExc[ContractError]:
    return pytest.raises(ContractError, match=rf"\b{name}\(")


@pytest.fixture(autouse=True)
def books_balance(client: ClientFactory) -> Iterator[None]:
    """After every test the contract holds exactly bonded + unbonding + owed."""
    yield
    t = staking(client, 0).totals()
    assert t.balance == t.bonded + t.unbonding + t.owed


def test_predeployed_with_dev_params(client: ClientFactory) -> None:
    p = staking(client, 0).params()
    assert p == StakingParams(
        min_self_stake=CONFIG.staking_min_self_stake,
        unbonding_period=CONFIG.staking_unbonding_period,
        jail_period=CONFIG.staking_jail_period,
        max_commission_bps=CONFIG.staking_max_commission_bps,
        max_commission_change_bps=CONFIG.staking_max_commission_change_bps,
        commission_change_interval=CONFIG.staking_commission_change_interval,
        max_validators=CONFIG.staking_max_validators,
    )
    assert p.unbonding_period == DAY


def test_register_delegate_and_active_set(client: ClientFactory) -> None:
    v, d = staking(client, 1), staking(client, 2)
    v.register(key(1), 500, 2 * PVC)
    d.delegate(v.client.address, 3 * PVC)
    info = v.validator(v.client.address)
    assert (info.total_stake, info.self_stake, info.commission_bps) == (5 * PVC, 2 * PVC, 500)
    assert info.active and not info.jailed and info.consensus_key == key(1)
    assert v.validator_by_key(key(1)) == info
    assert d.delegation(v.client.address, d.client.address) == 3 * PVC
    active = {a.consensus_key: a for a in v.active_validators()}
    assert active[key(1)].stake == 5 * PVC
    assert active[key(1)].account == v.client.address
    assert info in v.validators()


def test_registration_refusals(client: ClientFactory) -> None:
    v = staking(client, 3)
    with refused("ZeroAmount"):
        v.register(key(3), 0, 0)
    with refused("SelfStakeTooLow"):
        v.register(key(3), 0, PVC - 1)
    with refused("CommissionTooHigh"):
        v.register(key(3), CONFIG.staking_max_commission_bps + 1, PVC)
    with refused("InvalidConsensusKey"):
        v.register(bytes(32), 0, PVC)
    v.register(key(3), 0, PVC)
    with refused("AlreadyValidator"):
        v.register(key(4), 0, PVC)
    with refused("ConsensusKeyTaken"):
        staking(client, 4).register(key(3), 0, PVC)
    with pytest.raises(MarketError, match="32 bytes"):
        v.register(b"\x01" * 31, 0, PVC)


def test_delegation_refusals(client: ClientFactory) -> None:
    d = staking(client, 5)
    with refused("NotValidator"):
        d.delegate(d.client.address, PVC)
    with refused("ZeroAmount"):
        d.delegate(staking(client, 1).client.address, 0)
    with refused("InsufficientDelegation"):
        d.undelegate(staking(client, 1).client.address, 1)


def test_undelegate_then_withdraw_after_unbonding(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    v, d = staking(client, 6), staking(client, 7)
    v.register(key(6), 0, PVC)
    d.delegate(v.client.address, 4 * PVC)
    with refused("ZeroAmount"):
        d.undelegate(v.client.address, 0)
    with refused("InsufficientDelegation"):
        d.undelegate(v.client.address, 4 * PVC + 1)
    entry = d.undelegate(v.client.address, 3 * PVC)
    assert entry.amount == 3 * PVC and entry.validator == v.client.address
    assert d.delegation(v.client.address, d.client.address) == PVC
    assert v.validator(v.client.address).total_stake == 2 * PVC
    assert v.validator(v.client.address).unbonding == 3 * PVC
    assert d.unbondings(d.client.address) == [entry]
    with refused("NothingToWithdraw") as info:
        d.withdraw()
    assert info.value.args_by_name["nextCompletion"] == entry.completion_time
    assert d.withdrawable(d.client.address) == 0

    now = advance(dev_node, DAY)
    assert now >= entry.completion_time
    assert d.withdrawable(d.client.address) == 3 * PVC
    before = d.client.balance()
    assert d.withdraw() == 3 * PVC
    assert 0 < d.client.balance() - before <= 3 * PVC  # minus gas
    assert d.unbondings(d.client.address) == []
    with refused("NothingToWithdraw"):
        d.withdraw()


def test_full_exit_leaves_no_shares(client: ClientFactory, dev_node: ThreadedNode) -> None:
    v = staking(client, 8)
    v.register(key(8), 0, PVC)
    v.undelegate(v.client.address, PVC)
    info = v.validator(v.client.address)
    assert info.total_stake == 0 and not info.active
    assert key(8) not in {a.consensus_key for a in v.active_validators()}
    advance(dev_node, DAY)
    assert v.withdraw() == PVC
    # the validator may come back by self-staking again
    v.delegate(v.client.address, PVC)
    assert v.validator(v.client.address).active


def test_self_stake_below_minimum_leaves_the_active_set(client: ClientFactory) -> None:
    v, d = staking(client, 9), staking(client, 10)
    v.register(key(9), 0, 2 * PVC)
    d.delegate(v.client.address, 50 * PVC)
    v.undelegate(v.client.address, PVC + 1)
    info = v.validator(v.client.address)
    assert info.self_stake == PVC - 1 and not info.active and info.total_stake == 51 * PVC - 1
    assert key(9) not in {a.consensus_key for a in v.active_validators()}
    v.delegate(v.client.address, 1)
    assert v.validator(v.client.address).active


def test_too_many_pending_unbondings(client: ClientFactory) -> None:
    v = staking(client, 11)
    v.register(key(11), 0, 20 * PVC)
    for _ in range(16):
        v.undelegate(v.client.address, 1)
    with refused("TooManyUnbondings"):
        v.undelegate(v.client.address, 1)
    assert len(v.unbondings(v.client.address)) == 16


def test_slash_is_pro_rata_including_unbonding(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    foundation, v, d = staking(client, 0), staking(client, 12), staking(client, 13)
    v.register(key(12), 0, 10 * PVC)
    d.delegate(v.client.address, 30 * PVC)
    entry = d.undelegate(v.client.address, 20 * PVC)
    treasury = foundation.client.address
    owed_before = foundation.owed(treasury)
    evidence = evidence_hash({"validator": "0x" + key(12).hex(), "height": 77})

    with refused("AccessControlUnauthorizedAccount"):
        d.slash(key(12), evidence, 1_000)
    for bad in (0, 10_000, 12_000):
        with refused("InvalidFraction"):
            foundation.slash(key(12), evidence, bad)
    with refused("UnknownConsensusKey"):
        foundation.slash(key(99), evidence, 1_000)

    foundation.slash(key(12), evidence, 1_000)  # 10 %
    info = v.validator(v.client.address)
    assert info.total_stake == 18 * PVC
    assert info.self_stake == 9 * PVC
    assert d.delegation(v.client.address, d.client.address) == 9 * PVC
    assert d.unbondings(d.client.address)[0].amount == 18 * PVC
    assert info.slashed == 4 * PVC
    assert info.jailed and not info.active
    assert foundation.owed(treasury) - owed_before == 4 * PVC
    assert foundation.evidence_used(evidence)
    with refused("EvidenceAlreadyUsed"):
        foundation.slash(key(12), evidence, 1_000)

    advance(dev_node, DAY)
    assert d.withdraw() == 18 * PVC
    assert entry.amount == 20 * PVC  # what it was worth before the slash


def test_treasury_withdraws_slashed_stake(client: ClientFactory) -> None:
    foundation = staking(client, 0)
    owed = foundation.owed(foundation.client.address)
    assert owed > 0  # from the slashing test
    assert foundation.withdraw() == owed
    assert foundation.owed(foundation.client.address) == 0


def test_jail_and_unjail(client: ClientFactory, dev_node: ThreadedNode) -> None:
    foundation, v = staking(client, 0), staking(client, 14)
    v.register(key(14), 0, PVC)
    with refused("NotJailed"):
        v.unjail()
    with refused("AccessControlUnauthorizedAccount"):
        v.jail(key(14), "downtime")
    with refused("UnknownConsensusKey"):
        foundation.jail(key(98), "downtime")
    foundation.jail(key(14), "missed 1000 blocks")
    info = v.validator(v.client.address)
    assert info.jailed and not info.active
    assert key(14) not in {a.consensus_key for a in v.active_validators()}
    with refused("JailPeriodNotOver") as refusal:
        v.unjail()
    assert refusal.value.args_by_name["until"] == info.jailed_until
    with refused("NotValidator"):
        staking(client, 15).unjail()
    advance(dev_node, CONFIG.staking_jail_period)
    v.unjail()
    assert v.validator(v.client.address).active


def test_unjail_needs_minimum_self_stake(client: ClientFactory, dev_node: ThreadedNode) -> None:
    foundation, v = staking(client, 0), staking(client, 16)
    v.register(key(16), 0, PVC)
    foundation.slash(key(16), b"\x16" * 32, 5_000)
    advance(dev_node, CONFIG.staking_jail_period)
    with refused("SelfStakeTooLow"):
        v.unjail()
    v.delegate(v.client.address, PVC // 2)
    v.unjail()
    assert v.validator(v.client.address).active


def test_commission_bounds(client: ClientFactory, dev_node: ThreadedNode) -> None:
    v = staking(client, 17)
    v.register(key(17), 1_000, PVC)
    with refused("CommissionChangeTooSoon"):
        v.set_commission(1_050)
    advance(dev_node, DAY)
    with refused("CommissionChangeTooLarge"):
        v.set_commission(1_101)
    with refused("CommissionTooHigh"):
        v.set_commission(CONFIG.staking_max_commission_bps + 1)
    v.set_commission(1_100)
    assert v.validator(v.client.address).commission_bps == 1_100
    with refused("CommissionChangeTooSoon"):
        v.set_commission(1_000)
    with refused("NotValidator"):
        staking(client, 18).set_commission(0)


def test_governance_params(client: ClientFactory) -> None:
    foundation, other = staking(client, 0), staking(client, 18)
    p = foundation.params()
    with refused("AccessControlUnauthorizedAccount"):
        other.set_params(p, "nope")
    bad = StakingParams(**{**p.__dict__, "max_commission_bps": 10_001})
    with refused("InvalidParams"):
        foundation.set_params(bad, "too high")
    longer = StakingParams(**{**p.__dict__, "unbonding_period": 2 * DAY})
    foundation.set_params(longer, "test")
    assert foundation.params() == longer
    foundation.set_params(p, "restore")


def test_plain_transfers_are_refused(client: ClientFactory, dev_node: ThreadedNode) -> None:
    tx = {"from": client(19).address, "to": staking(client, 0).contract.address, "value": hex(PVC)}
    err = dev_node.error("eth_call", tx, "latest")
    assert err["code"] == 3  # reverted: coin only enters through delegate/registerValidator


def test_evidence_hash_is_per_validator_and_height() -> None:
    record = {"validator": "0x" + key(1).hex(), "height": 5, "round": 0, "step": "prevote"}
    same_height = {**record, "round": 3, "step": "precommit"}
    assert evidence_hash(record) == evidence_hash(same_height)
    assert evidence_hash(record) != evidence_hash({**record, "height": 6})
    assert evidence_hash(record) != evidence_hash({**record, "validator": "0x" + key(2).hex()})
    assert len(evidence_hash(record)) == 32


def test_parse_consensus_key() -> None:
    assert parse_consensus_key("0x" + "ab" * 32) == b"\xab" * 32
    assert parse_consensus_key("ab" * 32) == b"\xab" * 32
    with pytest.raises(MarketError, match="not hex"):
        parse_consensus_key("0xzz")
    with pytest.raises(MarketError, match="32 bytes"):
        parse_consensus_key("0x" + "ab" * 31)
