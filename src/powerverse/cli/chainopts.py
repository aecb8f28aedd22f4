"""Options every chain-writing command shares: which node, which account signs, JSON output.

A command takes them all as one keyword-only ``opts: ChainOptions`` parameter and is decorated
with :func:`chain_options`, which puts the options themselves into the signature Typer reads::

    @app.command("withdraw")
    @chain_options
    def withdraw(amount: AmountArg, *, opts: ChainOptions) -> None:
        tx = attempt(opts.json_output, lambda: opts.sdk(Staking).withdraw(amount))

An account signs from a keystore (``--from ADDRESS`` with ``--keystore DIR`` and
``--password-file FILE`` or a hidden prompt) or, on dev chains only, as one of the public dev
accounts (``--dev-account N``). Nothing is ever sent to the node but signed transactions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, overload

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount

from powerverse.cli.common import DEFAULT_RPC, EXIT_UNREACHABLE, fail, option_bundle
from powerverse.crypto.exceptions import CryptoError
from powerverse.crypto.keys import dev_accounts, parse_address
from powerverse.crypto.keystore import Keystore, default_keystore_dir
from powerverse.market.client import ChainClient
from powerverse.market.exceptions import ContractError, MarketError, TransactionFailed

DEV_CHAIN_IDS = (31337, 31338)
T = TypeVar("T")
R = TypeVar("R")

RpcOption = Annotated[
    str, typer.Option("--rpc-url", envvar="PV_RPC_URL", help="JSON-RPC URL of a node.")
]
FromOption = Annotated[
    str | None, typer.Option("--from", help="Signing address, unlocked from the keystore.")
]
KeystoreDirOption = Annotated[
    Path | None, typer.Option("--keystore", help="Keystore directory (default ~/.powerverse).")
]
PasswordFileOption = Annotated[
    Path | None, typer.Option("--password-file", help="First line is the keystore password.")
]
DevAccountOption = Annotated[
    int | None,
    typer.Option("--dev-account", min=0, max=19, help="Sign as dev account N (dev chains only)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]

__all__ = [
    "DEFAULT_RPC",
    "ChainOptions",
    "DevAccountOption",
    "FromOption",
    "JsonOption",
    "KeystoreDirOption",
    "PasswordFileOption",
    "RpcOption",
    "chain_options",
    "connect",
    "contract_failure",
    "sdk",
]


def _signer(
    from_: str | None, keystore: Path | None, password_file: Path | None, dev_account: int | None
) -> LocalAccount | None:
    if dev_account is not None and from_ is not None:
        fail("give either --from or --dev-account, not both", 2)
    if dev_account is not None:
        signer: LocalAccount = Account.from_key(dev_accounts()[dev_account].private_key)
        return signer
    if from_ is None:
        return None
    try:
        address = parse_address(from_)
    except Exception:
        fail(f"--from {from_!r}: expected a 0x-prefixed 20-byte address", 2)
    store = Keystore(keystore or default_keystore_dir(os.environ))
    if password_file is not None:
        try:
            password = password_file.read_text().splitlines()[0]
        except (OSError, IndexError):
            fail(f"cannot read a password from {password_file}")
    else:
        password = typer.prompt(f"password for {from_}", hide_input=True, err=True)
    try:
        unlocked: LocalAccount = Account.from_key(store.unlock(address, password))
        return unlocked
    except CryptoError as exc:
        fail(str(exc))


def signer_of(
    from_: str | None, keystore: Path | None, password_file: Path | None, dev_account: int | None
) -> LocalAccount | None:
    """The account chosen by --from/--keystore/--password-file or --dev-account (None if none)."""
    return _signer(from_, keystore, password_file, dev_account)


def connect(
    rpc_url: str,
    *,
    from_: str | None = None,
    keystore: Path | None = None,
    password_file: Path | None = None,
    dev_account: int | None = None,
    need_signer: bool = True,
) -> ChainClient:
    """A ChainClient on `rpc_url` signing as the chosen account; exits clearly on problems."""
    account = _signer(from_, keystore, password_file, dev_account)
    if need_signer and account is None:
        fail("this command sends a transaction: give --from ADDRESS (keystore) or --dev-account N")
    client = ChainClient(rpc_url, account)
    try:
        chain_id = client.chain_id
    except Exception as exc:
        fail(
            f"cannot reach a node at {rpc_url} ({exc.__class__.__name__}); "
            "is `pv node` running? Use --rpc-url to point elsewhere.",
            EXIT_UNREACHABLE,
        )
    if dev_account is not None and chain_id not in DEV_CHAIN_IDS:
        fail(f"--dev-account is only for dev chains; this node runs chain {chain_id}")
    return client


def sdk(
    kind: Callable[[ChainClient], T],
    rpc_url: str,
    from_: str | None = None,
    keystore: Path | None = None,
    password_file: Path | None = None,
    dev_account: int | None = None,
    *,
    need_signer: bool = True,
) -> T:
    """An SDK object (e.g. ``Rentals``) over :func:`connect`'s client."""
    return kind(
        connect(
            rpc_url,
            from_=from_,
            keystore=keystore,
            password_file=password_file,
            dev_account=dev_account,
            need_signer=need_signer,
        )
    )


@dataclass(frozen=True)
class ChainOptions:
    """What the shared options chose: the node, the signing account and JSON output.

    Its fields, in this order, are the options :func:`chain_options` gives a command.
    """

    rpc_url: RpcOption = DEFAULT_RPC
    from_: FromOption = None
    keystore: KeystoreDirOption = None
    password_file: PasswordFileOption = None
    dev_account: DevAccountOption = None
    json_output: JsonOption = False

    def connect(self, *, need_signer: bool = True) -> ChainClient:
        """:func:`connect` with these options."""
        return connect(
            self.rpc_url,
            from_=self.from_,
            keystore=self.keystore,
            password_file=self.password_file,
            dev_account=self.dev_account,
            need_signer=need_signer,
        )

    def sdk(self, kind: Callable[[ChainClient], T], *, need_signer: bool = True) -> T:
        """An SDK object (e.g. ``Rentals``) over :meth:`connect`'s client."""
        return kind(self.connect(need_signer=need_signer))


_with_keystore = option_bundle("opts", ChainOptions)
_without_keystore = option_bundle("opts", ChainOptions, without=("keystore", "password_file"))


@overload
def chain_options(command: Callable[..., R], /) -> Callable[..., R]: ...
@overload
def chain_options(*, keystore: bool = True) -> Callable[[Callable[..., R]], Callable[..., R]]: ...
def chain_options(
    command: Callable[..., R] | None = None, /, *, keystore: bool = True
) -> Callable[..., R] | Callable[[Callable[..., R]], Callable[..., R]]:
    """Give a command the shared options in place of its keyword-only ``opts: ChainOptions``.

    Typer sees ``--rpc-url --from --keystore --password-file --dev-account --json`` (without
    ``--keystore --password-file`` for ``keystore=False``: the command only reads, as an
    account given by address or dev index); the command gets them as one :class:`ChainOptions`.
    Put it below ``@app.command(...)`` so that Typer registers the decorated command.
    """
    decorate = _with_keystore if keystore else _without_keystore
    return decorate if command is None else decorate(command)


def contract_failure(exc: MarketError) -> dict[str, Any]:
    """A refusal as a JSON-able document (for --json) and a one-line message."""
    if isinstance(exc, ContractError):
        return {"error": exc.name, "args": exc.args_by_name, "message": exc.message}
    if isinstance(exc, TransactionFailed):
        return {"error": "TransactionFailed", "message": str(exc)}
    return {"error": type(exc).__name__, "message": str(exc)}
