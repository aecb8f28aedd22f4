"""The loads: value transfers, ERC-20 transfers, eth_call latency and a long memory run.

Every load pre-signs its transactions, then sends them in JSON-RPC batches that hold one tx per
account (nonce k of every account in batch k: Hardhat's automine refuses future nonces inside
one batch), and waits until every account's nonce shows all its txs included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bench._accounts import Sender, derive_senders
from bench._rpc import RpcClient
from bench._tx import (
    GWEI,
    Fees,
    SignedTx,
    balance_of_data,
    constructor_args,
    recipient,
    sign,
    transfer_data,
)
from bench.exceptions import LoadError, RpcError

__all__ = [
    "CallResult",
    "LoadResult",
    "MemoryResult",
    "NoProgress",
    "Progress",
    "Target",
    "connect",
    "deploy_erc20",
    "fund_tokens",
    "prepare_senders",
    "run_calls",
    "run_erc20",
    "run_memory",
    "run_transfers",
    "split",
]

TRANSFER_GAS = 21_000
MIN_MAX_FEE = 100 * GWEI
TIP = 1 * GWEI
RECEIPT_BATCH = 500


class Progress(Protocol):
    """Where loads report progress (a rich bar in the CLI, nothing in tests)."""

    def start(self, label: str, total: int) -> None:
        """Begin a new phase of `total` steps."""

    def advance(self, steps: int) -> None:
        """Mark `steps` more steps done."""

    def finish(self) -> None:
        """End the current phase."""


class NoProgress:
    """A Progress that shows nothing."""

    def start(self, label: str, total: int) -> None:
        """Ignore the phase."""

    def advance(self, steps: int) -> None:
        """Ignore the steps."""

    def finish(self) -> None:
        """Ignore the end."""


@dataclass(frozen=True)
class Target:
    """The node under load and the settings every load shares."""

    rpc: RpcClient
    chain_id: int
    fees: Fees
    progress: Progress
    stall_timeout: float = 60.0
    poll_interval: float = 0.05


class Rates:
    """Rates of a timed load; the class using it has count, included and both durations."""

    count: int
    included: int
    seconds: float
    send_seconds: float

    @property
    def tps(self) -> float:
        """Included transactions per second, end to end."""
        return self.included / self.seconds if self.seconds > 0 else 0.0

    @property
    def send_tps(self) -> float:
        """Transactions accepted per second by eth_sendRawTransaction."""
        return self.count / self.send_seconds if self.send_seconds > 0 else 0.0


@dataclass(frozen=True)
class LoadResult(Rates):
    """Outcome of one batch of transactions, timed from first send to last inclusion."""

    name: str
    count: int
    included: int
    failed: int
    seconds: float
    send_seconds: float
    blocks: int


@dataclass(frozen=True)
class CallResult:
    """Latency of sequential eth_call requests."""

    count: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @property
    def calls_per_s(self) -> float:
        """Sequential calls answered per second."""
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class MemoryResult:
    """Node memory before and after a long run of transfers; seconds: send-to-inclusion time."""

    count: int
    included: int
    seconds: float
    rss_before: int | None
    rss_after: int | None
    rss_peak: int | None

    @property
    def tps(self) -> float:
        """Included transfers per second, summed over chunks (signing between chunks excluded)."""
        return self.included / self.seconds if self.seconds > 0 else 0.0


def connect(
    rpc: RpcClient,
    *,
    progress: Progress | None = None,
    stall_timeout: float = 60.0,
) -> Target:
    """Read chain id and base fee from the node and pick fee caps well above the base fee."""
    chain_id = int(rpc.call("eth_chainId"), 16)
    block = rpc.call("eth_getBlockByNumber", ["latest", False])
    base_fee = int(block.get("baseFeePerGas") or "0x0", 16) if isinstance(block, dict) else 0
    fees = Fees(max_fee=max(MIN_MAX_FEE, 4 * base_fee), tip=TIP)
    return Target(rpc, chain_id, fees, progress or NoProgress(), stall_timeout)


def split(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` counts that differ by at most one, larger first."""
    if parts < 1 or total < 0:
        raise ValueError(f"cannot split {total} into {parts} parts")
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def pending_nonces(target: Target, senders: Sequence[Sender]) -> list[int]:
    """Return each sender's next nonce, counting txs the node already holds in its pool."""
    calls = [("eth_getTransactionCount", [s.address, "pending"]) for s in senders]
    return [int(n, 16) for n in target.rpc.batch_ok(calls)]


