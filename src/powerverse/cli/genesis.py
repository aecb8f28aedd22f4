"""`pv genesis`: write genesis files and validator keys."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import typer

from powerverse.chain.exceptions import ChainError
from powerverse.chain.genesis import (
    DEFAULT_STAKE,
    PVC,
    Account,
    Genesis,
    Tokenomics,
    Validator,
    dev_genesis,
    load_genesis,
)
from powerverse.cli.common import EXIT_USAGE, fail, parse_utc_time, print_json
from powerverse.contracts.exceptions import ContractsError
from powerverse.contracts.system import (
    SystemConfig,
    dev_system_config,
    dev_tokenomics,
    with_system_contracts,
)
from powerverse.crypto.keys import dev_accounts, parse_address, to_checksum
from powerverse.economics.allocations import ALLOCATION_NAMES, VESTED_NAMES
from powerverse.node.runner import dev_validator
from powerverse.node.validator_key import ValidatorKey

app = typer.Typer(help="Write genesis files and validator keys.", no_args_is_help=True)


@app.command("dev")
def dev(
    out: Path = typer.Option(Path("genesis.json"), "--out", "-o", help="Where to write it."),
    timestamp: int | None = typer.Option(None, "--timestamp", help="Genesis time (default now)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write the dev genesis: chain id 31337, the 20 test accounts with 10,000 PVC each, the
    tokenomics allocations listed at genesis (dev-mnemonic accounts 20..27 as beneficiaries)."""
    if out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    vkey = dev_validator()
    genesis = dev_genesis(
        timestamp if timestamp is not None else int(time.time()),
        [a.address for a in dev_accounts()],
        Validator(vkey.address, vkey.consensus.public_key, DEFAULT_STAKE),
    )
    genesis = replace(genesis, tokenomics=dev_tokenomics(genesis.timestamp))
    genesis = _with_system(genesis, dev_system_config())
    genesis.dump(out)
    typer.echo(f"wrote {out}")


@app.command("validator-key")
def validator_key(
    out: Path = typer.Option(..., "--out", "-o", help="Key file to create (mode 0600)."),
    as_json: bool = typer.Option(False, "--json", help="Print the public parts as JSON."),
) -> None:
    """Create a validator key file: an account key and an ed25519 consensus key."""
    if out.exists():
        fail(f"{out} exists; refusing to overwrite a key file")
    key = ValidatorKey.generate()
    key.save(out)
    doc = {
        "file": str(out),
        "address": to_checksum(key.address),
        "consensusPublicKey": "0x" + key.consensus.public_key.hex(),
    }
    if as_json:
        print_json(doc)
    else:
        typer.echo(
            f"wrote {out}\naddress {doc['address']}\nconsensus key {doc['consensusPublicKey']}"
        )


