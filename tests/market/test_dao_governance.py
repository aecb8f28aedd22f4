"""Who governs after genesis, on a production-like genesis (no dev roles): the DAO timelock
alone changes the market's governed parameters and roles; the foundation keeps only its
operational roles; a passed vote changes a parameter."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from eth_account.signers.local import LocalAccount

from powerverse.chain.genesis import DEFAULT_STAKE, Validator, dev_genesis
from powerverse.contracts.system import (
    ARBITRATION,
    DAO_TIMELOCK,
    MARKET,
    ORDERS,
    PLATFORM_ADMIN,
    REPUTATION,
    RESOURCE_NFT,
    dev_system_config,
    genesis_role_changes,
    with_system_contracts,
)
from powerverse.crypto.keys import dev_accounts
from powerverse.market.admin import role_id
from powerverse.market.dao import Dao, encode_action
from powerverse.node.runner import NodeConfig, dev_validator
from tests.market.conftest import ClientFactory, make_factory
from tests.market.dao_helpers import (
    FOUNDATION,
    PVC,
    approve,
    queue_and_execute,
    submit,
    vote_through,
)
from tests.market.market_helpers import refused
from tests.rpc.conftest import ThreadedNode, run_threaded, stop_threaded

TIMELOCK = "0x" + DAO_TIMELOCK.hex()
GOVERNED: tuple[tuple[str, str, tuple[object, ...]], ...] = (
    ("Market", "setFee", (100,)),
    ("Orders", "setFee", (100,)),
    ("Reputation", "setMinReputation", (0,)),
    ("ResourceNFT", "setWeights", ((1, 1, 1, 1, 1, 1, 1, 1, 1, 1),)),
    ("PlatformAdmin", "pause", ("stop",)),
)
OPERATIONAL = (
    ("ResourceNFT", "VERIFIER_ROLE"),
    ("Market", "ARBITER_ROLE"),
    ("Arbitration", "ARBITER_ROLE"),
    ("PlatformAdmin", "ADMIN_ROLE"),
)


@pytest.fixture(scope="module")
def gov_node(
    tmp_path_factory: pytest.TempPathFactory, dev_signers: list[LocalAccount]
) -> Iterator[tuple[ThreadedNode, ClientFactory]]:
    """A dev node whose genesis gives the foundation no governance roles."""
    tmp = tmp_path_factory.mktemp("dao-gov")
    vkey = dev_validator()
    genesis = dev_genesis(
        int(time.time()),
        [a.address for a in dev_accounts()],
        Validator(vkey.address, vkey.consensus.public_key, DEFAULT_STAKE),
    )
    genesis = with_system_contracts(genesis, replace(dev_system_config(), dev_roles=False))
    path = tmp / "genesis.json"
    path.write_text(json.dumps(genesis.to_json()))
    node = run_threaded(NodeConfig(data_dir=tmp / "data", dev=True, rpc_port=0, genesis_file=path))
    try:
        yield node, make_factory(node, dev_signers)
    finally:
        stop_threaded(node)


def test_role_table() -> None:
    config = replace(dev_system_config(), dev_roles=False, governance=DAO_TIMELOCK)
    changes = genesis_role_changes(config)
    assert len(changes) == 2 * len(OPERATIONAL)
    assert all(account in (config.foundation, DAO_TIMELOCK) for _, _, account, _ in changes)
    dev = genesis_role_changes(replace(config, dev_roles=True))
    targets = {t for t, role, _, _ in dev if role == bytes(32)}
    assert targets == {RESOURCE_NFT, MARKET, ORDERS, REPUTATION, ARBITRATION, PLATFORM_ADMIN}
    assert genesis_role_changes(replace(config, governance=config.foundation)) == []


@pytest.mark.parametrize("account", [FOUNDATION, 1, 4, 9])
def test_nobody_but_the_timelock_changes_a_governed_parameter(
    gov_node: tuple[ThreadedNode, ClientFactory], account: int
) -> None:
    _, client = gov_node
    c = client(account)
    for name, function, args in GOVERNED:
        contract = c.contract(name)
        with refused("AccessControlUnauthorizedAccount"):
            c.transact(getattr(contract.functions, function)(*args))
        # nor can anyone give themselves the role
        gov_role = "PAUSER_ROLE" if name == "PlatformAdmin" else "GOVERNANCE_ROLE"
        with refused("AccessControlUnauthorizedAccount"):
            c.transact(contract.functions.grantRole(role_id(gov_role), c.address))
    arbitration = c.contract("Arbitration")
    with refused("AccessControlUnauthorizedAccount"):
        c.transact(arbitration.functions.grantRole(role_id("ARBITER_ROLE"), c.address))


def test_roles_after_genesis(gov_node: tuple[ThreadedNode, ClientFactory]) -> None:
    _, client = gov_node
    c = client(FOUNDATION)
    for name, role in OPERATIONAL:
        fn = c.contract(name).functions.hasRole
        assert c.call(fn(role_id(role), c.address)), (name, role)
        assert not c.call(fn(role_id(role), TIMELOCK)), (name, role)
    for name in ("ResourceNFT", "Market", "Orders", "Reputation", "Arbitration", "PlatformAdmin"):
        fn = c.contract(name).functions.hasRole
        assert c.call(fn(bytes(32), TIMELOCK)) and not c.call(fn(bytes(32), c.address)), name
        gov = role_id("PAUSER_ROLE" if name == "PlatformAdmin" else "GOVERNANCE_ROLE")
        assert c.call(fn(gov, TIMELOCK)) and not c.call(fn(gov, c.address)), name


def test_a_passed_vote_changes_a_parameter(gov_node: tuple[ThreadedNode, ClientFactory]) -> None:
    node, client = gov_node
    for i in (5, 6):
        Dao(client(i)).deposit(1_000 * PVC)
    dao = Dao(client(8))
    action = encode_action(dao.client, "Reputation", "setMinReputation", 10_000)
    pid = submit(client, 8, [action], title="lower the reputation gate")
    approve(client, pid)
    vote_through(node, client, [5, 6], pid)
    queue_and_execute(node, dao, pid)
    reputation = dao.client.contract("Reputation")
    assert dao.client.call(reputation.functions.minReputation()) == 10_000
