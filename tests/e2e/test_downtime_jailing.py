"""Downtime jailing on a real network: validators prove their liveness on chain by themselves;
one that is killed is reported by the others once its liveness window passes, jailed, and leaves
the validator set, while the rest keep finalizing blocks.

Four genesis validators run as real `pv node` processes (tests/e2e/test_staking_join.py's
network without its fifth node).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from powerverse.chain.genesis import PVC
from powerverse.crypto.keys import dev_accounts
from powerverse.market.client import ChainClient
from powerverse.market.staking import Staking
from tests.e2e.nodeproc import rpc
from tests.e2e.test_staking_join import N, StakedNetwork

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WINDOW = 16


@pytest.fixture
def network(tmp_path: Path) -> Iterator[StakedNetwork]:
    net = StakedNetwork(tmp_path)
    try:
        for node in net.nodes[:N]:
            node.start()
        yield net
    finally:
        for node in net.nodes:
            node.stop()


def test_a_validator_that_goes_down_is_jailed_and_leaves_the_set(network: StakedNetwork) -> None:
    net = network
    net.wait("blocks", lambda: min(net.height(i) for i in range(N)) >= 2)
    foundation = ChainClient(net.nodes[0].url, Account.from_key(dev_accounts()[0].private_key))
    for key in net.keys:  # funded in genesis: gas for their own liveness proofs and reports
        assert foundation.balance(Account.from_key(key.account_key).address) > PVC
    staking = Staking(foundation)
    staking.set_liveness_window(WINDOW, "e2e")
    start = net.height(0)

    def proven(i: int) -> bool:
        return staking.liveness(net.keys[i].consensus.public_key)[0] > start

    net.wait("every validator proves its liveness itself", lambda: all(map(proven, range(N))))

    down = net.keys[N - 1].consensus.public_key
    net.nodes[N - 1].kill9()
    killed_at = net.height(0)
    net.wait(
        "the others report the killed validator and it is jailed",
        lambda: staking.validator_by_key(down).jailed,
        timeout=180,
    )
    assert not staking.validator_by_key(down).active
    assert down not in [v.consensus_key for v in staking.active_validators()]
    jailed_at = net.height(0)
    assert jailed_at > killed_at + WINDOW // 2  # not before its window could have run out

    down_hex = "0x" + down.hex()
    net.wait("consensus drops it", lambda: down_hex not in net.validator_keys())
    # the three live validators were never jailed and keep finalizing blocks on their own
    for key in net.keys[: N - 1]:
        assert not staking.validator_by_key(key.consensus.public_key).jailed
    dropped = net.height(0)
    net.wait("blocks go on", lambda: net.height(0) >= dropped + 3)
    assert all(down_hex not in net.voters(n) for n in range(dropped + 1, net.height(0) + 1))
    heads = [net.height(i) for i in range(N - 1)]
    number = min(heads)
    hashes = {
        rpc(net.nodes[i].url, "eth_getBlockByNumber", [hex(number), False])["hash"]
        for i in range(N - 1)
    }
    assert len(hashes) == 1