def prepare_senders(target: Target, accounts: int, max_tx_per_account: int) -> list[Sender]:
    """Return `accounts` senders; the ones past the 20 dev accounts are funded from those first."""
    senders = derive_senders(accounts)
    dev = [s for s in senders if s.is_dev]
    _check_funded(target, dev)
    extra = [s for s in senders if not s.is_dev]
    if not extra:
        return senders
    need = max_tx_per_account * 200_000 * target.fees.max_fee + 10**18
    have = target.rpc.batch_ok([("eth_getBalance", [s.address, "latest"]) for s in extra])
    poor = [s for s, bal in zip(extra, have, strict=True) if int(bal, 16) < need]
    if not poor:
        return senders
    nonces = dict(zip([s.address for s in dev], pending_nonces(target, dev), strict=True))
    rounds: list[list[SignedTx]] = []
    for k in range(0, len(poor), len(dev)):
        batch = []
        for payer, payee in zip(dev, poor[k : k + len(dev)], strict=False):
            batch.append(_transfer(target, payer, nonces[payer.address], payee.address, need))
            nonces[payer.address] += 1
        rounds.append(batch)
    send_rounds(target, "fund accounts", rounds)
    return senders


def run_transfers(target: Target, senders: Sequence[Sender], count: int) -> LoadResult:
    """Send `count` pre-signed 1-wei transfers spread over `senders`; time until all included."""
    nonces = pending_nonces(target, senders)
    rounds = _plan(
        target,
        "sign transfers",
        senders,
        nonces,
        split(count, len(senders)),
        _transfers_from(target, 0),
    )
    return send_rounds(target, "transfers", rounds)


def deploy_erc20(target: Target, deployer: Sender, artifact: dict[str, Any]) -> str:
    """Deploy the token artifact ({"abi", "bytecode"}) from `deployer`; return its address."""
    bytecode = artifact.get("bytecode")
    if isinstance(bytecode, dict):  # solc-style {"object": ...}
        bytecode = bytecode.get("object")
    if not isinstance(bytecode, str) or not bytecode:
        raise LoadError("ERC-20 artifact has no bytecode")
    code = bytes.fromhex(bytecode.removeprefix("0x"))
    try:
        data = code + constructor_args(artifact.get("abi", []), deployer.address)
    except ValueError as exc:
        raise LoadError(f"ERC-20 artifact: {exc}") from exc
    estimate = target.rpc.call("eth_estimateGas", [{"from": deployer.address, "data": _hex(data)}])
    (nonce,) = pending_nonces(target, [deployer])
    tx = sign(
        deployer,
        chain_id=target.chain_id,
        nonce=nonce,
        to=None,
        value=0,
        gas=int(estimate, 16) * 5 // 4,
        fees=target.fees,
        data=data,
    )
    result = send_rounds(target, "deploy ERC-20", [[tx]])
    receipt = target.rpc.call("eth_getTransactionReceipt", [tx.hash])
    if result.failed or not receipt or not receipt.get("contractAddress"):
        raise LoadError(f"ERC-20 deployment failed: receipt {receipt!r:.300}")
    return str(receipt["contractAddress"])


def fund_tokens(target: Target, token: str, deployer: Sender, senders: Sequence[Sender]) -> int:
    """Give every sender a share of the deployer's tokens; return the per-tx gas for a transfer."""
    supply = _balance_of(target, token, deployer.address)
    if supply == 0:
        raise LoadError(f"deployer {deployer.address} holds no tokens of {token}")
    share = supply // (2 * len(senders))
    others = [s for s in senders if s.address != deployer.address]
    (nonce,) = pending_nonces(target, [deployer])
    data = transfer_data(senders[-1].address, share)
    estimate = target.rpc.call(
        "eth_estimateGas", [{"from": deployer.address, "to": token, "data": _hex(data)}]
    )
    gas = int(estimate, 16) * 3 // 2
    # One request per tx: all come from the deployer, and Hardhat mines each as it arrives.
    rounds = [
        [_call_tx(target, deployer, nonce + k, token, transfer_data(s.address, share), gas)]
        for k, s in enumerate(others)
    ]
    send_rounds(target, "fund tokens", rounds)
    probe = transfer_data(recipient(0), 1)
    estimate = target.rpc.call(
        "eth_estimateGas", [{"from": senders[-1].address, "to": token, "data": _hex(probe)}]
    )
    return int(estimate, 16) * 5 // 4


