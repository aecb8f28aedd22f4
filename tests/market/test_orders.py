"""Orders on a real dev node: demands filled into rentals, tasks with MANUAL and HASH acceptance,
deadlines, disputes, pull payments, admin checks and every refusal."""

from __future__ import annotations

from dataclasses import replace

import pytest

from powerverse.market.admin import Admin
from powerverse.market.exceptions import MarketError
from powerverse.market.orders import (
    DAY,
    Acceptance,
    OrderKind,
    Orders,
    OrderState,
    Specs,
    result_hash,
)
from powerverse.market.resources import RentalStatus, Resources
from powerverse.market.reviews import Reviews
from tests.market.market_helpers import (
    FOUNDATION,
    PARA,
    ClientFactory,
    head_time,
    refused,
    register_resource,
    warp_by,
)
from tests.market.orders_helpers import MATCHING, REWARD, demand, resource, task
from tests.rpc.conftest import ThreadedNode

CONSUMER, PROVIDER, OTHER = 1, 2, 3
PRICE = 10**16
FEE_BPS = 250


def fee(amount: int) -> int:
    return amount * FEE_BPS // 10_000


def assert_balanced(orders: Orders) -> None:
    totals = orders.totals()
    assert totals.balanced, totals


# ---------------------------------------------------------------------- demands


def test_a_demand_is_filled_run_and_settled(client: ClientFactory, dev_node: ThreadedNode) -> None:
    consumer, provider = Orders(client(CONSUMER)), Orders(client(PROVIDER))
    token = resource(client, PROVIDER)
    budget = 5 * PRICE
    order_id = demand(client(CONSUMER), budget=budget, period_days=3)
    posted = consumer.order(order_id)
    assert (posted.kind, posted.state, posted.escrow) == (OrderKind.DEMAND, OrderState.OPEN, budget)
    assert posted.specs == MATCHING and posted.provider is None
    owed_before = consumer.owed()

    filled = provider.fill_demand(order_id, token, PRICE)
    assert (filled.rent, filled.refund) == (3 * PRICE, 2 * PRICE)
    assert filled.end - filled.start == 3 * DAY
    assert consumer.owed() == owed_before + 2 * PRICE  # the unused budget, at once
    running = consumer.order(order_id)
    assert running.state == OrderState.ACTIVE and running.provider == client(PROVIDER).address
    assert (running.token_id, running.escrow, running.price_per_day) == (token, 3 * PRICE, PRICE)
    info = Resources(client(CONSUMER)).rental_info(token)
    assert info.status == RentalStatus.RENTED
    assert info.lessee == client(CONSUMER).address
    assert info.rented_by == consumer.contract.address
    assert_balanced(consumer)

    with refused("RentalNotEnded", orderId=order_id):
        consumer.settle(order_id)
    warp_by(dev_node, client(OTHER), 3 * DAY)
    provider_owed = provider.owed()
    treasury_owed = consumer.owed(client(FOUNDATION).address)
    closed = Orders(client(OTHER)).settle(order_id)  # anyone
    assert closed.state == OrderState.COMPLETED
    assert (closed.to_consumer, closed.to_provider, closed.fee) == (
        0,
        3 * PRICE - fee(3 * PRICE),
        fee(3 * PRICE),
    )
    assert provider.owed() == provider_owed + closed.to_provider
    assert consumer.owed(client(FOUNDATION).address) == treasury_owed + closed.fee
    assert Resources(client(CONSUMER)).rental_info(token).status == RentalStatus.AVAILABLE
    record = Reviews(client(CONSUMER)).order(consumer.order_key(order_id))
    assert record is not None and record.provider == client(PROVIDER).address
    Reviews(client(CONSUMER)).review(consumer.order_key(order_id), 5, 5, 4)
    Reviews(client(PROVIDER)).review(consumer.order_key(order_id), 4, 4, 4)

    balance = client(PROVIDER).balance()
    paid = provider.withdraw()
    assert paid.amount == provider_owed + closed.to_provider
    assert provider.owed() == 0
    gas_cost = (
        paid.tx.gas_used * client(PROVIDER).w3.eth.get_transaction(paid.tx.tx_hash)["gasPrice"]
    )
    assert client(PROVIDER).balance() == balance + paid.amount - gas_cost
    assert_balanced(consumer)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cpu_cores": PARA.cpu.cores + 1}, "cpu.cores"),
        ({"cpu_clock_mhz": PARA.cpu.clock_speed_mhz + 1}, "cpu.clockSpeed"),
        ({"gpu_count": PARA.gpu.count + 1}, "gpu.count"),
        ({"gpu_memory_mib": PARA.gpu.memory_mib + 1}, "gpu.memory"),
        ({"ram_mib": PARA.ram.size_mib + 1}, "memory.size"),
        ({"disk_gb": PARA.disk.size_gb + 1}, "disk.size"),
        ({"disk_kind": "hdd"}, "disk.type"),
        ({"region": "eu-west"}, "region"),
    ],
)
def test_a_resource_below_the_specs_cannot_fill(
    client: ClientFactory, change: dict[str, object], field: str
) -> None:
    token = resource(client, 4)
    order_id = demand(client(CONSUMER), specs=replace(MATCHING, **change))  # type: ignore[arg-type]
    with refused("SpecsNotMet", tokenId=token, field=field):
        Orders(client(4)).fill_demand(order_id, token, PRICE)
    Orders(client(CONSUMER)).cancel(order_id)


