"""Platform administration (whitepaper 5.1): freezes, blacklists, the emergency stop, roles.

Every admin action carries a reason that the PlatformAdmin contract puts in its event. A
freeze is temporary and a blacklist a ban; both stop an account or resource from starting
anything new, neither holds back money already owed (docs/contracts.md, "PlatformAdmin").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract

from powerverse.market.client import ChainClient
from powerverse.market.receipts import TxInfo

__all__ = ["DEFAULT_ADMIN_ROLE", "AccountStatus", "Admin", "ResourceStatus", "role_id"]

DEFAULT_ADMIN_ROLE = b"\x00" * 32


def role_id(name: str) -> bytes:
    """The AccessControl role id of `name` (e.g. "VERIFIER_ROLE"); DEFAULT_ADMIN_ROLE is zero."""
    return DEFAULT_ADMIN_ROLE if name == "DEFAULT_ADMIN_ROLE" else keccak(text=name)


@dataclass(frozen=True, kw_only=True)
class AccountStatus:
    """Whether an account is frozen or blacklisted."""

    account: str
    frozen: bool
    blacklisted: bool

    @property
    def blocked(self) -> bool:
        """True when it may not start anything new."""
        return self.frozen or self.blacklisted


@dataclass(frozen=True, kw_only=True)
class ResourceStatus:
    """Whether a resource token is frozen or blacklisted."""

    token_id: int
    frozen: bool
    blacklisted: bool

    @property
    def blocked(self) -> bool:
        """True when it may not be listed or rented."""
        return self.frozen or self.blacklisted


class Admin:
    """The PlatformAdmin contract, and role management on any system contract."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.contract: Contract = client.contract("PlatformAdmin")

    @property
    def _fn(self) -> Any:
        return self.contract.functions

    def _tx(self, fn: Any) -> TxInfo:
        return TxInfo.from_receipt(self.client.transact(fn))

    # ------------------------------------------------------------------ accounts

    def freeze_account(self, account: str, reason: str) -> TxInfo:
        """Freeze `account` (ADMIN_ROLE)."""
        return self._tx(self._fn.freezeAccount(to_checksum_address(account), reason))

    def unfreeze_account(self, account: str, reason: str) -> TxInfo:
        """Lift the freeze of `account` (ADMIN_ROLE)."""
        return self._tx(self._fn.unfreezeAccount(to_checksum_address(account), reason))

    def blacklist_account(self, account: str, reason: str) -> TxInfo:
        """Blacklist `account` (ADMIN_ROLE)."""
        return self._tx(self._fn.blacklistAccount(to_checksum_address(account), reason))

    def unblacklist_account(self, account: str, reason: str) -> TxInfo:
        """Take `account` off the blacklist (ADMIN_ROLE)."""
        return self._tx(self._fn.unblacklistAccount(to_checksum_address(account), reason))

    def account_status(self, account: str) -> AccountStatus:
        """Frozen and blacklisted flags of `account`."""
        who = to_checksum_address(account)
        return AccountStatus(
            account=who,
            frozen=bool(self.client.call(self._fn.isAccountFrozen(who))),
            blacklisted=bool(self.client.call(self._fn.isBlacklisted(who))),
        )

    # ------------------------------------------------------------------ resources

    def freeze_resource(self, token_id: int, reason: str) -> TxInfo:
        """Freeze resource `token_id` (ADMIN_ROLE)."""
        return self._tx(self._fn.freezeResource(token_id, reason))

    def unfreeze_resource(self, token_id: int, reason: str) -> TxInfo:
        """Lift the freeze of resource `token_id` (ADMIN_ROLE)."""
        return self._tx(self._fn.unfreezeResource(token_id, reason))

    def blacklist_resource(self, token_id: int, reason: str) -> TxInfo:
        """Blacklist resource `token_id` (ADMIN_ROLE)."""
        return self._tx(self._fn.blacklistResource(token_id, reason))

    def unblacklist_resource(self, token_id: int, reason: str) -> TxInfo:
        """Take resource `token_id` off the blacklist (ADMIN_ROLE)."""
        return self._tx(self._fn.unblacklistResource(token_id, reason))

    def resource_status(self, token_id: int) -> ResourceStatus:
        """Frozen and blacklisted flags of resource `token_id`."""
        return ResourceStatus(
            token_id=token_id,
            frozen=bool(self.client.call(self._fn.isResourceFrozen(token_id))),
            blacklisted=bool(self.client.call(self._fn.isResourceBlacklisted(token_id))),
        )

    # ------------------------------------------------------------------ emergency stop

    def pause(self, reason: str) -> TxInfo:
        """Stop new orders (PAUSER_ROLE)."""
        return self._tx(self._fn.pause(reason))

    def unpause(self, reason: str) -> TxInfo:
        """Accept new orders again (PAUSER_ROLE)."""
        return self._tx(self._fn.unpause(reason))

    def paused(self) -> bool:
        """True while new orders are stopped."""
        return bool(self.client.call(self._fn.paused()))

    # ------------------------------------------------------------------ roles

    def grant_role(self, contract: str, role: str, account: str) -> TxInfo:
        """Grant `role` on system contract `contract` (the role's admin only)."""
        fn = self.client.contract(contract).functions.grantRole(
            role_id(role), to_checksum_address(account)
        )
        return self._tx(fn)

    def revoke_role(self, contract: str, role: str, account: str) -> TxInfo:
        """Revoke `role` on system contract `contract` (the role's admin only)."""
        fn = self.client.contract(contract).functions.revokeRole(
            role_id(role), to_checksum_address(account)
        )
        return self._tx(fn)

    def has_role(self, contract: str, role: str, account: str) -> bool:
        """True when `account` holds `role` on system contract `contract`."""
        fn = self.client.contract(contract).functions.hasRole(
            role_id(role), to_checksum_address(account)
        )
        return bool(self.client.call(fn))
