"""Reputation on a real dev node: recorded orders, two-sided reviews, the Bayesian score,
failure penalties, the governable gate, and every refusal."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak

from powerverse.market.admin import Admin
from powerverse.market.reviews import (
    SCALE,
    ReputationParams,
    Reviews,
    bayesian_reputation,
    order_key,
    stars,
)
from tests.market.market_helpers import FOUNDATION, ClientFactory, refused

RECORDER = 19  # granted RECORDER_ROLE below, so tests can record orders of their own
DEV_PARAMS = ReputationParams(prior_mean=35_000, prior_weight=5, failure_weight=2)


@pytest.fixture(scope="module")
def recorder(client: ClientFactory) -> Reviews:
    Admin(client(FOUNDATION)).grant_role("Reputation", "RECORDER_ROLE", client(RECORDER).address)
    return Reviews(client(RECORDER))


_counter = iter(range(1, 10**6))


def record(recorder: Reviews, consumer: str, provider: str) -> bytes:
    """Record a fresh order between the two accounts; returns its key."""
    key = keccak(text=f"test-order-{next(_counter)}")
    recorder.client.transact(recorder.contract.functions.recordOrder(key, consumer, provider))
    return key


def test_a_new_account_sits_at_the_prior(client: ClientFactory) -> None:
    reviews = Reviews(client(0))
    assert reviews.params() == DEV_PARAMS
    assert reviews.reputation(client(17).address) == 35_000
    assert stars(reviews.reputation(client(17).address)) == 3.5
    assert reviews.min_reputation() == 20_000
    stats = reviews.stats(client(17).address)
    assert (stats.orders, stats.reviews_received, stats.failures) == (0, 0, 0)
    assert stats.average("quality") is None


def test_both_parties_review_each_other_once(client: ClientFactory, recorder: Reviews) -> None:
    consumer, provider = client(1), client(2)
    key = record(recorder, consumer.address, provider.address)
    record_ = Reviews(consumer).order(key)
    assert record_ is not None
    assert (record_.consumer, record_.provider) == (consumer.address, provider.address)
    assert record_.recorder == client(RECORDER).address
    assert not record_.consumer_reviewed and not record_.provider_reviewed

    done = Reviews(consumer).review(key, 5, 4, 3, "ipfs://bafy-comment")
    assert done.review.reviewee == provider.address
    assert (done.review.quality, done.review.service, done.review.efficiency) == (5, 4, 3)
    assert done.new_reputation == bayesian_reputation(
        DEV_PARAMS, rating_sum=12, reviews=1, failures=0
    )
    assert done.new_reputation == (35_000 * 5 * 3 + 12 * SCALE) // 18  # 35,833
    back = Reviews(provider).review(key, 2, 2, 2)
    assert back.review.reviewee == consumer.address
    assert back.new_reputation == (35_000 * 15 + 6 * SCALE) // 18

    stored = Reviews(consumer).review_of(key, consumer.address)
    assert stored is not None and stored.comment == "ipfs://bafy-comment"
    assert stored.at == done.review.at > 0
    record_ = Reviews(consumer).order(key)
    assert record_ is not None and record_.consumer_reviewed and record_.provider_reviewed
    stats = Reviews(consumer).stats(provider.address)
    assert (stats.orders, stats.reviews_received, stats.reviews_given) == (1, 1, 1)
    assert stats.average("quality") == 5 and stats.average("efficiency") == 3

    with refused("AlreadyReviewed", reviewer=consumer.address):
        Reviews(consumer).review(key, 1, 1, 1)
    with refused("AlreadyReviewed", reviewer=provider.address):
        Reviews(provider).review(key, 5, 5, 5)


def test_only_parties_of_a_recorded_order_review(client: ClientFactory, recorder: Reviews) -> None:
    key = record(recorder, client(3).address, client(4).address)
    with refused("NotOrderParty", caller=client(5).address):
        Reviews(client(5)).review(key, 5, 5, 5)
    unknown = keccak(text="never recorded")
    with refused("UnknownOrder", orderKey="0x" + unknown.hex()):
        Reviews(client(3)).review(unknown, 5, 5, 5)
    assert Reviews(client(3)).order(unknown) is None
    assert Reviews(client(3)).review_of(key, client(3).address) is None


@pytest.mark.parametrize(
    ("ratings", "field", "value"),
    [((0, 3, 3), "quality", 0), ((3, 6, 3), "service", 6), ((3, 3, 255), "efficiency", 255)],
)
def test_ratings_out_of_range_are_refused(
    client: ClientFactory,
    recorder: Reviews,
    ratings: tuple[int, int, int],
    field: str,
    value: int,
) -> None:
    key = record(recorder, client(3).address, client(4).address)
    with refused("RatingOutOfRange", field=field, value=value):
        Reviews(client(3)).review(key, *ratings)
    Reviews(client(3)).review(key, 3, 3, 3)  # nothing was consumed by the refusal


def test_long_comment_and_blacklisted_reviewer_are_refused(
    client: ClientFactory, recorder: Reviews
) -> None:
    key = record(recorder, client(5).address, client(6).address)
    with refused("CommentTooLong", length=257, max=256):
        Reviews(client(5)).review(key, 4, 4, 4, "x" * 257)
    admin = Admin(client(FOUNDATION))
    admin.blacklist_account(client(5).address, "fraud")
    try:
        with refused("AccountBlacklisted", account=client(5).address):
            Reviews(client(5)).review(key, 4, 4, 4)
    finally:
        admin.unblacklist_account(client(5).address, "cleared")
    Reviews(client(5)).review(key, 4, 4, 4)


def test_recording_is_for_recorders_and_checked(client: ClientFactory, recorder: Reviews) -> None:
    fn = Reviews(client(7)).contract.functions
    key = keccak(text="recorded twice")
    with refused("AccessControlUnauthorizedAccount", account=client(7).address):
        client(7).transact(fn.recordOrder(key, client(7).address, client(8).address))
    with refused("AccessControlUnauthorizedAccount", account=client(7).address):
        client(7).transact(fn.recordFailure(client(8).address, key))
    me = recorder.client
    me.transact(fn.recordOrder(key, client(7).address, client(8).address))
    with refused("OrderAlreadyRecorded"):
        me.transact(fn.recordOrder(key, client(7).address, client(8).address))
    with refused("SelfOrder", account=client(7).address):
        me.transact(fn.recordOrder(keccak(text="self"), client(7).address, client(7).address))
    with refused("ZeroAccount"):
        me.transact(fn.recordOrder(keccak(text="zero"), "0x" + "00" * 20, client(7).address))


def test_failures_lower_reputation_by_weighted_one_star_reviews(
    client: ClientFactory, recorder: Reviews
) -> None:
    provider = client(9).address
    fn = recorder.contract.functions
    key = record(recorder, client(10).address, provider)
    recorder.client.transact(fn.recordFailure(provider, key))
    expected = bayesian_reputation(DEV_PARAMS, rating_sum=0, reviews=0, failures=1)
    assert expected == (35_000 * 15 + 2 * 3 * SCALE) // 21  # 2 one-star reviews: 27,857
    assert recorder.reputation(provider) == expected
    with refused("FailureAlreadyRecorded"):
        recorder.client.transact(fn.recordFailure(provider, key))
    with refused("NotOrderProvider", provider=client(10).address):
        recorder.client.transact(
            fn.recordFailure(client(10).address, record(recorder, client(10).address, provider))
        )
    record_ = recorder.order(key)
    assert record_ is not None and record_.failed
    # Two more failures and one 5-star review.
    for _ in range(2):
        recorder.client.transact(
            fn.recordFailure(provider, record(recorder, client(10).address, provider))
        )
    good = record(recorder, client(11).address, provider)
    Reviews(client(11)).review(good, 5, 5, 5)
    stats = recorder.stats(provider)
    assert stats.failures == 3
    assert stats.reputation == bayesian_reputation(DEV_PARAMS, rating_sum=15, reviews=1, failures=3)
    assert stats.reputation < 20_000 + 5_000  # 3 failures sink an account towards the gate


def test_the_score_is_the_documented_bayesian_average(
    client: ClientFactory, recorder: Reviews
) -> None:
    provider = client(12).address
    given = [(5, 5, 5), (4, 5, 3), (1, 2, 1), (5, 4, 5)]
    total = 0
    for i, ratings in enumerate(given):
        key = record(recorder, client(13 + i % 3).address, provider)
        Reviews(client(13 + i % 3)).review(key, *ratings)
        total += sum(ratings)
        assert recorder.reputation(provider) == bayesian_reputation(
            DEV_PARAMS, rating_sum=total, reviews=i + 1, failures=0
        )
    assert 0 <= recorder.reputation(provider) <= 5 * SCALE


def test_governance_sets_the_gate_and_the_prior(client: ClientFactory) -> None:
    gov = Reviews(client(FOUNDATION))
    receipt = client(FOUNDATION).transact(gov.contract.functions.setMinReputation(30_000))
    (event,) = client(FOUNDATION).events(gov.contract, "MinReputationUpdated", receipt)
    assert (event["oldValue"], event["newValue"]) == (20_000, 30_000)
    assert gov.min_reputation() == 30_000
    with refused("InvalidMinReputation", value=50_001, max=50_000):
        gov.set_min_reputation(50_001)
    with refused("AccessControlUnauthorizedAccount", account=client(3).address):
        Reviews(client(3)).set_min_reputation(0)
    gov.set_min_reputation(20_000)

    fresh = client(18).address
    gov.set_params(ReputationParams(prior_mean=30_000, prior_weight=10, failure_weight=1))
    try:
        assert gov.reputation(fresh) == 30_000
    finally:
        gov.set_params(DEV_PARAMS)
    assert gov.reputation(fresh) == 35_000
    for bad, field in (
        (ReputationParams(prior_mean=9_999, prior_weight=5, failure_weight=2), "priorMean"),
        (ReputationParams(prior_mean=50_001, prior_weight=5, failure_weight=2), "priorMean"),
        (ReputationParams(prior_mean=35_000, prior_weight=0, failure_weight=2), "priorWeight"),
        (ReputationParams(prior_mean=35_000, prior_weight=5, failure_weight=101), "failureWeight"),
    ):
        with refused("InvalidParams", field=field):
            gov.set_params(bad)
    with refused("AccessControlUnauthorizedAccount"):
        Reviews(client(3)).set_params(DEV_PARAMS)


def test_order_key_matches_the_contracts(client: ClientFactory) -> None:
    orders = client(0).contract("Orders")
    market = client(0).contract("Market")
    assert order_key(orders.address, 7) == bytes(client(0).call(orders.functions.orderKey(7)))
    assert order_key(market.address, 7) == bytes(client(0).call(market.functions.orderKey(7)))


def test_score_helpers() -> None:
    assert stars(35_000) == 3.5
    assert bayesian_reputation(DEV_PARAMS, rating_sum=0, reviews=0, failures=0) == 35_000
    # many 5-star reviews approach 5 stars, never pass them
    assert bayesian_reputation(DEV_PARAMS, rating_sum=15_000, reviews=1_000, failures=0) > 49_000
    assert bayesian_reputation(DEV_PARAMS, rating_sum=15_000, reviews=1_000, failures=0) < 50_000
    no_penalty = ReputationParams(prior_mean=35_000, prior_weight=5, failure_weight=0)
    assert bayesian_reputation(no_penalty, rating_sum=0, reviews=0, failures=9) == 35_000