def run_erc20(
    target: Target, token: str, senders: Sequence[Sender], count: int, gas: int
) -> LoadResult:
    """Send `count` pre-signed ERC-20 transfers of one token unit; time until all included."""
    nonces = pending_nonces(target, senders)
    rounds = _plan(
        target,
        "sign ERC-20 transfers",
        senders,
        nonces,
        split(count, len(senders)),
        lambda s, n, i: _call_tx(target, s, n, token, transfer_data(recipient(i % 1024), 1), gas),
    )
    return send_rounds(target, "ERC-20 transfers", rounds)


def run_calls(target: Target, token: str, owners: Sequence[Sender], count: int) -> CallResult:
    """Time `count` sequential eth_call balanceOf requests; return latency percentiles."""
    requests = [
        [{"to": token, "data": _hex(balance_of_data(owners[i % len(owners)].address))}, "latest"]
        for i in range(count)
    ]
    for params in requests[:20]:  # warm-up, not timed
        target.rpc.call("eth_call", params)
    target.progress.start("eth_call", count)
    latencies: list[float] = []
    start = time.perf_counter()
    for i, params in enumerate(requests):
        t0 = time.perf_counter()
        result = target.rpc.call("eth_call", params)
        latencies.append(time.perf_counter() - t0)
        if not isinstance(result, str) or len(result) != 66:
            raise LoadError(f"balanceOf returned {result!r:.100}, expected one 32-byte word")
        if i % 50 == 49:
            target.progress.advance(50)
    seconds = time.perf_counter() - start
    target.progress.finish()
    ordered = sorted(latencies)
    return CallResult(
        count=count,
        seconds=seconds,
        p50_ms=_percentile(ordered, 50) * 1000,
        p99_ms=_percentile(ordered, 99) * 1000,
        mean_ms=sum(ordered) / len(ordered) * 1000,
        max_ms=ordered[-1] * 1000,
    )


def run_memory(
    target: Target,
    senders: Sequence[Sender],
    total: int,
    chunk: int,
    rss: Callable[[], int | None],
) -> MemoryResult:
    """Send `total` transfers in chunks, each waited for, sampling the node's RSS as it goes."""
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    rss_before = rss()
    peak = rss_before
    nonces = pending_nonces(target, senders)
    included = 0
    sent = 0
    seconds = 0.0
    while sent < total:
        size = min(chunk, total - sent)
        counts = split(size, len(senders))
        rounds = _plan(
            target,
            f"sign {sent + size:,}/{total:,}",
            senders,
            nonces,
            counts,
            _transfers_from(target, sent),
        )
        result = send_rounds(target, f"memory {sent + size:,}/{total:,}", rounds)
        nonces = [n + c for n, c in zip(nonces, counts, strict=True)]
        included += result.included
        seconds += result.seconds
        sent += size
        now = rss()
        if now is not None:
            peak = now if peak is None else max(peak, now)
    return MemoryResult(total, included, seconds, rss_before, rss(), peak)


def send_rounds(target: Target, label: str, rounds: Sequence[Sequence[SignedTx]]) -> LoadResult:
    """Send each round as one batch, wait until all are included, then check every receipt."""
    txs = [tx for batch in rounds for tx in batch]
    spans: dict[str, tuple[int, int]] = {}
    for tx in txs:
        lo, hi = spans.get(tx.sender, (tx.nonce, tx.nonce + 1))
        spans[tx.sender] = (min(lo, tx.nonce), max(hi, tx.nonce + 1))
    progress = target.progress
    progress.start(f"{label}: send", len(txs))
    start = time.perf_counter()
    for batch in rounds:
        replies = target.rpc.batch([("eth_sendRawTransaction", [tx.raw]) for tx in batch])
        for tx, reply in zip(batch, replies, strict=True):
            if isinstance(reply, RpcError):
                raise LoadError(
                    f"{label}: node refused tx of {tx.sender} nonce {tx.nonce}: {reply.message}"
                )
        progress.advance(len(batch))
    sent = time.perf_counter()
    progress.finish()
    _wait_included(target, label, spans)
    end = time.perf_counter()
    ok, failed, blocks = _check_receipts(target, txs)
    return LoadResult(label, len(txs), ok, failed, end - start, sent - start, blocks)


