"""The `pv` command line: one Typer app with a sub-app per area."""

from __future__ import annotations

import logging

import typer

from powerverse import __version__

app = typer.Typer(
    name="pv",
    help="PowerVerse: run a node, manage accounts, talk to the chain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pv {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    log_level: str = typer.Option(
        "info", "--log-level", help="debug, info, warning or error.", envvar="PV_LOG_LEVEL"
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """PowerVerse command line."""
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register_subcommands() -> None:
    """Attach each area's commands; each lives in its own module."""
    from powerverse.cli import (
        account,
        admin,
        arbitration,
        contracts,
        devnet,
        did,
        genesis,
        market,
        node,
        order,
        resource,
        review,
        stake,
        status,
        task,
    )

    app.add_typer(account.app, name="account")
    app.add_typer(genesis.app, name="genesis")
    app.add_typer(devnet.app, name="devnet")
    app.add_typer(contracts.app, name="contracts")
    app.add_typer(stake.app, name="stake")
    app.add_typer(did.app, name="did")
    app.add_typer(resource.app, name="resource")
    app.add_typer(market.app, name="market")
    app.add_typer(admin.app, name="admin")
    app.add_typer(order.app, name="order")
    app.add_typer(task.app, name="task")
    app.add_typer(review.app, name="review")
    app.add_typer(arbitration.app, name="arbitration")
    node.register(app)
    status.register(app)


def main() -> None:
    """Entry point of the `pv` executable."""
    _register_subcommands()
    app()
