"""`pv admin`: freeze and blacklist accounts and resources, the emergency stop, roles.

Every action carries a ``--reason`` that PlatformAdmin records in its event. Freezes and
blacklists stop new business; money already owed can always be withdrawn. Exit status: 0
done, 1 refused (the contract's error name is printed, or the JSON document with ``--json``),
2 bad usage, 3 node unreachable.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

import typer

from powerverse.cli.chainfmt import attempt, done, parse_account, tx_json
from powerverse.cli.chainopts import (
    DEFAULT_RPC,
    ChainOptions,
    JsonOption,
    RpcOption,
    chain_options,
    sdk,
)
from powerverse.cli.common import EXIT_USAGE, fail
from powerverse.contracts.system import SYSTEM_CONTRACTS
from powerverse.market.admin import AccountStatus, Admin, ResourceStatus

app = typer.Typer(
    help="Platform administration: freezes, blacklists, emergency pause, roles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the event).")]
AccountArg = Annotated[str, typer.Argument(help="An account address.")]
TokenArg = Annotated[int, typer.Argument(min=1, help="A resource token id.")]
ROLES: tuple[str, ...] = ("DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE", "ADMIN_ROLE", "PAUSER_ROLE")
ROLES += ("VERIFIER_ROLE", "ARBITER_ROLE", "SLASHER_ROLE", "MARKET_ROLE")


_admin = functools.partial(sdk, Admin)
"""The SDK object for a command: node, signer, and whether one is needed."""


def _account_json(s: AccountStatus) -> dict[str, Any]:
    return {"account": s.account, "frozen": s.frozen, "blacklisted": s.blacklisted}


def _resource_json(s: ResourceStatus) -> dict[str, Any]:
    return {"tokenId": s.token_id, "frozen": s.frozen, "blacklisted": s.blacklisted}


def _account_action(name: str, method: str, verb: str, help_text: str) -> None:
    @chain_options
    def command(account: AccountArg, reason: ReasonOption, *, opts: ChainOptions) -> None:
        who = parse_account(account, "ACCOUNT")
        admin = opts.sdk(Admin)
        tx = attempt(opts.json_output, lambda: getattr(admin, method)(who, reason))
        status = admin.account_status(who)
        doc = {**_account_json(status), "reason": reason, "tx": tx_json(tx)}
        done(opts.json_output, doc, f"{verb} {who}: {reason}")

    command.__doc__ = help_text
    app.command(name)(command)


def _resource_action(name: str, method: str, verb: str, help_text: str) -> None:
    @chain_options
    def command(token_id: TokenArg, reason: ReasonOption, *, opts: ChainOptions) -> None:
        admin = opts.sdk(Admin)
        tx = attempt(opts.json_output, lambda: getattr(admin, method)(token_id, reason))
        status = admin.resource_status(token_id)
        doc = {**_resource_json(status), "reason": reason, "tx": tx_json(tx)}
        done(opts.json_output, doc, f"{verb} resource #{token_id}: {reason}")

    command.__doc__ = help_text
    app.command(name)(command)


_account_action(
    "freeze-account", "freeze_account", "froze", "ADMIN_ROLE: freeze an account (temporary)."
)
_account_action(
    "unfreeze-account", "unfreeze_account", "unfroze", "ADMIN_ROLE: lift an account's freeze."
)
_account_action(
    "blacklist-account", "blacklist_account", "blacklisted", "ADMIN_ROLE: ban an account."
)
_account_action(
    "unblacklist-account",
    "unblacklist_account",
    "unblacklisted",
    "ADMIN_ROLE: take an account off the blacklist.",
)
_resource_action(
    "freeze-resource", "freeze_resource", "froze", "ADMIN_ROLE: freeze a resource (temporary)."
)
_resource_action(
    "unfreeze-resource", "unfreeze_resource", "unfroze", "ADMIN_ROLE: lift a resource's freeze."
)
_resource_action(
    "blacklist-resource", "blacklist_resource", "blacklisted", "ADMIN_ROLE: ban a resource."
)
_resource_action(
    "unblacklist-resource",
    "unblacklist_resource",
    "unblacklisted",
    "ADMIN_ROLE: take a resource off the blacklist.",
)


def _pause_action(name: str, help_text: str) -> None:
    @chain_options
    def command(reason: ReasonOption, *, opts: ChainOptions) -> None:
        admin = opts.sdk(Admin)
        action = admin.pause if name == "pause" else admin.unpause
        tx = attempt(opts.json_output, lambda: action(reason))
        paused = admin.paused()
        doc = {"paused": paused, "reason": reason, "tx": tx_json(tx)}
        state = "paused: no new orders" if paused else "running: orders accepted"
        done(opts.json_output, doc, f"{state} ({reason})")

    command.__doc__ = help_text
    app.command(name)(command)


_pause_action("pause", "PAUSER_ROLE: emergency stop of new orders (withdrawals still work).")
_pause_action("unpause", "PAUSER_ROLE: accept new orders again.")


@app.command("status")
def status(
    account: Annotated[
        list[str] | None, typer.Option("--account", help="An account to check (repeatable).")
    ] = None,
    resource: Annotated[
        list[int] | None, typer.Option("--resource", min=1, help="A token to check (repeatable).")
    ] = None,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """Whether the platform is paused, and the freeze/blacklist flags of accounts and tokens."""
    accounts = [parse_account(a, "--account") for a in account or []]
    admin = _admin(rpc_url, need_signer=False)
    paused = attempt(json_output, admin.paused)
    account_rows = [admin.account_status(a) for a in accounts]
    resource_rows = [admin.resource_status(t) for t in resource or []]
    doc = {
        "paused": paused,
        "accounts": [_account_json(s) for s in account_rows],
        "resources": [_resource_json(s) for s in resource_rows],
    }
    lines = [f"platform: {'paused' if paused else 'running'}"]
    for s in account_rows:
        lines.append(f"{s.account}: frozen {s.frozen}, blacklisted {s.blacklisted}")
    for r in resource_rows:
        lines.append(f"resource #{r.token_id}: frozen {r.frozen}, blacklisted {r.blacklisted}")
    done(json_output, doc, "\n".join(lines))


def _contract_name(name: str) -> str:
    known = {c.name for c in SYSTEM_CONTRACTS}
    if name not in known:
        fail(f"unknown contract {name!r}; one of: {', '.join(sorted(known))}", EXIT_USAGE)
    return name


def _role(name: str) -> str:
    role = name.upper()
    if not role.endswith("_ROLE"):
        role += "_ROLE"
    if role not in ROLES:
        fail(f"unknown role {name!r}; one of: {', '.join(ROLES)}", EXIT_USAGE)
    return role


ContractArg = Annotated[str, typer.Argument(help="System contract, e.g. ResourceNFT.")]
RoleArg = Annotated[str, typer.Argument(help="Role, e.g. VERIFIER_ROLE (or verifier).")]


def _role_action(name: str, grant: bool, help_text: str) -> None:
    @chain_options
    def command(
        contract: ContractArg, role: RoleArg, account: AccountArg, *, opts: ChainOptions
    ) -> None:
        target = _contract_name(contract)
        role_name = _role(role)
        who = parse_account(account, "ACCOUNT")
        admin = opts.sdk(Admin)
        action = admin.grant_role if grant else admin.revoke_role
        tx = attempt(opts.json_output, lambda: action(target, role_name, who))
        holds = admin.has_role(target, role_name, who)
        doc = {
            "contract": target,
            "role": role_name,
            "account": who,
            "hasRole": holds,
            "tx": tx_json(tx),
        }
        done(opts.json_output, doc, f"{who} {'holds' if holds else 'lacks'} {target}.{role_name}")

    command.__doc__ = help_text
    app.command(name)(command)


_role_action("grant-role", True, "The role's admin: grant a role on a system contract.")
_role_action("revoke-role", False, "The role's admin: revoke a role on a system contract.")


@app.command("has-role")
def has_role(
    contract: ContractArg,
    role: RoleArg,
    account: AccountArg,
    rpc_url: RpcOption = DEFAULT_RPC,
    json_output: JsonOption = False,
) -> None:
    """Whether an account holds a role on a system contract."""
    target = _contract_name(contract)
    role_name = _role(role)
    who = parse_account(account, "ACCOUNT")
    admin = _admin(rpc_url, need_signer=False)
    holds = attempt(json_output, lambda: admin.has_role(target, role_name, who))
    doc = {"contract": target, "role": role_name, "account": who, "hasRole": holds}
    done(json_output, doc, f"{who} {'holds' if holds else 'lacks'} {target}.{role_name}")
