"""Subscriptions: ownership, cleanup, notification content, and the full path over a WebSocket."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from websockets.asyncio.client import connect

from powerverse.rpc.errors import (
    InvalidParams,
    LimitExceeded,
    NotificationsUnsupported,
    SubscriptionNotFound,
)
from powerverse.rpc.server import CallContext, RpcServer, WsSession
from powerverse.rpc.subscriptions import SubscriptionManager

ADDR_A = "0x" + "aa" * 20
ADDR_B = "0x" + "bb" * 20
T1 = "0x" + "11" * 32
T2 = "0x" + "22" * 32
HEADER = {"number": "0x5", "hash": "0x" + "01" * 32, "parentHash": "0x" + "00" * 32}
ID_RE = re.compile(r"0x[0-9a-f]{32}")


def make_log(
    address: str = ADDR_A, topics: tuple[str, ...] = (T1,), index: int = 0
) -> dict[str, Any]:
    return {
        "address": address,
        "topics": list(topics),
        "data": "0x",
        "blockNumber": "0x5",
        "blockHash": HEADER["hash"],
        "transactionHash": "0x" + "ee" * 32,
        "transactionIndex": "0x0",
        "logIndex": hex(index),
        "removed": False,
    }


def notes(session: WsSession) -> list[tuple[str, Any]]:
    """(subscription id, result) of every queued eth_subscription message."""
    out = []
    for text in session.drain():
        message = json.loads(text)
        assert message["jsonrpc"] == "2.0" and message["method"] == "eth_subscription"
        out.append((message["params"]["subscription"], message["params"]["result"]))
    return out


@pytest.fixture
def subs() -> SubscriptionManager:
    return SubscriptionManager()


async def test_new_heads_receive_each_header(subs: SubscriptionManager) -> None:
    session = WsSession()
    sid = subs.subscribe(session, "newHeads")
    assert ID_RE.fullmatch(sid)
    await subs.on_new_block(HEADER, [make_log()])
    assert notes(session) == [(sid, HEADER)]


async def test_log_subscriptions_get_one_notification_per_matching_log(
    subs: SubscriptionManager,
) -> None:
    session = WsSession()
    all_logs = subs.subscribe(session, "logs")
    only_a = subs.subscribe(session, "logs", {"address": ADDR_A, "topics": [T1]})
    first, second, other = make_log(index=0), make_log(index=1), make_log(ADDR_B, (T2,), 2)
    await subs.on_new_block(HEADER, [first, other, second])
    received = notes(session)
    assert [r for sid, r in received if sid == all_logs] == [first, other, second]
    assert [r for sid, r in received if sid == only_a] == [first, second]


async def test_pending_transactions_hash_or_full_object(subs: SubscriptionManager) -> None:
    session = WsSession()
    hashes = subs.subscribe(session, "newPendingTransactions")
    full = subs.subscribe(session, "newPendingTransactions", True)
    tx = {"hash": "0xabc", "nonce": "0x0"}
    await subs.on_pending_tx("0xabc", tx)
    await subs.on_pending_tx("0xdef")
    assert notes(session) == [(hashes, "0xabc"), (full, tx), (hashes, "0xdef"), (full, "0xdef")]
    await subs.on_new_block(HEADER, [])
    assert notes(session) == []


@pytest.mark.parametrize(
    ("kind", "params", "fragment"),
    [
        ("syncing", None, "unsupported subscription kind"),
        ("newheads", None, "unsupported subscription kind"),
        ("newHeads", {"x": 1}, "no options"),
        ("logs", {"address": "0x12"}, "address"),
        ("logs", "latest", "expected an object"),
        ("logs", {"blockHash": "0x" + "01" * 32}, "blockHash"),
        ("newPendingTransactions", "yes", "boolean"),
    ],
)
def test_bad_subscriptions_are_invalid_params(
    subs: SubscriptionManager, kind: str, params: Any, fragment: str
) -> None:
    with pytest.raises(InvalidParams) as info:
        subs.subscribe(WsSession(), kind, params)
    assert fragment in info.value.message
    assert len(subs) == 0


def test_subscribing_without_a_session_is_unsupported(subs: SubscriptionManager) -> None:
    with pytest.raises(NotificationsUnsupported) as info:
        subs.subscribe(None, "newHeads")
    assert info.value.code == -32601
    closing = WsSession()
    closing.close()
    with pytest.raises(NotificationsUnsupported):
        subs.subscribe(closing, "newHeads")


async def test_only_the_owner_can_unsubscribe(subs: SubscriptionManager) -> None:
    owner, stranger = WsSession(), WsSession()
    sid = subs.subscribe(owner, "newHeads")
    assert not subs.unsubscribe(stranger, sid)
    assert not subs.unsubscribe(None, sid)
    await subs.on_new_block(HEADER, [])
    assert len(notes(owner)) == 1
    assert subs.unsubscribe(owner, sid.upper().replace("0X", "0x"))
    assert not subs.unsubscribe(owner, sid)
    await subs.on_new_block(HEADER, [])
    assert notes(owner) == []
    assert not subs.unsubscribe(owner, "0xdoesnotexist")


async def test_closing_a_session_removes_its_subscriptions(subs: SubscriptionManager) -> None:
    leaving, staying = WsSession(), WsSession()
    subs.subscribe(leaving, "newHeads")
    subs.subscribe(leaving, "logs")
    kept = subs.subscribe(staying, "newHeads")
    assert len(subs) == 3
    leaving._finish()
    assert len(subs) == 1
    await subs.on_new_block(HEADER, [make_log()])
    assert notes(staying) == [(kept, HEADER)]


async def test_one_failing_session_does_not_stop_the_others(
    subs: SubscriptionManager, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(WsSession):
        async def notify(self, subscription_id: str, result: Any) -> None:
            raise RuntimeError("socket exploded")

    broken, healthy = Broken(), WsSession()
    subs.subscribe(broken, "newHeads")
    sid = subs.subscribe(healthy, "newHeads")
    with caplog.at_level(logging.ERROR, logger="powerverse.rpc.subscriptions"):
        await subs.on_new_block(HEADER, [])
    assert notes(healthy) == [(sid, HEADER)]
    assert any("failed" in r.getMessage() for r in caplog.records)


def test_subscriptions_per_session_are_limited() -> None:
    subs = SubscriptionManager(max_per_session=2)
    session = WsSession()
    subs.subscribe(session, "newHeads")
    subs.subscribe(session, "newHeads")
    with pytest.raises(LimitExceeded):
        subs.subscribe(session, "newHeads")
    subs.subscribe(WsSession(), "newHeads")


def test_injected_randomness_gives_deterministic_ids() -> None:
    subs = SubscriptionManager(random_bytes=lambda n: b"\x0f" * n)
    assert subs.subscribe(WsSession(), "newHeads") == "0x" + "0f" * 16


# ------------------------------------------------------------------ JSON-RPC handlers


async def test_rpc_handlers(subs: SubscriptionManager) -> None:
    session = WsSession()
    ws_ctx = CallContext("ws", session)
    rpc = subs.rpc_methods()
    sid = await rpc["eth_subscribe"](["logs", {"address": ADDR_A}], ws_ctx)
    assert ID_RE.fullmatch(sid)
    assert await rpc["eth_unsubscribe"]([sid], ws_ctx) is True
    with pytest.raises(SubscriptionNotFound) as info:
        await rpc["eth_unsubscribe"]([sid], ws_ctx)
    assert info.value.to_json() == {"code": -32000, "message": "subscription not found"}
    with pytest.raises(NotificationsUnsupported):
        await rpc["eth_subscribe"](["newHeads"], CallContext("http"))
    with pytest.raises(NotificationsUnsupported):
        await rpc["eth_unsubscribe"]([sid], CallContext("http"))
    for bad in ([], [5], ["newHeads", None, 3], {"kind": "newHeads"}):
        with pytest.raises(InvalidParams):
            await rpc["eth_subscribe"](bad, ws_ctx)
    with pytest.raises(InvalidParams):
        await rpc["eth_unsubscribe"]([7], ws_ctx)


# ------------------------------------------------------------------ end to end over a WebSocket


async def test_subscriptions_over_a_real_websocket(subs: SubscriptionManager) -> None:
    server = RpcServer(subs.rpc_methods())
    await server.start("127.0.0.1", 0)
    try:
        async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "eth_subscribe",
                        "params": ["logs", {"topics": [T1]}],
                    }
                )
            )
            sid = json.loads(await ws.recv())["result"]
            await ws.send(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 2, "method": "eth_subscribe", "params": ["newHeads"]}
                )
            )
            heads = json.loads(await ws.recv())["result"]
            wanted = make_log()
            await subs.on_new_block(HEADER, [make_log(topics=(T2,)), wanted])
            first, second = json.loads(await ws.recv()), json.loads(await ws.recv())
            assert first == {
                "jsonrpc": "2.0",
                "method": "eth_subscription",
                "params": {"subscription": heads, "result": HEADER},
            }
            assert second["params"] == {"subscription": sid, "result": wanted}
            await ws.send(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 3, "method": "eth_unsubscribe", "params": [sid]}
                )
            )
            assert json.loads(await ws.recv()) == {"jsonrpc": "2.0", "id": 3, "result": True}
            assert len(subs) == 1
    finally:
        await server.stop()
    assert len(subs) == 0, "closing the connection must drop its subscriptions"
