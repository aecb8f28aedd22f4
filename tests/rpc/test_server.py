"""JSON-RPC server behaviour over real sockets: envelope rules, errors, batches, limits, WS."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from powerverse.rpc.errors import (
    ExecutionReverted,
    InvalidParams,
    MethodNotAllowed,
    MethodNotFound,
    NotificationsUnsupported,
    RpcError,
    ServerError,
    decode_revert_reason,
    positional_params,
)
from powerverse.rpc.server import CallContext, Handler, RpcServer, WsSession

ERROR_SELECTOR = bytes.fromhex("08c379a0")


def revert_payload(reason: str) -> bytes:
    """ABI-encode Error(string)."""
    raw = reason.encode()
    padded = raw + b"\x00" * (-len(raw) % 32)
    return ERROR_SELECTOR + (32).to_bytes(32, "big") + len(raw).to_bytes(32, "big") + padded


class ToyApi:
    """A method table exercising every server path."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls: list[Any] = []
        self.closed = asyncio.Event()
        self.contexts: list[CallContext] = []

    def methods(self) -> dict[str, Handler]:
        return {
            "echo": self.echo,
            "add": self.add,
            "record": self.record,
            "server_error": self.server_error,
            "revert": self.revert,
            "crash": self.crash,
            "blob": self.blob,
            "unencodable": self.unencodable,
            "slow": self.slow,
            "release": self.release,
            "subscribe": self.subscribe,
            "flood": self.flood,
            "watch_close": self.watch_close,
            "whoami": self.whoami,
        }

    async def echo(self, params: Any, ctx: CallContext) -> Any:
        return params

    async def add(self, params: Any, ctx: CallContext) -> Any:
        a, b = positional_params(params, 2, 2)
        if type(a) is not int or type(b) is not int:
            raise InvalidParams("add takes two integers")
        return hex(a + b)

    async def record(self, params: Any, ctx: CallContext) -> Any:
        self.calls.append(params[0])
        await asyncio.sleep(0)
        return params[0]

    async def server_error(self, params: Any, ctx: CallContext) -> Any:
        raise ServerError("nonce too low")

    async def revert(self, params: Any, ctx: CallContext) -> Any:
        raise ExecutionReverted(data=revert_payload("not owner"))

    async def crash(self, params: Any, ctx: CallContext) -> Any:
        raise RuntimeError("boom in handler")

    async def blob(self, params: Any, ctx: CallContext) -> Any:
        return {"raw": b"\x01\xab", "list": [bytearray(b"\xff")]}

    async def unencodable(self, params: Any, ctx: CallContext) -> Any:
        return {"x": object()}

    async def slow(self, params: Any, ctx: CallContext) -> Any:
        await self.gate.wait()
        return "slow done"

    async def release(self, params: Any, ctx: CallContext) -> Any:
        self.gate.set()
        return True

    async def subscribe(self, params: Any, ctx: CallContext) -> Any:
        if ctx.session is None:
            raise NotificationsUnsupported()
        session = ctx.session
        await session.notify("0x1234", {"early": True})
        asyncio.get_running_loop().call_soon(
            lambda: asyncio.ensure_future(session.notify("0x1234", {"late": True}))
        )
        return "0x1234"

    async def flood(self, params: Any, ctx: CallContext) -> Any:
        assert ctx.session is not None
        for i in range(params[0]):
            await ctx.session.notify("0xf00d", i)
        return "flooded"

    async def watch_close(self, params: Any, ctx: CallContext) -> Any:
        assert ctx.session is not None
        ctx.session.on_close.append(self.closed.set)
        return ctx.session.id

    async def whoami(self, params: Any, ctx: CallContext) -> Any:
        self.contexts.append(ctx)
        return {"transport": ctx.transport, "has_session": ctx.session is not None}


@pytest.fixture
def api() -> ToyApi:
    return ToyApi()


