#!/usr/bin/env python3
"""CPU cost of building and of re-executing one block of value transfers, in one process.

    .venv/bin/python bench/blockexec.py [--count 2000] [--rounds 3] [--profile FILE]

The devnet's per-height work without the network: node A builds a block of --count (1,400)
pre-signed 1-wei transfers from 20 accounts to 1,024 keyless recipients (the load of
bench/tps.py) and
commits it; node B (its own store, same genesis) re-executes that block, as every validator
does before voting, and commits it. Several rounds on a growing state; prints µs per transfer.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account import Account

from powerverse.chain.blockchain import Blockchain
from powerverse.chain.blockcodec import encode_block
from powerverse.chain.executor import pooled_from_raw
from powerverse.chain.genesis import dev_genesis
from powerverse.chain.store import LmdbStore
from powerverse.chain.txdecode import decode_raw_transaction

T0 = 1_700_000_000
SENDERS = [Account.from_key(bytes([i + 1]) * 32) for i in range(20)]
RECIPIENTS = 1024


def _recipient(i: int) -> str:
    from bench._tx import recipient

    return recipient(i % RECIPIENTS)


def _load(first_nonce: int, count: int) -> list[bytes]:
    per = -(-count // len(SENDERS))
    raws: list[bytes] = []
    for n in range(per):
        for s, key in enumerate(SENDERS):
            if len(raws) == count:
                break
            tx = {
                "nonce": first_nonce + n,
                "gas": 21_000,
                "maxFeePerGas": 10**11,
                "maxPriorityFeePerGas": 10**9,
                "to": _recipient(len(raws) + s),
                "value": 1,
                "chainId": 31337,
                "type": 2,
            }
            raws.append(bytes(key.sign_transaction(tx).raw_transaction))
    return raws


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--count", type=int, default=1400, help="transfers per block (1,428 fit the gas limit)"
    )
    p.add_argument("--rounds", type=int, default=3, help="blocks")
    p.add_argument("--profile", type=Path, help="write cProfile stats of the timed part here")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()
    addrs = [bytes.fromhex(a.address[2:]) for a in SENDERS]
    genesis = dev_genesis(T0, addrs)
    per = -(-args.count // len(SENDERS))
    loads = [_load(r * per, args.count) for r in range(args.rounds)]
    profiler = cProfile.Profile() if args.profile else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="pv-blockexec-") as tmp:
        a = Blockchain(LmdbStore(Path(tmp) / "a"), genesis)
        b = Blockchain(LmdbStore(Path(tmp) / "b"), genesis)
        try:
            for r, raws in enumerate(loads):
                pooled = []
                for raw in raws:
                    sender = decode_raw_transaction(raw).sender
                    pooled.append(pooled_from_raw(raw, sender))
                if profiler:
                    profiler.enable()
                t0 = time.process_time()
                built = a.propose_block(pooled, timestamp=T0 + 10 * (r + 1), coinbase=b"\x01" * 20)
                t1 = time.process_time()
                a.commit_pending(built.block.hash, b"")
                t2 = time.process_time()
                block = built.block
                payloads = [tx.encode() for tx in block.transactions]
                hashes = (tx.hash for tx in block.transactions)
                senders = dict(zip(hashes, built.senders, strict=True))
                t3 = time.process_time()
                done = b.execute_block(block.header, payloads, known_senders=senders)
                t4 = time.process_time()
                b.commit_pending(done.block.hash, b"")
                t5 = time.process_time()
                if profiler:
                    profiler.disable()
                assert done.block.hash == block.hash
                n = len(block.transactions)
                if n == 0:
                    raise SystemExit(f"no transfer fit: {built.rejected[:3]}")
                rows.append(
                    {
                        "transfers": n,
                        "build_us": (t1 - t0) / n * 1e6,
                        "commit_built_us": (t2 - t1) / n * 1e6,
                        "execute_us": (t4 - t3) / n * 1e6,
                        "commit_executed_us": (t5 - t4) / n * 1e6,
                        "block_bytes": len(encode_block(block.header, payloads)),
                    }
                )
        finally:
            a.close()
            b.close()
    if profiler and args.profile:
        profiler.dump_stats(str(args.profile))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r, row in enumerate(rows):
            print(
                f"block {r + 1}: {row['transfers']} transfers  build {row['build_us']:.0f} µs/tx"
                f"  commit {row['commit_built_us']:.0f}  re-execute {row['execute_us']:.0f} µs/tx"
                f"  commit {row['commit_executed_us']:.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
