"""`pv contracts`: build the system contracts' artifacts and list where they live."""

from __future__ import annotations

import typer

from powerverse.cli.common import fail, print_json
from powerverse.contracts import build as builder
from powerverse.contracts.artifacts import ARTIFACTS_DIR, SOURCES_DIR
from powerverse.contracts.exceptions import BuildError
from powerverse.contracts.system import SYSTEM_ADDRESSES, SYSTEM_CONTRACTS

app = typer.Typer(help="Build and inspect the predeployed system contracts.", no_args_is_help=True)

EXIT_STALE = 1


@app.command("build")
def build(
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 listing what differs if artifacts are stale."
    ),
) -> None:
    """Compile the system contracts (pinned solc, OpenZeppelin) into committed artifacts."""
    try:
        if check:
            problems = builder.check(SOURCES_DIR, ARTIFACTS_DIR)
            for problem in problems:
                typer.echo(problem, err=True)
            if problems:
                typer.echo("artifacts are out of date; rebuild with: pv contracts build", err=True)
                raise typer.Exit(EXIT_STALE)
            typer.echo(f"{ARTIFACTS_DIR}: up to date")
            return
        typer.echo(f"compiling {SOURCES_DIR} ...", err=True)
        written = builder.build(SOURCES_DIR, ARTIFACTS_DIR)
    except BuildError as exc:
        fail(str(exc))
    typer.echo(f"wrote {len(written)} artifact(s) to {ARTIFACTS_DIR}")


@app.command("addresses")
def addresses(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """The fixed address of every system contract, and whether this release deploys it."""
    deployed = {c.name for c in SYSTEM_CONTRACTS}
    rows = [
        {"name": name, "address": "0x" + addr.hex(), "predeployed": name in deployed}
        for name, addr in SYSTEM_ADDRESSES.items()
    ]
    if as_json:
        print_json({"contracts": rows})
        return
    for row in rows:
        mark = "" if row["predeployed"] else "  (not in this release yet)"
        typer.echo(f"{row['name']:<14} {row['address']}{mark}")
