"""Market on a real dev node: listings, escrowed rentals, settlement, faults, disputes, payments.

Dev account 0 is the foundation (every role) and the treasury; accounts 1-3 provide, 4-6 rent.
Every flow ends with the money invariant: balance == escrows + pull balances.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from powerverse.chain.genesis import DEFAULT_STAKE, Validator, dev_genesis
from powerverse.contracts.system import SYSTEM_CONTRACTS, dev_system_config, with_system_contracts
from powerverse.crypto.keys import dev_accounts
from powerverse.market.admin import Admin
from powerverse.market.rentals import BPS, DAY, ListingStatus, Rentals, RentalState
from powerverse.market.resources import RentalStatus, Resources
from powerverse.node.runner import NodeConfig, dev_validator
from tests.market.conftest import make_factory
from tests.market.market_helpers import (
    FOUNDATION,
    PRICE,
    ClientFactory,
    head_time,
    list_resource,
    listed_resource,
    refused,
    register_resource,
    warp_by,
    warp_to,
)
from tests.rpc.conftest import ThreadedNode, run_threaded, stop_threaded

P1, P2, P3 = 1, 2, 3  # providers
C1, C2, C3 = 4, 5, 6  # consumers
KEEPER = 9  # anyone


@pytest.fixture(autouse=True)
def money_balances(client: ClientFactory) -> Iterator[None]:
    """After every test the contract holds exactly what it owes."""
    yield
    totals = Rentals(client(KEEPER)).totals()
    assert totals.balanced, totals


def rent_confirmed(
    client: ClientFactory, provider: int, consumer: int, days: int = 2
) -> tuple[int, int]:
    """A listed resource of `provider`, rented by `consumer` and confirmed: (token, rental)."""
    token = listed_resource(client, provider)
    rental = Rentals(client(consumer)).rent(token, days).rental_id
    Rentals(client(provider)).confirm(rental)
    return token, rental


# ---------------------------------------------------------------------- config


def test_genesis_config_and_roles(client: ClientFactory) -> None:
    cfg = Rentals(client(KEEPER)).config()
    assert (cfg.fee_bps, cfg.confirm_window, cfg.heartbeat_interval, cfg.heartbeat_grace) == (
        250,
        3_600,
        300,
        600,
    )
    assert cfg.treasury == client(FOUNDATION).address
    admin = Admin(client(FOUNDATION))
    for role in ("DEFAULT_ADMIN_ROLE", "GOVERNANCE_ROLE", "ARBITER_ROLE"):
        assert admin.has_role("Market", role, client(FOUNDATION).address)


def test_governance_tunes_fee_treasury_windows(client: ClientFactory) -> None:
    gov = Rentals(client(FOUNDATION))
    with refused("FeeTooHigh", bps=3_001, max=3_000):
        gov.set_fee(3_001)
    with refused("InvalidConfig", field="confirmWindow"):
        gov.set_confirm_window(0)
    with refused("InvalidConfig", field="heartbeatInterval"):
        gov.set_heartbeat(0, 10)
    with refused("ZeroAccount"):
        gov.set_treasury("0x" + "00" * 20)
    outsider = Rentals(client(C1))
    for call in (
        lambda: outsider.set_fee(1),
        lambda: outsider.set_treasury(client(C1).address),
        lambda: outsider.set_confirm_window(10),
        lambda: outsider.set_heartbeat(10, 10),
    ):
        with refused("AccessControlUnauthorizedAccount", account=client(C1).address):
            call()
    gov.set_heartbeat(120, 60)
    gov.set_confirm_window(1_800)
    assert (gov.config().heartbeat_interval, gov.config().confirm_window) == (120, 1_800)
    gov.set_heartbeat(300, 600)
    gov.set_confirm_window(3_600)


# ---------------------------------------------------------------------- listings


def test_list_update_pause_resume_unlist(client: ClientFactory) -> None:
    token = register_resource(client(P1), client(FOUNDATION))
    market = Rentals(client(P1))
    now = head_time(client(P1))
    market.list_resource(
        token,
        price_per_day=PRICE,
        available_from=now,
        available_until=now + 30 * DAY,
        min_days=2,
        max_days=7,
    )
    listing = market.listing(token)
    assert (listing.provider, listing.status, listing.price_per_day) == (
        client(P1).address,
        ListingStatus.ACTIVE,
        PRICE,
    )
    assert (listing.min_days, listing.max_days, listing.available_until) == (2, 7, now + 30 * DAY)
    assert market.quote(token, 3) == 3 * PRICE
    with refused("AlreadyListed", tokenId=token):
        list_resource(client(P1), token)
    market.update_price(token, 2 * PRICE)
    assert market.listing(token).price_per_day == 2 * PRICE
    market.pause_listing(token)
    assert market.listing(token).status is ListingStatus.PAUSED
    with refused("ListingNotActive", tokenId=token):
        Rentals(client(C1)).rent(token, 2, value=4 * PRICE)
    with refused("ListingNotActive", tokenId=token):
        market.pause_listing(token)
    market.resume_listing(token)
    with refused("ListingNotPaused", tokenId=token):
        market.resume_listing(token)
    market.unlist(token)
    assert market.listing(token).status is ListingStatus.NONE
    with refused("NotListed", tokenId=token):
        market.unlist(token)
    with refused("NotListed", tokenId=token):
        Rentals(client(C1)).rent(token, 2, value=4 * PRICE)


def test_only_the_owner_manages_a_listing(client: ClientFactory) -> None:
    token = listed_resource(client, P1)
    other = Rentals(client(P2))
    for call in (
        lambda: other.update_price(token, 1),
        lambda: other.pause_listing(token),
        lambda: other.resume_listing(token),
        lambda: other.unlist(token),
    ):
        with refused("NotResourceOwner", tokenId=token, caller=client(P2).address):
            call()
    with refused("NotResourceOwner", tokenId=token, caller=client(P2).address):
        list_resource(client(P2), token)
    with refused("NotListed"):
        other.update_price(10**9, 1)


def test_listing_needs_a_valid_offer(client: ClientFactory) -> None:
    token = register_resource(client(P1), client(FOUNDATION))
    market = Rentals(client(P1))
    now = head_time(client(P1))
    with refused("InvalidPrice"):
        market.list_resource(token, price_per_day=0, available_from=now, available_until=now + DAY)
    with refused("InvalidPeriodBounds", minDays=0, maxDays=3):
        market.list_resource(
            token,
            price_per_day=1,
            available_from=now,
            available_until=now + DAY,
            min_days=0,
            max_days=3,
        )
    with refused("InvalidPeriodBounds", minDays=4, maxDays=3):
        market.list_resource(
            token,
            price_per_day=1,
            available_from=now,
            available_until=now + DAY,
            min_days=4,
            max_days=3,
        )
    with refused("InvalidWindow"):
        market.list_resource(
            token, price_per_day=1, available_from=now + DAY, available_until=now + DAY
        )
    with refused("InvalidWindow"):
        market.list_resource(token, price_per_day=1, available_from=0, available_until=now - 1)
    with refused("InvalidPrice"):
        list_resource(client(P1), token)  # valid, then
        market.update_price(token, 0)


def test_only_verified_unblocked_resources_are_listed(client: ClientFactory) -> None:
    admin = Admin(client(FOUNDATION))
    unverified = register_resource(client(P1), None)
    with refused("ResourceNotVerified", tokenId=unverified):
        list_resource(client(P1), unverified)
    with refused("ResourceNotVerified", tokenId=10**9):
        list_resource(client(P1), 10**9)
    token = register_resource(client(P1), client(FOUNDATION))
    Resources(client(FOUNDATION)).flag(token, b"\x01" * 32, "flagged")
    with refused("ResourceNotVerified", tokenId=token):
        list_resource(client(P1), token)
    Resources(client(FOUNDATION)).verify(token, b"\x02" * 32)
    admin.freeze_resource(token, "investigation")
    with refused("ResourceBlocked", tokenId=token):
        list_resource(client(P1), token)
    admin.unfreeze_resource(token, "done")
    admin.blacklist_resource(token, "fake hardware")
    with refused("ResourceBlocked", tokenId=token):
        list_resource(client(P1), token)
    admin.unblacklist_resource(token, "appeal")
    admin.freeze_account(client(P1).address, "investigation")
    with refused("AccountBlocked", account=client(P1).address):
        list_resource(client(P1), token)
    admin.unfreeze_account(client(P1).address, "done")
    admin.blacklist_account(client(P1).address, "fraud")
    with refused("AccountBlocked", account=client(P1).address):
        list_resource(client(P1), token)
    admin.unblacklist_account(client(P1).address, "appeal")
    list_resource(client(P1), token)
    # A blocked resource cannot be resumed either.
    Rentals(client(P1)).pause_listing(token)
    admin.freeze_resource(token, "again")
    with refused("ResourceBlocked", tokenId=token):
        Rentals(client(P1)).resume_listing(token)
    admin.unfreeze_resource(token, "done")


# ---------------------------------------------------------------------- renting


def test_rent_holds_the_exact_price_in_escrow_and_marks_the_nft(client: ClientFactory) -> None:
    token = listed_resource(client, P1)
    consumer = Rentals(client(C1))
    before = consumer.totals()
    opened = consumer.rent(token, 3)
    assert opened.amount == 3 * PRICE
    after = consumer.totals()
    assert after.escrowed - before.escrowed == 3 * PRICE == after.balance - before.balance
    rental = consumer.rental(opened.rental_id)
    assert rental.state is RentalState.PENDING
    assert (rental.consumer, rental.provider, rental.token_id) == (
        client(C1).address,
        client(P1).address,
        token,
    )
    assert (rental.period_days, rental.escrow, rental.price_per_day, rental.fee_bps) == (
        3,
        3 * PRICE,
        PRICE,
        250,
    )
    assert rental.confirm_deadline == opened.confirm_deadline == rental.created_at + 3_600
    assert consumer.current_rental(token) == opened.rental_id
    info = Resources(client(C1)).rental_info(token)
    assert (info.status, info.lessee, info.price_per_day, info.period_days) == (
        RentalStatus.RENTED,
        client(C1).address,
        PRICE,
        3,
    )
    assert info.rented_by == consumer.contract.address
    with refused("ResourceBusy", tokenId=token):
        Rentals(client(C2)).rent(token, 1)
    with refused("TransferOfRentedResource", tokenId=token):
        Resources(client(P1)).transfer(token, client(P2).address)


def test_rent_refuses_wrong_amounts_and_periods(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    token = listed_resource(client, P1, min_days=2, max_days=5, window_days=6)
    consumer = Rentals(client(C1))
    with refused("WrongPayment", expected=2 * PRICE, sent=2 * PRICE - 1):
        consumer.rent(token, 2, value=2 * PRICE - 1)
    with refused("WrongPayment", expected=2 * PRICE, sent=2 * PRICE + 1):
        consumer.rent(token, 2, value=2 * PRICE + 1)
    with refused("PeriodOutOfRange", periodDays=1, minDays=2, maxDays=5):
        consumer.rent(token, 1)
    with refused("PeriodOutOfRange", periodDays=6, minDays=2, maxDays=5):
        consumer.rent(token, 6)
    with refused("SelfRental", account=client(P1).address):
        Rentals(client(P1)).rent(token, 2)
    warp_by(dev_node, client(C1), 2 * DAY)
    with refused("OutsideAvailability"):
        consumer.rent(token, 5)  # the window closes in about four days
    assert consumer.rent(token, 3).amount == 3 * PRICE


def test_rent_before_the_window_opens_is_refused(client: ClientFactory) -> None:
    token = register_resource(client(P1), client(FOUNDATION))
    now = head_time(client(P1))
    Rentals(client(P1)).list_resource(
        token, price_per_day=PRICE, available_from=now + 10 * DAY, available_until=now + 20 * DAY
    )
    with refused("OutsideAvailability", availableFrom=now + 10 * DAY):
        Rentals(client(C1)).rent(token, 1)


def test_rent_refuses_blocked_parties_resources_and_pause(client: ClientFactory) -> None:
    admin = Admin(client(FOUNDATION))
    token = listed_resource(client, P1)
    consumer = Rentals(client(C1))
    cases = [
        (admin.freeze_account, admin.unfreeze_account, client(C1).address, "AccountBlocked"),
        (admin.blacklist_account, admin.unblacklist_account, client(C1).address, "AccountBlocked"),
        (admin.freeze_account, admin.unfreeze_account, client(P1).address, "AccountBlocked"),
        (admin.freeze_resource, admin.unfreeze_resource, token, "ResourceBlocked"),
        (admin.blacklist_resource, admin.unblacklist_resource, token, "ResourceBlocked"),
    ]
    for block, unblock, target, error in cases:
        block(target, "test")  # type: ignore[operator]
        with refused(error):
            consumer.rent(token, 1)
        unblock(target, "test")  # type: ignore[operator]
    admin.pause("incident")
    try:
        with refused("MarketPaused"):
            consumer.rent(token, 1)
    finally:
        admin.unpause("over")
    Resources(client(FOUNDATION)).flag(token, b"\x01" * 32, "re-verification failed")
    with refused("ResourceNotVerified", tokenId=token):
        consumer.rent(token, 1)
    Resources(client(FOUNDATION)).verify(token, b"\x02" * 32)
    assert consumer.rent(token, 1).rental_id > 0


def test_a_transferred_resource_keeps_no_stale_listing(client: ClientFactory) -> None:
    token = listed_resource(client, P1)
    Resources(client(P1)).transfer(token, client(P2).address)
    with refused(
        "ListingStale", tokenId=token, listedBy=client(P1).address, owner=client(P2).address
    ):
        Rentals(client(C1)).rent(token, 1)
    list_resource(client(P2), token)  # the new owner lists over the stale listing
    rental = Rentals(client(C1)).rent(token, 1).rental_id
    assert Rentals(client(C1)).rental(rental).provider == client(P2).address


# ---------------------------------------------------------------------- confirm / refund


def test_provider_or_agent_confirms_before_the_deadline(client: ClientFactory) -> None:
    token = register_resource(client(P1), client(FOUNDATION), agent=client(7).address)
    list_resource(client(P1), token)
    rental = Rentals(client(C1)).rent(token, 2).rental_id
    with refused("NotProvider", rental, client(C1).address):
        Rentals(client(C1)).confirm(rental)
    confirmed = Rentals(client(7)).confirm(rental)  # the agent key
    assert confirmed.end - confirmed.start == 2 * DAY
    r = Rentals(client(C1)).rental(rental)
    assert (r.state, r.start, r.end, r.last_heartbeat) == (
        RentalState.ACTIVE,
        confirmed.start,
        confirmed.end,
        confirmed.start,
    )
    info = Resources(client(C1)).rental_info(token)
    assert (info.start, info.end) == (confirmed.start, confirmed.end)
    with refused("RentalNotInState", rentalId=rental, expected=1, actual=2):
        Rentals(client(P1)).confirm(rental)
    with refused("UnknownRental", rentalId=10**9):
        Rentals(client(P1)).confirm(10**9)


def test_unconfirmed_rental_is_refunded_in_full_by_anyone(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    token = listed_resource(client, P1)
    consumer = Rentals(client(C2))
    opened = consumer.rent(token, 2)
    keeper = Rentals(client(KEEPER))
    with refused("ConfirmDeadlineNotReached", rentalId=opened.rental_id):
        keeper.claim_refund(opened.rental_id)
    owed_before = consumer.owed()
    warp_to(dev_node, client(C2), opened.confirm_deadline + 1)
    with refused("ConfirmDeadlinePassed", rentalId=opened.rental_id):
        Rentals(client(P1)).confirm(opened.rental_id)
    closed = keeper.claim_refund(opened.rental_id)
    assert (closed.state, closed.to_consumer, closed.to_provider, closed.fee) == (
        RentalState.REFUNDED,
        2 * PRICE,
        0,
        0,
    )
    assert consumer.owed() - owed_before == 2 * PRICE
    assert Resources(client(C2)).rental_info(token).status is RentalStatus.AVAILABLE
    assert consumer.current_rental(token) == 0
    with refused("RentalNotInState"):
        keeper.claim_refund(opened.rental_id)
    assert Rentals(client(C3)).rent(token, 1).rental_id > 0  # available again


def test_provider_declines_and_consumer_is_refunded(client: ClientFactory) -> None:
    token = listed_resource(client, P1)
    rental = Rentals(client(C1)).rent(token, 1).rental_id
    with refused("NotProvider"):
        Rentals(client(C1)).decline(rental)
    closed = Rentals(client(P1)).decline(rental)
    assert (closed.state, closed.to_consumer) == (RentalState.REFUNDED, PRICE)


def test_a_frozen_provider_cannot_confirm(client: ClientFactory) -> None:
    token = listed_resource(client, P3)
    rental = Rentals(client(C1)).rent(token, 1).rental_id
    admin = Admin(client(FOUNDATION))
    admin.freeze_account(client(P3).address, "investigation")
    try:
        with refused("AccountBlocked", account=client(P3).address):
            Rentals(client(P3)).confirm(rental)
    finally:
        admin.unfreeze_account(client(P3).address, "done")


# ---------------------------------------------------------------------- settle / extend


def test_settle_pays_the_provider_minus_the_fee_to_the_treasury(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    token, rental = rent_confirmed(client, P1, C1, days=3)
    keeper = Rentals(client(KEEPER))
    r = keeper.rental(rental)
    with refused("RentalNotExpired", rentalId=rental, end=r.end):
        keeper.settle(rental)
    provider_before = keeper.owed(client(P1).address)
    treasury_before = keeper.owed(client(FOUNDATION).address)
    warp_to(dev_node, client(KEEPER), r.end)
    closed = keeper.settle(rental)
    fee = 3 * PRICE * 250 // BPS
    assert (closed.state, closed.to_consumer, closed.to_provider, closed.fee) == (
        RentalState.SETTLED,
        0,
        3 * PRICE - fee,
        fee,
    )
    assert keeper.owed(client(P1).address) - provider_before == 3 * PRICE - fee
    assert keeper.owed(client(FOUNDATION).address) - treasury_before == fee
    assert keeper.rental(rental).escrow == 0
    assert Resources(client(KEEPER)).rental_info(token).status is RentalStatus.AVAILABLE
    with refused("RentalNotInState", rentalId=rental, expected=2, actual=3):
        keeper.settle(rental)


def test_the_fee_is_fixed_when_the_rental_is_made(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    gov = Rentals(client(FOUNDATION))
    token = listed_resource(client, P2)
    rental = Rentals(client(C2)).rent(token, 1).rental_id
    gov.set_fee(1_000)
    try:
        Rentals(client(P2)).confirm(rental)
        warp_to(dev_node, client(C2), gov.rental(rental).end)
        closed = gov.settle(rental)
        assert closed.fee == PRICE * 250 // BPS
    finally:
        gov.set_fee(250)


def test_extension_before_expiry(client: ClientFactory, dev_node: ThreadedNode) -> None:
    token, rental = rent_confirmed(client, P1, C1, days=2)
    consumer = Rentals(client(C1))
    r = consumer.rental(rental)
    with refused("NotConsumer", rental, client(C2).address):
        Rentals(client(C2)).extend(rental, 1, value=PRICE)
    with refused("WrongPayment", expected=PRICE, sent=PRICE - 1):
        consumer.extend(rental, 1, value=PRICE - 1)
    with refused("PeriodOutOfRange"):
        consumer.extend(rental, 0, value=0)
    with refused("PeriodOutOfRange", periodDays=11, maxDays=10):
        consumer.extend(rental, 9)
    # The provider raising the listed price does not change the running rental's price.
    Rentals(client(P1)).update_price(token, 5 * PRICE)
    extended = consumer.extend(rental, 2)
    assert (extended.amount, extended.new_end) == (2 * PRICE, r.end + 2 * DAY)
    after = consumer.rental(rental)
    assert (after.period_days, after.escrow, after.end) == (4, 4 * PRICE, r.end + 2 * DAY)
    assert Resources(client(C1)).rental_info(token).end == after.end
    admin = Admin(client(FOUNDATION))
    admin.pause("incident")
    try:
        with refused("MarketPaused"):
            consumer.extend(rental, 1)
    finally:
        admin.unpause("over")
    Rentals(client(P1)).pause_listing(token)
    with refused("ListingNotActive", tokenId=token):
        consumer.extend(rental, 1)
    Rentals(client(P1)).resume_listing(token)
    warp_to(dev_node, client(C1), after.end)
    with refused("RentalExpired", rentalId=rental, end=after.end):
        consumer.extend(rental, 1)
    closed = Rentals(client(KEEPER)).settle(rental)
    assert closed.to_provider + closed.fee == 4 * PRICE


def test_extension_cannot_pass_the_window(client: ClientFactory) -> None:
    token = listed_resource(client, P2, window_days=3, max_days=10)
    rental = Rentals(client(C2)).rent(token, 2).rental_id
    Rentals(client(P2)).confirm(rental)
    with refused("OutsideAvailability"):
        Rentals(client(C2)).extend(rental, 2)
    with refused("RentalNotInState"):
        pending = Rentals(client(C3)).rent(listed_resource(client, P3), 1).rental_id
        Rentals(client(C3)).extend(pending, 1)


# ---------------------------------------------------------------------- heartbeats


def test_heartbeats_and_pro_rata_termination(client: ClientFactory, dev_node: ThreadedNode) -> None:
    token = register_resource(client(P3), client(FOUNDATION), agent=client(8).address)
    list_resource(client(P3), token)
    consumer = Rentals(client(C3))
    rental = consumer.rent(token, 4).rental_id
    Rentals(client(P3)).confirm(rental)
    node = dev_node
    warp_by(node, client(C3), 250)
    Rentals(client(8)).heartbeat(rental)  # agent
    warp_by(node, client(C3), 250)
    Rentals(client(P3)).heartbeat(rental)  # provider
    with refused("NotProvider", rental, client(C3).address):
        consumer.heartbeat(rental)
    r = consumer.rental(rental)
    with refused("HeartbeatNotMissed", rentalId=rental, lastHeartbeat=r.last_heartbeat):
        Rentals(client(KEEPER)).report_missed_heartbeat(rental)
    warp_to(node, client(C3), r.last_heartbeat + 300 + 600 - 1)
    with refused("HeartbeatNotMissed"):  # interval + grace (calls run one second later)
        Rentals(client(KEEPER)).report_missed_heartbeat(rental)
    warp_by(node, client(C3), 2 * DAY)
    consumer_before = consumer.owed()
    closed = Rentals(client(KEEPER)).report_missed_heartbeat(rental)
    escrow = 4 * PRICE
    refund = escrow * (r.end - r.last_heartbeat) // (r.end - r.start)
    fee = (escrow - refund) * 250 // BPS
    assert (closed.state, closed.to_consumer, closed.to_provider, closed.fee) == (
        RentalState.TERMINATED,
        refund,
        escrow - refund - fee,
        fee,
    )
    assert consumer.owed() - consumer_before == refund
    assert Resources(client(C3)).rental_info(token).status is RentalStatus.AVAILABLE


def test_heartbeats_and_reports_stop_at_the_end(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    _, rental = rent_confirmed(client, P1, C1, days=1)
    r = Rentals(client(C1)).rental(rental)
    warp_to(dev_node, client(C1), r.end)
    with refused("RentalExpired", rentalId=rental):
        Rentals(client(P1)).heartbeat(rental)
    with refused("RentalExpired", rentalId=rental):
        Rentals(client(C1)).report_missed_heartbeat(rental)
    assert Rentals(client(C1)).settle(rental).state is RentalState.SETTLED


# ---------------------------------------------------------------------- disputes


def rule(client: ClientFactory, dispute_id: int, consumer_share: int) -> dict[str, Any]:
    """The committee (foundation, ARBITER_ROLE on Arbitration) rules; Market's payout event."""
    arbitration = client(FOUNDATION).contract("Arbitration")
    receipt = client(FOUNDATION).transact(
        arbitration.functions.rule(dispute_id, consumer_share, "ruling per evidence")
    )
    market = Rentals(client(FOUNDATION)).contract
    (closed,) = client(FOUNDATION).events(market, "RentalClosed", receipt)
    return closed


