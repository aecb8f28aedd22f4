"""Staked PVC counts as DAO voting power (VotesPVC, docs/dao.md): registering and delegating in
Staking mint vPVC to the staker, undelegating burns it; the votes follow, with a snapshot in the
past that later moves cannot change."""

from __future__ import annotations

import pytest

from powerverse.market.dao import Dao
from powerverse.market.exceptions import ContractError
from powerverse.market.staking import Staking
from tests.market.conftest import ClientFactory, increase_time
from tests.rpc.conftest import ThreadedNode

PVC = 10**18


def test_bonding_mints_votes_and_undelegating_burns_them(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    validator, delegator = 11, 12
    dao = Dao(client(0))
    v_addr, d_addr = client(validator).address, client(delegator).address
    before_v, before_d = dao.power(v_addr), dao.power(d_addr)

    Staking(client(validator)).register(b"\x5a" * 32, 500, 3 * PVC)
    Staking(client(delegator)).delegate(v_addr, 2 * PVC)
    after_v, after_d = dao.power(v_addr), dao.power(d_addr)
    assert after_v["staked"] - before_v["staked"] == 3 * PVC
    assert after_d["staked"] - before_d["staked"] == 2 * PVC
    # self-delegated by default, so the stake votes
    assert after_v["votes"] - before_v["votes"] == 3 * PVC
    assert after_d["votes"] - before_d["votes"] == 2 * PVC
    snapshot = increase_time(dev_node, 10) - 1

    Staking(client(delegator)).undelegate(v_addr, PVC)
    later = dao.power(d_addr)
    assert later["staked"] == after_d["staked"] - PVC and later["votes"] == after_d["votes"] - PVC
    increase_time(dev_node, 10)
    # the snapshot before the undelegation still counts the full stake
    assert dao.past_votes(d_addr, snapshot) == after_d["votes"]


def test_only_staking_mints_or_burns_staked_votes(client: ClientFactory) -> None:
    dao = Dao(client(13))
    votes = dao.votes
    for fn in (votes.functions.mintStaked, votes.functions.burnStaked):
        with pytest.raises(ContractError) as refused:
            client(13).transact(fn(client(13).address, PVC))
        assert refused.value.name == "AccessControlUnauthorizedAccount"