@pytest.fixture
async def server(api: ToyApi) -> AsyncIterator[RpcServer]:
    srv = RpcServer(api.methods(), max_ws_queue=64)
    await srv.start("127.0.0.1", 0)
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def client(server: RpcServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c


def ws_url(server: RpcServer) -> str:
    return f"ws://127.0.0.1:{server.port}/"


async def post(client: httpx.AsyncClient, body: Any) -> Any:
    """POST a JSON value (or raw bytes) and return the decoded answer after checking HTTP 200."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post("/", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def req(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        out["params"] = params
    return out


def error_of(answer: Any, code: int) -> dict[str, Any]:
    assert set(answer) == {"jsonrpc", "id", "error"}, answer
    assert answer["jsonrpc"] == "2.0"
    assert answer["error"]["code"] == code, answer
    assert isinstance(answer["error"]["message"], str)
    return dict(answer["error"])


# ------------------------------------------------------------------ errors module


def test_error_objects_serialise_code_message_and_optional_data() -> None:
    assert ServerError("nonce too low").to_json() == {"code": -32000, "message": "nonce too low"}
    assert MethodNotFound("eth_foo").to_json() == {
        "code": -32601,
        "message": "the method eth_foo does not exist/is not available",
    }
    assert RpcError("x", data={"k": 1}).to_json() == {
        "code": -32000,
        "message": "x",
        "data": {"k": 1},
    }


def test_execution_reverted_decodes_reason_and_hex_data() -> None:
    payload = revert_payload("not owner")
    err = ExecutionReverted(data=payload)
    assert err.code == 3
    assert err.message == "execution reverted: not owner"
    assert err.data == "0x" + payload.hex()
    bare = ExecutionReverted()
    assert bare.to_json() == {"code": 3, "message": "execution reverted", "data": "0x"}
    assert ExecutionReverted("custom", data="0xdead").message == "execution reverted: custom"


def test_revert_reason_decoding_handles_panic_and_garbage() -> None:
    panic = bytes.fromhex("4e487b71") + (0x11).to_bytes(32, "big")
    assert decode_revert_reason(panic) == "arithmetic underflow or overflow"
    assert ExecutionReverted.from_revert_data(panic).message.endswith("overflow")
    assert decode_revert_reason(b"") is None
    assert decode_revert_reason(b"\x01\x02\x03\x04" + b"\x00" * 64) is None
    truncated = revert_payload("hello")[:-40]
    assert decode_revert_reason(truncated) is None
    bad_offset = ERROR_SELECTOR + (2**200).to_bytes(32, "big") + b"\x00" * 32
    assert decode_revert_reason(bad_offset) is None


def test_method_not_allowed_names_the_method_and_the_fix() -> None:
    err = MethodNotAllowed("evm_mine")
    assert err.code == -32601
    assert "evm_mine" in err.message and "--dev" in err.message
    assert NotificationsUnsupported().to_json() == {
        "code": -32601,
        "message": "notifications not supported",
    }


def test_positional_params_checks_count_and_pads() -> None:
    assert positional_params([1], 1, 3) == [1, None, None]
    with pytest.raises(InvalidParams, match="too many arguments"):
        positional_params([1, 2], 0, 1)
    with pytest.raises(InvalidParams, match="missing value for required argument 0"):
        positional_params([], 1, 1)
    with pytest.raises(InvalidParams, match="non-array"):
        positional_params({"a": 1}, 0, 1)


# ------------------------------------------------------------------ HTTP: single requests


async def test_result_with_positional_named_and_absent_params(client: httpx.AsyncClient) -> None:
    assert await post(client, req("echo", [1, "a"])) == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": [1, "a"],
    }
    assert (await post(client, req("echo", {"k": "v"})))["result"] == {"k": "v"}
    assert (await post(client, req("echo")))["result"] == []
    null_params = {"jsonrpc": "2.0", "id": 2, "method": "echo", "params": None}
    assert (await post(client, null_params))["result"] == []
    assert (await post(client, req("add", [2, 3])))["result"] == "0x5"


@pytest.mark.parametrize("req_id", ["abc", 0, -7, 2**70, 1.5, None])
async def test_ids_are_echoed_exactly(client: httpx.AsyncClient, req_id: Any) -> None:
    answer = await post(client, req("echo", [], id=req_id))
    assert answer["id"] == req_id
    assert type(answer["id"]) is type(req_id)


@pytest.mark.parametrize("bad_id", [True, False, [1], {"a": 1}])
async def test_invalid_id_types_are_invalid_requests(
    client: httpx.AsyncClient, bad_id: Any
) -> None:
    answer = await post(client, req("echo", [], id=bad_id))
    error_of(answer, -32600)
    assert answer["id"] is None


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b"nope",
        b'{"jsonrpc": "2.0", "id": 1, "method": "echo", "params": [NaN]}',
        b"\xff\xfe\x00garbage",
        b'{"a": Infinity}',
    ],
)
async def test_invalid_json_is_parse_error_with_null_id(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    answer = await post(client, raw)
    assert error_of(answer, -32700)["message"] == "parse error"
    assert answer["id"] is None


@pytest.mark.parametrize("payload", [1, "x", None, True, 3.5])
async def test_non_object_payload_is_invalid_request(
    client: httpx.AsyncClient, payload: Any
) -> None:
    answer = await post(client, payload)
    error_of(answer, -32600)
    assert answer["id"] is None


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"id": 4, "method": "echo"}, "jsonrpc"),
        ({"jsonrpc": "1.0", "id": 4, "method": "echo"}, "jsonrpc"),
        ({"jsonrpc": 2.0, "id": 4, "method": "echo"}, "jsonrpc"),
        ({"jsonrpc": "2.0", "id": 4}, "method"),
        ({"jsonrpc": "2.0", "id": 4, "method": 12}, "method"),
        ({"jsonrpc": "2.0", "id": 4, "method": "echo", "params": "x"}, "params"),
        ({"jsonrpc": "2.0", "id": 4, "method": "echo", "params": 3}, "params"),
    ],
)
async def test_bad_envelopes_are_invalid_requests_echoing_the_id(
    client: httpx.AsyncClient, payload: dict[str, Any], fragment: str
) -> None:
    answer = await post(client, payload)
    assert fragment in error_of(answer, -32600)["message"]
    assert answer["id"] == 4


async def test_unknown_method_is_method_not_found(client: httpx.AsyncClient) -> None:
    answer = await post(client, req("eth_nothing", [], id=9))
    assert error_of(answer, -32601)["message"] == (
        "the method eth_nothing does not exist/is not available"
    )
    assert answer["id"] == 9


async def test_rpc_errors_from_handlers_keep_code_message_and_data(
    client: httpx.AsyncClient,
) -> None:
    assert error_of(await post(client, req("server_error")), -32000) == {
        "code": -32000,
        "message": "nonce too low",
    }
    reverted = error_of(await post(client, req("revert")), 3)
    assert reverted["message"] == "execution reverted: not owner"
    assert reverted["data"] == "0x" + revert_payload("not owner").hex()
    invalid = error_of(await post(client, req("add", ["x", 1])), -32602)
    assert invalid["message"] == "add takes two integers"


async def test_unexpected_exception_is_internal_error_and_server_survives(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="powerverse.rpc.server"):
        answer = await post(client, req("crash", id="c"))
    assert error_of(answer, -32603) == {"code": -32603, "message": "internal error"}
    assert "boom in handler" not in json.dumps(answer)
    assert any(r.exc_info and "boom in handler" in str(r.exc_info[1]) for r in caplog.records)
    assert (await post(client, req("echo", [1])))["result"] == [1]


async def test_bytes_results_become_hex_and_unencodable_results_fail_cleanly(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await post(client, req("blob")))["result"] == {"raw": "0x01ab", "list": ["0xff"]}
    with caplog.at_level(logging.ERROR, logger="powerverse.rpc.server"):
        error_of(await post(client, req("unencodable")), -32603)


async def test_http_context_has_transport_and_remote(
    client: httpx.AsyncClient, api: ToyApi
) -> None:
    answer = await post(client, req("whoami"))
    assert answer["result"] == {"transport": "http", "has_session": False}
    assert api.contexts[0].remote is not None and api.contexts[0].remote.startswith("127.0.0.1:")


async def test_content_type_is_not_enforced(client: httpx.AsyncClient) -> None:
    body = json.dumps(req("echo", [7])).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = await client.post("/", content=body, headers={"content-type": content_type})
        assert response.status_code == 200
        assert response.json()["result"] == [7]


# ------------------------------------------------------------------ HTTP: notifications, batches


async def test_notifications_get_no_body(client: httpx.AsyncClient) -> None:
    for payload in (
        {"jsonrpc": "2.0", "method": "echo", "params": [1]},
        {"jsonrpc": "2.0", "method": "no_such_method"},
        {"jsonrpc": "2.0", "method": "crash"},
        [{"jsonrpc": "2.0", "method": "echo"}, {"jsonrpc": "2.0", "method": "server_error"}],
    ):
        response = await client.post("/", content=json.dumps(payload).encode())
        assert response.status_code == 204
        assert response.content == b""


async def test_mixed_batch_answers_in_order_and_skips_notifications(
    client: httpx.AsyncClient,
) -> None:
    batch = [
        req("echo", ["a"], id=1),
        1,
        {"jsonrpc": "2.0", "method": "echo", "params": ["notified"]},
        req("missing", id=3),
        req("server_error", id=4),
        {"jsonrpc": "2.0", "id": 5},
        req("add", [40, 2], id=6),
    ]
    answers = await post(client, batch)
    assert [a["id"] for a in answers] == [1, None, 3, 4, 5, 6]
    assert answers[0]["result"] == ["a"]
    error_of(answers[1], -32600)
    error_of(answers[2], -32601)
    error_of(answers[3], -32000)
    error_of(answers[4], -32600)
    assert answers[5]["result"] == "0x2a"


async def test_batch_entries_run_sequentially_in_order(
    client: httpx.AsyncClient, api: ToyApi
) -> None:
    answers = await post(client, [req("record", [n], id=n) for n in range(20)])
    assert api.calls == list(range(20))
    assert [a["result"] for a in answers] == list(range(20))


async def test_empty_batch_is_one_invalid_request(client: httpx.AsyncClient) -> None:
    answer = await post(client, [])
    assert isinstance(answer, dict)
    assert error_of(answer, -32600)["message"] == "empty batch"


async def test_batch_over_limit_is_rejected_as_a_whole(client: httpx.AsyncClient) -> None:
    batch = [{"jsonrpc": "2.0", "method": "echo"}] + [req("echo", id=n) for n in range(1000)]
    answer = await post(client, batch)
    assert isinstance(answer, list) and len(answer) == 1
    assert error_of(answer[0], -32600)["message"] == "batch too large"
    assert answer[0]["id"] == 0
    full = await post(client, [req("echo", [n], id=n) for n in range(1000)])
    assert [a["result"] for a in full] == [[n] for n in range(1000)]


# ------------------------------------------------------------------ HTTP: limits and misc


async def test_oversized_body_with_content_length_is_413(client: httpx.AsyncClient) -> None:
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"echo","params":["' + b"x" * (5 * 1024 * 1024) + b'"]}'
    )
    response = await client.post("/", content=body)
    assert response.status_code == 413
    assert error_of(response.json(), -32600)["message"].startswith("request body too large")
    assert (await post(client, req("echo", [1])))["result"] == [1]


async def test_oversized_chunked_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield b" " * (1024 * 1024)

    response = await client.post("/", content=chunks())
    assert response.status_code == 413
    error_of(response.json(), -32600)
    assert (await post(client, req("echo", [2])))["result"] == [2]


async def test_body_at_the_limit_is_accepted() -> None:
    srv = RpcServer({"echo": ToyApi().echo}, max_body_bytes=200)
    await srv.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=srv.url) as c:
            padding = 200 - len(json.dumps(req("echo", [""])))
            body = json.dumps(req("echo", ["y" * padding])).encode()
            assert len(body) == 200
            assert (await post(c, body))["result"] == ["y" * padding]
            response = await c.post("/", content=body + b" ")
            assert response.status_code == 413
    finally:
        await srv.stop()


@pytest.fixture
def evm_recursion_limit() -> Iterator[None]:
    """py-evm raises the recursion limit to 100000; deep JSON must not crash the process then."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, 100_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


@pytest.mark.usefixtures("evm_recursion_limit")
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
async def test_deeply_nested_json_is_parse_error(client: httpx.AsyncClient, opener: bytes) -> None:
    answer = await post(client, opener * 100_000)
    error_of(answer, -32700)
    closer = b"]" if opener == b"[" else b"}"
    answer = await post(client, opener * 100_000 + b"1" + closer * 100_000)
    assert "nested deeper than 256" in error_of(answer, -32700)["message"]
    assert (await post(client, req("echo", [3])))["result"] == [3]


async def test_nesting_limit_counts_only_structure(client: httpx.AsyncClient) -> None:
    def nested(depth: int) -> Any:
        value: Any = 0
        for _ in range(depth - 1):
            value = [value]
        return value

    # nested(n) holds n - 1 arrays; with the request object around it the depth is n.
    assert (await post(client, req("echo", nested(256))))["result"] == nested(256)
    error_of(await post(client, req("echo", nested(257))), -32700)
    brackets_in_strings = ["[{" * 2000, '"]\\"[' * 500]
    assert (await post(client, req("echo", brackets_in_strings)))["result"] == brackets_in_strings
    wide = [[n] for n in range(3000)]
    assert (await post(client, req("echo", wide)))["result"] == wide


@pytest.mark.usefixtures("evm_recursion_limit")
async def test_ws_deep_nesting_is_parse_error(server: RpcServer) -> None:
    async with connect(ws_url(server), max_size=None) as ws:
        await ws.send("[" * 100_000)
        error_of(json.loads(await ws.recv()), -32700)


async def test_health_and_plain_get(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200 and health.json() == {"ok": True}
    assert (await client.get("/")).status_code == 200


async def test_cors_preflight_and_simple_request(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/",
        headers={
            "Origin": "https://dapp.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    response = await client.post(
        "/", content=json.dumps(req("echo")).encode(), headers={"Origin": "https://dapp.example"}
    )
    assert response.headers["access-control-allow-origin"] == "*"


async def test_cors_restricted_origins() -> None:
    srv = RpcServer({}, cors_origins=("https://good.example",))
    await srv.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=srv.url) as c:
            headers = {"Access-Control-Request-Method": "POST"}
            good = await c.options("/", headers={**headers, "Origin": "https://good.example"})
            assert good.headers["access-control-allow-origin"] == "https://good.example"
            bad = await c.options("/", headers={**headers, "Origin": "https://evil.example"})
            assert bad.status_code == 400
            assert "access-control-allow-origin" not in bad.headers
    finally:
        await srv.stop()


# ------------------------------------------------------------------ lifecycle


async def test_start_reports_port_and_refuses_twice(server: RpcServer) -> None:
    assert server.port is not None and server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/"
    with pytest.raises(RuntimeError, match="already started"):
        await server.start("127.0.0.1", 0)


async def test_start_on_busy_port_raises_oserror() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        srv = RpcServer({})
        with pytest.raises(OSError):
            await srv.start("127.0.0.1", busy.getsockname()[1])
        assert srv.port is None
        await srv.stop()


async def test_stop_is_idempotent_and_frees_the_port() -> None:
    srv = RpcServer({"echo": ToyApi().echo})
    await srv.start("127.0.0.1", 0)
    port = srv.port
    await srv.stop()
    await srv.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as c:
            await c.post(f"http://127.0.0.1:{port}/", content=b"{}")


# ------------------------------------------------------------------ WebSocket


async def ws_call(ws: ClientConnection, payload: Any) -> Any:
    await ws.send(json.dumps(payload))
    return json.loads(await ws.recv())


async def test_ws_requests_batches_and_errors(server: RpcServer) -> None:
    async with connect(ws_url(server)) as ws:
        assert await ws_call(ws, req("echo", [1], id=1)) == {
            "jsonrpc": "2.0",
            "id": 1,
            "result": [1],
        }
        answers = await ws_call(ws, [req("echo", ["a"], id=2), req("missing", id=3)])
        assert answers[0]["result"] == ["a"]
        error_of(answers[1], -32601)
        await ws.send("{not json")
        error_of(json.loads(await ws.recv()), -32700)
        error_of(await ws_call(ws, []), -32600)
        error_of(await ws_call(ws, req("crash", id=5)), -32603)
        await ws.send(json.dumps(req("echo", ["bin"], id=6)).encode())
        assert json.loads(await ws.recv())["result"] == ["bin"]
        assert (await ws_call(ws, req("whoami", id=7)))["result"] == {
            "transport": "ws",
            "has_session": True,
        }


async def test_ws_notifications_produce_no_response(server: RpcServer) -> None:
    async with connect(ws_url(server)) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "echo"}))
        await ws.send(json.dumps([{"jsonrpc": "2.0", "method": "echo"}]))
        assert await ws_call(ws, req("echo", ["after"], id=8)) == {
            "jsonrpc": "2.0",
            "id": 8,
            "result": ["after"],
        }


