"""The Ethereum JSON-RPC methods (eth_, net_, web3_, txpool_, evm_ dev methods) over a Node."""

from __future__ import annotations

import platform
from collections.abc import Awaitable, Callable
from typing import Any

from eth.abc import BlockHeaderAPI, ComputationAPI
from eth.exceptions import Revert
from eth_utils import ValidationError, keccak

from powerverse import __version__
from powerverse.chain.blockchain import CallRequest
from powerverse.chain.exceptions import BlockNotFound, DevModeOnly, ExecutionError, Reverted
from powerverse.chain.rewards import DIVIDEND_POOL, Payee
from powerverse.chain.txpool_errors import TxPoolError
from powerverse.node.service import ConsensusView, Node
from powerverse.rpc import params as p
from powerverse.rpc.errors import (
    ExecutionReverted,
    FilterNotFound,
    InvalidParams,
    LimitExceeded,
    MethodNotAllowed,
    NotificationsUnsupported,
    RpcError,
    ServerError,
)
from powerverse.rpc.filters import FilterManager
from powerverse.rpc.format import (
    block_json,
    block_logs_json,
    effective_gas_price,
    receipt_json,
    tx_json,
)
from powerverse.rpc.logmatch import LogCriteria, bloom_may_contain, matches, parse_filter_criteria
from powerverse.rpc.params import hexd, hexq
from powerverse.rpc.server import CallContext, Handler
from powerverse.rpc.subscriptions import SubscriptionManager

MAX_LOG_RANGE = 10_000
MAX_LOG_RESULTS = 10_000
MAX_FEE_HISTORY = 1024
DEFAULT_PRIORITY_FEE = 1_000_000_000
CLIENT_VERSION = (
    f"PowerVerse/v{__version__}/{platform.system().lower()}-{platform.machine()}"
    f"/python{platform.python_version()}"
)


def _revert_error(computation: ComputationAPI) -> RpcError:
    """Translate a failed computation into geth's error shapes."""
    error = computation.error
    if isinstance(error, Revert):
        data = computation.output or (error.args[0] if error.args else b"")
        return ExecutionReverted(data=bytes(data))
    return ServerError(_vm_error_message(error))


def _vm_error_message(error: Exception) -> str:
    name = type(error).__name__
    return {
        "OutOfGas": "out of gas",
        "InsufficientStack": "stack underflow",
        "FullStack": "stack limit reached 1024",
        "InvalidJumpDestination": "invalid jump destination",
        "InvalidInstruction": "invalid opcode",
        "WriteProtection": "write protection",
        "StackDepthLimit": "max call depth exceeded",
        "ContractCreationCollision": "contract address collision",
        "OutOfBoundsRead": "return data out of bounds",
    }.get(name, f"execution failed: {name}")