def test_fill_refusals(client: ClientFactory, dev_node: ThreadedNode) -> None:
    provider = Orders(client(PROVIDER))
    token = resource(client, PROVIDER)
    order_id = demand(client(CONSUMER), budget=3 * PRICE, period_days=3, open_days=1)
    with refused("OverBudget", rent=3 * (PRICE + 1), budget=3 * PRICE):
        provider.fill_demand(order_id, token, PRICE + 1)
    with refused("InvalidPrice"):
        provider.fill_demand(order_id, token, 0)
    with refused("NotResourceOwner", tokenId=token, caller=client(OTHER).address):
        Orders(client(OTHER)).fill_demand(order_id, token, PRICE)
    unverified = register_resource(client(PROVIDER), None)
    with refused("ResourceNotVerified", tokenId=unverified):
        provider.fill_demand(order_id, unverified, PRICE)
    own = resource(client, CONSUMER)
    with refused("SelfOrder", account=client(CONSUMER).address):
        Orders(client(CONSUMER)).fill_demand(order_id, own, PRICE)
    busy_order = demand(client(OTHER))
    provider.fill_demand(busy_order, token, PRICE)
    with refused("ResourceBusy", tokenId=token):
        provider.fill_demand(order_id, token, PRICE)
    with refused("OrderNotInState", orderId=busy_order):
        provider.fill_demand(busy_order, resource(client, PROVIDER), PRICE)
    task_id = task(client(CONSUMER))
    with refused("WrongKind", orderId=task_id):
        provider.fill_demand(task_id, token, PRICE)
    with refused("UnknownOrder", orderId=10**9):
        provider.fill_demand(10**9, token, PRICE)
    warp_by(dev_node, client(OTHER), DAY + 1)
    with refused("DeadlinePassed", orderId=order_id):
        provider.fill_demand(order_id, resource(client, PROVIDER), PRICE)


