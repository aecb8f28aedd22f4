"""The `pv` command line: one Typer app with a sub-app per area."""

from __future__ import annotations

import logging
import sys

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


GROUPS = (
    "account",
    "genesis",
    "devnet",
    "contracts",
    "stake",
    "did",
    "resource",
    "market",
    "admin",
    "order",
    "task",
    "review",
    "arbitration",
    "provider",
    "tokenomics",
    "airdrop",
    "dao",
    "rewards",
    "dividends",
)
"""Sub-apps, each `powerverse.cli.<name>.app`, mounted as `pv <name>`."""
COMMANDS = ("node", "status")
"""Modules with a `register(app)` adding top-level commands."""


def _register_subcommands(only: str | None = None) -> None:
    """Attach each area's commands; each lives in its own module.

    With `only` (the command the user typed), just that area is imported: `pv` starts faster
    because it does not load the SDK and web3 for `pv node` or the node for `pv market`.
    """
    import importlib

    wanted = (only,) if only in GROUPS or only in COMMANDS else None
    for name in GROUPS:
        if wanted is None or name in wanted:
            module = importlib.import_module(f"powerverse.cli.{name}")
            app.add_typer(module.app, name=name)
    for name in COMMANDS:
        if wanted is None or name in wanted:
            importlib.import_module(f"powerverse.cli.{name}").register(app)


def main() -> None:
    """Entry point of the `pv` executable."""
    first = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    _register_subcommands(first)
    app()
