"""The DividendPool on a real dev node: a month with online and offline devices, a violator at 0,
exact payouts to the wei, donations, unclaimed and empty-epoch carry-over, every refusal, and
`verify` agreeing with the contract."""

from __future__ import annotations

from dataclasses import replace

import pytest

from powerverse.contracts.system import DIVIDEND_POOL
from powerverse.economics.dividends import (
    EPOCH_LENGTH,
    OnlineDevice,
    PoolLedger,
    payouts,
    required_heartbeats,
    scores,
)
from powerverse.market.arbitration import Arbitration
from powerverse.market.client import ChainClient
from powerverse.market.dividends import DividendPool
from powerverse.market.orders import Orders
from powerverse.market.resources import Cpu
from tests.market.conftest import ClientFactory
from tests.market.market_helpers import (
    FOUNDATION,
    PARA,
    head_time,
    list_resource,
    refused,
    register_resource,
    warp_to,
)
from tests.market.orders_helpers import task
from tests.rpc.conftest import ThreadedNode

PVC = 10**18
DAY = 86_400
SLOT = 3 * DAY  # 10 slots a month: 9 heartbeats make a device online
A, B, C, D = 1, 2, 3, 4  # providers
AGENT = 5  # the agent key of A's second device
OUTSIDER = 6
DONOR = 7
CONSUMER = 8


def pool(c: ChainClient) -> DividendPool:
    return DividendPool(c)


def first_start(c: ChainClient) -> int:
    return int(pool(c).status().first_epoch_start)


def device(client: ClientFactory, provider: int, cores: int, agent: int | None = None) -> int:
    """A verified, listed device of `provider` whose score depends on `cores`."""
    para = replace(PARA, cpu=Cpu(model="AMD EPYC 7763", clock_speed_mhz=2450, cores=cores))
    token = register_resource(
        client(provider),
        client(FOUNDATION),
        para=para,
        agent=client(agent).address if agent is not None else None,
    )
    list_resource(client(provider), token, window_days=400)
    return token


def points_of(c: ChainClient, token: int) -> int:
    nft = c.contract("ResourceNFT")
    return int(c.call(nft.functions.performPointsOf(token)))


def paid_gas(c: ChainClient, tx_hash: str) -> int:
    receipt = c.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


def pool_balance(c: ChainClient, block: int | str = "latest") -> int:
    return int(c.w3.eth.get_balance(c.w3.to_checksum_address(DIVIDEND_POOL), block))


def test_genesis_pool(client: ClientFactory) -> None:
    c = client(OUTSIDER)
    status = pool(c).status()
    genesis_time = int(c.w3.eth.get_block(0)["timestamp"])
    assert status.address == c.w3.to_checksum_address(DIVIDEND_POOL)
    assert status.first_epoch_start == genesis_time + EPOCH_LENGTH  # dev: listed at genesis
    assert status.slot_length == 3_600 and status.next_epoch_to_close == 0
    assert status.current_epoch is None
    assert status.reserved == 0
    info = pool(c).epoch(0)
    assert (info.slots, info.required) == (720, 648)


