"""`pv status`: height, head, peers and pool of a running node."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from powerverse.cli.common import DEFAULT_RPC, print_json, rpc_call


def status(
    rpc: str = typer.Option(
        DEFAULT_RPC, "--rpc", help="JSON-RPC URL of the node.", envvar="PV_RPC"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show a running node's height, head block, peers and transaction pool."""
    info = rpc_call(rpc, "pv_nodeInfo")
    doc = {
        "rpc": rpc,
        "chainId": int(info["chainId"], 16),
        "height": int(info["height"], 16),
        "headHash": info["headHash"],
        "headTimestamp": int(info["headTimestamp"], 16),
        "peers": info["peers"],
        "txpool": info["txpool"],
        "dev": info["dev"],
        "clientVersion": info["clientVersion"],
    }
    if as_json:
        print_json(doc)
        return
    table = Table(show_header=False, box=None)
    table.add_row("node", f"{rpc} ({doc['clientVersion']})")
    table.add_row("chain id", str(doc["chainId"]) + ("  (dev)" if doc["dev"] else ""))
    table.add_row("height", str(doc["height"]))
    table.add_row("head", doc["headHash"])
    table.add_row("peers", str(doc["peers"]))
    pool = doc["txpool"]
    table.add_row("txpool", f"{pool['pending']} pending, {pool['queued']} queued")
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Attach `pv status`."""
    app.command("status")(status)
