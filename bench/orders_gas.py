"""Gas used by the user-facing Orders, Reputation and Arbitration operations (issue 4).

Starts `pv node --dev` (or uses --rpc-url), runs each operation through the SDK in a realistic
order (post, fill and settle a demand; post, take, submit, accept a MANUAL task; a HASH task
paid on submission; automatic acceptance; a missed deadline; cancel and expiry; a rejection
ruled by the committee and one escalated to governance; reviews; withdrawals) and prints the
receipt's gasUsed; with --markdown, the table for docs/benchmarks.md.

    .venv/bin/python bench/orders_gas.py                # start a dev node, print a table
    .venv/bin/python bench/orders_gas.py --markdown     # the docs/benchmarks.md table
    .venv/bin/python bench/orders_gas.py --json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `powerverse` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from eth_account import Account

from bench._procs import NodeProcess, free_port, ours_command, run_guarded
from powerverse.crypto.keys import dev_accounts
from powerverse.market.arbitration import Arbitration
from powerverse.market.client import ChainClient
from powerverse.market.orders import DAY, Orders, Specs, result_hash
from powerverse.market.receipts import TxInfo
from powerverse.market.resources import Cpu, Disk, Gpu, Location, PerformPara, Ram, Resources
from powerverse.market.reviews import Reviews

PRICE = 10**17  # 0.1 PVC per day
REWARD = 5 * 10**17
PARA = PerformPara(
    cpu=Cpu(model="AMD EPYC 7763", clock_speed_mhz=2_450, cores=16),
    gpu=Gpu(model="NVIDIA GeForce RTX 4090", memory_mib=24_576, cuda_cores=16_384, count=2),
    ram=Ram(size_mib=65_536, frequency_mhz=3_200),
    disk=Disk(kind="nvme", size_gb=2_000, read_mbps=7_000, write_mbps=5_000),
)
WHERE = Location.from_degrees("cn-east", 31.2304, 121.4737)
SPECS = Specs(
    cpu_cores=8,
    cpu_clock_mhz=2_000,
    gpu_memory_mib=16_384,
    gpu_count=1,
    ram_mib=32_768,
    disk_gb=500,
    disk_kind="nvme",
    region="cn-east",
)
SPEC_CID = "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
Row = tuple[str, str, int]


def _dev(client: ChainClient, method: str, *params: Any) -> None:
    client.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]


def _head(client: ChainClient) -> int:
    return int(client.w3.eth.get_block("latest")["timestamp"])


def _warp_by(client: ChainClient, seconds: int) -> None:
    """Move the head at least `seconds` forward (evm_increaseTime + evm_mine)."""
    target = _head(client) + seconds
    _dev(client, "evm_increaseTime", seconds)
    _dev(client, "evm_mine", target)


def measure_all(url: str) -> list[Row]:
    """Every user-facing operation once, in a realistic order."""
    c = [ChainClient(url, Account.from_key(a.private_key)) for a in dev_accounts(count=6)]
    foundation, provider, consumer, keeper = c[0], c[1], c[2], c[3]
    rows: list[Row] = []

    def rec(contract: str, label: str, tx: TxInfo) -> None:
        rows.append((contract, label, tx.gas_used))

    nft = Resources(provider)
    tokens = []
    for _ in range(3):
        token = nft.register("ipfs://bafy-vm", PARA, WHERE, agent_endpoint="https://a.example")
        Resources(foundation).verify(token.token_id, b"\x11" * 32)
        tokens.append(token.token_id)
    mine, theirs, keep = Orders(consumer), Orders(provider), Orders(keeper)

    # a demand filled into a rental and settled
    posted = mine.post_demand(SPECS, period_days=3, budget=4 * PRICE, deadline=_head(c[0]) + DAY)
    rec("Orders", "postDemand (specs, 3 days, budget escrowed)", posted.tx)
    filled = theirs.fill_demand(posted.order_id, tokens[0], PRICE)
    rec("Orders", "fillDemand (checks specs, refunds the rest, marks rented)", filled.tx)
    _warp_by(c[0], 3 * DAY)
    rec(
        "Orders",
        "settle (rent minus fee, resource freed, order recorded)",
        keep.settle(posted.order_id).tx,
    )
    key = mine.order_key(posted.order_id)
    rec(
        "Reputation",
        "review (first review of an account, with comment)",
        Reviews(consumer).review(key, 5, 4, 5, "ipfs://bafy-comment").tx,
    )
    rec("Reputation", "review (no comment)", Reviews(provider).review(key, 4, 4, 4).tx)

    # a MANUAL task accepted by the consumer
    deadline = _head(c[0]) + DAY
    task = mine.post_task(SPEC_CID, SPECS, reward=REWARD, deadline=deadline)
    rec("Orders", "postTask (MANUAL)", task.tx)
    rec(
        "Orders",
        "takeTask (checks specs and reputation, marks rented)",
        theirs.take_task(task.order_id, tokens[0]),
    )
    rec(
        "Orders",
        "submitResult (MANUAL: starts the review window)",
        theirs.submit_result(task.order_id, "ipfs://bafy-result", result_hash(b"out")).tx,
    )
    rec(
        "Orders",
        "accept (reward minus fee, resource freed, order recorded)",
        mine.accept(task.order_id).tx,
    )

    # a HASH task paid on submission
    task = mine.post_task(
        SPEC_CID, SPECS, reward=REWARD, deadline=deadline, expected_hash=result_hash(b"42")
    )
    rec("Orders", "postTask (HASH)", task.tx)
    theirs.take_task(task.order_id, tokens[0])
    rec(
        "Orders",
        "submitResult (HASH match: accepted and paid at once)",
        theirs.submit_result(task.order_id, "ipfs://bafy-42", result_hash(b"42")).tx,
    )

    # automatic acceptance after the review window
    task = mine.post_task(SPEC_CID, SPECS, reward=REWARD, deadline=deadline)
    theirs.take_task(task.order_id, tokens[0])
    theirs.submit_result(task.order_id, "ipfs://bafy-result")
    _warp_by(c[0], DAY + 1)
    rec(
        "Orders", "autoAccept (anyone, after the review window)", keep.auto_accept(task.order_id).tx
    )

    # a missed deadline: refund and reputation penalty
    task = mine.post_task(SPEC_CID, SPECS, reward=REWARD, deadline=_head(c[0]) + 3_600)
    theirs.take_task(task.order_id, tokens[1])
    _warp_by(c[0], 3_601)
    rec(
        "Orders",
        "expire (taken task, no result: refund + recordFailure)",
        keep.expire(task.order_id).tx,
    )

    # unfilled orders
    task = mine.post_task(SPEC_CID, SPECS, reward=REWARD, deadline=_head(c[0]) + 3_600)
    rec("Orders", "cancel (open order, consumer refunded)", mine.cancel(task.order_id).tx)
    posted = mine.post_demand(SPECS, period_days=1, budget=PRICE, deadline=_head(c[0]) + 3_600)
    _warp_by(c[0], 3_601)
    rec("Orders", "expire (open order past its deadline)", keep.expire(posted.order_id).tx)

    # a rejection ruled by the committee, and one escalated to governance
    arbitration = Arbitration(foundation)
    for escalate in (False, True):
        task = mine.post_task(SPEC_CID, SPECS, reward=REWARD, deadline=_head(c[0]) + DAY)
        theirs.take_task(task.order_id, tokens[2])
        theirs.submit_result(task.order_id, "ipfs://bafy-disputed")
        rejected = mine.reject(task.order_id, "the output does not meet the spec")
        if not escalate:
            rec("Orders→Arbitration", "reject (opens a dispute, escrow frozen)", rejected.tx)
            rec(
                "Arbitration",
                "submitEvidence",
                Arbitration(provider).submit_evidence(rejected.dispute_id, "ipfs://bafy-logs"),
            )
            ruling = arbitration.rule(rejected.dispute_id, REWARD // 2, "half each")
            rec("Arbitration→Orders", "rule → resolveDispute (split and payout)", ruling.tx)
        else:
            rec(
                "Arbitration",
                "escalate (to a DAO vote)",
                arbitration.escalate(rejected.dispute_id, "precedent"),
            )
            ruling = arbitration.rule(rejected.dispute_id, REWARD, "DAO vote: refund")
            rec("Arbitration→Orders", "rule by governance (escalated)", ruling.tx)

    task = mine.post_task(SPEC_CID, SPECS, reward=REWARD, deadline=_head(c[0]) + DAY)
    theirs.take_task(task.order_id, tokens[2])
    disputed = theirs.open_dispute(task.order_id, "the consumer withholds the input data")
    rec("Orders→Arbitration", "openDispute (provider, taken task)", disputed.tx)

    rec("Orders", "withdraw (provider)", theirs.withdraw().tx)
    rec("Orders", "withdraw (consumer)", mine.withdraw().tx)
    gov = Reviews(foundation)
    rec("Reputation", "setMinReputation (governance)", gov.set_min_reputation(25_000))
    gov.set_min_reputation(20_000)
    rec("Orders", "setFee (governance)", Orders(foundation).set_fee(300))
    return rows


def render_markdown(rows: Sequence[Row]) -> str:
    """The table for docs/benchmarks.md."""
    lines = ["| contract | operation | gas used |", "|---|---|---:|"]
    lines += [f"| `{c}` | {label} | {gas:,} |" for c, label, gas in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc-url", help="Use this dev node instead of starting one.")
    parser.add_argument("--json", action="store_true", help="Print one JSON document.")
    parser.add_argument("--markdown", action="store_true", help="Print a markdown table.")
    args = parser.parse_args(argv)

    def run() -> int:
        if args.rpc_url:
            rows = measure_all(args.rpc_url)
        else:
            port = free_port()
            with NodeProcess("ours", lambda d: ours_command(port, d / "data"), port) as node:
                rows = measure_all(node.url)
        if args.json:
            doc = [{"contract": c, "operation": op, "gasUsed": g} for c, op, g in rows]
            print(json.dumps({"gas": doc}, indent=2))
        elif args.markdown:
            print(render_markdown(rows))
        else:
            width = max(len(op) for _, op, _ in rows)
            for c, op, g in rows:
                print(f"{c:20} {op:{width}} {g:>9,}")
        return 0

    return run_guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
