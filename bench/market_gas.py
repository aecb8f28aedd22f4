"""Gas used by the user-facing ResourceNFT, Market and PlatformAdmin operations (issue 4).

Starts `pv node --dev` (or uses --rpc-url), runs each operation through the SDK in a realistic
order (register, verify, list, rent, confirm, heartbeat, extend, settle, withdraw, refund,
fault report, dispute and ruling, admin actions) and prints the receipt's gasUsed; with
--markdown, the table for docs/benchmarks.md.

    .venv/bin/python bench/market_gas.py                # start a dev node, print a table
    .venv/bin/python bench/market_gas.py --markdown     # the docs/benchmarks.md table
    .venv/bin/python bench/market_gas.py --json
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
from powerverse.market.admin import Admin
from powerverse.market.client import ChainClient
from powerverse.market.receipts import TxInfo
from powerverse.market.rentals import DAY, Rentals
from powerverse.market.resources import (
    Cpu,
    Disk,
    Gpu,
    Location,
    PerformPara,
    Ram,
    Resources,
)

PRICE = 10**17  # 0.1 PVC per day
PARA = PerformPara(
    cpu=Cpu(model="AMD EPYC 7763", clock_speed_mhz=2_450, cores=16),
    gpu=Gpu(model="NVIDIA GeForce RTX 4090", memory_mib=24_576, cuda_cores=16_384, count=2),
    ram=Ram(size_mib=65_536, frequency_mhz=3_200),
    disk=Disk(kind="nvme", size_gb=2_000, read_mbps=7_000, write_mbps=5_000),
)
WHERE = Location.from_degrees("cn-east", 31.2304, 121.4737)
Row = tuple[str, str, int]


def _dev(client: ChainClient, method: str, *params: Any) -> None:
    client.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]


def _head(client: ChainClient) -> int:
    return int(client.w3.eth.get_block("latest")["timestamp"])


def _warp_to(client: ChainClient, timestamp: int) -> None:
    """evm_increaseTime + evm_mine until the head is at `timestamp` or later."""
    now = _head(client)
    if now < timestamp:
        _dev(client, "evm_increaseTime", timestamp - now)
        _dev(client, "evm_mine", timestamp)


def measure_all(url: str) -> list[Row]:
    """Every user-facing operation once, in a realistic order."""
    c = [ChainClient(url, Account.from_key(a.private_key)) for a in dev_accounts(count=6)]
    foundation, provider, consumer, agent, keeper = c[0], c[1], c[2], c[3], c[4]
    rows: list[Row] = []

    def rec(contract: str, label: str, tx: TxInfo) -> None:
        rows.append((contract, label, tx.gas_used))

    nft = Resources(provider)
    verifier = Resources(foundation)
    m_provider, m_consumer, m_keeper = Rentals(provider), Rentals(consumer), Rentals(keeper)

    reg = nft.register(
        "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        PARA,
        WHERE,
        agent_endpoint="https://agent.example.org:7443/v1",
        agent=agent.address,
    )
    rec("ResourceNFT", "register (full parameters, location, agent)", reg.tx)
    token = reg.token_id
    rec(
        "ResourceNFT",
        "verify (VERIFIER_ROLE, computes performPoints)",
        verifier.verify(token, b"\xab" * 32).tx,
    )
    rec(
        "ResourceNFT",
        "setAgent",
        nft.set_agent(token, "https://agent2.example.org/v1", agent.address),
    )
    now = _head(provider)
    listing = dict(price_per_day=PRICE, available_from=now, available_until=now + 90 * DAY)
    rec("Market", "list", m_provider.list_resource(token, **listing, min_days=1, max_days=30))
    rec("Market", "updatePrice", m_provider.update_price(token, PRICE))
    rec("Market", "pauseListing", m_provider.pause_listing(token))
    rec("Market", "resumeListing", m_provider.resume_listing(token))

    # The full happy path: rent, confirm, heartbeat, extend, settle, withdraw.
    opened = m_consumer.rent(token, 3)
    rec("Market", "rent (3 days, escrow)", opened.tx)
    rec("Market", "confirm (agent key)", Rentals(agent).confirm(opened.rental_id).tx)
    rec("Market", "heartbeat (agent key)", Rentals(agent).heartbeat(opened.rental_id))
    rec("Market", "extend (+2 days)", m_consumer.extend(opened.rental_id, 2).tx)
    _warp_to(keeper, m_keeper.rental(opened.rental_id).end)
    rec(
        "Market",
        "settle (fee to treasury, records the order)",
        m_keeper.settle(opened.rental_id).tx,
    )
    rec("Market", "withdraw (provider)", m_provider.withdraw().tx)

    # No confirmation: anyone refunds after the deadline.
    pending = m_consumer.rent(token, 1)
    _warp_to(keeper, pending.confirm_deadline + 1)
    rec(
        "Market",
        "claimRefund (after the confirm deadline)",
        m_keeper.claim_refund(pending.rental_id).tx,
    )
    declined = m_consumer.rent(token, 1)
    rec("Market", "decline (provider, full refund)", m_provider.decline(declined.rental_id).tx)
    rec("Market", "withdraw (consumer)", m_consumer.withdraw().tx)

    # Provider fault: heartbeats stop, anyone reports, pro-rata refund.
    fault = m_consumer.rent(token, 2)
    m_provider.confirm(fault.rental_id)
    _warp_to(keeper, _head(keeper) + DAY)
    rec(
        "Market",
        "reportMissedHeartbeat (pro-rata split)",
        m_keeper.report_missed_heartbeat(fault.rental_id).tx,
    )

    # Dispute handed to Arbitration, ruled by the committee.
    disputed = m_consumer.rent(token, 1)
    m_provider.confirm(disputed.rental_id)
    opened_dispute = m_consumer.open_dispute(disputed.rental_id, "ipfs://bafy-evidence")
    rec("Market", "openDispute (hands it to Arbitration)", opened_dispute.tx)
    arbitration = foundation.contract("Arbitration")
    receipt = foundation.transact(
        arbitration.functions.rule(opened_dispute.dispute_id, PRICE // 2, "half each")
    )
    rec(
        "Arbitration→Market",
        "rule → resolveDispute (split and payout)",
        TxInfo.from_receipt(receipt),
    )
    rec("Market", "unlist", m_provider.unlist(token))
    rec("ResourceNFT", "transfer (not rented)", nft.transfer(token, c[5].address))

    admin = Admin(foundation)
    rec(
        "PlatformAdmin",
        "freezeAccount (with reason)",
        admin.freeze_account(keeper.address, "review"),
    )
    rec("PlatformAdmin", "unfreezeAccount", admin.unfreeze_account(keeper.address, "cleared"))
    rec("PlatformAdmin", "blacklistResource", admin.blacklist_resource(token, "fake benchmark"))
    rec("PlatformAdmin", "pause (emergency stop)", admin.pause("incident"))
    rec("PlatformAdmin", "unpause", admin.unpause("over"))
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
                print(f"{c:18} {op:{width}} {g:>9,}")
        return 0

    return run_guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
