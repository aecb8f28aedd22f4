"""Arbitration on a real dev node: disputes handed over by Orders and Market, committee rulings
that pay out through the source, escalation to governance, evidence, and every refusal."""

from __future__ import annotations

import pytest

from powerverse.market.admin import Admin
from powerverse.market.arbitration import Arbitration, DisputeStatus, source_address
from powerverse.market.exceptions import MarketError
from powerverse.market.orders import Orders, OrderState
from powerverse.market.rentals import Rentals, RentalState
from powerverse.market.reviews import Reviews
from tests.market.market_helpers import FOUNDATION, ClientFactory, listed_resource, refused
from tests.market.orders_helpers import REWARD, resource, task

CONSUMER, PROVIDER, OUTSIDER = 1, 2, 3
ARBITER = 15  # a committee member without GOVERNANCE_ROLE
FEE_BPS = 250


@pytest.fixture(scope="module")
def arbiter(client: ClientFactory) -> Arbitration:
    Admin(client(FOUNDATION)).grant_role("Arbitration", "ARBITER_ROLE", client(ARBITER).address)
    return Arbitration(client(ARBITER))


def rejected_task(client: ClientFactory) -> tuple[int, int]:
    """A task whose result the consumer rejected: (order id, dispute id)."""
    token = resource(client, PROVIDER)
    order_id = task(client(CONSUMER))
    Orders(client(PROVIDER)).take_task(order_id, token)
    Orders(client(PROVIDER)).submit_result(order_id, "ipfs://result")
    disputed = Orders(client(CONSUMER)).reject(order_id, "the output is empty")
    return order_id, disputed.dispute_id


def test_a_rejected_task_is_ruled_by_the_committee(
    client: ClientFactory, arbiter: Arbitration
) -> None:
    order_id, dispute_id = rejected_task(client)
    dispute = arbiter.dispute(dispute_id)
    assert dispute.status == DisputeStatus.OPEN and dispute.source_name == "Orders"
    assert (dispute.source_id, dispute.amount) == (order_id, REWARD)
    assert (dispute.consumer, dispute.provider) == (
        client(CONSUMER).address,
        client(PROVIDER).address,
    )
    assert dispute.reason == "the output is empty" and dispute.provider_share is None
    assert arbiter.dispute_for("Orders", order_id) == dispute_id
    assert dispute_id in [d.dispute_id for d in arbiter.open_disputes()]

    arbiter.submit_evidence(dispute_id, "ipfs://committee-notes")
    Arbitration(client(PROVIDER)).submit_evidence(dispute_id, "ipfs://logs")
    with refused("NotParty", dispute_id, client(OUTSIDER).address):
        Arbitration(client(OUTSIDER)).submit_evidence(dispute_id, "ipfs://spam")
    with refused("EmptyText", field="evidence"):
        Arbitration(client(PROVIDER)).submit_evidence(dispute_id, "")

    with refused("NotArbiter", client(OUTSIDER).address):
        Arbitration(client(OUTSIDER)).rule(dispute_id, 0, "me")
    with refused("ShareExceedsAmount", dispute_id, REWARD + 1, REWARD):
        arbiter.rule(dispute_id, REWARD + 1, "too much")
    with refused("EmptyText", field="reason"):
        arbiter.rule(dispute_id, 0, "")

    orders = Orders(client(CONSUMER))
    consumer_owed, provider_owed = orders.owed(), orders.owed(client(PROVIDER).address)
    share = REWARD * 3 // 10
    ruling = arbiter.rule(dispute_id, share, "partly usable: 30% back to the consumer")
    assert (ruling.consumer_share, ruling.provider_share, ruling.by_dao) == (
        share,
        REWARD - share,
        False,
    )
    provider_part = REWARD - share
    fee = provider_part * FEE_BPS // 10_000
    assert orders.owed() == consumer_owed + share
    assert orders.owed(client(PROVIDER).address) == provider_owed + provider_part - fee
    assert orders.order(order_id).state == OrderState.RESOLVED
    assert orders.totals().balanced
    ruled = arbiter.dispute(dispute_id)
    assert ruled.status == DisputeStatus.RULED and ruled.ruled_by == client(ARBITER).address
    assert ruled.consumer_share == share and ruled.provider_share == REWARD - share
    with refused("AlreadyRuled", dispute_id):
        arbiter.rule(dispute_id, 0, "again")
    with refused("AlreadyRuled", dispute_id):
        Arbitration(client(FOUNDATION)).escalate(dispute_id, "after the fact")
    with refused("AlreadyRuled", dispute_id):
        arbiter.submit_evidence(dispute_id, "ipfs://late")
    # the ruled order is recorded, so both sides can review
    Reviews(client(CONSUMER)).review(orders.order_key(order_id), 2, 3, 2)


