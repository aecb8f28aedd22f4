"""A validator joins a running network by staking, is selected and votes; unbonding removes it.

Four genesis validators run as real `pv node` processes; a fifth node with a fresh key follows
the chain, its account registers in the Staking contract, and consensus starts counting it
`lookback` blocks later (its votes appear in finality certificates). When it undelegates its
self-stake it drops out of the validator set and its votes stop appearing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from powerverse.chain.genesis import DEFAULT_STAKE, PVC, Validator, dev_genesis
from powerverse.contracts.system import dev_system_config, with_system_contracts
from powerverse.crypto.keys import dev_accounts
from powerverse.market.client import ChainClient
from powerverse.market.staking import Staking
from powerverse.node.validator_key import ValidatorKey
from tests.e2e.nodeproc import rpc, validator_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N = 4


class StakedNetwork:
    """Four genesis validators (stakes bonded in Staking) and one node that joins later."""

    def __init__(self, root: Path) -> None:
        self.keys = [ValidatorKey.from_label(f"e2e-staked-{i}") for i in range(N)]
        self.joiner = ValidatorKey.from_label("e2e-joiner")
        funded = [a.address for a in dev_accounts()] + [k.address for k in self.keys]
        base = dev_genesis(int(time.time()), funded)
        validators = tuple(
            Validator(k.address, k.consensus.public_key, DEFAULT_STAKE) for k in self.keys
        )
        units = sum(v.stake for v in validators) // base.consensus.stake_unit_wei
        consensus = replace(base.consensus, tau_committee=units)
        genesis = replace(base, chain_id=31338, validators=validators, consensus=consensus)
        genesis = with_system_contracts(genesis, dev_system_config())
        self.lookback = genesis.consensus.lookback
        self.nodes = validator_nodes(root, genesis, [*self.keys, self.joiner], validators=N)

    def height(self, i: int) -> int:
        try:
            return int(rpc(self.nodes[i].url, "eth_blockNumber", timeout=5), 16)
        except Exception:
            return -1

    def voters(self, number: int) -> set[str]:
        cert = rpc(self.nodes[0].url, "pv_getCertificate", [hex(number)])
        return {v["voter"] for v in cert["votes"]} if cert else set()

    def validator_keys(self) -> set[str]:
        return {v["consensusKey"] for v in rpc(self.nodes[0].url, "pv_validators")}

    def wait(self, what: str, done: Callable[[], bool], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.25)
        logs = "\n\n".join(f"--- node {i}\n{n.log()}" for i, n in enumerate(self.nodes))
        raise AssertionError(f"timed out waiting for {what}\n{logs}")


@pytest.fixture
def network(tmp_path: Path) -> Iterator[StakedNetwork]:
    net = StakedNetwork(tmp_path)
    try:
        for node in net.nodes:
            node.start()
        yield net
    finally:
        for node in net.nodes:
            node.stop()


def test_a_validator_joins_by_staking_and_leaves_by_unbonding(network: StakedNetwork) -> None:
    net = network
    joiner_key = "0x" + net.joiner.consensus.public_key.hex()
    net.wait("the joiner follows the chain", lambda: net.height(N) >= 2 and net.height(0) >= 2)
    assert joiner_key not in net.validator_keys()

    funder = ChainClient(net.nodes[0].url, Account.from_key(dev_accounts()[0].private_key))
    joiner_account = Account.from_key(net.joiner.account_key)
    funder.send_value(joiner_account.address, 2_000 * PVC)
    staking = Staking(ChainClient(net.nodes[0].url, joiner_account))
    staking.register(net.joiner.consensus.public_key, 500, 1_000 * PVC)
    joined_at = net.height(0)

    net.wait("consensus counts the joiner", lambda: joiner_key in net.validator_keys())

    def votes_from_joiner() -> bool:
        head = net.height(0)
        return any(joiner_key in net.voters(n) for n in range(joined_at + 1, head + 1))

    net.wait("a certificate carrying the joiner's vote", votes_from_joiner)

    staking.undelegate(joiner_account.address, 1_000 * PVC)
    left_at = net.height(0)
    net.wait("the joiner leaves the validator set", lambda: joiner_key not in net.validator_keys())
    gone = net.height(0)
    net.wait("a few more blocks", lambda: net.height(0) >= gone + 3)
    later = range(max(gone, left_at + net.lookback) + 1, net.height(0) + 1)
    assert later
    assert all(joiner_key not in net.voters(n) for n in later)
    # every validator agrees on the chain throughout
    head = min(net.height(i) for i in range(N + 1))
    for number in (joined_at, left_at, head):
        hashes = {
            rpc(n.url, "eth_getBlockByNumber", [hex(number), False])["hash"] for n in net.nodes
        }
        assert len(hashes) == 1
