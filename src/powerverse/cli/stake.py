"""`pv stake`: register a validator, delegate, unbond, withdraw; list validators; slash and jail;
liveness (downtime jailing).

Amounts are PVC (decimals allowed, e.g. ``1.5``) or wei with a ``wei`` suffix (``1000wei``).
Exit status: 0 done, 1 refused (the contract's error name is printed, or the JSON document with
``--json``), 2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from powerverse.cli.chainfmt import attempt as _attempt
from powerverse.cli.chainfmt import done as _done
from powerverse.cli.chainfmt import format_pvc as _pvc
from powerverse.cli.chainfmt import parse_amount
from powerverse.cli.chainopts import (
    DEFAULT_RPC,
    ChainOptions,
    JsonOption,
    RpcOption,
    chain_options,
    sdk,
)
from powerverse.cli.common import EXIT_USAGE, fail, print_json
from powerverse.market.exceptions import MarketError
from powerverse.market.staking import Staking, evidence_hash, parse_consensus_key

app = typer.Typer(
    help="Validator staking: register, delegate, unbond, withdraw, slash and jail.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

AmountArg = Annotated[str, typer.Argument(help="PVC (e.g. 1.5) or wei with a suffix (1000wei).")]
AddressArg = Annotated[str, typer.Argument(help="The validator's account address.")]


_staking = functools.partial(sdk, Staking)
"""The Staking SDK on a node, signing as the chosen account."""


@app.command("register")
@chain_options
def register(
    consensus_key: Annotated[
        str, typer.Option("--consensus-key", help="The validator's ed25519 public key (hex).")
    ],
    amount: Annotated[str, typer.Option("--amount", help="Self-stake: PVC, or wei with 'wei'.")],
    commission_bps: Annotated[int, typer.Option("--commission-bps", min=0, max=10_000)] = 0,
    *,
    opts: ChainOptions,
) -> None:
    """Register the signing account as a validator with a self-stake."""
    try:
        key = parse_consensus_key(consensus_key)
    except MarketError as exc:
        fail(str(exc), EXIT_USAGE)
    wei = parse_amount(amount)
    s = opts.sdk(Staking)
    _attempt(opts.json_output, lambda: s.register(key, commission_bps, wei))
    info = s.validator(s.client.address)
    _done(
        opts.json_output,
        info.to_json(),
        f"registered validator {info.account} (stake {_pvc(info.total_stake)}, "
        f"active: {info.active})",
    )


@app.command("delegate")
@chain_options
def delegate(validator: AddressArg, amount: AmountArg, *, opts: ChainOptions) -> None:
    """Delegate PVC to a validator (to yourself: add self-stake)."""
    wei = parse_amount(amount)
    s = opts.sdk(Staking)
    _attempt(opts.json_output, lambda: s.delegate(validator, wei))
    held = s.delegation(validator, s.client.address)
    _done(
        opts.json_output,
        {"validator": validator, "delegator": s.client.address, "delegation": str(held)},
        f"delegated {_pvc(wei)}; your delegation to {validator} is now {_pvc(held)}",
    )


@app.command("undelegate")
@chain_options
def undelegate(validator: AddressArg, amount: AmountArg, *, opts: ChainOptions) -> None:
    """Start unbonding part of a delegation; withdraw it after the unbonding period."""
    wei = parse_amount(amount)
    s = opts.sdk(Staking)
    entry = _attempt(opts.json_output, lambda: s.undelegate(validator, wei))
    _done(
        opts.json_output,
        entry.to_json(),
        f"unbonding {_pvc(entry.amount)} (entry {entry.id}), "
        f"withdrawable from timestamp {entry.completion_time}",
    )


@app.command("withdraw")
@chain_options
def withdraw(*, opts: ChainOptions) -> None:
    """Receive matured unbondings and anything else owed to the signing account."""
    s = opts.sdk(Staking)
    paid = _attempt(opts.json_output, s.withdraw)
    _done(opts.json_output, {"account": s.client.address, "paid": str(paid)}, f"paid {_pvc(paid)}")


@app.command("commission")
@chain_options
def commission(
    commission_bps: Annotated[int, typer.Argument(min=0, max=10_000, help="New commission.")],
    *,
    opts: ChainOptions,
) -> None:
    """Change your validator's commission (basis points; bounded size and rate of change)."""
    s = opts.sdk(Staking)
    _attempt(opts.json_output, lambda: s.set_commission(commission_bps))
    info = s.validator(s.client.address)
    _done(opts.json_output, info.to_json(), f"commission is now {info.commission_bps} bps")