class EthApi:
    """Handlers of the Ethereum methods, bound to one node."""

    max_log_range = MAX_LOG_RANGE
    max_log_results = MAX_LOG_RESULTS

    def __init__(self, node: Node, filters: FilterManager, subs: SubscriptionManager) -> None:
        self.node = node
        self.chain = node.chain
        self.filters = filters
        self.subs = subs

    # ---------------------------------------------------------------- helpers

    def _header(self, ref: p.BlockRef) -> BlockHeaderAPI:
        """Resolve a block reference; unknown blocks raise a clear error."""
        chain = self.chain
        if isinstance(ref, bytes):
            try:
                return chain.header_by_hash(ref)
            except BlockNotFound:
                raise ServerError(f"header for hash 0x{ref.hex()} not found") from None
        if isinstance(ref, str):
            if ref == "earliest":
                return chain.header_by_number(0)
            return chain.head  # latest, pending, safe, finalized: instant finality
        if ref > chain.height:
            raise ServerError(f"header not found: block {ref} is beyond the head {chain.height}")
        return chain.header_by_number(ref)

    def _maybe_header(self, ref: p.BlockRef) -> BlockHeaderAPI | None:
        try:
            return self._header(ref)
        except (ServerError, BlockNotFound):
            return None

    def _call_request(self, obj: p.CallObject, header: BlockHeaderAPI) -> CallRequest:
        gas_cap = int(header.gas_limit)
        gas = gas_cap if obj.gas is not None and obj.gas > gas_cap else obj.gas
        return CallRequest(
            sender=obj.sender or b"\x00" * 20,
            to=obj.to,
            gas=gas,
            gas_price=0,
            value=obj.value,
            data=obj.data,
        )

    def _execute(self, req: CallRequest, header: BlockHeaderAPI) -> ComputationAPI:
        try:
            return self.chain.execute_call(req, header)
        except ValidationError as exc:
            raise _validation_error(exc) from None

    # ---------------------------------------------------------------- web3, net

    async def web3_clientVersion(self, params: Any, ctx: CallContext) -> str:
        p.params_list(params, (), 0)
        return CLIENT_VERSION

    async def web3_sha3(self, params: Any, ctx: CallContext) -> str:
        (payload,) = p.params_list(params, ("data",), 1)
        return hexd(keccak(p.data(payload, "data")))

    async def net_version(self, params: Any, ctx: CallContext) -> str:
        p.params_list(params, (), 0)
        return str(self.chain.chain_id)

    async def net_listening(self, params: Any, ctx: CallContext) -> bool:
        p.params_list(params, (), 0)
        return True

    async def net_peerCount(self, params: Any, ctx: CallContext) -> str:
        p.params_list(params, (), 0)
        return hexq(self.node.peer_count())

    # ---------------------------------------------------------------- chain info

    async def eth_chainId(self, params: Any, ctx: CallContext) -> str:
        p.params_list(params, (), 0)
        return hexq(self.chain.chain_id)

    async def eth_syncing(self, params: Any, ctx: CallContext) -> bool:
        p.params_list(params, (), 0)
        return False

    async def eth_blockNumber(self, params: Any, ctx: CallContext) -> str:
        p.params_list(params, (), 0)
        return hexq(self.chain.height)

    async def eth_accounts(self, params: Any, ctx: CallContext) -> list[str]:
        p.params_list(params, (), 0)
        return []

    async def eth_gasPrice(self, params: Any, ctx: CallContext) -> str:
        p.params_list(params, (), 0)
        return hexq(self.node.next_base_fee() + DEFAULT_PRIORITY_FEE)

    async def eth_maxPriorityFeePerGas(self, params: Any, ctx: CallContext) -> str:
        p.params_list(params, (), 0)
        return hexq(DEFAULT_PRIORITY_FEE)

    async def eth_feeHistory(self, params: Any, ctx: CallContext) -> dict[str, Any]:
        count_raw, newest_raw, percentiles_raw = p.params_list(
            params, ("blockCount", "newestBlock", "rewardPercentiles"), 2
        )
        if isinstance(count_raw, int) and not isinstance(count_raw, bool):
            count = count_raw
        else:
            count = p.quantity(count_raw, "blockCount")
        if count < 1:
            return {"oldestBlock": "0x0", "baseFeePerGas": [], "gasUsedRatio": []}
        count = min(count, MAX_FEE_HISTORY)
        newest = self._header(p.block_ref(newest_raw, "newestBlock"))
        percentiles: list[float] | None = None
        if percentiles_raw is not None:
            if not isinstance(percentiles_raw, list) or len(percentiles_raw) > 100:
                raise InvalidParams("rewardPercentiles must be a list of at most 100 numbers")
            percentiles = []
            for x in percentiles_raw:
                if isinstance(x, bool) or not isinstance(x, int | float) or not 0 <= x <= 100:
                    raise InvalidParams("rewardPercentiles must be numbers between 0 and 100")
                if percentiles and x < percentiles[-1]:
                    raise InvalidParams("rewardPercentiles must be in ascending order")
                percentiles.append(float(x))
        oldest = max(0, int(newest.block_number) - count + 1)
        base_fees: list[str] = []
        ratios: list[float] = []
        rewards: list[list[str]] = []
        for n in range(oldest, int(newest.block_number) + 1):
            header = self.chain.header_by_number(n)
            base_fees.append(hexq(header.base_fee_per_gas))
            ratios.append(header.gas_used / header.gas_limit if header.gas_limit else 0.0)
            if percentiles is not None:
                rewards.append(self._block_rewards(header, percentiles))
        if int(newest.block_number) == self.chain.height:
            base_fees.append(hexq(self.node.next_base_fee()))
        else:
            nxt = self.chain.header_by_number(int(newest.block_number) + 1)
            base_fees.append(hexq(nxt.base_fee_per_gas))
        out: dict[str, Any] = {
            "oldestBlock": hexq(oldest),
            "baseFeePerGas": base_fees,
            "gasUsedRatio": ratios,
        }
        if percentiles is not None:
            out["reward"] = rewards
        return out

    def _block_rewards(self, header: BlockHeaderAPI, percentiles: list[float]) -> list[str]:
        bundle = self.chain.bundle(header)
        block, receipts = bundle.block, bundle.receipts
        if not block.transactions:
            return ["0x0"] * len(percentiles)
        base = int(header.base_fee_per_gas)
        items = []
        prev = 0
        for tx, r in zip(block.transactions, receipts, strict=False):
            items.append((effective_gas_price(tx, base) - base, r.gas_used - prev))
            prev = r.gas_used
        items.sort()
        total = sum(g for _, g in items) or 1
        out = []
        for pct in percentiles:
            threshold = total * pct / 100
            acc = 0
            chosen = items[-1][0]
            for tip, gas in items:
                acc += gas
                if acc >= threshold:
                    chosen = tip
                    break
            out.append(hexq(chosen))
        return out

    # ---------------------------------------------------------------- state

    async def eth_getBalance(self, params: Any, ctx: CallContext) -> str:
        addr, ref = p.params_list(params, ("address", "block"), 1)
        header = self._header(p.block_ref(ref))
        return hexq(self.chain.get_balance(p.address(addr), header))

    async def eth_getTransactionCount(self, params: Any, ctx: CallContext) -> str:
        addr_raw, ref_raw = p.params_list(params, ("address", "block"), 1)
        addr = p.address(addr_raw)
        ref = p.block_ref(ref_raw)
        if ref == "pending":
            return hexq(self.node.pending_nonce(addr))
        return hexq(self.chain.get_nonce(addr, self._header(ref)))

    async def eth_getCode(self, params: Any, ctx: CallContext) -> str:
        addr, ref = p.params_list(params, ("address", "block"), 1)
        state = self.chain.state_at(self._header(p.block_ref(ref)))
        return hexd(state.get_code(p.address(addr)))

    async def eth_getStorageAt(self, params: Any, ctx: CallContext) -> str:
        addr, slot_raw, ref = p.params_list(params, ("address", "slot", "block"), 2)
        if isinstance(slot_raw, str) and len(slot_raw) == 66:
            slot = int.from_bytes(p.hash32(slot_raw, "slot"), "big")
        else:
            slot = p.quantity(slot_raw, "slot")
        state = self.chain.state_at(self._header(p.block_ref(ref)))
        value = state.get_storage(p.address(addr), slot)
        return hexd(int(value).to_bytes(32, "big"))

    # ---------------------------------------------------------------- execution

    async def eth_call(self, params: Any, ctx: CallContext) -> str:
        obj_raw, ref, overrides = p.params_list(params, ("call", "block", "stateOverrides"), 1)
        if overrides is not None:
            raise InvalidParams("state overrides are not supported")
        obj = p.call_object(obj_raw)
        header = self._header(p.block_ref(ref))
        computation = self._execute(self._call_request(obj, header), header)
        if computation.is_error:
            raise _revert_error(computation)
        return hexd(computation.output)

    async def eth_estimateGas(self, params: Any, ctx: CallContext) -> str:
        obj_raw, ref, overrides = p.params_list(params, ("call", "block", "stateOverrides"), 1)
        if overrides is not None:
            raise InvalidParams("state overrides are not supported")
        obj = p.call_object(obj_raw)
        header = self._header(p.block_ref(ref if ref is not None else "latest"))
        req = self._call_request(obj, header)
        try:
            return hexq(self.chain.estimate_gas(req, header))
        except Reverted as exc:
            raise ExecutionReverted(data=exc.data) from None
        except ExecutionError as exc:
            raise ServerError(str(exc)) from None
        except ValidationError as exc:
            raise _validation_error(exc) from None

    async def eth_sendRawTransaction(self, params: Any, ctx: CallContext) -> str:
        (raw,) = p.params_list(params, ("data",), 1)
        payload = p.data(raw, "raw transaction")
        try:
            ptx = self.node.submit_raw(payload)
        except TxPoolError as exc:
            raise ServerError(str(exc)) from None
        self.filters.on_pending_tx(hexd(ptx.hash))
        await self.subs.on_pending_tx(hexd(ptx.hash))
        return hexd(ptx.hash)

    # ---------------------------------------------------------------- blocks and transactions

    def _block_json(self, header: BlockHeaderAPI | None, full: bool) -> dict[str, Any] | None:
        if header is None:
            return None
        bundle = self.chain.bundle(header)
        return block_json(bundle.block, bundle.senders, full=full)

    async def eth_getBlockByNumber(self, params: Any, ctx: CallContext) -> dict[str, Any] | None:
        ref, full = p.params_list(params, ("block", "full"), 1)
        r = p.block_ref(ref)
        if isinstance(r, bytes):
            raise InvalidParams("eth_getBlockByNumber takes a number or tag, not a hash")
        return self._block_json(self._maybe_header(r), bool(full and p.boolean(full, "full")))

    async def eth_getBlockByHash(self, params: Any, ctx: CallContext) -> dict[str, Any] | None:
        h, full = p.params_list(params, ("hash", "full"), 1)
        header = self._maybe_header(p.hash32(h, "block hash"))
        if header is not None and not self.chain.is_canonical(header):
            header = None
        return self._block_json(header, bool(full and p.boolean(full, "full")))

    async def eth_getBlockTransactionCountByNumber(
        self, params: Any, ctx: CallContext
    ) -> str | None:
        (ref,) = p.params_list(params, ("block",), 1)
        r = p.block_ref(ref)
        if isinstance(r, bytes):
            raise InvalidParams("takes a number or tag, not a hash")
        header = self._maybe_header(r)
        if header is None:
            return None
        return hexq(len(self.chain.bundle(header).block.transactions))

    async def eth_getBlockTransactionCountByHash(self, params: Any, ctx: CallContext) -> str | None:
        (h,) = p.params_list(params, ("hash",), 1)
        header = self._maybe_header(p.hash32(h, "block hash"))
        if header is None:
            return None
        return hexq(len(self.chain.bundle(header).block.transactions))

    def _tx_at(self, header: BlockHeaderAPI | None, index: int) -> dict[str, Any] | None:
        if header is None:
            return None
        bundle = self.chain.bundle(header)
        block, senders = bundle.block, bundle.senders
        if index >= len(block.transactions):
            return None
        tx = block.transactions[index]
        sender = senders[index] if index < len(senders) else bytes(tx.sender)
        return tx_json(tx, sender, header, index)

    async def eth_getTransactionByBlockNumberAndIndex(
        self, params: Any, ctx: CallContext
    ) -> dict[str, Any] | None:
        ref, idx = p.params_list(params, ("block", "index"), 2)
        r = p.block_ref(ref)
        if isinstance(r, bytes):
            raise InvalidParams("takes a number or tag, not a hash")
        return self._tx_at(self._maybe_header(r), p.quantity(idx, "index"))

    async def eth_getTransactionByBlockHashAndIndex(
        self, params: Any, ctx: CallContext
    ) -> dict[str, Any] | None:
        h, idx = p.params_list(params, ("hash", "index"), 2)
        return self._tx_at(self._maybe_header(p.hash32(h, "block hash")), p.quantity(idx, "index"))

    async def eth_getTransactionByHash(self, params: Any, ctx: CallContext) -> Any:
        (h,) = p.params_list(params, ("hash",), 1)
        tx_hash = p.hash32(h, "transaction hash")
        loc = self._locate(tx_hash)
        if loc is not None:
            header, index = loc
            return self._tx_at(header, index)
        ptx = self.node.pool.get(tx_hash)
        if ptx is not None:
            return tx_json(ptx.tx, ptx.sender, None, None)
        return None

    def _locate(self, tx_hash: bytes) -> tuple[BlockHeaderAPI, int] | None:
        try:
            number, index = self.chain.transaction_location(tx_hash)
        except Exception:
            return None
        if number > self.chain.height:
            return None
        return self.chain.header_by_number(number), index

    async def eth_getTransactionReceipt(self, params: Any, ctx: CallContext) -> Any:
        (h,) = p.params_list(params, ("hash",), 1)
        loc = self._locate(p.hash32(h, "transaction hash"))
        if loc is None:
            return None
        header, index = loc
        bundle = self.chain.bundle(header)
        return receipt_json(bundle.block, bundle.receipts, bundle.senders, index)

    async def eth_getBlockReceipts(self, params: Any, ctx: CallContext) -> Any:
        (ref,) = p.params_list(params, ("block",), 1)
        header = self._maybe_header(p.block_ref(ref))
        if header is None:
            return None
        b = self.chain.bundle(header)
        return [receipt_json(b.block, b.receipts, b.senders, i) for i in range(len(b.receipts))]

    # ---------------------------------------------------------------- logs and filters

    def query_logs(self, criteria: LogCriteria) -> list[dict[str, Any]]:
        """Logs matching `criteria`, scanning the block range with the bloom filter first."""
        if criteria.block_hash is not None:
            header = self._maybe_header(bytes.fromhex(criteria.block_hash[2:]))
            if header is None:
                raise ServerError("unknown block")
            headers = [header]
        else:
            head = self.chain.height
            start = self._resolve_bound(criteria.from_block, head)
            end = self._resolve_bound(criteria.to_block, head)
            if start > end:
                raise InvalidParams("invalid block range: fromBlock is after toBlock")
            end = min(end, head)
            if end - start + 1 > self.max_log_range:
                raise LimitExceeded(
                    f"query exceeds max block range {self.max_log_range}; "
                    f"ask for at most {self.max_log_range} blocks at a time"
                )
            headers = (self.chain.header_by_number(n) for n in range(start, end + 1))
        out: list[dict[str, Any]] = []
        for header in headers:
            if not bloom_may_contain(int(header.bloom).to_bytes(256, "big"), criteria):
                continue
            bundle = self.chain.bundle(header)
            for log in block_logs_json(bundle.block, bundle.receipts):
                if matches(log, criteria):
                    out.append(log)
                    if len(out) > self.max_log_results:
                        raise LimitExceeded(
                            f"query returned more than {self.max_log_results} results; "
                            "narrow the block range or the filter"
                        )
        return out

    def _resolve_bound(self, bound: Any, head: int) -> int:
        if bound is None or bound in ("latest", "pending", "safe", "finalized"):
            return head
        if bound == "earliest":
            return 0
        return int(bound)

    async def eth_getLogs(self, params: Any, ctx: CallContext) -> list[dict[str, Any]]:
        (crit,) = p.params_list(params, ("filter",), 1)
        return self.query_logs(parse_filter_criteria(crit))

    async def eth_newFilter(self, params: Any, ctx: CallContext) -> str:
        (crit,) = p.params_list(params, ("filter",), 1)
        return self.filters.new_log_filter(parse_filter_criteria(crit))

    async def eth_newBlockFilter(self, params: Any, ctx: CallContext) -> str:
        p.params_list(params, (), 0)
        return self.filters.new_block_filter()

    async def eth_newPendingTransactionFilter(self, params: Any, ctx: CallContext) -> str:
        p.params_list(params, ("fullTx",), 0)
        return self.filters.new_pending_tx_filter()

    async def eth_getFilterChanges(self, params: Any, ctx: CallContext) -> list[Any]:
        (fid,) = p.params_list(params, ("id",), 1)
        if not isinstance(fid, str):
            raise InvalidParams("filter id must be a string")
        # blocks are published in the background after they become the head: let every
        # block a client can already see (its receipts, eth_blockNumber) reach the filters
        await self.node.caught_up()
        return self.filters.get_changes(fid)

    async def eth_getFilterLogs(self, params: Any, ctx: CallContext) -> list[dict[str, Any]]:
        (fid,) = p.params_list(params, ("id",), 1)
        if not isinstance(fid, str):
            raise InvalidParams("filter id must be a string")
        info = self.filters.get_filter(fid)
        if info.criteria is None:
            raise FilterNotFound()
        return self.query_logs(info.criteria)

    async def eth_uninstallFilter(self, params: Any, ctx: CallContext) -> bool:
        (fid,) = p.params_list(params, ("id",), 1)
        if not isinstance(fid, str):
            raise InvalidParams("filter id must be a string")
        return self.filters.uninstall(fid)

    async def eth_subscribe(self, params: Any, ctx: CallContext) -> str:
        kind, arg = p.params_list(params, ("kind", "params"), 1)
        if ctx.session is None:
            raise NotificationsUnsupported()
        if not isinstance(kind, str):
            raise InvalidParams("subscription kind must be a string")
        return self.subs.subscribe(ctx.session, kind, arg)

    async def eth_unsubscribe(self, params: Any, ctx: CallContext) -> bool:
        (sid,) = p.params_list(params, ("id",), 1)
        if ctx.session is None:
            raise NotificationsUnsupported()
        if not isinstance(sid, str):
            raise InvalidParams("subscription id must be a string")
        return self.subs.unsubscribe(ctx.session, sid)

    # ---------------------------------------------------------------- txpool

    async def txpool_status(self, params: Any, ctx: CallContext) -> dict[str, str]:
        p.params_list(params, (), 0)
        pending, queued = self.node.pool.status()
        return {"pending": hexq(pending), "queued": hexq(queued)}

    async def txpool_content(self, params: Any, ctx: CallContext) -> dict[str, Any]:
        p.params_list(params, (), 0)
        content = self.node.pool.content()
        out: dict[str, Any] = {}
        for section in ("pending", "queued"):
            out[section] = {
                tx_json(next(iter(by_nonce.values())).tx, sender, None, None)["from"]: {
                    str(nonce): tx_json(ptx.tx, ptx.sender, None, None)
                    for nonce, ptx in sorted(by_nonce.items())
                }
                for sender, by_nonce in content.get(section, {}).items()
                if by_nonce
            }
        return out

    # ---------------------------------------------------------------- dev methods

    def _dev(self, method: str) -> None:
        if not self.node.dev:
            raise MethodNotAllowed(method)

    async def evm_increaseTime(self, params: Any, ctx: CallContext) -> str:
        if not self.node.dev_clock:
            self._dev("evm_increaseTime")
        (seconds_raw,) = p.params_list(params, ("seconds",), 1)
        seconds = _int_or_quantity(seconds_raw, "seconds")
        try:
            return str(self.node.increase_time(seconds))
        except ValueError as exc:
            raise InvalidParams(str(exc)) from None

    async def evm_setNextBlockTimestamp(self, params: Any, ctx: CallContext) -> bool:
        self._dev("evm_setNextBlockTimestamp")
        (ts_raw,) = p.params_list(params, ("timestamp",), 1)
        try:
            self.node.set_next_block_timestamp(_int_or_quantity(ts_raw, "timestamp"))
        except ValueError as exc:
            raise InvalidParams(str(exc)) from None
        return True

    async def evm_mine(self, params: Any, ctx: CallContext) -> str:
        self._dev("evm_mine")
        (ts_raw,) = p.params_list(params, ("timestamp",), 0)
        ts = None if ts_raw is None else _int_or_quantity(ts_raw, "timestamp")
        try:
            await self.node.mine(ts)
        except ValueError as exc:
            raise InvalidParams(str(exc)) from None
        return "0x0"

    async def evm_snapshot(self, params: Any, ctx: CallContext) -> str:
        self._dev("evm_snapshot")
        p.params_list(params, (), 0)
        return hexq(self.node.snapshot())

    async def evm_revert(self, params: Any, ctx: CallContext) -> bool:
        self._dev("evm_revert")
        (sid_raw,) = p.params_list(params, ("id",), 1)
        return await self.node.revert(_int_or_quantity(sid_raw, "snapshot id"))

    # ---------------------------------------------------------------- pv namespace

    async def pv_nodeInfo(self, params: Any, ctx: CallContext) -> dict[str, Any]:
        p.params_list(params, (), 0)
        head = self.chain.head
        pending, queued = self.node.pool.status()
        return {
            "clientVersion": CLIENT_VERSION,
            "chainId": hexq(self.chain.chain_id),
            "genesisHash": hexd(self.chain.genesis_hash),
            "dev": self.node.dev,
            "devClock": self.node.dev_clock,
            "coinbase": tx_json_address(self.node.coinbase),
            "height": hexq(head.block_number),
            "headHash": hexd(head.hash),
            "headTimestamp": hexq(head.timestamp),
            "peers": self.node.peer_count(),
            "txpool": {"pending": pending, "queued": queued},
        }

    async def pv_getBlockReward(self, params: Any, ctx: CallContext) -> dict[str, Any] | None:
        """What a block paid out of the emission pool (chain/rewards.py); null when nothing.

        Amounts are wei as hex quantities; ``since``/``until`` the emission interval it paid.
        """
        (ref,) = p.params_list(params, ("block",), 1)
        header = self._header(p.block_ref(ref))
        plan = self.chain.reward_of(bytes(header.hash))
        if plan is None:
            return None

        def payee(q: Payee) -> dict[str, Any]:
            return {
                "consensusKey": hexd(q.key) if q.key else None,
                "account": tx_json_address(q.account),
            }

        return {
            "blockNumber": hexq(header.block_number),
            "blockHash": hexd(header.hash),
            "since": hexq(plan.since),
            "until": hexq(plan.until),
            "total": hexq(plan.total),
            "dividend": hexq(plan.dividend),
            "dividendPool": tx_json_address(DIVIDEND_POOL),
            "proposer": {**payee(plan.proposer), "amount": hexq(plan.proposer_amount)},
            "committee": [
                {**payee(q), "weight": hexq(weight), "amount": hexq(amount)}
                for q, weight, amount in plan.committee
            ],
        }

    def _consensus(self, method: str) -> ConsensusView:
        view = self.node.consensus
        if view is None:
            raise MethodNotAllowed(
                method, "this node runs no agreement (start it with --p2p-port on a network)"
            )
        return view

    async def pv_consensusStatus(self, params: Any, ctx: CallContext) -> dict[str, Any]:
        p.params_list(params, (), 0)
        return self._consensus("pv_consensusStatus").status()

    async def pv_getCertificate(self, params: Any, ctx: CallContext) -> dict[str, Any] | None:
        (number_raw,) = p.params_list(params, ("blockNumber",), 1)
        view = self._consensus("pv_getCertificate")
        number = p.quantity(number_raw, "block number")
        return view.certificate(number)

    async def pv_getEvidence(self, params: Any, ctx: CallContext) -> list[dict[str, Any]]:
        p.params_list(params, (), 0)
        return self._consensus("pv_getEvidence").evidence_list()

    async def pv_validators(self, params: Any, ctx: CallContext) -> list[dict[str, Any]]:
        p.params_list(params, (), 0)
        return self._consensus("pv_validators").validators()

    def methods(self) -> dict[str, Handler]:
        """The method table for the RPC server."""
        prefixes = ("web3_", "net_", "eth_", "txpool_", "evm_", "pv_")
        table: dict[str, Handler] = {}
        for name in dir(self):
            if name.startswith(prefixes):
                table[name] = _guard(getattr(self, name))
        return table


def tx_json_address(addr: bytes) -> str:
    """Checksum form of an address."""
    from eth_utils import to_checksum_address

    return to_checksum_address(addr)


def _validation_error(exc: Exception) -> ServerError:
    message = str(exc)
    if "balance" in message.lower() or "funds" in message.lower():
        return ServerError("insufficient funds for gas * price + value")
    return ServerError(message)


def _int_or_quantity(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise InvalidParams(f"{what} must not be negative")
        return value
    return p.quantity(value, what)


def _guard(fn: Callable[[Any, CallContext], Awaitable[Any]]) -> Handler:
    """Map chain-layer errors to RPC errors at the edge."""

    async def handler(params: Any, ctx: CallContext) -> Any:
        try:
            return await fn(params, ctx)
        except RpcError:
            raise
        except DevModeOnly as exc:
            raise MethodNotAllowed(fn.__name__, str(exc)) from None
        except BlockNotFound as exc:
            raise ServerError(str(exc)) from None

    handler.__name__ = fn.__name__
    return handler
