"""`pv account`: create, import and list the accounts in a local keystore."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from powerverse.crypto.exceptions import CryptoError
from powerverse.crypto.keys import to_checksum, validate_private_key
from powerverse.crypto.keystore import Keystore, default_keystore_dir

app = typer.Typer(
    help="Create, import and list accounts in the local keystore.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

KeystoreOption = Annotated[
    Path | None,
    typer.Option(
        "--keystore",
        metavar="DIR",
        file_okay=False,
        help="Keystore directory (default: $PV_HOME/keystore; PV_HOME defaults to ~/.powerverse).",
        show_default=False,
    ),
]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        metavar="FILE",
        dir_okay=False,
        help="Read the password from the first line of FILE instead of prompting.",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")
]


@app.command("new")
def new(
    keystore: KeystoreOption = None,
    password_file: PasswordFileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a new random account, encrypted with a password."""
    store = _keystore(keystore)
    password = _password(password_file, confirm=True)
    try:
        address = store.new(password)
    except CryptoError as err:
        _fail(str(err))
    _report_stored(store, address, "Created", json_output)


@app.command("import")
def import_(
    keystore: KeystoreOption = None,
    password_file: PasswordFileOption = None,
    private_key_file: Annotated[
        Path | None,
        typer.Option(
            "--private-key-file",
            metavar="FILE",
            dir_okay=False,
            help="Read the hex private key from FILE instead of prompting for it.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Import an existing secp256k1 private key, encrypted with a password."""
    store = _keystore(keystore)
    private_key = _private_key(private_key_file)
    password = _password(password_file, confirm=True)
    try:
        address = store.import_key(private_key, password)
    except CryptoError as err:
        _fail(str(err))
    _report_stored(store, address, "Imported", json_output)


@app.command("list")
def list_(keystore: KeystoreOption = None, json_output: JsonOption = False) -> None:
    """List the accounts in the keystore, oldest first."""
    store = _keystore(keystore)
    entries = store.list()
    if json_output:
        accounts = [{"address": e.checksum, "path": str(e.path)} for e in entries]
        _print_json({"keystore": str(store.directory), "accounts": accounts})
        return
    console = Console(soft_wrap=True, highlight=False)
    if not entries:
        console.print(f"No accounts in {store.directory}. Create one with `pv account new`.")
        return
    table = Table(title=f"Accounts in {store.directory}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Address", no_wrap=True)
    table.add_column("Key file", overflow="fold")
    for index, entry in enumerate(entries):
        table.add_row(str(index), entry.checksum, entry.path.name)
    console.print(table)


def _keystore(directory: Path | None) -> Keystore:
    """Open the keystore at directory, or at the default location."""
    return Keystore(directory if directory is not None else default_keystore_dir())


def _password(password_file: Path | None, *, confirm: bool) -> str:
    """Return the password from the file's first line, or from a hidden prompt on stderr."""
    if password_file is None:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm, err=True))
    text = _read(password_file, "password file")
    lines = text.splitlines()
    return lines[0] if lines else ""


def _private_key(private_key_file: Path | None) -> bytes:
    """Return the private key from the file or a hidden prompt; hex, 0x optional."""
    if private_key_file is None:
        text = str(typer.prompt("Private key (hex)", hide_input=True, err=True))
    else:
        text = _read(private_key_file, "private key file")
    digits = text.strip()
    digits = digits[2:] if digits[:2].lower() == "0x" else digits
    try:
        if len(digits) != 64:
            raise ValueError
        return validate_private_key(bytes.fromhex(digits))
    except (ValueError, CryptoError):
        # Never echo the input: it may be (most of) a real key.
        _fail("the private key must be 64 hex digits (0x optional) of a valid secp256k1 key")


def _read(path: Path, what: str) -> str:
    """Return a small text file's content, or fail with a clear message."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        _fail(f"cannot read {what} {path}: {getattr(err, 'strerror', None) or err}")


def _report_stored(store: Keystore, address: bytes, verb: str, json_output: bool) -> None:
    """Print where a new key was stored, as JSON or for a human."""
    entry = store.find(address)
    path = str(entry.path) if entry is not None else ""
    if json_output:
        _print_json({"address": to_checksum(address), "path": path})
        return
    console = Console(soft_wrap=True, highlight=False)
    console.print(f"{verb} account [bold]{to_checksum(address)}[/bold]")
    console.print(f"Key file: {path}")
    console.print("Keep the password safe: without it this key cannot be recovered.")


def _print_json(document: dict[str, Any]) -> None:
    """Write one JSON document and a newline to stdout."""
    typer.echo(json.dumps(document))


def _fail(message: str) -> NoReturn:
    """Print `error: message` on stderr and exit with status 1 (a user error)."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        f"[bold red]error:[/bold red] {message}"
    )
    raise typer.Exit(1)
