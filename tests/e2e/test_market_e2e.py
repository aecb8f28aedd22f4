"""The market end to end: real `pv` processes against a real four-validator devnet.

`pv devnet up` starts four validator processes that agree on every block (BFT over real
sockets); time moves on with `pv devnet warp` (evm_increaseTime on every validator). The main
flows go through the `pv` executable exactly as a user types them (the README's walk-through,
`--json` output parsed); the Python SDK cross-checks the money to the wei. One devnet serves the
module: a rental from listing to withdrawal with the fee and both reviews; task orders accepted,
rejected into arbitration and refunded past their deadline; freezes and blacklists; and last,
kill -9 of the validator the CLI talks to right after a rent, then a restart on the same data
directory: it catches up, and every escrow and every balance owed is still there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from powerverse.crypto.keys import dev_accounts
from powerverse.market.arbitration import Arbitration
from powerverse.market.client import ChainClient, ContractError
from powerverse.market.orders import Orders, Specs
from powerverse.market.rentals import Rentals, RentalState
from powerverse.market.resources import Cpu, Disk, Gpu, Location, PerformPara, Ram, Resources
from powerverse.market.reviews import ReputationStats, Reviews
from tests.cli.test_devnet import ports
from tests.e2e.nodeproc import PV_BIN, REPO_ROOT, rpc
from tests.e2e.pvcli import PvCli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PVC = 10**18
DAY = 86_400
BPS = 10_000
FOUNDATION = 0  # dev account 0 holds every role: verifier, admin, arbiter, governance

# the README walk-through's resource, option for option
README_RESOURCE = (
    "--metadata", "ipfs://bafy-my-gpu-box",
    "--cpu-model", "AMD EPYC 7763", "--cpu-mhz", "2450", "--cpu-cores", "16",
    "--gpu-model", "NVIDIA RTX 4090", "--gpu-memory-mib", "24576", "--gpu-cuda-cores", "16384",
    "--gpu-count", "2",
    "--ram-mib", "65536", "--ram-mhz", "3200",
    "--disk-type", "nvme", "--disk-gb", "2000", "--disk-read-mbps", "7000",
    "--disk-write-mbps", "5000",
    "--region", "cn-east", "--lat", "31.23", "--lon", "121.47",
    "--agent-endpoint", "https://agent.example",
)  # fmt: skip
SDK_PARA = PerformPara(
    cpu=Cpu(model="AMD EPYC 9654", clock_speed_mhz=2400, cores=32),
    gpu=Gpu(model="NVIDIA A100", memory_mib=81920, cuda_cores=6912, count=1),
    ram=Ram(size_mib=131072, frequency_mhz=4800),
    disk=Disk(kind="nvme", size_gb=4000, read_mbps=7000, write_mbps=6000),
)


def addr(i: int) -> str:
    """Checksummed address of dev account i."""
    return to_checksum_address(dev_accounts()[i].address)


VALIDATORS = 4


class DevnetProcesses:
    """A devnet driven through `pv devnet` (real processes); node 0 serves the CLI and SDK."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def devnet(self, *args: str) -> Any:
        """`pv devnet ARGS --dir DIR --json`: its JSON document (the command must succeed)."""
        done = subprocess.run(
            [str(PV_BIN), "devnet", *args, "--dir", str(self.directory), "--json"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"pv devnet {args} -> {done.returncode}\n{done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None

    def up(self) -> None:
        doc = self.devnet("up", "-n", str(VALIDATORS), *ports(VALIDATORS))
        self.urls = [n["rpcUrl"] for n in doc["nodes"]]

    @property
    def url(self) -> str:
        return str(self.urls[0])

    def height(self, i: int) -> int:
        return int(rpc(self.urls[i], "eth_blockNumber"), 16)

    def kill9(self) -> None:
        """SIGKILL node 0 (the one the CLI talks to) and wait until it is gone."""
        (node,) = [n for n in self.devnet("status")["nodes"] if n["index"] == 0]
        os.kill(node["pid"], signal.SIGKILL)
        wait_for("node 0 to die", lambda: not _alive(node["pid"]))

    def start(self) -> None:
        """Start node 0 again on its data directory (`pv devnet start 0`)."""
        done = subprocess.run(
            [str(PV_BIN), "devnet", "start", "0", "--dir", str(self.directory)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    def down(self) -> None:
        subprocess.run(
            [str(PV_BIN), "devnet", "down", "--dir", str(self.directory)],
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=300,
            check=False,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (not yet reaped) counts as dead
        return f.read().split(") ")[-1][:1] != "Z"


def wait_for(
    what: str,
    done: Callable[[], bool],
    timeout: float = 90.0,
    explain: Callable[[], str] | None = None,
) -> None:
    """Poll `done` until it holds; on a timeout the failure carries `explain()` (e.g. a log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{explain()}" if explain else ""))


@dataclass
class Market:
    """The devnet under test, the `pv` command pointed at it, and SDK views for cross-checks."""

    node: DevnetProcesses
    pv: PvCli

    def client(self, signer: int | None = None) -> ChainClient:
        """An SDK client, signing as dev account `signer` when given."""
        account = (
            Account.from_key(dev_accounts()[signer].private_key) if signer is not None else None
        )
        return ChainClient(self.node.url, account)

    @property
    def rentals(self) -> Rentals:
        """The Market contract, read-only."""
        return Rentals(self.client())

    @property
    def orders(self) -> Orders:
        """The Orders contract, read-only."""
        return Orders(self.client())

    @property
    def reviews(self) -> Reviews:
        """The Reputation contract, read-only."""
        return Reviews(self.client())

    def balance(self, account: str) -> int:
        """Coins `account` holds now."""
        return self.client().balance(account)

    def head_time(self) -> int:
        """Timestamp of the latest block."""
        return int(rpc(self.node.url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def warp_past(self, moment: int) -> None:
        """Move chain time past `moment`: every validator's clock (`pv devnet warp`), then wait
        for the network to finalize a block after it."""
        head = self.head_time()
        if head <= moment:
            self.node.devnet("warp", str(moment - head + 2))
        wait_for(f"a block after {moment}", lambda: self.head_time() > moment)

    def paid_gas(self, tx: dict[str, Any]) -> int:
        """Wei a transaction from the CLI's `tx` document cost its sender."""
        receipt = self.client().w3.eth.get_transaction_receipt(tx["txHash"])
        assert receipt["gasUsed"] == tx["gasUsed"]
        return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])

    def verified_resource(self, provider: int) -> int:
        """A resource registered by dev account `provider` through the SDK and verified."""
        registered = Resources(self.client(provider)).register(
            "ipfs://bafy-sdk-box",
            SDK_PARA,
            Location.from_degrees("eu-west", 48.85, 2.35),
            agent_endpoint="https://agent.example",
        )
        Resources(self.client(FOUNDATION)).verify(registered.token_id, b"\x42" * 32)
        return registered.token_id


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    """One four-validator devnet (`pv devnet up`) for the whole module."""
    devnet = DevnetProcesses(tmp_path_factory.mktemp("market-e2e") / "devnet")
    try:
        devnet.up()
        yield Market(devnet, PvCli(devnet.url))
    finally:
        devnet.down()


def test_rental_walk_through(market: Market, tmp_path: Path) -> None:
    """The README's walk-through: register, verify, list, match, rent, confirm, time passes,
    settle with the fee, both review, the provider withdraws."""
    pv, provider, consumer = market.pv, addr(1), addr(2)
    cfg = market.rentals.config()
    assert cfg.fee_bps > 0

    token = pv.ok("resource", "register", *README_RESOURCE, signer=1)["tokenId"]
    bench = tmp_path / "bench.json"
    bench.write_text('{"gflops": 82.6}\n')
    verified = pv.ok("resource", "verify", str(token), "--evidence-file", str(bench), signer=0)
    assert verified["tokenId"] == token and verified["performPoints"] > 0
    assert verified["verification"]["status"] == "verified"
    assert verified["verification"]["verifier"] == addr(FOUNDATION)
    assert verified["verification"]["evidenceHash"] == "0x" + keccak(bench.read_bytes()).hex()
    listed = pv.ok("market", "list", str(token), "--price", "0.5", "--max-days", "30", signer=1)
    assert listed["status"] == "active" and listed["pricePerDay"] == str(PVC // 2)

    found = pv.ok("market", "match", "--days", "3", "--budget", "2", "--min-gpus", "2",
                  "--min-memory", "64GiB")  # fmt: skip
    assert str(token) in [m["token_id"] for m in found["matches"]], found
    assert found["matches"][0]["total_price_wei"] == str(3 * PVC // 2)
    too_poor = pv.run("market", "match", "--days", "3", "--budget", "1")
    assert too_poor.returncode == 1 and "budget" in too_poor.stdout

    rental = pv.ok("market", "rent", str(token), "3", signer=2)
    rid, rent = rental["rentalId"], 3 * PVC // 2
    assert rental["state"] == "pending" and rental["escrow"] == str(rent)
    assert rental["consumer"] == consumer and rental["provider"] == provider
    confirmed = pv.ok("market", "confirm", str(rid), signer=1)
    assert confirmed["state"] == "active" and confirmed["end"] == confirmed["start"] + 3 * DAY
    pv.refused("market", "settle", str(rid), error="RentalNotExpired", signer=2)

    market.warp_past(confirmed["end"])
    owed_before = market.rentals.owed(provider)
    treasury_before = market.rentals.owed(cfg.treasury)
    settled = pv.ok("market", "settle", str(rid), signer=2)
    fee = rent * cfg.fee_bps // BPS
    assert settled["state"] == "settled" and settled["fee"] == str(fee)
    assert settled["toProvider"] == str(rent - fee) and settled["toConsumer"] == "0"
    assert market.rentals.owed(provider) - owed_before == rent - fee
    assert market.rentals.owed(cfg.treasury) - treasury_before == fee
    assert market.rentals.totals().balanced

    key = market.rentals.order_key(rid)
    assert market.reviews.order(key) is not None  # recorded for reviews at settlement
    before = {who: market.reviews.stats(who) for who in (provider, consumer)}
    by_consumer = pv.ok("review", "give", "--rental", str(rid), "--quality", "5", "--service", "5",
                        "--efficiency", "4", signer=2)  # fmt: skip
    by_provider = pv.ok("review", "give", "--rental", str(rid), "--quality", "5", "--service", "4",
                        "--efficiency", "5", signer=1)  # fmt: skip
    with pytest.raises(ContractError) as again:  # once per side
        Reviews(market.client(2)).review(key, 1, 1, 1)
    assert again.value.name == "AlreadyReviewed"
    after = pv.ok("review", "reputation", provider)
    assert after["reviewsReceived"] == before[provider].reviews_received + 1
    assert after["reputation"] == by_consumer["newReputation"] != before[provider].reputation
    assert market.reviews.reputation(consumer) == by_provider["newReputation"]
    assert by_provider["newReputation"] != before[consumer].reputation

    owed = market.rentals.owed(provider)
    balance_before = market.balance(provider)
    paid = pv.ok("market", "withdraw", signer=1)
    assert paid["paid"] == str(owed) and paid["to"] == provider
    assert market.balance(provider) - balance_before == owed - market.paid_gas(paid["tx"])
    assert market.rentals.owed(provider) == 0
    assert market.rentals.rental(rid).state == RentalState.SETTLED


def _post_task(market: Market, consumer: int, reward: str, deadline: str) -> int:
    posted = market.pv.ok("task", "post", "--spec", "ipfs://bafy-task", "--reward", reward,
                          "--deadline", deadline, "--min-gpus", "1", signer=consumer)  # fmt: skip
    assert posted["kind"] == "task" and posted["state"] == "open"
    assert posted["acceptance"] == "manual"
    return int(posted["orderId"])


def _owed(orders: Orders, *accounts: str) -> list[int]:
    return [orders.owed(a) for a in accounts]


def test_task_accept_reject_and_deadline_refund(market: Market) -> None:
    """Tasks: accepted (reward minus fee), rejected into arbitration and split, and refunded
    in full past the deadline with the provider's reputation lowered."""
    pv, provider, consumer = market.pv, addr(3), addr(4)
    token = str(market.verified_resource(3))
    cfg = market.orders.config()
    reward = PVC

    # 1. accepted
    oid = str(_post_task(market, 4, "1", "+1d"))
    owed0 = _owed(market.orders, provider, consumer, cfg.treasury)
    taken = pv.ok("task", "take", oid, token, signer=3)
    assert taken["state"] == "taken" and taken["provider"] == provider
    submitted = pv.ok("task", "submit", oid, "--result", "ipfs://bafy-result-1", signer=3)
    assert submitted["state"] == "submitted" and submitted["payout"] is None
    accepted = pv.ok("task", "accept", oid, signer=4)
    fee = reward * cfg.fee_bps // BPS
    assert accepted["state"] == "completed" and accepted["toProvider"] == str(reward - fee)
    owed1 = _owed(market.orders, provider, consumer, cfg.treasury)
    assert [b - a for a, b in zip(owed0, owed1, strict=True)] == [reward - fee, 0, fee]

    # 2. rejected -> arbitration -> split
    oid = str(_post_task(market, 4, "1", "+1d"))
    pv.ok("task", "take", oid, token, signer=3)
    pv.ok("task", "submit", oid, "--result", "ipfs://bafy-result-2", signer=3)
    rejected = pv.ok("task", "reject", oid, "--reason", "wrong output", signer=4)
    did = rejected["disputeId"]
    waiting = pv.ok("arbitration", "list")["disputes"]
    (dispute,) = [d for d in waiting if d["disputeId"] == did]
    assert dispute["source"] == "Orders" and dispute["sourceId"] == int(oid)
    assert dispute["status"] == "open" and dispute["amount"] == str(reward)
    assert dispute["consumer"] == consumer and dispute["provider"] == provider
    consumer_share = 4 * PVC // 10
    ruled = pv.ok("arbitration", "rule", str(did), "--consumer-share", "0.4", "--reason",
                  "partly right", signer=FOUNDATION)  # fmt: skip
    assert ruled["status"] == "ruled" and ruled["consumerShare"] == str(consumer_share)
    assert ruled["providerShare"] == str(reward - consumer_share)
    assert did not in [d.dispute_id for d in Arbitration(market.client()).open_disputes()]
    provider_part = reward - consumer_share
    split_fee = provider_part * cfg.fee_bps // BPS
    owed2 = _owed(market.orders, provider, consumer, cfg.treasury)
    deltas = [b - a for a, b in zip(owed1, owed2, strict=True)]
    assert deltas == [provider_part - split_fee, consumer_share, split_fee]

    # 3. taken, no result by the deadline: anyone expires it, the consumer gets it all back
    oid = str(_post_task(market, 4, "1", "+1h"))
    taken = pv.ok("task", "take", oid, token, signer=3)
    before: ReputationStats = market.reviews.stats(provider)
    pv.refused("task", "expire", oid, error="DeadlineNotReached", signer=9)
    market.warp_past(taken["deadline"])
    expired = pv.ok("task", "expire", oid, signer=9)
    assert expired["state"] == "failed" and expired["toConsumer"] == str(reward)
    assert expired["toProvider"] == "0" and expired["fee"] == "0"
    owed3 = _owed(market.orders, provider, consumer, cfg.treasury)
    assert [b - a for a, b in zip(owed2, owed3, strict=True)] == [0, reward, 0]
    after = market.reviews.stats(provider)
    assert after.failures == before.failures + 1
    assert after.reputation < before.reputation
    assert market.orders.totals().balanced


def test_freeze_and_blacklist(market: Market) -> None:
    """A frozen resource can be neither listed nor rented, a blacklisted consumer cannot rent;
    lifting either lets business go on."""
    pv, consumer = market.pv, addr(6)
    token = market.verified_resource(5)
    tid = str(token)
    pv.ok("market", "list", tid, "--price", "0.1", signer=5)

    frozen = pv.ok("admin", "freeze-resource", tid, "--reason", "audit", signer=FOUNDATION)
    assert frozen["frozen"] and frozen["reason"] == "audit"
    refusal = pv.refused("market", "rent", tid, "1", error="ResourceBlocked", signer=6)
    assert refusal["args"] == {"tokenId": token}
    Rentals(market.client(5)).unlist(token)
    pv.refused("market", "list", tid, "--price", "0.1", error="ResourceBlocked", signer=5)
    pv.ok("admin", "unfreeze-resource", tid, "--reason", "audit passed", signer=FOUNDATION)
    assert pv.ok("market", "list", tid, "--price", "0.1", signer=5)["status"] == "active"
    rented = pv.ok("market", "rent", tid, "1", signer=6)
    assert rented["state"] == "pending" and rented["escrow"] == str(PVC // 10)
    declined = Rentals(market.client(5)).decline(rented["rentalId"])  # frees the resource
    assert declined.to_consumer == PVC // 10

    banned = pv.ok("admin", "blacklist-account", consumer, "--reason", "fraud", signer=FOUNDATION)
    assert banned["blacklisted"]
    refusal = pv.refused("market", "rent", tid, "1", error="AccountBlocked", signer=6)
    assert refusal["args"] == {"account": consumer}
    pv.ok("admin", "unblacklist-account", consumer, "--reason", "appeal", signer=FOUNDATION)
    again = Rentals(market.client(6)).rent(token, 1)
    assert market.rentals.rental(again.rental_id).state == RentalState.PENDING


def _money_snapshot(market: Market) -> dict[str, Any]:
    """Everything the market contracts hold and owe, per account, and every account's coins."""
    accounts = [addr(i) for i in range(10)]
    accounts.append(market.rentals.config().treasury)
    return {
        "market": market.rentals.totals(),
        "orders": market.orders.totals(),
        "market_owed": {a: market.rentals.owed(a) for a in accounts},
        "orders_owed": {a: market.orders.owed(a) for a in accounts},
        "balances": {a: market.balance(a) for a in accounts},
        "rentals": [market.rentals.rental(i) for i in range(1, market.rentals.rental_count() + 1)],
    }


def test_kill_9_after_a_rent_loses_nothing(market: Market) -> None:
    """kill -9 right after a rent; on restart over the same data directory the escrowed rental,
    the task escrow and every balance owed are still there, and the rental carries on."""
    pv = market.pv
    token = market.verified_resource(7)
    provider, consumer = Rentals(market.client(7)), Rentals(market.client(8))
    provider.list_resource(
        token, price_per_day=PVC // 4, available_from=market.head_time(),
        available_until=market.head_time() + 30 * DAY, min_days=1, max_days=10,
    )  # fmt: skip
    provider.decline(consumer.rent(token, 1).rental_id)  # the consumer is owed a refund
    tasks = Orders(market.client(8))
    due = market.head_time() + DAY
    tasks.cancel(tasks.post_task("ipfs://t", Specs(), reward=PVC, deadline=due).order_id)
    held = tasks.post_task("ipfs://t", Specs(), reward=PVC, deadline=due).order_id
    rented = pv.ok("market", "rent", str(token), "2", signer=8)
    rid = rented["rentalId"]
    before = _money_snapshot(market)
    assert before["market_owed"][addr(8)] >= PVC // 4 and before["orders_owed"][addr(8)] >= PVC
    assert before["market"].escrowed >= PVC // 2 and before["orders"].escrowed >= PVC
    height = market.node.height(0)

    market.node.kill9()
    market.node.start()

    # it catches up with the three validators that went on, and agrees with them
    wait_for("node 0 to catch up", lambda: market.node.height(0) >= market.node.height(1) > height)
    number = market.node.height(1)
    assert (
        len(
            {rpc(u, "eth_getBlockByNumber", [hex(number), False])["hash"] for u in market.node.urls}
        )
        == 1
    )
    assert _money_snapshot(market) == before
    rental = market.rentals.rental(rid)
    assert rental.state == RentalState.PENDING and rental.escrow == PVC // 2
    assert rental.consumer == addr(8)
    assert market.orders.order(held).escrow == PVC
    confirmed = pv.ok("market", "confirm", str(rid), signer=7)
    assert confirmed["state"] == "active"
    assert market.rentals.totals().balanced and market.orders.totals().balanced
