"""PlatformAdmin on a real dev node: freezes, blacklists and the pause, with reasons and roles."""

from __future__ import annotations

from typing import Any

from powerverse.market.admin import Admin, role_id
from tests.market.market_helpers import FOUNDATION, ClientFactory, refused


def _events(admin: Admin, name: str, tx_hash: str) -> list[dict[str, Any]]:
    receipt = admin.client.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    return admin.client.events(admin.contract, name, dict(receipt))


def test_foundation_holds_the_roles_at_genesis(client: ClientFactory) -> None:
    admin = Admin(client(FOUNDATION))
    me = client(FOUNDATION).address
    for role in ("DEFAULT_ADMIN_ROLE", "ADMIN_ROLE", "PAUSER_ROLE"):
        assert admin.has_role("PlatformAdmin", role, me)
    assert not admin.has_role("PlatformAdmin", "ADMIN_ROLE", client(1).address)
    assert not admin.paused()


def test_freeze_and_unfreeze_an_account_with_reasons(client: ClientFactory) -> None:
    admin = Admin(client(FOUNDATION))
    who = client(4).address
    tx = admin.freeze_account(who, "suspicious withdrawals")
    (event,) = _events(admin, "AccountFrozen", tx.tx_hash)
    assert event == {
        "account": who,
        "by": client(FOUNDATION).address,
        "reason": "suspicious withdrawals",
    }
    status = admin.account_status(who)
    assert status.frozen and not status.blacklisted and status.blocked
    with refused("AccountAlreadyFrozen", account=who):
        admin.freeze_account(who, "again")
    tx = admin.unfreeze_account(who, "cleared")
    assert _events(admin, "AccountUnfrozen", tx.tx_hash)[0]["reason"] == "cleared"
    assert not admin.account_status(who).blocked
    with refused("AccountNotFrozen", account=who):
        admin.unfreeze_account(who, "again")


def test_blacklist_and_unblacklist_an_account(client: ClientFactory) -> None:
    admin = Admin(client(FOUNDATION))
    who = client(5).address
    tx = admin.blacklist_account(who, "fraud ruling #7")
    assert _events(admin, "AccountBlacklisted", tx.tx_hash)[0]["reason"] == "fraud ruling #7"
    assert admin.account_status(who).blacklisted
    assert client(1).call(admin.contract.functions.isBlacklisted(who))
    with refused("AccountAlreadyBlacklisted", account=who):
        admin.blacklist_account(who, "again")
    tx = admin.unblacklist_account(who, "appeal upheld")
    assert _events(admin, "AccountUnblacklisted", tx.tx_hash)[0]["reason"] == "appeal upheld"
    with refused("AccountNotBlacklisted", account=who):
        admin.unblacklist_account(who, "again")


def test_freeze_and_blacklist_a_resource(client: ClientFactory) -> None:
    admin = Admin(client(FOUNDATION))
    tx = admin.freeze_resource(77, "benchmark mismatch")
    (event,) = _events(admin, "ResourceFrozen", tx.tx_hash)
    assert event["tokenId"] == 77 and event["reason"] == "benchmark mismatch"
    with refused("ResourceAlreadyFrozen", tokenId=77):
        admin.freeze_resource(77, "again")
    admin.blacklist_resource(77, "stolen hardware")
    with refused("ResourceAlreadyBlacklisted", tokenId=77):
        admin.blacklist_resource(77, "again")
    status = admin.resource_status(77)
    assert status.frozen and status.blacklisted and status.blocked
    admin.unfreeze_resource(77, "ok")
    admin.unblacklist_resource(77, "ok")
    assert not admin.resource_status(77).blocked
    with refused("ResourceNotFrozen", tokenId=77):
        admin.unfreeze_resource(77, "again")
    with refused("ResourceNotBlacklisted", tokenId=77):
        admin.unblacklist_resource(77, "again")


def test_reasons_are_required_and_bounded(client: ClientFactory) -> None:
    admin = Admin(client(FOUNDATION))
    with refused("EmptyReason"):
        admin.freeze_account(client(6).address, "")
    with refused("ReasonTooLong", length=513, max=512):
        admin.blacklist_resource(5, "r" * 513)
    with refused("ZeroAccount"):
        admin.freeze_account("0x" + "00" * 20, "nobody")


def test_only_admins_freeze_and_only_pausers_pause(client: ClientFactory) -> None:
    outsider = Admin(client(6))
    admin_role = "0x" + role_id("ADMIN_ROLE").hex()
    pauser_role = "0x" + role_id("PAUSER_ROLE").hex()
    for call in (
        lambda: outsider.freeze_account(client(7).address, "x"),
        lambda: outsider.unfreeze_account(client(7).address, "x"),
        lambda: outsider.blacklist_account(client(7).address, "x"),
        lambda: outsider.unblacklist_account(client(7).address, "x"),
        lambda: outsider.freeze_resource(1, "x"),
        lambda: outsider.unfreeze_resource(1, "x"),
        lambda: outsider.blacklist_resource(1, "x"),
        lambda: outsider.unblacklist_resource(1, "x"),
    ):
        with refused(
            "AccessControlUnauthorizedAccount", account=client(6).address, neededRole=admin_role
        ):
            call()
    with refused("AccessControlUnauthorizedAccount", neededRole=pauser_role):
        outsider.pause("x")
    with refused("AccessControlUnauthorizedAccount", neededRole=pauser_role):
        outsider.unpause("x")


def test_granted_roles_work_and_revoked_ones_stop(client: ClientFactory) -> None:
    root = Admin(client(FOUNDATION))
    deputy = Admin(client(8))
    root.grant_role("PlatformAdmin", "ADMIN_ROLE", client(8).address)
    deputy.freeze_account(client(9).address, "deputy action")
    deputy.unfreeze_account(client(9).address, "deputy action")
    root.revoke_role("PlatformAdmin", "ADMIN_ROLE", client(8).address)
    with refused("AccessControlUnauthorizedAccount"):
        deputy.freeze_account(client(9).address, "no longer allowed")


def test_pause_and_unpause_with_reasons(client: ClientFactory) -> None:
    admin = Admin(client(FOUNDATION))
    tx = admin.pause("incident 42")
    (event,) = _events(admin, "PauseReason", tx.tx_hash)
    assert event["paused"] is True and event["reason"] == "incident 42"
    assert admin.paused()
    with refused("EnforcedPause"):
        admin.pause("twice")
    admin.unpause("resolved")
    assert not admin.paused()
    with refused("ExpectedPause"):
        admin.unpause("twice")