def test_cancel_and_expire_refund_unfilled_orders(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    consumer = Orders(client(CONSUMER))
    budget = 4 * PRICE
    first = demand(client(CONSUMER), budget=budget, open_days=2)
    second = task(client(CONSUMER), reward=budget, hours=1)
    with refused("NotConsumer", first, client(OTHER).address):
        Orders(client(OTHER)).cancel(first)
    before = consumer.owed()
    closed = consumer.cancel(first)
    assert (closed.state, closed.to_consumer, closed.fee) == (OrderState.CANCELLED, budget, 0)
    assert consumer.owed() == before + budget
    with refused("OrderNotInState", orderId=first):
        consumer.cancel(first)
    with refused("DeadlineNotReached", orderId=second):
        Orders(client(OTHER)).expire(second)
    warp_by(dev_node, client(OTHER), 3601)
    expired = Orders(client(OTHER)).expire(second)  # anyone
    assert (expired.state, expired.to_consumer) == (OrderState.EXPIRED, budget)
    assert consumer.owed() == before + 2 * budget
    with refused("OrderNotInState", orderId=second):
        Orders(client(OTHER)).expire(second)
    assert_balanced(consumer)


def test_posting_refusals(client: ClientFactory) -> None:
    consumer = Orders(client(CONSUMER))
    now = head_time(client(CONSUMER))
    with refused("ZeroEscrow"):
        consumer.post_demand(MATCHING, period_days=1, budget=0, deadline=now + DAY)
    with refused("InvalidPeriod", periodDays=0):
        consumer.post_demand(MATCHING, period_days=0, budget=PRICE, deadline=now + DAY)
    with refused("InvalidPeriod", periodDays=367):
        consumer.post_demand(MATCHING, period_days=367, budget=PRICE, deadline=now + DAY)
    with refused("InvalidDeadline"):
        consumer.post_demand(MATCHING, period_days=1, budget=PRICE, deadline=now - 1)
    with refused("InvalidDeadline"):
        consumer.post_demand(MATCHING, period_days=1, budget=PRICE, deadline=now + 91 * DAY)
    with refused("TextTooLong", field="region", length=257, max=256):
        consumer.post_demand(
            replace(MATCHING, region="r" * 257), period_days=1, budget=PRICE, deadline=now + DAY
        )
    with refused("EmptyText", field="specCid"):
        consumer.post_task("", MATCHING, reward=PRICE, deadline=now + DAY)
    with refused("InvalidExpectedHash", acceptance=Acceptance.MANUAL):
        consumer.client.transact(
            consumer.contract.functions.postTask(
                "ipfs://t", MATCHING.to_abi(), now + DAY, 0, b"\x01" * 32
            ),
            value=PRICE,
        )
    with refused("InvalidExpectedHash", acceptance=Acceptance.HASH):
        consumer.client.transact(
            consumer.contract.functions.postTask(
                "ipfs://t", MATCHING.to_abi(), now + DAY, 1, b"\x00" * 32
            ),
            value=PRICE,
        )


# ---------------------------------------------------------------------- tasks


def test_a_manual_task_is_taken_submitted_and_accepted(client: ClientFactory) -> None:
    consumer, provider = Orders(client(CONSUMER)), Orders(client(PROVIDER))
    token = resource(client, PROVIDER)
    order_id = task(client(CONSUMER))
    provider.take_task(order_id, token)
    taken = consumer.order(order_id)
    assert taken.state == OrderState.TAKEN and taken.token_id == token
    info = Resources(client(CONSUMER)).rental_info(token)
    assert info.status == RentalStatus.RENTED and info.end == taken.deadline
    with refused("NotProvider", order_id, client(OTHER).address):
        Orders(client(OTHER)).submit_result(order_id, "ipfs://fake")
    with refused("EmptyText", field="resultCid"):
        provider.submit_result(order_id, "")
    submitted = provider.submit_result(order_id, "ipfs://bafy-result", result_hash(b"out"))
    assert submitted.closed is None
    state = consumer.order(order_id)
    assert state.state == OrderState.SUBMITTED
    assert state.result_cid == "ipfs://bafy-result" and state.result_hash == result_hash(b"out")
    assert state.review_until == state.submitted_at + 86_400
    with refused("NotConsumer", order_id, client(PROVIDER).address):
        provider.accept(order_id)
    before = provider.owed()
    closed = consumer.accept(order_id)
    assert (closed.state, closed.to_provider, closed.fee) == (
        OrderState.COMPLETED,
        REWARD - fee(REWARD),
        fee(REWARD),
    )
    assert provider.owed() == before + REWARD - fee(REWARD)
    assert Resources(client(CONSUMER)).rental_info(token).status == RentalStatus.AVAILABLE
    with refused("OrderNotInState", orderId=order_id):
        consumer.accept(order_id)
    assert_balanced(consumer)


def test_the_resource_agent_may_submit(client: ClientFactory) -> None:
    agent = client(5)
    token = register_resource(client(PROVIDER), client(FOUNDATION), agent=agent.address)
    order_id = task(client(CONSUMER))
    Orders(client(PROVIDER)).take_task(order_id, token)
    Orders(agent).submit_result(order_id, "ipfs://by-agent")
    assert Orders(agent).order(order_id).state == OrderState.SUBMITTED


def test_manual_results_are_accepted_automatically_after_the_window(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    token = resource(client, PROVIDER)
    order_id = task(client(CONSUMER))
    Orders(client(PROVIDER)).take_task(order_id, token)
    Orders(client(PROVIDER)).submit_result(order_id, "ipfs://r")
    with refused("ReviewWindowOpen", orderId=order_id):
        Orders(client(OTHER)).auto_accept(order_id)
    warp_by(dev_node, client(OTHER), 86_401)
    with refused("ReviewWindowPassed", orderId=order_id):
        Orders(client(CONSUMER)).reject(order_id, "too late")
    closed = Orders(client(OTHER)).auto_accept(order_id)  # anyone
    assert closed.state == OrderState.COMPLETED and closed.to_provider == REWARD - fee(REWARD)


def test_hash_tasks_pay_on_a_matching_hash_only(client: ClientFactory) -> None:
    expected = result_hash(b"the answer is 42")
    token = resource(client, PROVIDER)
    order_id = task(client(CONSUMER), expected_hash=expected)
    assert Orders(client(CONSUMER)).order(order_id).acceptance == Acceptance.HASH
    provider = Orders(client(PROVIDER))
    provider.take_task(order_id, token)
    wrong = result_hash(b"the answer is 41")
    with refused("ResultHashMismatch", orderId=order_id, submitted="0x" + wrong.hex()):
        provider.submit_result(order_id, "ipfs://wrong", wrong)
    done = provider.submit_result(order_id, "ipfs://right", expected)
    assert done.closed is not None and done.closed.state == OrderState.COMPLETED
    assert done.closed.to_provider == REWARD - fee(REWARD)
    assert Resources(client(CONSUMER)).rental_info(token).status == RentalStatus.AVAILABLE


def test_a_missed_deadline_refunds_and_penalises_the_provider(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    slacker = 6
    token = resource(client, slacker)
    order_id = task(client(CONSUMER), hours=2)
    Orders(client(slacker)).take_task(order_id, token)
    reviews = Reviews(client(CONSUMER))
    before = reviews.stats(client(slacker).address)
    with refused("DeadlineNotReached", orderId=order_id):
        Orders(client(OTHER)).expire(order_id)
    warp_by(dev_node, client(OTHER), 2 * 3600 + 1)
    with refused("DeadlinePassed", orderId=order_id):
        Orders(client(slacker)).submit_result(order_id, "ipfs://late")
    with refused("DeadlinePassed", orderId=order_id):
        Orders(client(CONSUMER)).open_dispute(order_id, "late")
    owed = Orders(client(CONSUMER)).owed()
    closed = Orders(client(OTHER)).expire(order_id)
    assert (closed.state, closed.to_consumer, closed.to_provider) == (OrderState.FAILED, REWARD, 0)
    assert Orders(client(CONSUMER)).owed() == owed + REWARD
    after = reviews.stats(client(slacker).address)
    assert after.failures == before.failures + 1
    assert after.reputation < before.reputation
    record = reviews.order(Orders(client(CONSUMER)).order_key(order_id))
    assert record is not None and record.failed
    assert Resources(client(CONSUMER)).rental_info(token).status == RentalStatus.AVAILABLE
    # the consumer may still review the provider who failed
    reviews.review(Orders(client(CONSUMER)).order_key(order_id), 1, 1, 1, "no result")


def test_take_refusals(client: ClientFactory, dev_node: ThreadedNode) -> None:
    token = resource(client, 7)
    order_id = task(client(CONSUMER), hours=1)
    gov = Reviews(client(FOUNDATION))
    gov.set_min_reputation(36_000)  # above a fresh account's 35,000
    try:
        with refused(
            "ReputationTooLow", account=client(7).address, reputation=35_000, minimum=36_000
        ):
            Orders(client(7)).take_task(order_id, token)
    finally:
        gov.set_min_reputation(20_000)
    demand_id = demand(client(CONSUMER))
    with refused("WrongKind", orderId=demand_id):
        Orders(client(7)).take_task(demand_id, token)
    warp_by(dev_node, client(OTHER), 3601)
    with refused("DeadlinePassed", orderId=order_id):
        Orders(client(7)).take_task(order_id, token)


def test_reject_opens_a_dispute_and_disputes_are_for_parties(client: ClientFactory) -> None:
    token = resource(client, PROVIDER)
    order_id = task(client(CONSUMER))
    provider = Orders(client(PROVIDER))
    provider.take_task(order_id, token)
    with refused("OrderNotInState", orderId=order_id):
        Orders(client(CONSUMER)).reject(order_id, "nothing submitted yet")
    provider.submit_result(order_id, "ipfs://meh")
    with refused("NotConsumer", order_id, client(PROVIDER).address):
        provider.reject(order_id, "providers do not reject")
    with refused("EmptyText", field="reason"):
        Orders(client(CONSUMER)).reject(order_id, "")
    with refused("NotParty", order_id, client(OTHER).address):
        Orders(client(OTHER)).open_dispute(order_id, "nosy")
    disputed = Orders(client(CONSUMER)).reject(order_id, "wrong output format")
    assert disputed.dispute_id > 0
    order = Orders(client(CONSUMER)).order(order_id)
    assert order.state == OrderState.DISPUTED and order.dispute_id == disputed.dispute_id
    assert order.escrow == REWARD  # frozen
    with refused("NotDisputable", orderId=order_id):
        provider.open_dispute(order_id, "again")
    with refused("NotArbitration", caller=client(FOUNDATION).address):
        client(FOUNDATION).transact(provider.contract.functions.resolveDispute(order_id, 0))
    untaken = task(client(CONSUMER))
    with refused("NotDisputable", orderId=untaken):
        Orders(client(CONSUMER)).open_dispute(untaken, "nothing to dispute yet")


def test_a_running_demand_can_be_disputed_until_its_end(
    client: ClientFactory, dev_node: ThreadedNode
) -> None:
    token = resource(client, PROVIDER)
    first = demand(client(CONSUMER), period_days=1)
    Orders(client(PROVIDER)).fill_demand(first, token, PRICE)
    disputed = Orders(client(PROVIDER)).open_dispute(first, "consumer abuses the machine")
    assert Orders(client(PROVIDER)).order(first).state == OrderState.DISPUTED
    assert disputed.dispute_id > 0
    other_token = resource(client, PROVIDER)
    second = demand(client(CONSUMER), period_days=1)
    Orders(client(PROVIDER)).fill_demand(second, other_token, PRICE)
    warp_by(dev_node, client(OTHER), DAY)
    with refused("RentalEnded", orderId=second):
        Orders(client(CONSUMER)).open_dispute(second, "too late")
    Orders(client(OTHER)).settle(second)


# ---------------------------------------------------------------------- admin, money, governance


def test_pause_and_blocks_stop_new_orders_but_not_withdrawals(client: ClientFactory) -> None:
    admin = Admin(client(FOUNDATION))
    consumer = Orders(client(CONSUMER))
    token = resource(client, 8)
    open_task = task(client(CONSUMER))
    now = head_time(client(CONSUMER))
    admin.pause("incident")
    try:
        with refused("OrdersPaused"):
            consumer.post_task("ipfs://t", MATCHING, reward=PRICE, deadline=now + DAY)
        with refused("OrdersPaused"):
            Orders(client(8)).take_task(open_task, token)
        if consumer.owed():
            consumer.withdraw()  # money owed is never held back
        consumer.cancel(open_task)  # closing and refunding still work
        assert consumer.withdraw().amount == REWARD
    finally:
        admin.unpause("resolved")
    admin.blacklist_account(client(9).address, "fraud")
    try:
        with refused("AccountBlocked", account=client(9).address):
            Orders(client(9)).post_task("ipfs://t", MATCHING, reward=PRICE, deadline=now + DAY)
    finally:
        admin.unblacklist_account(client(9).address, "cleared")
    second = task(client(CONSUMER))
    admin.freeze_resource(token, "under review")
    try:
        with refused("ResourceBlocked", tokenId=token):
            Orders(client(8)).take_task(second, token)
    finally:
        admin.unfreeze_resource(token, "ok")
    Orders(client(8)).take_task(second, token)


def test_withdraw_refusals(client: ClientFactory) -> None:
    nobody = Orders(client(10))
    with refused("NothingOwed", account=client(10).address):
        nobody.withdraw()
    with refused("ZeroAccount"):
        nobody.client.transact(nobody.contract.functions.withdrawTo("0x" + "00" * 20))
    order_id = task(client(10), reward=PRICE)
    nobody.cancel(order_id)
    sink = client(11).address
    before = client(11).balance(sink)
    assert nobody.withdraw(to=sink).amount == PRICE
    assert client(11).balance(sink) == before + PRICE


def test_governance_tunes_fee_treasury_and_review_window(client: ClientFactory) -> None:
    gov = Orders(client(FOUNDATION))
    assert gov.config().fee_bps == FEE_BPS and gov.config().review_window == 86_400
    with refused("FeeTooHigh", bps=3001, max=3000):
        gov.set_fee(3001)
    with refused("InvalidReviewWindow"):
        gov.set_review_window(0)
    with refused("InvalidReviewWindow"):
        gov.set_review_window(31 * DAY)
    with refused("ZeroAccount"):
        gov.set_treasury("0x" + "00" * 20)
    for call in (lambda o: o.set_fee(1), lambda o: o.set_review_window(60)):
        with refused("AccessControlUnauthorizedAccount", account=client(OTHER).address):
            call(Orders(client(OTHER)))
    gov.set_fee(1_000)
    order_id = task(client(CONSUMER))
    gov.set_fee(FEE_BPS)
    assert gov.order(order_id).fee_bps == 1_000  # fixed when posted
    gov.set_review_window(3_600)
    try:
        assert gov.order(task(client(CONSUMER))).review_window == 3_600
    finally:
        gov.set_review_window(86_400)
    treasury = client(12).address
    gov.set_treasury(treasury)
    try:
        token = resource(client, PROVIDER)
        Orders(client(PROVIDER)).take_task(order_id, token)
        Orders(client(PROVIDER)).submit_result(order_id, "ipfs://r")
        closed = Orders(client(CONSUMER)).accept(order_id)
        assert closed.fee == REWARD // 10
        assert gov.owed(treasury) == REWARD // 10
    finally:
        gov.set_treasury(client(FOUNDATION).address)


def test_order_json_and_unknown(client: ClientFactory) -> None:
    orders = Orders(client(CONSUMER))
    order_id = task(client(CONSUMER), specs=Specs(cpu_cores=4))
    doc = orders.order(order_id).to_json()
    assert doc["kind"] == "task" and doc["state"] == "open" and doc["specs"]["cpuCores"] == 4
    assert doc["escrow"] == str(REWARD) and doc["provider"] is None
    with pytest.raises(MarketError, match="no order"):
        orders.order(10**9)
    assert orders.order_count() >= order_id


def test_sdk_values_round_trip_and_bad_hashes_are_refused_locally(client: ClientFactory) -> None:
    specs = Specs(cpu_cores=8, gpu_count=1, disk_kind="ssd", region="eu-west")
    assert Specs.from_abi(specs.to_abi()) == specs
    assert result_hash(b"x") == result_hash(b"x") != result_hash(b"y")
    assert len(result_hash(b"")) == 32
    assert OrderState.RESOLVED.ended and not OrderState.DISPUTED.ended
    consumer = Orders(client(CONSUMER))
    deadline = head_time(client(CONSUMER)) + DAY
    with pytest.raises(MarketError, match="32 bytes"):
        consumer.post_task("ipfs://t", specs, reward=PRICE, deadline=deadline, expected_hash=b"1")
    with pytest.raises(MarketError, match="not hex"):
        consumer.post_task("ipfs://t", specs, reward=PRICE, deadline=deadline, expected_hash="zz")
    hex_hash = "0x" + result_hash(b"out").hex()
    order_id = consumer.post_task(
        "ipfs://t", specs, reward=PRICE, deadline=deadline, expected_hash=hex_hash
    ).order_id
    assert consumer.order(order_id).expected_hash == result_hash(b"out")
    consumer.cancel(order_id)


def test_a_close_with_too_little_gas_for_the_reputation_record_is_refused(
    client: ClientFactory,
) -> None:
    token = resource(client, PROVIDER)
    order_id = task(client(CONSUMER))
    Orders(client(PROVIDER)).take_task(order_id, token)
    Orders(client(PROVIDER)).submit_result(order_id, "ipfs://r")
    consumer = Orders(client(CONSUMER))
    # mined and failed on chain: enough gas to pay out, not enough for the Reputation record
    with refused("InsufficientGas"):
        client(CONSUMER).transact(consumer.contract.functions.accept(order_id), gas=150_000)
    assert consumer.order(order_id).state == OrderState.SUBMITTED  # nothing happened
    consumer.accept(order_id)  # estimated gas covers the floor: the order is recorded
    record = Reviews(client(CONSUMER)).order(consumer.order_key(order_id))
    assert record is not None and record.provider == client(PROVIDER).address


def test_a_withdrawal_the_recipient_refuses_is_reverted_whole(client: ClientFactory) -> None:
    me = Orders(client(13))
    me.cancel(task(client(13), reward=PRICE))
    no_receive = client(13).contract("Reputation").address  # a contract without receive()
    with refused("TransferFailed", no_receive, PRICE):
        me.withdraw(to=no_receive)
    assert me.owed() == PRICE
    assert me.withdraw().amount == PRICE