@app.command("unjail")
@chain_options
def unjail(*, opts: ChainOptions) -> None:
    """Leave jail after the jail period."""
    s = opts.sdk(Staking)
    _attempt(opts.json_output, s.unjail)
    info = s.validator(s.client.address)
    _done(opts.json_output, info.to_json(), f"unjailed; active: {info.active}")


@app.command("validators")
def validators(
    all_: Annotated[bool, typer.Option("--all", help="Include inactive validators.")] = False,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """List the validators (by default only the active set consensus uses)."""
    s = _staking(rpc_url, None, None, None, None, need_signer=False)
    rows = _attempt(json_output, s.validators)
    if not all_:
        rows = [v for v in rows if v.active]
    if json_output:
        print_json({"validators": [v.to_json() for v in rows]})
        return
    table = Table(title="Validators" if all_ else "Active validators", title_justify="left")
    for column in ("account", "consensus key", "stake", "self", "commission", "state"):
        table.add_column(column)
    for v in rows:
        state = "jailed" if v.jailed else ("active" if v.active else "inactive")
        table.add_row(
            v.account,
            "0x" + v.consensus_key.hex()[:16] + "…",
            _pvc(v.total_stake),
            _pvc(v.self_stake),
            f"{v.commission_bps} bps",
            state,
        )
    Console(highlight=False, soft_wrap=True).print(table)


@app.command("info")
def info(
    account: Annotated[str, typer.Argument(help="An account address.")],
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """An account's pending unbondings, what it may withdraw, and its validator if it runs one."""
    s = _staking(rpc_url, None, None, None, None, need_signer=False)
    entries = _attempt(json_output, lambda: s.unbondings(account))
    withdrawable = _attempt(json_output, lambda: s.withdrawable(account))
    try:
        validator: dict[str, Any] | None = s.validator(account).to_json()
    except MarketError:
        validator = None
    doc = {
        "account": account,
        "validator": validator,
        "unbondings": [e.to_json() for e in entries],
        "withdrawable": str(withdrawable),
    }
    if json_output:
        print_json(doc)
        return
    console = Console(highlight=False, soft_wrap=True)
    if validator is not None:
        console.print(
            f"validator: stake {_pvc(int(validator['totalStake']))}, active "
            f"{validator['active']}, jailed {validator['jailed']}"
        )
    for e in entries:
        console.print(
            f"unbonding #{e.id}: {_pvc(e.amount)} from {e.validator}, at {e.completion_time}"
        )
    console.print(f"withdrawable now: {_pvc(withdrawable)}")


@app.command("slash")
@chain_options
def slash(
    consensus_key: Annotated[str, typer.Argument(help="The offender's consensus key (hex).")],
    evidence_file: Annotated[
        Path | None,
        typer.Option("--evidence-file", help="A pv_getEvidence record (JSON) to hash."),
    ] = None,
    evidence: Annotated[
        str | None, typer.Option("--evidence-hash", help="A 32-byte evidence hash (hex).")
    ] = None,
    fraction_bps: Annotated[int, typer.Option("--fraction-bps", min=1, max=9_999)] = 500,
    *,
    opts: ChainOptions,
) -> None:
    """SLASHER_ROLE: slash a validator's stake (and its delegators') for equivocation; jails it."""
    digest = _evidence(evidence_file, evidence)
    s = opts.sdk(Staking)
    _attempt(opts.json_output, lambda: s.slash(consensus_key, digest, fraction_bps))
    v = s.validator_by_key(consensus_key)
    doc = {**v.to_json(), "evidenceHash": "0x" + digest.hex()}
    _done(opts.json_output, doc, f"slashed {v.account}: {_pvc(v.slashed)} so far; jailed")


@app.command("submit-evidence")
@chain_options
def submit_evidence(
    evidence_file: Annotated[
        Path,
        typer.Argument(
            help="A pv_getEvidence record (JSON), or a JSON list of records (each submitted)."
        ),
    ],
    *,
    opts: ChainOptions,
) -> None:
    """Prove an equivocation on chain (anyone may): the chain checks both signed messages,
    then the validator is slashed and jailed."""
    try:
        doc = json.loads(evidence_file.read_text())
    except (OSError, ValueError) as exc:
        fail(f"cannot read evidence from {evidence_file}: {exc}", EXIT_USAGE)
    records = doc if isinstance(doc, list) else [doc]
    if not records or not all(isinstance(r, dict) and "messages" in r for r in records):
        fail(f"{evidence_file}: expected pv_getEvidence record(s) with 'messages'", EXIT_USAGE)
    s = opts.sdk(Staking)
    results = []
    for record in records:
        key, height = _attempt(opts.json_output, functools.partial(s.submit_evidence, record))
        v = s.validator_by_key(key)
        results.append({**v.to_json(), "height": height})
    if len(results) == 1:
        one = results[0]
        _done(
            opts.json_output, one, f"slashed {one['account']} for equivocating at {one['height']}"
        )
    else:
        _done(opts.json_output, {"slashed": results}, f"{len(results)} equivocations proven")


@app.command("jail")
@chain_options
def jail(
    consensus_key: Annotated[str, typer.Argument(help="The validator's consensus key (hex).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the event).")],
    *,
    opts: ChainOptions,
) -> None:
    """SLASHER_ROLE: jail a validator (e.g. for long downtime)."""
    s = opts.sdk(Staking)
    _attempt(opts.json_output, lambda: s.jail(consensus_key, reason))
    v = s.validator_by_key(consensus_key)
    _done(opts.json_output, v.to_json(), f"jailed {v.account} until {v.jailed_until}")


@app.command("liveness")
def liveness(
    consensus_key: Annotated[str, typer.Argument(help="The validator's consensus key (hex).")],
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """When a validator last proved its liveness, and from which block it may be jailed."""
    key = _consensus_key(consensus_key)
    s = _staking(rpc_url, None, None, None, None, need_signer=False)
    last, until = _attempt(json_output, lambda: s.liveness(key))
    head = int(s.client.w3.eth.block_number)
    doc = {"lastLive": last, "liveUntil": until, "head": head, "down": head >= until}
    _done(
        json_output,
        doc,
        f"last proof at block {last}; may be reported down after block {until} (head {head})",
    )


@app.command("report-downtime")
@chain_options
def report_downtime(
    consensus_key: Annotated[str, typer.Argument(help="The validator's consensus key (hex).")],
    *,
    opts: ChainOptions,
) -> None:
    """Anyone: jail a validator with no liveness proof for longer than the liveness window."""
    key = _consensus_key(consensus_key)
    s = opts.sdk(Staking)
    _attempt(opts.json_output, lambda: s.report_downtime(key))
    v = s.validator_by_key(key)
    _done(opts.json_output, v.to_json(), f"jailed {v.account} for downtime until {v.jailed_until}")


def _consensus_key(text: str) -> bytes:
    try:
        return parse_consensus_key(text)
    except MarketError as exc:
        fail(str(exc), EXIT_USAGE)


def _evidence(evidence_file: Path | None, evidence: str | None) -> bytes:
    if (evidence_file is None) == (evidence is None):
        fail("give exactly one of --evidence-file or --evidence-hash", EXIT_USAGE)
    if evidence_file is not None:
        try:
            return evidence_hash(json.loads(evidence_file.read_text()))
        except (OSError, ValueError, KeyError, MarketError) as exc:
            fail(f"cannot read evidence from {evidence_file}: {exc}", EXIT_USAGE)
    assert evidence is not None
    try:
        digest = bytes.fromhex(evidence.removeprefix("0x"))
    except ValueError:
        digest = b""
    if len(digest) != 32:
        fail("--evidence-hash must be 32 bytes of hex", EXIT_USAGE)
    return digest