async def test_ws_subscription_notifications(server: RpcServer) -> None:
    async with connect(ws_url(server)) as ws:
        await ws.send(json.dumps(req("subscribe", id=1)))
        messages = [json.loads(await ws.recv()) for _ in range(3)]
        notes = [m for m in messages if "method" in m]
        assert {"jsonrpc": "2.0", "id": 1, "result": "0x1234"} in messages
        assert notes == [
            {
                "jsonrpc": "2.0",
                "method": "eth_subscription",
                "params": {"subscription": "0x1234", "result": {"early": True}},
            },
            {
                "jsonrpc": "2.0",
                "method": "eth_subscription",
                "params": {"subscription": "0x1234", "result": {"late": True}},
            },
        ]


async def test_ws_batch_response_precedes_notifications_sent_during_it(server: RpcServer) -> None:
    async with connect(ws_url(server)) as ws:
        await ws.send(json.dumps([req("subscribe", id=1), req("echo", id=2)]))
        first = json.loads(await ws.recv())
        assert isinstance(first, list) and [a["id"] for a in first] == [1, 2]
        second = json.loads(await ws.recv())
        assert second["params"]["result"] == {"early": True}


async def test_ws_requests_run_concurrently(server: RpcServer) -> None:
    async with connect(ws_url(server)) as ws:
        await ws.send(json.dumps(req("slow", id="slow")))
        assert await ws_call(ws, req("echo", ["fast"], id="fast")) == {
            "jsonrpc": "2.0",
            "id": "fast",
            "result": ["fast"],
        }
        answers = {}
        await ws.send(json.dumps(req("release", id="release")))
        for _ in range(2):
            answer = json.loads(await ws.recv())
            answers[answer["id"]] = answer["result"]
        assert answers == {"slow": "slow done", "release": True}


