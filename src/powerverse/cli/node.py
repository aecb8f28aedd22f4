"""`pv node`: run a PowerVerse node (dev mode or a single-validator chain)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import typer
import uvloop
from rich.console import Console

from powerverse.chain.exceptions import ChainError
from powerverse.chain.genesis import PVC
from powerverse.cli.common import EXIT_USAGE, fail, print_json
from powerverse.crypto.keys import dev_accounts
from powerverse.node.runner import NodeConfig, RunningNode, start_node
from powerverse.node.validator_key import ValidatorKey
from powerverse.p2p import P2PError, PeerAddress

log = logging.getLogger(__name__)


def node(
    dev: bool = typer.Option(
        False, "--dev", help="Dev chain: id 31337, 20 funded test accounts, dev RPC methods."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where the chain is stored (dev default: a fresh temp dir)."
    ),
    genesis: Path | None = typer.Option(None, "--genesis", help="Genesis file (non-dev chains)."),
    validator_key: Path | None = typer.Option(
        None, "--validator-key", help="Validator key file (see `pv genesis validator-key`)."
    ),
    rpc_host: str = typer.Option("127.0.0.1", "--rpc-host", help="JSON-RPC listen address."),
    rpc_port: int = typer.Option(8545, "--rpc-port", help="JSON-RPC port (HTTP and WebSocket)."),
    block_time: float | None = typer.Option(
        None, "--block-time", help="Seconds between blocks; default: a block as soon as txs wait."
    ),
    p2p_port: int | None = typer.Option(
        None,
        "--p2p-port",
        help="Join a validator network: listen for peers on this port and run agreement.",
    ),
    p2p_host: str = typer.Option("127.0.0.1", "--p2p-host", help="Peer-to-peer listen address."),
    bootnode: list[str] = typer.Option(
        [], "--bootnode", help="Peer to dial first, as PUBKEYHEX@HOST:PORT; repeatable."
    ),
    account_slots: int | None = typer.Option(
        None,
        "--txpool-account-slots",
        help="Pending transactions kept per account (default 64; dev mode 4096).",
        min=1,
    ),
    dev_clock: bool = typer.Option(
        False,
        "--dev-clock",
        help="Validator networks for development (pv devnet): accept evm_increaseTime, which "
        "moves this node's clock forward; move every validator alike.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the startup information as one JSON line."
    ),
) -> None:
    """Run a node and serve Ethereum JSON-RPC until Ctrl-C."""
    if not dev and (genesis is None or data_dir is None or validator_key is None):
        fail(
            "a non-dev node needs --genesis FILE --data-dir DIR --validator-key FILE "
            "(or use --dev for a local development chain)",
            EXIT_USAGE,
        )
    if block_time is not None and block_time <= 0:
        fail("--block-time must be a positive number of seconds", EXIT_USAGE)
    if not 0 <= rpc_port <= 65535:
        fail("--rpc-port must be between 0 and 65535", EXIT_USAGE)
    if p2p_port is not None and not 0 <= p2p_port <= 65535:
        fail("--p2p-port must be between 0 and 65535", EXIT_USAGE)
    if p2p_port is not None and dev:
        fail("--p2p-port runs a validator network; it cannot be combined with --dev", EXIT_USAGE)
    if dev_clock and dev:
        fail("--dev-clock is for validator networks; a --dev chain moves time anyway", EXIT_USAGE)
    if bootnode and p2p_port is None:
        fail("--bootnode needs --p2p-port", EXIT_USAGE)
    for item in bootnode:
        try:
            PeerAddress.parse(item)
        except P2PError as exc:
            fail(f"--bootnode {item!r}: {exc}", EXIT_USAGE)
    try:
        vkey = ValidatorKey.load(validator_key) if validator_key else None
    except ChainError as exc:
        fail(str(exc))
    config = NodeConfig(
        data_dir=data_dir,
        dev=dev,
        genesis_file=genesis,
        validator_key=vkey,
        rpc_host=rpc_host,
        rpc_port=rpc_port,
        block_time=block_time,
        p2p_port=p2p_port,
        p2p_host=p2p_host,
        bootnodes=tuple(bootnode),
        account_slots=account_slots,
        dev_clock=dev_clock,
    )
    try:
        uvloop.run(_serve(config, as_json))
    except ChainError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot start: {exc}")


async def _serve(config: NodeConfig, as_json: bool) -> None:
    running = await start_node(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        _announce(running, config, as_json)
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            Console(stderr=True).print("shutting down…")
        await running.stop()


def _announce(running: RunningNode, config: NodeConfig, as_json: bool) -> None:
    chain = running.node.chain
    url = running.rpc_url
    accounts = dev_accounts() if config.dev else []
    if as_json:
        print_json(
            {
                "rpcUrl": url,
                "wsUrl": url.replace("http://", "ws://"),
                "chainId": chain.chain_id,
                "dataDir": str(running.data_dir),
                "height": chain.height,
                "dev": config.dev,
                "accounts": [
                    {"address": a.checksum, "privateKey": "0x" + a.private_key.hex()}
                    for a in accounts
                ],
            },
            one_line=True,
        )
        return
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[bold]PowerVerse node[/] chain id {chain.chain_id}, height {chain.height}")
    console.print(f"data dir: {running.data_dir}")
    console.print(f"JSON-RPC: [bold]{url}[/]  (WebSocket: {url.replace('http://', 'ws://')})")
    if accounts:
        console.print(
            "\nAccounts (keys from the public test mnemonic — never use them on a real chain):"
        )
        for a in accounts:
            console.print(
                f"  #{a.index:<2} {a.checksum} ({chain.get_balance(a.address) // PVC} PVC)"
            )
            console.print(f"      private key 0x{a.private_key.hex()}")
    console.print("\nPress Ctrl-C to stop.", style="dim")


def register(app: typer.Typer) -> None:
    """Attach `pv node`."""
    app.command("node")(node)
