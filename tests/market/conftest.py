"""Fixtures for market tests: a real dev node (system contracts predeployed) and SDK clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from powerverse.crypto.keys import dev_accounts
from powerverse.market.client import ChainClient
from powerverse.node.runner import NodeConfig
from tests.rpc.conftest import ThreadedNode, run_threaded, stop_threaded

ClientFactory = Callable[[int], ChainClient]


@pytest.fixture(scope="session")
def dev_signers() -> list[LocalAccount]:
    """The 20 dev accounts as signers; account 0 is the foundation holding every role."""
    return [Account.from_key(a.private_key) for a in dev_accounts()]


@pytest.fixture(scope="module")
def dev_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedNode]:
    """One real dev node (real socket, block executor process) for a test module."""
    node = run_threaded(
        NodeConfig(data_dir=tmp_path_factory.mktemp("market") / "data", dev=True, rpc_port=0)
    )
    try:
        yield node
    finally:
        stop_threaded(node)


@pytest.fixture
def fresh_node(tmp_path: Path) -> Iterator[ThreadedNode]:
    """A dev node of its own for one test (for tests that need untouched genesis state)."""
    node = run_threaded(NodeConfig(data_dir=tmp_path / "data", dev=True, rpc_port=0))
    try:
        yield node
    finally:
        stop_threaded(node)


def make_factory(node: ThreadedNode, signers: list[LocalAccount]) -> ClientFactory:
    """client(i) -> a ChainClient signing as dev account i against `node`."""
    cache: dict[int, ChainClient] = {}

    def client(i: int) -> ChainClient:
        if i not in cache:
            cache[i] = ChainClient(node.url, signers[i])
        return cache[i]

    return client


@pytest.fixture(scope="module")
def client(dev_node: ThreadedNode, dev_signers: list[LocalAccount]) -> ClientFactory:
    """client(i): an SDK client for dev account i on the module's dev node."""
    return make_factory(dev_node, dev_signers)


def increase_time(node: ThreadedNode, seconds: int) -> int:
    """Move the dev chain's clock at least `seconds` past the head and mine a block.

    Dev block timestamps may run ahead of the wall clock, so the new head is made to be at least
    head + seconds. Returns the new head timestamp.
    """

    def head_time() -> int:
        return int(node.result("eth_getBlockByNumber", "latest", False)["timestamp"], 16)

    target = head_time() + seconds
    node.result("evm_increaseTime", seconds)
    node.result("evm_mine")
    now = head_time()
    if now < target:
        node.result("evm_setNextBlockTimestamp", target)
        node.result("evm_mine")
        now = head_time()
    return now