@app.command("init")
def init(
    validator_key: list[Path] = typer.Option(
        ..., "--validator-key", help="Validator key file(s) to put in the validator set."
    ),
    chain_id: int = typer.Option(..., "--chain-id", help="Chain id (not 31337, which is dev)."),
    alloc: list[str] = typer.Option(
        [], "--alloc", help="ADDRESS=PVC funded at genesis; repeatable."
    ),
    out: Path = typer.Option(Path("genesis.json"), "--out", "-o"),
    timestamp: int | None = typer.Option(None, "--timestamp", help="Genesis time (default now)."),
    stake: int = typer.Option(1000, "--stake", help="Stake of each validator, in PVC.", min=1),
    foundation: str | None = typer.Option(
        None,
        "--foundation",
        help="Address holding every system-contract role (default: the first validator's).",
    ),
    treasury: str | None = typer.Option(
        None, "--treasury", help="Address receiving platform fees (default: the foundation)."
    ),
    listing_time: str | None = typer.Option(
        None,
        "--listing-time",
        help="When the coin is listed (ISO date, UTC; default: the genesis time).",
    ),
    presale_unlock_start: str | None = typer.Option(
        None,
        "--presale-unlock-start",
        help="First presale installment (ISO date; default: the first 31 May after listing).",
    ),
    beneficiaries_file: Path | None = typer.Option(
        None,
        "--beneficiaries",
        help="JSON file {allocation: address} for the vested allocations (docs/tokenomics.md).",
    ),
    beneficiary: list[str] = typer.Option(
        [], "--beneficiary", help="ALLOCATION=ADDRESS (overrides the file); repeatable."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a genesis for a new chain with the given validators, allocations and the system
    contracts (docs/contracts.md) and tokenomics allocations (docs/tokenomics.md) predeployed.

    The --alloc balances and the validators' stakes are paid out of the presale's genesis part
    (28,000,000 PVC); the presale beneficiary receives the rest. Vested allocations without a
    beneficiary go to the foundation (a note on stderr names them)."""
    if out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    if not 0 < chain_id < 2**64:
        fail("--chain-id must be between 1 and 2^64-1")
    accounts: dict[bytes, Account] = {}
    for item in alloc:
        addr_text, sep, amount = item.partition("=")
        try:
            addr = parse_address(addr_text)
            pvc = int(amount)
        except Exception:
            fail(f"--alloc {item!r}: expected ADDRESS=PVC, e.g. 0xabc…=1000")
        if not sep or pvc < 0:
            fail(f"--alloc {item!r}: expected ADDRESS=PVC with a non-negative amount")
        accounts[addr] = Account(balance=pvc * PVC)
    validators = []
    for path in validator_key:
        try:
            key = ValidatorKey.load(path)
        except ChainError as exc:
            fail(str(exc))
        validators.append(Validator(key.address, key.consensus.public_key, stake * PVC))
    start = timestamp if timestamp is not None else int(time.time())
    roles = SystemConfig(
        foundation=_address_option("--foundation", foundation) or validators[0].address,
        treasury=_address_option("--treasury", treasury),
    )
    named = _beneficiaries(beneficiaries_file, beneficiary)
    defaulted = [n for n in VESTED_NAMES if n not in named]
    if defaulted:
        typer.echo(
            f"note: {', '.join(defaulted)} vest to the foundation {to_checksum(roles.foundation)}",
            err=True,
        )
    tokenomics = Tokenomics(
        listing_time=(
            parse_utc_time(listing_time, "--listing-time") if listing_time is not None else start
        ),
        beneficiaries={n: named.get(n, roles.foundation) for n in VESTED_NAMES},
        presale_unlock_start=(
            parse_utc_time(presale_unlock_start, "--presale-unlock-start")
            if presale_unlock_start is not None
            else None
        ),
    )
    genesis = Genesis(
        chain_id=chain_id,
        timestamp=start,
        alloc=accounts,
        validators=tuple(validators),
        tokenomics=tokenomics,
    )
    genesis = _with_system(genesis, roles)
    genesis.dump(out)
    typer.echo(f"wrote {out}")


def _beneficiaries(path: Path | None, items: list[str]) -> dict[str, bytes]:
    """Allocation -> address from --beneficiaries FILE and --beneficiary NAME=ADDRESS."""
    pairs: list[tuple[str, object, str]] = []
    if path is not None:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            fail(f"--beneficiaries {path}: cannot read JSON ({exc})", EXIT_USAGE)
        if not isinstance(doc, dict):
            fail(f"--beneficiaries {path}: expected an object {{allocation: address}}", EXIT_USAGE)
        pairs += [(str(k), v, f"--beneficiaries {path}: {k}") for k, v in doc.items()]
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            fail(f"--beneficiary {item!r}: expected ALLOCATION=ADDRESS", EXIT_USAGE)
        pairs.append((name.strip(), value.strip(), f"--beneficiary {item!r}"))
    out: dict[str, bytes] = {}
    for name, value, where in pairs:
        if name not in VESTED_NAMES:
            why = (
                "it takes no beneficiary (held by a pool)"
                if name in ALLOCATION_NAMES
                else "unknown allocation"
            )
            fail(f"{where}: {why}; vested allocations are {', '.join(VESTED_NAMES)}", EXIT_USAGE)
        try:
            address = parse_address(str(value))
        except Exception:
            fail(f"{where}: {value!r} is not a 0x-prefixed 20-byte address", EXIT_USAGE)
        if address == bytes(20):
            fail(f"{where}: the zero address cannot receive an allocation", EXIT_USAGE)
        out[name] = address
    return out


def _address_option(option: str, value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        return parse_address(value)
    except Exception:
        fail(f"{option} {value!r}: expected a 0x-prefixed 20-byte address")


def _with_system(genesis: Genesis, config: SystemConfig) -> Genesis:
    try:
        return with_system_contracts(genesis, config)
    except ContractsError as exc:
        fail(f"cannot predeploy the system contracts: {exc}")


@app.command("check")
def check(
    path: Path = typer.Argument(..., help="Genesis file to validate."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Validate a genesis file and print its hash."""
    from powerverse.chain.blockchain import genesis_hash

    try:
        genesis = load_genesis(path)
    except ChainError as exc:
        fail(str(exc))
    digest = "0x" + genesis_hash(genesis).hex()
    if as_json:
        print_json(
            {
                "chainId": genesis.chain_id,
                "genesisHash": digest,
                "accounts": len(genesis.alloc),
                "validators": len(genesis.validators),
            }
        )
    else:
        typer.echo(f"ok: chain id {genesis.chain_id}, genesis hash {digest}")
