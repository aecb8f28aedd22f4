"""A test-only Byzantine validator: the real node with a producer that lies.

Run as ``python tests/e2e/byzantine_node.py --mode MODE <pv node network options>``. Modes
(comma-separated): ``equivocate`` (every vote and proposal goes out twice, the second for a
different value), ``invalid`` (its blocks carry a wrong state root), ``forge`` (beside each
vote it sends precommits of the next height for a made-up block in the other validators'
names, signed with its own key and claiming a huge weight: messages a node cannot check
until that height starts), ``garbage`` (after ``--garbage-after`` seconds it writes
undecryptable frames into every session). Nothing here is reachable from the ``pv`` command.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import rlp
import uvloop
from eth_hash.auto import keccak

from powerverse.chain.blockchain import genesis_hash
from powerverse.chain.blockcodec import encode_header
from powerverse.chain.genesis import load_genesis
from powerverse.consensus.messages import Message, Proposal, Step, Vote, encode
from powerverse.node.bft import TOPIC_CONSENSUS, TOPIC_PROPOSAL, BftProducer
from powerverse.node.runner import NodeConfig, start_node
from powerverse.node.validator_key import ValidatorKey
from powerverse.p2p import Host


class ByzantineProducer(BftProducer):
    """BftProducer that equivocates and/or proposes invalid blocks."""

    def __init__(self, *args: Any, modes: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modes = modes

    def _broadcast(self, msg: Message) -> None:
        super()._broadcast(msg)
        if "forge" in self.modes and isinstance(msg, Vote) and self.committee is not None:
            self._forge_next_height(msg)
        if "equivocate" not in self.modes or not isinstance(msg, Vote | Proposal):
            return
        # A second signed message for the same slot, straight to the network (no WAL).
        twin = replace(msg, value=keccak(b"byzantine" + msg.value), signature=b"")
        twin = replace(twin, signature=self._sign(twin.signing_bytes(self._ctx)))
        if isinstance(twin, Proposal):
            self._publish(TOPIC_PROPOSAL, bytes(rlp.encode([encode(twin), b""])))
        else:
            self._publish(TOPIC_CONSENSUS, encode(twin))

    def _forge_next_height(self, own: Vote) -> None:
        assert self.committee is not None
        bogus = keccak(b"forged block" + own.value)
        weight = replace(own.credential, weight=10**9)
        for voter in self.committee.stakes:
            if voter == own.voter:
                continue
            forged = Vote(
                height=own.height + 1,
                round=0,
                step=Step.PRECOMMIT,
                value=bogus,
                voter=voter,
                credential=weight,
                signature=b"",
            )
            forged = replace(forged, signature=self._sign(forged.signing_bytes(self._ctx)))
            self._publish(TOPIC_CONSENSUS, encode(forged))

    def _post(self, kind: str, data: Any) -> None:
        if kind == "built" and "invalid" in self.modes:
            round_, result, seed_proof = data
            header = result.decoded_header().copy(state_root=keccak(b"not the state root"))
            result = replace(result, block_hash=bytes(header.hash), header=encode_header(header))
            data = (round_, result, seed_proof)
        super()._post(kind, data)


async def _garbage(host: Host, after: float) -> None:
    await asyncio.sleep(after)
    while True:
        for conn in list(host._connections.values()):
            conn._writer.write(b"\x00\x00\x00\x20" + os.urandom(32))
        await asyncio.sleep(1.0)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--garbage-after", type=float, default=0.0)
    parser.add_argument("--genesis", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--validator-key", type=Path, required=True)
    parser.add_argument("--rpc-host", default="127.0.0.1")
    parser.add_argument("--rpc-port", type=int, required=True)
    parser.add_argument("--p2p-port", type=int, required=True)
    parser.add_argument("--bootnode", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    modes = set(args.mode.split(","))
    genesis = load_genesis(args.genesis)
    key = ValidatorKey.load(args.validator_key)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    host = Host(
        key.consensus,
        chain_id=genesis.chain_id,
        genesis_hash=genesis_hash(genesis),
        listen_port=args.p2p_port,
        bootnodes=args.bootnode,
    )
    producer = ByzantineProducer(genesis, host, args.data_dir, key, modes=modes)
    config = NodeConfig(
        data_dir=args.data_dir,
        genesis_file=args.genesis,
        validator_key=key,
        rpc_host=args.rpc_host,
        rpc_port=args.rpc_port,
    )
    running = await start_node(config, producer)
    await host.start()
    tasks = []
    if "garbage" in modes:
        tasks.append(asyncio.create_task(_garbage(host, args.garbage_after)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await running.stop()
        await host.stop()


if __name__ == "__main__":
    uvloop.run(main())
