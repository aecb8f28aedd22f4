"""A real node (chain, pool, producer, RPC server on a real socket) in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from powerverse.crypto.keys import dev_accounts
from powerverse.node.runner import NodeConfig, RunningNode, start_node


@dataclass
class ThreadedNode:
    """A node serving on 127.0.0.1 from its own event loop thread."""

    running: RunningNode
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    client: httpx.Client

    @property
    def url(self) -> str:
        """HTTP JSON-RPC URL."""
        return self.running.rpc_url

    def call(self, method: str, *params: Any) -> dict[str, Any]:
        """The whole JSON-RPC response object."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        doc: dict[str, Any] = self.client.post(self.url, json=body).json()
        return doc

    def result(self, method: str, *params: Any) -> Any:
        """The result; fails the test on an error."""
        doc = self.call(method, *params)
        assert "error" not in doc, f"{method} failed: {doc['error']}"
        return doc["result"]

    def error(self, method: str, *params: Any) -> dict[str, Any]:
        """The error object; fails the test on success."""
        doc = self.call(method, *params)
        assert "error" in doc, f"{method} unexpectedly succeeded: {doc.get('result')}"
        err: dict[str, Any] = doc["error"]
        return err


def run_threaded(config: NodeConfig) -> ThreadedNode:
    """Start a node in a new thread and wait until it serves."""
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            started["node"] = loop.run_until_complete(start_node(config))
        except BaseException as exc:  # surfaced to the test below
            started["error"] = exc
        ready.set()
        if "node" in started:
            loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(60)
    if "error" in started:
        raise started["error"]
    return ThreadedNode(started["node"], loop, thread, httpx.Client(timeout=30))


def stop_threaded(node: ThreadedNode) -> None:
    """Stop serving and join the thread."""
    node.client.close()
    asyncio.run_coroutine_threadsafe(node.running.stop(), node.loop).result(30)
    node.loop.call_soon_threadsafe(node.loop.stop)
    node.thread.join(30)
    node.loop.close()


@pytest.fixture
def dev_node(tmp_path: Path) -> Iterator[ThreadedNode]:
    """A fresh dev node per test."""
    node = run_threaded(NodeConfig(data_dir=tmp_path / "data", dev=True, rpc_port=0))
    try:
        yield node
    finally:
        stop_threaded(node)


@pytest.fixture(scope="module")
def shared_dev_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedNode]:
    """One dev node for a whole module (tests must not depend on each other's blocks)."""
    node = run_threaded(
        NodeConfig(data_dir=tmp_path_factory.mktemp("shared") / "data", dev=True, rpc_port=0)
    )
    try:
        yield node
    finally:
        stop_threaded(node)


@pytest.fixture(scope="session")
def accounts() -> list[LocalAccount]:
    """Dev accounts as eth-account signers."""
    return [Account.from_key(a.private_key) for a in dev_accounts(count=10)]
