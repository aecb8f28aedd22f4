"""`pv did`: resolve `did:pv` identifiers and edit their documents (keys, services, delegates).

``me`` stands for the signing account's DID. Exit status: 0 done, 1 refused or not resolvable,
2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from powerverse.cli.chainfmt import refused
from powerverse.cli.chainopts import (
    ChainOptions,
    chain_options,
)
from powerverse.cli.common import EXIT_USAGE, EXIT_USER_ERROR, fail, print_json
from powerverse.market.did import (
    PURPOSE_NAMES,
    DidRegistry,
    InvalidDid,
    PublicKey,
    Service,
    format_did,
    parse_did,
    parse_openssh_key,
    resolve,
)
from powerverse.market.exceptions import MarketError

app = typer.Typer(
    help="did:pv identities: resolve documents, manage keys, services, delegates, controller.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")
DidArg = Annotated[str, typer.Argument(help="A did:pv DID, or 'me' for the signing account's.")]
_PURPOSES = {name: bit for bit, name in PURPOSE_NAMES.items()}


def _did(registry: DidRegistry, did: str) -> str:
    if did == "me":
        if registry.client.account is None:
            fail("'me' needs a signer: give --from ADDRESS or --dev-account N", EXIT_USAGE)
        return registry.own_did()
    try:
        parse_did(did)
    except InvalidDid as exc:
        fail(str(exc), EXIT_USAGE)
    return did


def _attempt(json_output: bool, action: Callable[[], T]) -> T:
    try:
        return action()
    except InvalidDid as exc:
        fail(str(exc), EXIT_USAGE)
    except MarketError as exc:
        refused(exc, json_output)


def _done(json_output: bool, did: str, message: str) -> None:
    if json_output:
        print_json({"did": did, "ok": True})
    else:
        typer.echo(message)


@app.command("show")
@chain_options(keystore=False)
def show(
    did: DidArg,
    block: Annotated[
        int | None, typer.Option("--block", help="Resolve as of this block (a past version).")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """Resolve a DID: the W3C DID document, its metadata (incl. the credit record)."""
    registry = opts.sdk(DidRegistry, need_signer=False)
    if did == "me" and registry.client.account is None:
        fail("'me' needs --from ADDRESS or --dev-account N", EXIT_USAGE)
    target = registry.own_did() if did == "me" else did
    result = _attempt(
        opts.json_output,
        lambda: resolve(registry.client, target, block="latest" if block is None else block),
    )
    error = result["didResolutionMetadata"].get("error")
    if opts.json_output:
        print_json(result)
    elif error is None:
        print_json(
            {"didDocument": result["didDocument"], "metadata": result["didDocumentMetadata"]}
        )
    if error is not None:
        if not opts.json_output:
            fail(f"{error}: {result['didResolutionMetadata']['errorMessage']}")
        raise typer.Exit(EXIT_USER_ERROR)


@app.command("history")
@chain_options(keystore=False)
def history(did: DidArg, *, opts: ChainOptions) -> None:
    """Every change of a DID document, oldest first."""
    registry = opts.sdk(DidRegistry, need_signer=False)
    target = _did(registry, did)
    records = _attempt(opts.json_output, lambda: registry.history(target))
    if opts.json_output:
        print_json(
            {
                "did": target,
                "changes": [{"block": r.block, "event": r.event, **r.args} for r in records],
            }
        )
        return
    for r in records:
        details = {k: v for k, v in r.args.items() if k not in ("id", "previousChange")}
        typer.echo(f"block {r.block}: {r.event} {json.dumps(details, default=str)}")


@app.command("add-key")
@chain_options
def add_key(
    did: DidArg,
    key_id: Annotated[str, typer.Option("--id", help="Fragment, e.g. key-1 (did#key-1).")],
    key_type: Annotated[
        str | None,
        typer.Option("--type", help="e.g. Ed25519VerificationKey2020, X25519KeyAgreementKey2019."),
    ] = None,
    key_hex: Annotated[str | None, typer.Option("--key", help="Raw public key (hex).")] = None,
    ssh_key: Annotated[
        Path | None, typer.Option("--ssh-key", help="An OpenSSH public key file (.pub).")
    ] = None,
    purposes: Annotated[
        str, typer.Option("--purpose", help="Comma-separated: " + ", ".join(_PURPOSES))
    ] = "authentication",
    valid_for: Annotated[
        int | None, typer.Option("--valid-for", min=1, help="Seconds until it expires.")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """Add a public key (verification method) to a DID document."""
    kind, raw = _key_material(key_type, key_hex, ssh_key)
    bits = 0
    for name in (p.strip() for p in purposes.split(",") if p.strip()):
        if name not in _PURPOSES:
            fail(f"unknown purpose {name!r}; choose from {', '.join(_PURPOSES)}", EXIT_USAGE)
        bits |= _PURPOSES[name]
    registry = opts.sdk(DidRegistry)
    target = _did(registry, did)
    valid_to = int(time.time()) + valid_for if valid_for else 0
    key = PublicKey(key_id, kind, raw, bits, valid_to)
    _attempt(opts.json_output, lambda: registry.add_key(target, key))
    _done(opts.json_output, target, f"added key {target}#{key_id}")


def _key_material(
    key_type: str | None, key_hex: str | None, ssh_key: Path | None
) -> tuple[str, bytes]:
    if (key_hex is None) == (ssh_key is None):
        fail("give exactly one of --key HEX (with --type) or --ssh-key FILE", EXIT_USAGE)
    if ssh_key is not None:
        try:
            return parse_openssh_key(ssh_key.read_text())
        except (OSError, InvalidDid) as exc:
            fail(f"cannot use {ssh_key}: {exc}", EXIT_USAGE)
    if key_type is None:
        fail("--key needs --type", EXIT_USAGE)
    try:
        return key_type, bytes.fromhex((key_hex or "").removeprefix("0x"))
    except ValueError:
        fail("--key must be hex", EXIT_USAGE)


@app.command("remove-key")
@chain_options
def remove_key(
    did: DidArg,
    key_id: Annotated[str, typer.Argument(help="The key's fragment.")],
    *,
    opts: ChainOptions,
) -> None:
    """Remove a key from a DID document."""
    registry = opts.sdk(DidRegistry)
    target = _did(registry, did)
    _attempt(opts.json_output, lambda: registry.remove_key(target, key_id))
    _done(opts.json_output, target, f"removed key {target}#{key_id}")


@app.command("add-service")
@chain_options
def add_service(
    did: DidArg,
    service_id: Annotated[str, typer.Option("--id", help="Fragment, e.g. agent.")],
    service_type: Annotated[str, typer.Option("--type", help="e.g. PowerVerseAgent.")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="The service URI.")],
    *,
    opts: ChainOptions,
) -> None:
    """Add a service endpoint to a DID document."""
    registry = opts.sdk(DidRegistry)
    target = _did(registry, did)
    service = Service(service_id, service_type, endpoint)
    _attempt(opts.json_output, lambda: registry.add_service(target, service))
    _done(opts.json_output, target, f"added service {target}#{service_id}")


@app.command("remove-service")
@chain_options
def remove_service(
    did: DidArg,
    service_id: Annotated[str, typer.Argument(help="The service's fragment.")],
    *,
    opts: ChainOptions,
) -> None:
    """Remove a service endpoint."""
    registry = opts.sdk(DidRegistry)
    target = _did(registry, did)
    _attempt(opts.json_output, lambda: registry.remove_service(target, service_id))
    _done(opts.json_output, target, f"removed service {target}#{service_id}")


@app.command("add-delegate")
@chain_options
def add_delegate(
    did: DidArg,
    delegate: Annotated[str, typer.Option("--delegate", help="The delegate's address.")],
    kind: Annotated[
        str, typer.Option("--type", help="sigAuth, veriKey, vmAccess, or your own type.")
    ] = "sigAuth",
    valid_for: Annotated[int, typer.Option("--valid-for", min=1, help="Seconds.")] = 86_400,
    *,
    opts: ChainOptions,
) -> None:
    """Let another account act for the DID (e.g. vmAccess: log in to the resource's VMs)."""
    registry = opts.sdk(DidRegistry)
    target = _did(registry, did)
    head = int(registry.client.w3.eth.get_block("latest")["timestamp"])
    valid_to = max(head, int(time.time())) + valid_for
    _attempt(opts.json_output, lambda: registry.add_delegate(target, kind, delegate, valid_to))
    _done(opts.json_output, target, f"{delegate} is a {kind} delegate of {target} until {valid_to}")


@app.command("revoke-delegate")
@chain_options
def revoke_delegate(
    did: DidArg,
    delegate: Annotated[str, typer.Option("--delegate", help="The delegate's address.")],
    kind: Annotated[str, typer.Option("--type", help="The grant's type.")] = "sigAuth",
    *,
    opts: ChainOptions,
) -> None:
    """Revoke a delegate grant."""
    registry = opts.sdk(DidRegistry)
    target = _did(registry, did)
    _attempt(opts.json_output, lambda: registry.revoke_delegate(target, kind, delegate))
    _done(opts.json_output, target, f"revoked {kind} grant of {delegate}")


@app.command("controller")
@chain_options
def controller(
    did: DidArg,
    new_controller: Annotated[str, typer.Argument(help="The new controller's address.")],
    *,
    opts: ChainOptions,
) -> None:
    """Hand control of a DID document to another account."""
    registry = opts.sdk(DidRegistry)
    target = _did(registry, did)
    _attempt(opts.json_output, lambda: registry.change_controller(target, new_controller))
    _done(opts.json_output, target, f"{target} is now controlled by {format_did(new_controller)}")


@app.command("bind")
@chain_options
def bind(
    did: Annotated[str, typer.Argument(help="A resource DID: did:pv:<chainId>:<erc721>:<id>.")],
    *,
    opts: ChainOptions,
) -> None:
    """Make a resource DID known to the registry (its token's owner then controls it)."""
    registry = opts.sdk(DidRegistry)
    _attempt(opts.json_output, lambda: registry.bind_resource(did))
    _done(opts.json_output, did, f"bound {did}")


@app.command("deactivate")
@chain_options
def deactivate(
    did: DidArg,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    *,
    opts: ChainOptions,
) -> None:
    """Deactivate a DID for ever."""
    if not yes:
        fail("deactivation cannot be undone: add --yes", EXIT_USAGE)
    registry = opts.sdk(DidRegistry)
    target = _did(registry, did)
    _attempt(opts.json_output, lambda: registry.deactivate(target))
    _done(opts.json_output, target, f"deactivated {target}")