def test_a_month_end_to_end(node_and_client: tuple[ThreadedNode, ClientFactory]) -> None:
    node, client = node_and_client
    admin, outsider = pool(client(FOUNDATION)), pool(client(OUTSIDER))
    start = first_start(client(OUTSIDER))

    # before the first epoch: governance sets 3-day slots; the pool takes donations
    with refused("AccessControlUnauthorizedAccount"):
        outsider.set_slot_length(SLOT)
    with refused("InvalidSlotLength", 7 * DAY):
        admin.set_slot_length(7 * DAY)  # does not divide 30 days
    admin.set_slot_length(SLOT)
    assert outsider.epoch(0).required == required_heartbeats(SLOT) == 9
    donated = 1_000 * PVC
    pool(client(DONOR)).donate(donated)
    donor = client(DONOR)
    plain = {"from": donor.address, "to": pool(donor).address, "value": 1, "gas": 60_000}
    receipt = donor._send(plain, None)  # a plain transfer is a donation too
    assert pool(donor).contract.events.Donated().process_receipt(receipt)[0]["args"]["amount"] == 1
    donated += 1
    with refused("ZeroAmount"):
        donor.transact(pool(donor).contract.functions.donate(), value=0)

    a1 = device(client, A, cores=16)
    a2 = device(client, A, cores=8, agent=AGENT)
    b1 = device(client, B, cores=32)
    c1 = device(client, C, cores=4)
    d1 = device(client, D, cores=2)
    unlisted = register_resource(client(D), client(FOUNDATION))
    points = {t: points_of(client(OUTSIDER), t) for t in (a1, a2, b1, c1, d1)}
    assert len(set(points.values())) == 5

    with refused("NotStarted", start):
        pool(client(A)).heartbeat(a1)

    # the month: A's devices every slot (a2 by its agent, missing one), B's only 8 slots, C and
    # D online; C is flagged for a violation
    plan = {
        a1: (A, range(10)),
        a2: (AGENT, [0, 1, 2, 3, 5, 6, 7, 8, 9]),
        b1: (B, range(8)),
        c1: (C, range(9)),
        d1: (D, range(1, 10)),
    }
    online_seen = {}
    for slot in range(10):
        warp_to(node, client(OUTSIDER), start + slot * SLOT + 60)
        for token, (signer, slots) in plan.items():
            if slot in slots:
                beat = pool(client(signer)).heartbeat(token)
                assert (beat.epoch, beat.slot) == (0, slot)
                if beat.online:
                    online_seen[token] = (beat.points, beat.credited)
        if slot == 0:
            with refused("AlreadyBeaten", a1, 0, 0):
                pool(client(A)).heartbeat(a1)
            with refused("NotOwnerOrAgent", a1, client(OUTSIDER).address):
                outsider.heartbeat(a1)
            with refused("NotListed", unlisted):
                pool(client(D)).heartbeat(unlisted)
            with refused("EpochNotClosed", 0):
                pool(client(A)).claim(0)
        if slot == 4:
            with refused("NotFlagger", client(OUTSIDER).address):
                outsider.flag(client(C).address, 0, "spam")
            pool(client(DONOR)).donate(500 * PVC)
            donated += 500 * PVC
        if slot == 9:
            flag = admin.flag(client(C).address, 0, "fake benchmark evidence")
            assert flag.removed_score == points[c1]
            with refused("AlreadyFlagged", 0, client(C).address):
                admin.flag(client(C).address, 0, "again")
    assert online_seen == {
        a1: (points[a1], True),
        a2: (points[a2], True),
        c1: (points[c1], True),
        d1: (points[d1], True),
    }
    assert outsider.device(0, b1).heartbeats == 8 and not outsider.device(0, b1).online
    with refused("EpochNotEnded", 0, start + EPOCH_LENGTH):
        outsider.close(0)

    expected_scores = scores(
        [
            OnlineDevice(token_id=t, owner=client(o).address, points=points[t])
            for t, o in ((a1, A), (a2, A), (c1, C), (d1, D))
        ],
        flagged=[client(C).address],
    )
    assert expected_scores == {
        client(A).address: points[a1] + points[a2],
        client(D).address: points[d1],
    }
    for who in (A, B, C, D):
        assert outsider.score_of(0, client(who).address) == expected_scores.get(
            client(who).address, 0
        )

    # close: the pool is everything received (donations and any block-reward share)
    warp_to(node, client(OUTSIDER), start + EPOCH_LENGTH)
    with refused("EpochNotNext", 1, 0):
        outsider.close(1)
    closing = outsider.close(0)
    before = pool_balance(client(OUTSIDER), closing.tx.block_number - 1)
    assert closing.pool in (before, pool_balance(client(OUTSIDER), closing.tx.block_number))
    assert closing.pool >= donated
    ledger = PoolLedger().receive(closing.pool).close(expected_scores)
    want = payouts(closing.pool, expected_scores)
    assert ledger.payouts(0) == want
    with refused("EpochAlreadyClosed", 0):
        admin.flag(client(B).address, 0, "too late")

    # claims: exact to the wei; twice refused; offline and flagged providers have nothing
    a_addr = client(A).address
    assert outsider.claimable(0, a_addr) == want.amounts[a_addr]
    held = client(A).balance()
    got = pool(client(A)).claim(0)
    assert got.amount == want.amounts[a_addr]
    assert client(A).balance() == held + got.amount - paid_gas(client(A), got.tx.tx_hash)
    ledger, paid = ledger.claim(0, a_addr)
    assert paid == got.amount
    with refused("AlreadyClaimed", 0, a_addr):
        pool(client(A)).claim(0)
    for who in (B, C):
        with refused("NothingToClaim", 0, client(who).address):
            pool(client(who)).claim(0)
    assert outsider.status().reserved == ledger.reserved

    report = outsider.verify(0)
    assert report.ok, report.problems
    assert report.pool == closing.pool and report.expected_total == sum(expected_scores.values())
    assert {r.account: r.expected_payout for r in report.rows if r.expected_payout} == want.amounts
    assert {d.token_id for d in report.devices} == {a1, a2, c1, d1}

    # epoch 1: nobody online; its pool carries over. D has still not claimed epoch 0.
    pool(client(DONOR)).donate(70 * PVC)
    warp_to(node, client(OUTSIDER), start + 2 * EPOCH_LENGTH)
    empty = outsider.close(1)
    assert empty.total_score == 0 and empty.pool >= 70 * PVC
    assert empty.reserved_before == ledger.reserved
    ledger = ledger.receive(empty.balance - ledger.balance).close({})
    assert ledger.payouts(1).carried_over and ledger.payouts(1).pool == empty.pool
    assert outsider.verify(1).ok
    with refused("NothingToClaim", 1, client(A).address):
        pool(client(A)).claim(1)

    # epoch 2: a1 online alone; D claims epoch 0 late (still claimable), releasing its dust
    start2 = start + 2 * EPOCH_LENGTH
    for slot in range(9):
        warp_to(node, client(OUTSIDER), start2 + slot * SLOT + 60)
        pool(client(A)).heartbeat(a1)
    d_addr = client(D).address
    late = pool(client(OUTSIDER)).claim(0, account=d_addr)  # anyone may pay D its share
    ledger, paid = ledger.claim(0, d_addr)
    assert late.amount == paid == want.amounts[d_addr]
    assert outsider.status().reserved == ledger.reserved == 0
    warp_to(node, client(OUTSIDER), start + 3 * EPOCH_LENGTH)
    closing2 = outsider.close(2)
    ledger = ledger.receive(closing2.balance - ledger.balance).close({a_addr: points[a1]})
    assert closing2.pool == ledger.payouts(2).pool
    assert closing2.pool >= empty.pool + want.dust  # carried pool and epoch 0's dust
    assert outsider.claimable(2, a_addr) == closing2.pool  # the only score takes everything
    assert pool(client(A)).claim(2).amount == closing2.pool
    for e in (0, 1, 2):
        assert outsider.verify(e).ok, outsider.verify(e).problems


