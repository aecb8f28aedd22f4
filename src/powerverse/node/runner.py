"""Start a node from its configuration: open the store, build the chain, serve RPC, make blocks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from powerverse.chain.blockchain import Blockchain, BuiltBlock
from powerverse.chain.devtime import (
    DEV_CLOCK_FILE,
    BlockTime,
    Clock,
    SystemClock,
    load_clock_offset,
)
from powerverse.chain.exceptions import GenesisError, StoreError
from powerverse.chain.executor import BlockExecutor, LocalExecutor, ProcessExecutor
from powerverse.chain.genesis import DEFAULT_STAKE, Genesis, Validator, dev_genesis, load_genesis
from powerverse.chain.store import LmdbStore
from powerverse.chain.txpool import TxPool, TxPoolConfig
from powerverse.contracts.system import (
    STAKING,
    dev_system_config,
    dev_tokenomics,
    with_system_contracts,
)
from powerverse.crypto.keys import dev_accounts
from powerverse.node.bft import BftProducer
from powerverse.node.service import BlockProducer, DevProducer, Node
from powerverse.node.validator_key import ValidatorKey
from powerverse.p2p import Host
from powerverse.rpc.eth import EthApi
from powerverse.rpc.filters import FilterManager
from powerverse.rpc.format import block_logs_json, header_json
from powerverse.rpc.server import RpcServer
from powerverse.rpc.subscriptions import SubscriptionManager

log = logging.getLogger(__name__)

GENESIS_FILE = "genesis.json"
DEV_POOL = TxPoolConfig(account_slots=4096, global_slots=16384, global_queue=4096)


@dataclass
class NodeConfig:
    """What `pv node` was asked to run."""

    data_dir: Path | None = None
    dev: bool = False
    genesis_file: Path | None = None
    validator_key: ValidatorKey | None = None
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 8545
    block_time: float | None = None
    clock: Clock = field(default_factory=SystemClock)
    executor: str = "process"  # "process": blocks execute on a second core; "thread": in-process
    p2p_port: int | None = None  # set: join a validator network and run agreement (BFT)
    p2p_host: str = "127.0.0.1"
    bootnodes: tuple[str, ...] = ()
    account_slots: int | None = None  # pending transactions per account (pool), if not default
    dev_clock: bool = False  # a validator network that accepts evm_increaseTime (devnets)


def dev_validator() -> ValidatorKey:
    """The dev chain's single validator (deterministic, so restarts keep the same chain)."""
    return ValidatorKey.from_label("dev-validator-0")


def resolve_genesis(config: NodeConfig, data_dir: Path) -> Genesis:
    """The genesis to run: the stored one, the given file, or a fresh dev genesis."""
    stored = data_dir / GENESIS_FILE
    if config.genesis_file is not None:
        genesis = load_genesis(config.genesis_file)
        if stored.exists() and load_genesis(stored) != genesis:
            raise GenesisError(
                f"{config.genesis_file} differs from the genesis this data directory was "
                f"started with ({stored}); use another --data-dir"
            )
        return genesis
    if stored.exists():
        return load_genesis(stored)
    if not config.dev:
        raise GenesisError("a non-dev node needs --genesis FILE")
    vkey = config.validator_key or dev_validator()
    genesis = dev_genesis(
        int(config.clock.time()),
        [a.address for a in dev_accounts()],
        Validator(vkey.address, vkey.consensus.public_key, DEFAULT_STAKE),
    )
    genesis = replace(genesis, tokenomics=dev_tokenomics(genesis.timestamp))
    return with_system_contracts(genesis, dev_system_config())