def test_dispute_hands_the_frozen_escrow_to_arbitration(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    token, rental = rent_confirmed(client, P2, C2, days=2)
    with refused("NotParty", rental, client(KEEPER).address):
        Rentals(client(KEEPER)).open_dispute(rental, "not mine")
    with refused("EmptyReason"):
        Rentals(client(C2)).open_dispute(rental, "")
    opened = Rentals(client(C2)).open_dispute(rental, "ipfs://bafy-evidence: GPU missing")
    assert opened.handed_to_arbitration and opened.dispute_id > 0
    r = Rentals(client(C2)).rental(rental)
    assert (r.state, r.escrow, r.dispute_id) == (RentalState.DISPUTED, 2 * PRICE, opened.dispute_id)
    dispute = client(C2).call(
        client(C2).contract("Arbitration").functions.disputeOf(opened.dispute_id)
    )
    assert dispute[0] == Rentals(client(C2)).contract.address  # source
    assert client(C2).address in dispute and client(P2).address in dispute
    assert 2 * PRICE in dispute  # the frozen amount
    with refused("RentalNotOpen"):
        Rentals(client(P2)).open_dispute(rental, "me too")
    warp_to(dev_node, client(C2), r.end)
    with refused("RentalNotInState"):
        Rentals(client(KEEPER)).settle(rental)
    with refused("RentalNotInState"):
        Rentals(client(C2)).extend(rental, 1)
    # Handed to Arbitration: the Market's own arbiter role may not rule on it.
    with refused("NotArbiter", client(FOUNDATION).address):
        Rentals(client(FOUNDATION)).resolve_dispute(rental, 0)
    closed = rule(client, opened.dispute_id, PRICE // 2)
    provider_part = 2 * PRICE - PRICE // 2
    fee = provider_part * 250 // BPS
    assert (closed["state"], closed["toConsumer"], closed["toProvider"], closed["fee"]) == (
        RentalState.RESOLVED,
        PRICE // 2,
        provider_part - fee,
        fee,
    )
    assert Resources(client(C2)).rental_info(token).status is RentalStatus.AVAILABLE
    with refused("RentalNotInState"):
        Rentals(client(FOUNDATION)).resolve_dispute(rental, 0)


def test_a_pending_rental_can_be_disputed_by_the_provider(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    token = listed_resource(client, P3)
    rental = Rentals(client(C3)).rent(token, 1).rental_id
    opened = Rentals(client(P3)).open_dispute(rental, "consumer abuse report")
    warp_by(dev_node, client(C3), 2 * 3_600)
    with refused("RentalNotInState"):
        Rentals(client(KEEPER)).claim_refund(rental)
    closed = rule(client, opened.dispute_id, PRICE)
    assert (closed["toConsumer"], closed["toProvider"], closed["fee"]) == (PRICE, 0, 0)


def test_only_arbitration_calls_resolve_dispute(client: ClientFactory) -> None:
    _, rental = rent_confirmed(client, P1, C1, days=1)
    with refused("RentalNotInState"):  # not disputed
        Rentals(client(FOUNDATION)).resolve_dispute(rental, 0)
    Rentals(client(C1)).open_dispute(rental, "slow")
    with refused("NotArbiter", client(C1).address):
        Rentals(client(C1)).resolve_dispute(rental, PRICE)


# ---------------------------------------------------------------------- reputation


def reputation(client: ClientFactory) -> Any:
    """The Reputation system contract's functions."""
    return client(FOUNDATION).contract("Reputation").functions


def test_every_ended_rental_is_recorded_for_reviews(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    _, settled = rent_confirmed(client, P1, C2, days=1)
    warp_to(dev_node, client(C2), Rentals(client(C2)).rental(settled).end)
    closed = Rentals(client(KEEPER)).settle(settled)
    receipt = client(KEEPER).w3.eth.get_transaction_receipt(closed.tx.tx_hash)  # type: ignore[arg-type]
    market = Rentals(client(KEEPER)).contract
    assert client(KEEPER).events(market, "ReputationRecordFailed", dict(receipt)) == []
    key = Rentals(client(KEEPER)).order_key(settled)
    record = client(KEEPER).call(reputation(client).orderOf(key))
    assert client(C2).address in record and client(P1).address in record
    assert market.address in record  # the recorder


def test_accounts_below_min_reputation_cannot_list_or_rent(client: ClientFactory) -> None:
    token = listed_resource(client, P2)
    other = register_resource(client(P2), client(FOUNDATION))
    old = client(FOUNDATION).call(reputation(client).minReputation())
    score = client(FOUNDATION).call(reputation(client).reputationOf(client(C3).address))
    client(FOUNDATION).transact(reputation(client).setMinReputation(50_000))
    try:
        with refused("ReputationTooLow", client(C3).address, score, 50_000):
            Rentals(client(C3)).rent(token, 1)
        with refused("ReputationTooLow"):
            list_resource(client(P2), other)
    finally:
        client(FOUNDATION).transact(reputation(client).setMinReputation(old))
    assert Rentals(client(C3)).rent(token, 1).rental_id > 0


# ---------------------------------------------------------------------- withdrawals


def test_withdraw_pays_exactly_what_is_owed_even_when_paused_or_blocked(
    client: ClientFactory,
) -> None:
    token = listed_resource(client, P1)
    opened = Rentals(client(C3)).rent(token, 1)
    Rentals(client(P1)).decline(opened.rental_id)
    consumer = Rentals(client(C3))
    owed = consumer.owed()
    assert owed >= PRICE
    admin = Admin(client(FOUNDATION))
    admin.pause("incident")
    admin.blacklist_account(client(C3).address, "fraud")
    try:
        balance_before = client(C3).balance()
        got = consumer.withdraw()
        assert got.amount == owed
        gas_cost = got.tx.gas_used * int(
            client(C3).w3.eth.get_transaction_receipt(got.tx.tx_hash)["effectiveGasPrice"]  # type: ignore[arg-type]
        )
        assert client(C3).balance() == balance_before + owed - gas_cost
        assert consumer.owed() == 0
        with refused("NothingOwed", account=client(C3).address):
            consumer.withdraw()
    finally:
        admin.unblacklist_account(client(C3).address, "appeal")
        admin.unpause("over")


def test_withdraw_to_another_address(client: ClientFactory) -> None:
    token = listed_resource(client, P2)
    Rentals(client(P2)).decline(Rentals(client(C1)).rent(token, 2).rental_id)
    consumer = Rentals(client(C1))
    owed = consumer.owed()
    target = client(15).address
    before = client(15).balance(target)
    with refused("ZeroAccount"):
        consumer.withdraw("0x" + "00" * 20)
    assert consumer.withdraw(target).amount == owed
    assert client(15).balance(target) == before + owed


# ---------------------------------------------------------------------- no Arbitration code


@pytest.fixture(scope="module")
def bare_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedNode]:
    """A dev node whose genesis lacks Arbitration, Reputation and Orders (not yet deployed)."""
    tmp = tmp_path_factory.mktemp("bare")
    vkey = dev_validator()
    genesis = dev_genesis(
        int(time.time()),
        [a.address for a in dev_accounts()],
        Validator(vkey.address, vkey.consensus.public_key, DEFAULT_STAKE),
    )
    wanted = [c for c in SYSTEM_CONTRACTS if c.name not in {"Arbitration", "Reputation", "Orders"}]
    genesis = with_system_contracts(genesis, dev_system_config(), contracts=wanted)
    path = tmp / "genesis.json"
    path.write_text(json.dumps(genesis.to_json()))
    node = run_threaded(NodeConfig(data_dir=tmp / "data", dev=True, rpc_port=0, genesis_file=path))
    try:
        yield node
    finally:
        stop_threaded(node)


@pytest.mark.slow
def test_without_arbitration_the_market_arbiter_resolves(
    bare_node: ThreadedNode, dev_signers: list[LocalAccount]
) -> None:
    bare = make_factory(bare_node, dev_signers)
    assert bare(0).w3.eth.get_code(bare(0).contract("Arbitration").address) == b""
    _, rental = rent_confirmed(bare, P1, C1, days=2)
    opened = Rentals(bare(C1)).open_dispute(rental, "no GPU")
    assert (opened.dispute_id, opened.handed_to_arbitration) == (0, False)
    with refused("NotArbiter", bare(P1).address):
        Rentals(bare(P1)).resolve_dispute(rental, 0)
    with refused("ShareExceedsEscrow", rental, 2 * PRICE + 1, 2 * PRICE):
        Rentals(bare(FOUNDATION)).resolve_dispute(rental, 2 * PRICE + 1)
    Admin(bare(FOUNDATION)).grant_role("Market", "ARBITER_ROLE", bare(8).address)
    closed = Rentals(bare(8)).resolve_dispute(rental, 2 * PRICE)
    assert (closed.state, closed.to_consumer, closed.to_provider, closed.fee) == (
        RentalState.RESOLVED,
        2 * PRICE,
        0,
        0,
    )
    totals = Rentals(bare(KEEPER)).totals()
    assert totals.balanced and totals.escrowed == 0