async def test_ws_oversize_message_closes_with_1009() -> None:
    srv = RpcServer({"echo": ToyApi().echo}, max_ws_message_bytes=1024)
    await srv.start("127.0.0.1", 0)
    try:
        async with connect(ws_url(srv), compression=None) as ws:
            assert await ws_call(ws, req("echo", ["ok"]))
            await ws.send(json.dumps(req("echo", ["z" * 2000])))
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        async with connect(ws_url(srv)) as ws:
            assert (await ws_call(ws, req("echo", ["again"])))["result"] == ["again"]
    finally:
        await srv.stop()


async def test_ws_slow_consumer_is_disconnected(
    server: RpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="powerverse.rpc.server"):
        async with connect(ws_url(server)) as ws:
            await ws.send(json.dumps(req("flood", [1000], id=1)))
            with pytest.raises(websockets.ConnectionClosed) as info:
                while True:
                    await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert any("too slow" in r.getMessage() for r in caplog.records)


async def test_ws_on_close_callbacks_run_when_client_leaves(server: RpcServer, api: ToyApi) -> None:
    async with connect(ws_url(server)) as ws:
        session_id = (await ws_call(ws, req("watch_close")))["result"]
        assert session_id.startswith("0x") and len(session_id) == 34
        assert not api.closed.is_set()
    await asyncio.wait_for(api.closed.wait(), timeout=10)


