"""Block rewards on a real four-validator network (chain/rewards.py, docs/tokenomics.md).

The genesis lists the coin 31 days ago, so emission is flowing. Every non-empty block carries
its parent's finality certificate and pays, up to the parent's time, the parent's proposer and
the certificate's voters by weight: 3% to the dividend pool, the rest into Staking. Every node
agrees on what each block paid (`pv_getBlockReward`), the intervals chain without a gap or an
overlap, and the balances move by exactly those amounts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_utils.crypto import keccak

from powerverse.chain.genesis import DEFAULT_STAKE, Validator, dev_genesis
from powerverse.chain.rewards import DIVIDEND_POOL, EMISSION_POOL, STAKING
from powerverse.contracts.system import dev_system_config, dev_tokenomics, with_system_contracts
from powerverse.crypto.keys import dev_accounts
from powerverse.economics.emission import emitted
from powerverse.node.validator_key import ValidatorKey
from tests.e2e.nodeproc import rpc, validator_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N = 4
DAY = 86_400


class RewardNetwork:
    """Four genesis validators bonded in Staking, on a genesis whose emission has started."""

    def __init__(self, root: Path) -> None:
        self.keys = [ValidatorKey.from_label(f"e2e-rewards-{i}") for i in range(N)]
        now = int(time.time())
        funded = [a.address for a in dev_accounts()] + [k.address for k in self.keys]
        base = dev_genesis(now, funded)
        validators = tuple(
            Validator(k.address, k.consensus.public_key, DEFAULT_STAKE) for k in self.keys
        )
        self.listing = now - 31 * DAY
        genesis = replace(
            base, chain_id=31339, validators=validators, tokenomics=dev_tokenomics(self.listing)
        )
        genesis = with_system_contracts(genesis, dev_system_config())
        self.nodes = validator_nodes(root, genesis, self.keys)

    def height(self, i: int) -> int:
        try:
            return int(rpc(self.nodes[i].url, "eth_blockNumber", timeout=5), 16)
        except Exception:
            return -1


@pytest.fixture
def network(tmp_path: Path) -> Iterator[RewardNetwork]:
    net = RewardNetwork(tmp_path)
    try:
        for node in net.nodes:
            node.start()
        yield net
    finally:
        for node in net.nodes:
            node.stop()


def _block(url: str, number: int) -> dict[str, Any]:
    block: dict[str, Any] = rpc(url, "eth_getBlockByNumber", [hex(number), False])
    return block


def _balance(url: str, address: bytes, number: int) -> int:
    return int(rpc(url, "eth_getBalance", ["0x" + address.hex(), hex(number)]), 16)


def test_every_certified_block_pays_its_parent_exactly(network: RewardNetwork) -> None:
    net = network
    deadline = time.monotonic() + 180
    while min(net.height(i) for i in range(N)) < 8:
        assert time.monotonic() < deadline, "the network did not reach height 8"
        time.sleep(0.5)
    url = net.nodes[0].url
    last = 8
    paid_until = 0
    total = dividends = 0
    paying = 0
    for number in range(1, last + 1):
        block = _block(url, number)
        rewards = [rpc(n.url, "pv_getBlockReward", [hex(number)]) for n in net.nodes]
        assert all(r == rewards[0] for r in rewards), f"nodes disagree on block {number}"
        reward = rewards[0]
        empty = block["extraData"] == "0x"
        if number == 1 or empty:  # nothing to claim on genesis; an empty block claims nothing
            assert reward is None
            continue
        assert reward is not None, f"certified block {number} paid nothing"
        paying += 1
        parent = _block(url, number - 1)
        until = int(parent["timestamp"], 16)
        assert int(reward["until"], 16) == until
        assert int(reward["since"], 16) == paid_until  # no gap, no overlap
        amount = int(reward["total"], 16)
        assert amount == emitted(until, net.listing) - emitted(paid_until, net.listing)
        assert int(reward["dividend"], 16) == amount * 3 // 100
        parts = int(reward["proposer"]["amount"], 16) + sum(
            int(m["amount"], 16) for m in reward["committee"]
        )
        assert parts + int(reward["dividend"], 16) == amount
        # the committee is the voters of the parent's certificate that this block carries
        # (every node serves that one once the block exists), with their weights
        certs = [rpc(n.url, "pv_getCertificate", [hex(number - 1)]) for n in net.nodes]
        cert = certs[0]
        assert cert["onChain"] and all(c == cert for c in certs)
        voters = {v["voter"]: int(v["weight"]) for v in cert["votes"]}
        assert {m["consensusKey"]: int(m["weight"], 16) for m in reward["committee"]} == voters
        if parent["extraData"] != "0x":  # the parent's producer is the rewarded proposer
            assert reward["proposer"]["consensusKey"] == parent["extraData"]
        paid_until = until
        total += amount
        dividends += int(reward["dividend"], 16)
    assert paying >= 3
    # the balances moved by exactly what the blocks say (no transactions ran)
    assert _balance(url, EMISSION_POOL, 1) - _balance(url, EMISSION_POOL, last) == total
    assert _balance(url, DIVIDEND_POOL, last) - _balance(url, DIVIDEND_POOL, 1) == dividends
    staked = _balance(url, STAKING, last) - _balance(url, STAKING, 1)
    assert staked == total - dividends
    # inside Staking: commissions owed to the operators, the rest bonded (delegations compound)
    bonded = _staking_view(url, "totalBonded()", last) - _staking_view(url, "totalBonded()", 1)
    owed = _staking_view(url, "totalOwed()", last) - _staking_view(url, "totalOwed()", 1)
    assert bonded > 0 and owed > 0 and bonded + owed == staked


def _staking_view(url: str, signature: str, number: int) -> int:
    data = "0x" + keccak(text=signature)[:4].hex()
    return int(rpc(url, "eth_call", [{"to": "0x" + STAKING.hex(), "data": data}, hex(number)]), 16)