def _wait_included(target: Target, label: str, spans: dict[str, tuple[int, int]]) -> None:
    """Poll account nonces until every sender's last tx is in a block (spans: nonce ranges)."""
    total = sum(hi - lo for lo, hi in spans.values())
    progress = target.progress
    progress.start(f"{label}: include", total)
    waiting = dict(spans)
    done = 0
    last_change = time.monotonic()
    while True:
        addrs = list(waiting)
        replies = target.rpc.batch_ok([("eth_getTransactionCount", [a, "latest"]) for a in addrs])
        pending = 0
        for addr, reply in zip(addrs, replies, strict=True):
            lo, hi = waiting[addr]
            nonce = int(reply, 16)
            if nonce >= hi:
                del waiting[addr]
            else:
                pending += hi - max(lo, nonce)
        now_done = total - pending
        if now_done != done:
            progress.advance(now_done - done)
            done = now_done
            last_change = time.monotonic()
        if not waiting:
            break
        if time.monotonic() - last_change > target.stall_timeout:
            raise LoadError(
                f"{label}: only {done:,} of {total:,} txs included; "
                f"none more in {target.stall_timeout:.0f} s"
            )
        time.sleep(target.poll_interval)
    progress.finish()


def _check_receipts(target: Target, txs: Sequence[SignedTx]) -> tuple[int, int, int]:
    """Return (succeeded, failed, blocks spanned) from the receipts of `txs`."""
    ok = failed = 0
    blocks: set[int] = set()
    for k in range(0, len(txs), RECEIPT_BATCH):
        chunk = txs[k : k + RECEIPT_BATCH]
        calls = [("eth_getTransactionReceipt", [tx.hash]) for tx in chunk]
        for tx, receipt in zip(chunk, target.rpc.batch_ok(calls), strict=True):
            if not isinstance(receipt, dict):
                raise LoadError(f"no receipt for included tx {tx.hash} ({tx.sender} #{tx.nonce})")
            blocks.add(int(receipt["blockNumber"], 16))
            if int(receipt.get("status", "0x1"), 16) == 1:
                ok += 1
            else:
                failed += 1
    return ok, failed, len(blocks)


def _plan(
    target: Target,
    label: str,
    senders: Sequence[Sender],
    nonces: Sequence[int],
    counts: Sequence[int],
    make: Callable[[Sender, int, int], SignedTx],
) -> list[list[SignedTx]]:
    """Pre-sign txs in rounds: round k holds nonce (start + k) of every sender with txs left."""
    total = sum(counts)
    target.progress.start(label, total)
    rounds: list[list[SignedTx]] = []
    index = 0
    for k in range(max(counts, default=0)):
        batch = []
        for sender, nonce, count in zip(senders, nonces, counts, strict=True):
            if k < count:
                batch.append(make(sender, nonce + k, index))
                index += 1
        rounds.append(batch)
        target.progress.advance(len(batch))
    target.progress.finish()
    return rounds


def _transfers_from(target: Target, offset: int) -> Callable[[Sender, int, int], SignedTx]:
    """Return a maker of 1-wei transfers whose recipients continue from tx number `offset`."""

    def make(sender: Sender, nonce: int, i: int) -> SignedTx:
        return _transfer(target, sender, nonce, recipient((offset + i) % 1024), 1)

    return make


def _transfer(target: Target, sender: Sender, nonce: int, to: str, value: int) -> SignedTx:
    """Sign a plain value transfer."""
    return sign(
        sender,
        chain_id=target.chain_id,
        nonce=nonce,
        to=to,
        value=value,
        gas=TRANSFER_GAS,
        fees=target.fees,
    )


def _call_tx(
    target: Target, sender: Sender, nonce: int, to: str, data: bytes, gas: int
) -> SignedTx:
    """Sign a contract call."""
    return sign(
        sender,
        chain_id=target.chain_id,
        nonce=nonce,
        to=to,
        value=0,
        gas=gas,
        fees=target.fees,
        data=data,
    )


def _check_funded(target: Target, dev: Sequence[Sender]) -> None:
    """Fail clearly when the node does not fund the dev accounts of the standard mnemonic."""
    balances = target.rpc.batch_ok([("eth_getBalance", [s.address, "latest"]) for s in dev])
    broke = [s.address for s, bal in zip(dev, balances, strict=True) if int(bal, 16) < 10**18]
    if broke:
        raise LoadError(
            f"{len(broke)} dev account(s) hold under 1 coin (first: {broke[0]}); "
            "is this a dev node funding the 'test ... junk' mnemonic?"
        )


def _balance_of(target: Target, token: str, owner: str) -> int:
    """Read an ERC-20 balance through eth_call."""
    call = {"to": token, "data": _hex(balance_of_data(owner))}
    return int(target.rpc.call("eth_call", [call, "latest"]), 16)


def _percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def _hex(data: bytes) -> str:
    return "0x" + data.hex()