async def test_ws_origin_check() -> None:
    srv = RpcServer({"echo": ToyApi().echo}, cors_origins=("https://good.example",))
    await srv.start("127.0.0.1", 0)
    try:
        async with connect(ws_url(srv), origin="https://good.example") as ws:  # type: ignore[arg-type]
            assert (await ws_call(ws, req("echo", [1])))["result"] == [1]
        async with connect(ws_url(srv)) as ws:
            assert (await ws_call(ws, req("echo", [2])))["result"] == [2]
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(ws_url(srv), origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert info.value.response.status_code == 403
    finally:
        await srv.stop()


async def test_stop_closes_open_websockets(api: ToyApi) -> None:
    srv = RpcServer(api.methods())
    await srv.start("127.0.0.1", 0)
    async with connect(ws_url(srv)) as ws:
        await ws_call(ws, req("watch_close"))
        await srv.stop()
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    assert api.closed.is_set()


# ------------------------------------------------------------------ WsSession unit behaviour


async def test_session_queue_bound_closes_instead_of_growing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = WsSession(max_queue=3)
    with caplog.at_level(logging.WARNING, logger="powerverse.rpc.server"):
        for n in range(5):
            await session.notify("0xaa", n)
    assert session.closed
    assert session.close_request == (1008, "slow consumer: outgoing queue full")
    assert session.drain() == []
    await session.notify("0xaa", "ignored")
    assert session.drain() == []


async def test_session_holds_notifications_during_a_batch() -> None:
    session = WsSession()
    session._hold()
    await session.notify("0x01", "n")
    session._push('{"batch":1}', notification=False)
    assert session.drain() == ['{"batch":1}']
    session._release()
    [note] = session.drain()
    assert json.loads(note)["params"] == {"subscription": "0x01", "result": "n"}


async def test_session_on_close_runs_once_and_survives_bad_callbacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = WsSession()
    calls: list[str] = []

    def bad() -> None:
        raise RuntimeError("callback failed")

    session.on_close.extend([bad, lambda: calls.append("ok")])
    with caplog.at_level(logging.ERROR, logger="powerverse.rpc.server"):
        session._finish()
        session._finish()
    assert calls == ["ok"]
    assert session.closed
    assert any("on_close" in r.getMessage() for r in caplog.records)


async def test_session_drops_unencodable_notifications(caplog: pytest.LogCaptureFixture) -> None:
    session = WsSession()
    with caplog.at_level(logging.ERROR, logger="powerverse.rpc.server"):
        await session.notify("0x01", object())
    assert session.drain() == []
    assert not session.closed
    await session.notify("0x01", b"\x00")
    assert json.loads(session.drain()[0])["params"]["result"] == "0x00"