@dataclass
class RunningNode:
    """A started node: its parts and how to reach it."""

    node: Node
    server: RpcServer
    data_dir: Path
    tasks: list[asyncio.Task[None]]
    temp_dir: tempfile.TemporaryDirectory[str] | None = None
    host: Host | None = None

    @property
    def rpc_url(self) -> str:
        """http URL of the JSON-RPC server."""
        return self.server.url.rstrip("/")

    async def stop(self) -> None:
        """Stop producing, stop serving, close the store."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.node.drain_publications()
        if self.host is not None:
            await self.host.stop()
        await self.server.stop()
        self.node.executor.close()
        self.node.chain.close()
        if self.temp_dir is not None:
            self.temp_dir.cleanup()


async def start_node(config: NodeConfig, producer: BlockProducer | None = None) -> RunningNode:
    """Open (or create) the chain in the data directory and start serving."""
    temp: tempfile.TemporaryDirectory[str] | None = None
    if config.data_dir is None:
        temp = tempfile.TemporaryDirectory(prefix="pv-dev-")
        data_dir = Path(temp.name)
    else:
        data_dir = Path(config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
    genesis = resolve_genesis(config, data_dir)
    vkey = config.validator_key or (dev_validator() if config.dev else None)
    if vkey is None:
        raise GenesisError("a non-dev node needs --validator-key FILE")
    staking = genesis.alloc.get(STAKING)
    if (
        genesis.validators
        and vkey.consensus.public_key not in {v.consensus_key for v in genesis.validators}
        and not (staking is not None and staking.code)
    ):
        # With a Staking contract any key may follow the chain and join by staking.
        raise GenesisError(
            "the validator key is not one of the genesis validators; "
            "check --validator-key against the genesis file"
        )
    if config.executor not in ("process", "thread"):
        raise ValueError(f"unknown executor {config.executor!r}")
    if config.dev_clock and config.dev:
        raise GenesisError("--dev-clock is for validator networks; a dev chain moves time anyway")
    clock_file = data_dir / DEV_CLOCK_FILE if config.dev_clock else None
    try:
        offset = load_clock_offset(clock_file)
    except ValueError as exc:
        raise StoreError(f"{exc}; delete it to start from the wall clock") from None
    in_process = config.executor == "thread"
    store = LmdbStore(data_dir, sole_writer=in_process)
    executor: BlockExecutor
    try:
        chain = Blockchain(store, genesis, writer=in_process)
        executor = LocalExecutor(chain) if in_process else ProcessExecutor(data_dir, genesis)
    except BaseException:
        store.close()
        raise
    stored = data_dir / GENESIS_FILE
    if not stored.exists():
        tmp = stored.with_suffix(".tmp")
        tmp.write_text(json.dumps(genesis.to_json(), indent=2) + "\n")
        tmp.replace(stored)
    # A dev chain serves one developer's scripts, which send many txs from one account
    # at once (like Hardhat); a public node keeps geth-like per-account limits.
    pool_config = DEV_POOL if config.dev else TxPoolConfig()
    if config.account_slots is not None:
        pool_config = replace(
            pool_config,
            account_slots=config.account_slots,
            global_slots=max(pool_config.global_slots, 4 * config.account_slots),
        )
    pool = TxPool(chain_id=genesis.chain_id, config=pool_config)
    node = Node(
        chain=chain,
        pool=pool,
        block_time=BlockTime(config.clock, offset=offset),
        coinbase=vkey.address,
        executor=executor,
        dev=config.dev,
        clock_file=clock_file,
    )
    node.pool.on_new_head(node.head_state(), base_fee=node.next_base_fee())
    filters = FilterManager(clock=time.monotonic)
    subs = SubscriptionManager()
    api = EthApi(node, filters, subs)

    async def publish(built: BuiltBlock) -> None:
        logs = block_logs_json(built.block, built.receipts)
        filters.on_new_block("0x" + bytes(built.block.hash).hex(), logs)
        await subs.on_new_block(header_json(built.block.header), logs)

    node.block_listeners.append(publish)
    node.listening = lambda: len(filters) > 0 or len(subs) > 0
    server = RpcServer(api.methods())
    host: Host | None = None
    if producer is None and config.p2p_port is not None:
        if config.dev:
            raise GenesisError("--p2p-port joins a validator network; it cannot be used with --dev")
        host = Host(
            vkey.consensus,
            chain_id=genesis.chain_id,
            genesis_hash=chain.genesis_hash,
            listen_host=config.p2p_host,
            listen_port=config.p2p_port,
            bootnodes=config.bootnodes,
        )
        producer = BftProducer(genesis, host, data_dir, vkey)
    await server.start(config.rpc_host, config.rpc_port)
    if host is not None:
        try:
            await host.start()
        except BaseException:
            await server.stop()
            raise
    producer = producer or DevProducer(config.block_time)
    task = asyncio.create_task(producer.run(node), name="block-producer")
    return RunningNode(
        node=node, server=server, data_dir=data_dir, tasks=[task], temp_dir=temp, host=host
    )