def test_an_arbitration_ruling_flags_the_provider(
    node_and_client: tuple[ThreadedNode, ClientFactory],
) -> None:
    node, client = node_and_client
    c = client(OUTSIDER)
    start = first_start(c)
    epoch = (head_time(c) - start) // EPOCH_LENGTH if head_time(c) >= start else 0
    warp_to(node, c, start + epoch * EPOCH_LENGTH + 10)
    token = register_resource(client(B), client(FOUNDATION))
    order_id = task(client(CONSUMER))
    Orders(client(B)).take_task(order_id, token)
    Orders(client(B)).submit_result(order_id, "ipfs://result")
    dispute_id = Orders(client(CONSUMER)).reject(order_id, "empty output").dispute_id
    with refused("DisputeNotRuled", dispute_id):
        pool(c).flag_ruling(dispute_id)
    Arbitration(client(FOUNDATION)).rule(dispute_id, 1, "a little back")
    flag = pool(c).flag_ruling(dispute_id)
    assert (flag.epoch, flag.account) == (epoch, client(B).address)
    assert flag.reason == f"arbitration ruling #{dispute_id}"
    assert pool(c).is_flagged(epoch, client(B).address)
    with refused("AlreadyFlagged", epoch, client(B).address):
        pool(c).flag_ruling(dispute_id)


@pytest.fixture(scope="module")
def node_and_client(
    dev_node: ThreadedNode, client: ClientFactory
) -> tuple[ThreadedNode, ClientFactory]:
    return dev_node, client
