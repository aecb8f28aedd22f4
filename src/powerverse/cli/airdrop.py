"""`pv airdrop`: register members, set the Merkle root, claim 500 PVC once, see the totals.

A member is eligible when registered by a registrar (`register`) or listed in the Merkle tree
whose root the admin set (`set-root`; `tree` builds the tree and every member's proof from a
list of addresses). `claim` claims for the signing account, or with `--for` for another member
(the member is paid, whoever sends it). Exit status: 0 done, 1 refused, 2 bad usage, 3 node
unreachable.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from eth_utils.address import to_checksum_address
from rich.console import Console

from powerverse.cli.chainfmt import attempt, done, format_pvc, parse_account, parse_hash32, tx_json
from powerverse.cli.chainopts import (
    DEFAULT_RPC,
    ChainOptions,
    JsonOption,
    RpcOption,
    chain_options,
    connect,
)
from powerverse.cli.common import EXIT_USAGE, fail, print_json
from powerverse.market.exceptions import MarketError
from powerverse.market.tokenomics import Airdrop, MerkleTree

app = typer.Typer(
    help="The airdrop: 500 PVC once per registered or Merkle-listed member.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

REGISTER_BATCH = 500
"""Addresses per register() transaction (about 25k gas each, well under a block)."""


@app.command("register")
@chain_options
def register(
    addresses: Annotated[list[str], typer.Argument(help="Member addresses to make eligible.")],
    *,
    opts: ChainOptions,
) -> None:
    """REGISTRAR_ROLE: register members (already registered ones are skipped)."""
    members = list(dict.fromkeys(parse_account(a, "address") for a in addresses))
    drop = opts.sdk(Airdrop)
    added = 0
    txs = []
    for i in range(0, len(members), REGISTER_BATCH):
        batch = members[i : i + REGISTER_BATCH]
        count, tx = attempt(opts.json_output, functools.partial(drop.register, batch))
        added += count
        txs.append(tx_json(tx))
    done(
        opts.json_output,
        {"registered": added, "skipped": len(members) - added, "transactions": txs},
        f"registered {added} member(s); {len(members) - added} already were",
    )


@app.command("set-root")
@chain_options
def set_root(
    root: Annotated[str, typer.Argument(help="The Merkle root (32 bytes of hex); zero clears it.")],
    *,
    opts: ChainOptions,
) -> None:
    """DEFAULT_ADMIN_ROLE: set the Merkle root of eligible members (see `pv airdrop tree`)."""
    value = parse_hash32(root, "ROOT")
    drop = opts.sdk(Airdrop)
    tx = attempt(opts.json_output, lambda: drop.set_merkle_root(value))
    done(
        opts.json_output,
        {"merkleRoot": "0x" + value.hex(), **tx_json(tx)},
        f"Merkle root set to 0x{value.hex()}",
    )


@app.command("tree")
def tree(
    members_file: Annotated[
        Path, typer.Argument(help="A JSON list of member addresses, or one address per line.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write root and proofs here too.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Build the Merkle tree of members: its root (for set-root) and each member's proof (the
    file `claim --proof` reads). Needs no node."""
    members = _read_members(members_file)
    merkle = MerkleTree(members)
    doc = merkle.to_json()
    if out is not None:
        out.write_text(json.dumps(doc, indent=2) + "\n")
    done(
        json_output,
        doc,
        f"root 0x{merkle.root.hex()} over {len(merkle.members)} member(s)"
        + (f"; proofs written to {out}" if out is not None else ""),
    )


def _read_members(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"cannot read {path}: {exc}", EXIT_USAGE)
    try:
        doc: Any = json.loads(text)
    except ValueError:
        doc = [line.strip() for line in text.splitlines() if line.strip()]
    if not isinstance(doc, list) or not doc:
        fail(f"{path}: expected a non-empty JSON list of addresses (or one per line)", EXIT_USAGE)
    return [parse_account(str(a), f"{path}: member") for a in doc]


def _read_proof(path: Path, account: str) -> list[bytes]:
    """A proof from a JSON list of hashes, or `account`'s entry of a `pv airdrop tree` file."""
    try:
        doc: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        fail(f"--proof {path}: cannot read JSON ({exc})", EXIT_USAGE)
    if isinstance(doc, dict):
        proofs = doc.get("proofs")
        if not isinstance(proofs, dict):
            fail(
                f"--proof {path}: expected a list of hashes or a tree file with 'proofs'",
                EXIT_USAGE,
            )
        by_address: dict[str, Any] = {str(to_checksum_address(k)): v for k, v in proofs.items()}
        if account not in by_address:
            fail(f"--proof {path}: {account} is not in this tree", EXIT_USAGE)
        doc = by_address[account]
    if not isinstance(doc, list):
        fail(f"--proof {path}: expected a JSON list of 32-byte hashes", EXIT_USAGE)
    return [parse_hash32(str(h), f"--proof {path}: each hash") for h in doc]


@app.command("claim")
@chain_options
def claim(
    proof: Annotated[
        Path | None,
        typer.Option("--proof", help="Merkle proof: a JSON list of hashes, or a tree file."),
    ] = None,
    for_: Annotated[
        str | None, typer.Option("--for", help="Claim for this member (it is paid, not you).")
    ] = None,
    *,
    opts: ChainOptions,
) -> None:
    """Claim 500 PVC once: registered members need no proof, tree members give --proof."""
    member = parse_account(for_, "--for") if for_ is not None else None
    client = opts.connect()
    account = member or client.address
    hashes = _read_proof(proof, account) if proof is not None else []
    paid = attempt(opts.json_output, lambda: Airdrop(client).claim(hashes, account=member))
    done(
        opts.json_output,
        paid.to_json(),
        f"claimed {format_pvc(paid.amount)} for {paid.account}"
        + (" (Merkle proof)" if paid.by_proof else " (registered)"),
    )


@app.command("status")
def status(
    account: Annotated[
        str | None, typer.Argument(help="Also show this address's standing.")
    ] = None,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """Claims made and left, the Merkle root, the balance; an address's standing if given."""
    who = parse_account(account, "ACCOUNT") if account is not None else None
    client = connect(rpc_url, need_signer=False)
    try:
        state = Airdrop(client).status(who)
    except MarketError as exc:
        fail(str(exc))
    doc = state.to_json()
    if json_output:
        print_json(doc)
        return
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"airdrop {state.address}: {format_pvc(state.claim_amount)} per claim")
    console.print(
        f"claims: {state.claim_count} of {state.max_claims} ({doc['remainingClaims']} left); "
        f"registered members: {state.registered_count}; balance {format_pvc(state.balance)}"
    )
    root = state.merkle_root.hex()
    console.print(f"Merkle root: {'none' if int(root, 16) == 0 else '0x' + root}")
    if who is not None:
        console.print(f"{who}: registered {state.registered}, claimed {state.claimed}")
