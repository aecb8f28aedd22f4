"""Four validator processes on real sockets: finality, agreement, crashes and restarts."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from powerverse.chain.genesis import DEFAULT_STAKE, Validator, dev_genesis
from powerverse.consensus.messages import Chain, decode
from powerverse.crypto.consensus_keys import verify
from powerverse.crypto.keys import dev_accounts
from powerverse.node.validator_key import ValidatorKey
from tests.e2e.nodeproc import NodeProcess, RpcFailure, rpc, validator_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N = 4


class Network:
    """N validators sharing one genesis, each a `pv node` process with its own data dir."""

    def __init__(self, root: Path, programs: dict[int, tuple[str, ...]] | None = None) -> None:
        self.keys = [ValidatorKey.from_label(f"e2e-validator-{i}") for i in range(N)]
        genesis = dev_genesis(int(time.time()), [a.address for a in dev_accounts()])
        validators = tuple(
            Validator(k.address, k.consensus.public_key, DEFAULT_STAKE) for k in self.keys
        )
        genesis = replace(genesis, chain_id=31338, validators=validators)
        self.nodes: list[NodeProcess] = validator_nodes(root, genesis, self.keys, programs=programs)

    def height(self, i: int) -> int:
        try:
            return int(rpc(self.nodes[i].url, "eth_blockNumber", timeout=5), 16)
        except Exception:
            return -1

    def block_hash(self, i: int, number: int) -> str:
        block = rpc(self.nodes[i].url, "eth_getBlockByNumber", [hex(number), False])
        return str(block["hash"])

    def wait(self, what: str, done: Callable[[], bool], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.25)
        logs = "\n\n".join(f"--- node {i}\n{n.log()}" for i, n in enumerate(self.nodes))
        raise AssertionError(f"timed out waiting for {what}\n{logs}")


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path)
    try:
        for node in net.nodes:
            node.start()
        yield net
    finally:
        for node in net.nodes:
            node.stop()


def _status(net: Network, i: int) -> dict[str, Any]:
    result: dict[str, Any] = rpc(net.nodes[i].url, "pv_consensusStatus")
    return result


def test_four_validators_finalize_the_same_blocks(network: Network) -> None:
    net = network
    net.wait("height 4 everywhere", lambda: min(net.height(i) for i in range(N)) >= 4)
    for number in range(1, 5):
        assert len({net.block_hash(i, number) for i in range(N)}) == 1
    # A transfer sent to one node is finalized, with the same receipt, on all of them.
    sender = Account.from_key(dev_accounts()[0].private_key)
    raw = sender.sign_transaction(
        {"to": "0x" + "11" * 20, "value": 5, "gas": 21_000, "maxFeePerGas": 10**11,
         "maxPriorityFeePerGas": 10**9, "nonce": 0, "chainId": 31338, "type": 2}
    ).raw_transaction  # fmt: skip
    tx_hash = rpc(net.nodes[0].url, "eth_sendRawTransaction", ["0x" + bytes(raw).hex()])

    def included() -> bool:
        try:
            return all(rpc(n.url, "eth_getTransactionReceipt", [tx_hash]) for n in net.nodes)
        except RpcFailure:
            return False

    net.wait("the transfer on every node", included)
    receipts = [rpc(n.url, "eth_getTransactionReceipt", [tx_hash]) for n in net.nodes]
    assert len({(r["blockHash"], r["status"]) for r in receipts}) == 1
    assert receipts[0]["status"] == "0x1"
    # Certificates: a quorum of the committee, each vote with its sortition proof.
    number = int(receipts[0]["blockNumber"], 16)
    cert = rpc(net.nodes[3].url, "pv_getCertificate", [hex(number)])
    assert cert["blockHash"] == receipts[0]["blockHash"]
    assert len(cert["votes"]) >= 3 and all(len(v["vrfProof"]) == 2 + 160 for v in cert["votes"])
    status = _status(net, 1)
    assert status["peers"] == N - 1 and status["lastCertificate"] is not None
    assert len(rpc(net.nodes[2].url, "pv_validators")) == N


def _transfers(first_nonce: int, count: int) -> list[str]:
    """Signed transfers of 1 wei each from dev accounts 0-4 to fixed recipients."""
    out = []
    for k in range(count):
        sender = Account.from_key(dev_accounts()[k % 5].private_key)
        tx = {"to": "0x" + f"{0x70 + k % 5:02x}" * 20, "value": 1, "gas": 21_000,
              "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9,
              "nonce": first_nonce + k // 5, "chainId": 31338, "type": 2}  # fmt: skip
        out.append("0x" + bytes(sender.sign_transaction(tx).raw_transaction).hex())
    return out


def test_a_killed_validator_does_not_stop_finality_and_catches_up(network: Network) -> None:
    """kill -9 in the middle of a load: nothing lost, nothing applied twice, same state."""
    net = network
    net.wait("height 3", lambda: min(net.height(i) for i in range(N)) >= 3)
    load = _transfers(0, 100)
    for raw in load[:50]:
        rpc(net.nodes[3].url, "eth_sendRawTransaction", [raw])  # gossiped to the others
    net.nodes[3].kill9()
    for raw in load[50:]:
        rpc(net.nodes[0].url, "eth_sendRawTransaction", [raw])
    start = max(net.height(i) for i in range(3))
    net.wait(
        "3 more blocks without node 3", lambda: min(net.height(i) for i in range(3)) >= start + 3
    )
    net.nodes[3].start()
    target = max(net.height(i) for i in range(3)) + 2
    net.wait("node 3 caught up", lambda: net.height(3) >= target)
    assert net.block_hash(3, target) == net.block_hash(0, target)
    # Every transfer is applied, exactly once, with the same balances on every validator:
    # the ones node 3 took in just before it was killed come back from its journal.
    senders = [dev_accounts()[k].checksum for k in range(5)]
    recipients = ["0x" + f"{0x70 + k:02x}" * 20 for k in range(5)]

    def all_applied() -> bool:
        return all(
            int(rpc(net.nodes[0].url, "eth_getTransactionCount", [a, "latest"]), 16) == 20
            for a in senders
        )

    net.wait("all 100 transfers", all_applied)
    tag = hex(net.height(0))
    net.wait(
        "every node at that block", lambda: min(net.height(i) for i in range(N)) >= int(tag, 16)
    )
    for i in range(N):
        nonces = [
            int(rpc(net.nodes[i].url, "eth_getTransactionCount", [a, tag]), 16) for a in senders
        ]
        assert nonces == [20] * 5, (i, nonces)
        got = [int(rpc(net.nodes[i].url, "eth_getBalance", [r, tag]), 16) for r in recipients]
        assert got == [20] * 5, (i, got)
    voter = "0x" + net.keys[3].consensus.public_key.hex()

    def votes_again() -> bool:
        head = net.height(0)
        for number in range(target, head + 1):
            cert = rpc(net.nodes[0].url, "pv_getCertificate", [hex(number)])
            if cert and any(v["voter"] == voter for v in cert["votes"]):
                return True
        return False

    net.wait("node 3 voting again", votes_again)


def test_two_of_four_down_halts_finality_until_one_returns(network: Network) -> None:
    net = network
    net.wait("height 2", lambda: min(net.height(i) for i in range(N)) >= 2)
    net.nodes[2].kill9()
    net.nodes[3].kill9()
    time.sleep(2)  # a block already agreed may still land
    halted = max(net.height(i) for i in range(2))
    time.sleep(6)
    assert max(net.height(i) for i in range(2)) == halted  # no 2/3: nothing is finalized
    net.nodes[3].start()
    net.wait("finality resumes", lambda: min(net.height(i) for i in (0, 1, 3)) >= halted + 2)
    assert net.block_hash(3, halted + 1) == net.block_hash(0, halted + 1)


BYZANTINE = Path(__file__).with_name("byzantine_node.py")


def test_a_byzantine_validator_breaks_neither_safety_nor_liveness(tmp_path: Path) -> None:
    """Node 3 double-votes, proposes blocks with a wrong state root, forges next-height
    precommits in the others' names, then floods garbage."""
    program = (sys.executable, str(BYZANTINE), "--mode", "equivocate,invalid,forge,garbage")
    net = Network(tmp_path, {3: (*program, "--garbage-after", "12")})
    try:
        for node in net.nodes:
            node.start()
        honest = (0, 1, 2)
        net.wait("height 6", lambda: min(net.height(i) for i in honest) >= 6, timeout=120)
        net.wait(
            "equivocation evidence",
            lambda: any(_status(net, i)["evidence"] > 0 for i in honest),
        )
        # The evidence: two validly signed messages of the liar for one slot, ready to submit.
        chain = Chain(31338, bytes.fromhex(rpc(net.nodes[0].url, "pv_nodeInfo")["genesisHash"][2:]))
        records = [r for i in honest for r in rpc(net.nodes[i].url, "pv_getEvidence")]
        # only the liar: its next-height forgeries in honest names never count (they would
        # read as honest validators equivocating)
        assert {r["validator"] for r in records} == {"0x" + net.keys[3].consensus.public_key.hex()}
        record = records[0]
        first, second = (decode(bytes.fromhex(m[2:])) for m in record["messages"])
        assert (first.height, first.round) == (second.height, second.round)
        assert first.value != second.value
        for msg in (first, second):
            verify(net.keys[3].consensus.public_key, msg.signing_bytes(chain), msg.signature)
        # Garbage frames get the liar banned: honest nodes keep only each other.
        net.wait("the liar banned", lambda: all(_status(net, i)["peers"] == 2 for i in honest))
        start = min(net.height(i) for i in honest)
        net.wait("finality after the ban", lambda: min(net.height(i) for i in honest) >= start + 3)
        top = min(net.height(i) for i in honest)
        for number in range(1, top + 1):
            assert len({net.block_hash(i, number) for i in honest}) == 1, number
        # No block it made with a wrong state root was finalized: every block re-executes.
        liar = "0x" + net.keys[3].consensus.public_key.hex()
        for number in range(1, top + 1):
            block = rpc(net.nodes[0].url, "eth_getBlockByNumber", [hex(number), False])
            assert block["extraData"] != liar, f"block {number} is the liar's"
        # When the honest validators executed one of its blocks, they refused it for its
        # state root (whether it led a round before the ban is up to sortition).
        for node in net.nodes[:3]:
            for line in node.log_path.read_text().splitlines():
                if "refused:" in line and "state root" not in line:
                    assert "head is block" in line or "parent" in line, line
    finally:
        for node in net.nodes:
            node.stop()
