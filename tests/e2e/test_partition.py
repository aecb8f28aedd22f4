"""A validator cut off by a real network partition (a network namespace) rejoins after it heals.

Validators 0-2 run in the test's network namespace, validator 3 in its own, joined by a veth
pair; the partition takes validator 3's end of the link down. Needs root and `ip netns`
(skipped otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from powerverse.chain.genesis import DEFAULT_STAKE, Validator, dev_genesis
from powerverse.crypto.keys import dev_accounts
from powerverse.node.validator_key import ValidatorKey
from tests.e2e.nodeproc import NodeProcess, free_port, rpc

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT_IP, NS_IP = "10.77.0.1", "10.77.0.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace() -> Iterator[tuple[str, str]]:
    tag = f"{os.getpid() % 100000}"
    ns, root_end, ns_end = f"pve2e{tag}", f"pv{tag}a", f"pv{tag}b"
    try:
        try:
            _ip("netns", "add", ns)
            _ip("link", "add", root_end, "type", "veth", "peer", "name", ns_end)
            _ip("link", "set", ns_end, "netns", ns)
            _ip("addr", "add", f"{ROOT_IP}/24", "dev", root_end)
            _ip("link", "set", root_end, "up")
            _ip("netns", "exec", ns, "ip", "addr", "add", f"{NS_IP}/24", "dev", ns_end)
            _ip("netns", "exec", ns, "ip", "link", "set", ns_end, "up")
            _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"network namespaces and veth links are not available here: {exc}")
        yield ns, ns_end
    finally:
        subprocess.run(["ip", "link", "del", root_end], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def test_a_partitioned_validator_rejoins_after_the_partition_heals(
    tmp_path: Path, namespace: tuple[str, str]
) -> None:
    ns, link = namespace
    keys = [ValidatorKey.from_label(f"partition-validator-{i}") for i in range(4)]
    genesis = dev_genesis(int(time.time()), [a.address for a in dev_accounts()])
    validators = tuple(Validator(k.address, k.consensus.public_key, DEFAULT_STAKE) for k in keys)
    genesis = replace(genesis, chain_id=31338, validators=validators)
    (tmp_path / "genesis.json").write_text(json.dumps(genesis.to_json()))
    hosts = [ROOT_IP, ROOT_IP, ROOT_IP, NS_IP]
    ports = [free_port() for _ in range(4)]
    nodes = []
    for i, key in enumerate(keys):
        key.save(tmp_path / f"key-{i}.json")
        boot = [
            f"--bootnode={keys[j].consensus.public_key.hex()}@{hosts[j]}:{ports[j]}"
            for j in range(4)
            if j != i
        ]
        args = (
            "--genesis", str(tmp_path / "genesis.json"),
            "--validator-key", str(tmp_path / f"key-{i}.json"),
            "--p2p-host", hosts[i], "--p2p-port", str(ports[i]),
            *boot,
        )  # fmt: skip
        nodes.append(
            NodeProcess(
                tmp_path / f"node-{i}",
                dev=False,
                extra_args=args,
                prefix=("ip", "netns", "exec", ns) if i == 3 else (),
                rpc_host=NS_IP if i == 3 else "127.0.0.1",
            )
        )

    def height(i: int) -> int:
        try:
            return int(rpc(nodes[i].url, "eth_blockNumber", timeout=3), 16)
        except Exception:
            return -1

    def wait(what: str, done: object, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():  # type: ignore[operator]
                return
            time.sleep(0.25)
        logs = "\n".join(f"--- node {i}\n{n.log()}" for i, n in enumerate(nodes))
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    try:
        for node in nodes:
            node.start()
        wait("height 3 everywhere", lambda: min(height(i) for i in range(4)) >= 3)
        _ip("netns", "exec", ns, "ip", "link", "set", link, "down")  # the partition
        cut = max(height(i) for i in range(3))
        wait("the majority goes on", lambda: min(height(i) for i in range(3)) >= cut + 4)
        _ip("netns", "exec", ns, "ip", "link", "set", link, "up")  # healed
        target = min(height(i) for i in range(3))
        wait("validator 3 rejoined", lambda: height(3) >= target + 2)
        number = target + 2
        hashes = {rpc(n.url, "eth_getBlockByNumber", [hex(number), False])["hash"] for n in nodes}
        assert len(hashes) == 1
        # While cut off it finalized nothing of its own: every block it has is the majority's.
        for n in range(1, number + 1):
            mine = rpc(nodes[3].url, "eth_getBlockByNumber", [hex(n), False])["hash"]
            assert mine == rpc(nodes[0].url, "eth_getBlockByNumber", [hex(n), False])["hash"]
    finally:
        for node in nodes:
            node.stop()