def test_escalated_disputes_are_ruled_by_governance_only(
    client: ClientFactory, arbiter: Arbitration
) -> None:
    order_id, dispute_id = rejected_task(client)
    with refused("NotArbiter", client(OUTSIDER).address):
        Arbitration(client(OUTSIDER)).escalate(dispute_id, "me too")
    with refused("EmptyText", field="reason"):
        arbiter.escalate(dispute_id, "")
    arbiter.escalate(dispute_id, "precedent needed: ask the DAO")
    assert arbiter.dispute(dispute_id).status == DisputeStatus.ESCALATED
    with refused("AlreadyEscalated", dispute_id):
        arbiter.escalate(dispute_id, "again")
    with refused("NotGovernance", client(ARBITER).address):
        arbiter.rule(dispute_id, 0, "committee may not rule any more")
    ruling = Arbitration(client(FOUNDATION)).rule(dispute_id, REWARD, "DAO vote: full refund")
    assert ruling.by_dao and ruling.consumer_share == REWARD
    assert arbiter.dispute(dispute_id).by_dao
    assert Orders(client(CONSUMER)).order(order_id).state == OrderState.RESOLVED


def test_market_rentals_are_arbitrated_here(client: ClientFactory, arbiter: Arbitration) -> None:
    token = listed_resource(client, 4)
    rentals = Rentals(client(5))
    rental = rentals.rent(token, 2)
    Rentals(client(4)).confirm(rental.rental_id)
    opened = rentals.open_dispute(rental.rental_id, "the GPU is missing")
    assert opened.handed_to_arbitration and opened.dispute_id > 0
    dispute = arbiter.dispute(opened.dispute_id)
    assert dispute.source_name == "Market" and dispute.amount == rental.amount
    assert arbiter.dispute_for("Market", rental.rental_id) == opened.dispute_id
    arbiter.rule(opened.dispute_id, rental.amount, "resource not as certified")
    assert rentals.rental(rental.rental_id).state == RentalState.RESOLVED


def test_only_the_escrow_holders_open_disputes(client: ClientFactory) -> None:
    me = client(OUTSIDER)
    fn = Arbitration(me).contract.functions
    args = (me.address, 1, client(1).address, client(2).address, 100, "x")
    with refused("NotSource", me.address):
        me.transact(fn.openDispute(*args))
    Admin(client(FOUNDATION)).grant_role("Arbitration", "SOURCE_ROLE", me.address)
    try:
        with refused("SourceMismatch", me.address, source_address("Orders")):
            me.transact(fn.openDispute(source_address("Orders"), *args[1:]))
    finally:
        Admin(client(FOUNDATION)).revoke_role("Arbitration", "SOURCE_ROLE", me.address)


def test_unknown_disputes(client: ClientFactory, arbiter: Arbitration) -> None:
    with refused("UnknownDispute", 10**6):
        arbiter.rule(10**6, 0, "nothing")
    with pytest.raises(MarketError, match="no dispute"):
        arbiter.dispute(10**6)
    assert arbiter.dispute_for("Orders", 10**6) is None
    assert arbiter.is_arbiter() and not Arbitration(client(OUTSIDER)).is_arbiter()
    with pytest.raises(MarketError, match="neither"):
        source_address("Nope")
