"""Property tests: whatever arrives, the server answers valid JSON-RPC (or nothing) and stays up."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from powerverse.rpc.errors import ServerError
from powerverse.rpc.server import CallContext, Handler, RpcServer

MAX_BATCH = 20
SENTINEL = "sentinel-7f3a9c0e"
KNOWN_CODES = {-32700, -32600, -32601, -32602, -32603, -32000, 3}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


async def _echo(params: Any, ctx: CallContext) -> Any:
    return params


async def _crash(params: Any, ctx: CallContext) -> Any:
    raise ValueError("unexpected")


async def _fail(params: Any, ctx: CallContext) -> Any:
    raise ServerError("nope", data=params)


async def _weird(params: Any, ctx: CallContext) -> Any:
    return {1, 2}


METHODS: dict[str, Handler] = {"echo": _echo, "crash": _crash, "fail": _fail, "weird": _weird}


class LiveServer:
    """An RpcServer running in its own thread and event loop, for synchronous clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = RpcServer(METHODS, max_batch=MAX_BATCH, max_body_bytes=256 * 1024)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start("127.0.0.1", 0), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    with LiveServer() as server:
        yield server


@pytest.fixture(scope="module")
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def ws(live: LiveServer) -> Iterator[ClientConnection]:
    with connect(f"ws://127.0.0.1:{live.server.port}/", max_size=None) as conn:
        yield conn


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2, None]) | json_values,
        "method": st.sampled_from([*METHODS, "missing", ""]) | json_values,
        "params": json_values,
        "id": json_values,
    },
)
payloads = envelopes | json_values | st.lists(envelopes | json_values, max_size=MAX_BATCH + 3)


def is_notification(item: Any) -> bool:
    """A well-formed request without an id: the server must stay silent."""
    return (
        isinstance(item, dict)
        and "id" not in item
        and item.get("jsonrpc") == "2.0"
        and isinstance(item.get("method"), str)
        and (item.get("params") is None or isinstance(item.get("params"), list | dict))
    )


def expects_answer(payload: Any) -> bool:
    """Whether JSON-RPC 2.0 requires a response to this payload."""
    if isinstance(payload, list):
        return not payload or len(payload) > MAX_BATCH or not all(map(is_notification, payload))
    return not is_notification(payload)


def strict_loads(raw: bytes) -> Any:
    """JSON as the server accepts it; a sentinel for anything that must be a parse error."""
    try:
        return json.loads(raw, parse_constant=lambda name: 1 / 0)
    except (ValueError, RecursionError, ZeroDivisionError):
        return ParseFailure


class ParseFailure:
    """Marker for bodies that are not JSON."""


def expected_id(item: Any) -> Any:
    """The id the response must carry for one batch entry or single request."""
    if isinstance(item, dict) and type(item.get("id")) in (str, int, float):
        return item["id"]
    return None


def check_response(answer: Any) -> None:
    """One response object: exactly jsonrpc, id and result-or-error, with a known error code."""
    assert isinstance(answer, dict), answer
    assert answer.get("jsonrpc") == "2.0"
    assert "id" in answer
    assert type(answer["id"]) in (str, int, float, type(None))
    if "error" in answer:
        assert set(answer) == {"jsonrpc", "id", "error"}
        error = answer["error"]
        assert type(error["code"]) is int and error["code"] in KNOWN_CODES, error
        assert isinstance(error["message"], str)
        assert set(error) <= {"code", "message", "data"}
    else:
        assert set(answer) == {"jsonrpc", "id", "result"}


def check_answer(payload: Any, answer: Any) -> None:
    """The whole answer matches the payload's shape: one object, or one per non-notification."""
    if payload is ParseFailure:
        check_response(answer)
        assert answer["error"]["code"] == -32700
        return
    if isinstance(payload, list) and payload and len(payload) <= MAX_BATCH:
        assert isinstance(answer, list)
        expected = [item for item in payload if not is_notification(item)]
        assert len(answer) == len(expected)
        for item, response in zip(expected, answer, strict=True):
            check_response(response)
            assert response["id"] == expected_id(item)
        return
    if isinstance(payload, list) and len(payload) > MAX_BATCH:
        assert isinstance(answer, list) and len(answer) == 1
        check_response(answer[0])
        assert answer[0]["error"]["message"] == "batch too large"
        return
    check_response(answer)
    if payload != []:
        assert answer["id"] == expected_id(payload)


def post_and_check(http: httpx.Client, raw: bytes) -> None:
    response = http.post("/", content=raw)
    assert response.status_code in (200, 204), response.text
    payload = strict_loads(raw)
    if payload is not ParseFailure and not expects_answer(payload):
        assert response.status_code == 204 and response.content == b""
        return
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    check_answer(payload, response.json())


@FUZZ
@given(payloads)
def test_http_answers_any_json_validly(http: httpx.Client, payload: Any) -> None:
    post_and_check(http, json.dumps(payload).encode())


@FUZZ
@given(st.binary(max_size=512))
def test_http_answers_random_bytes_validly(http: httpx.Client, raw: bytes) -> None:
    post_and_check(http, raw)


@FUZZ
@given(st.text(alphabet='[]{}",:0123456789 .-eEtrufalsn\\', max_size=60))
def test_http_answers_json_like_text_validly(http: httpx.Client, text: str) -> None:
    post_and_check(http, text.encode())


@FUZZ
@given(
    depth=st.integers(min_value=1, max_value=20_000),
    opener=st.sampled_from([b"[", b'{"k":', b'["x",']),
    closed=st.booleans(),
)
def test_http_survives_any_nesting_depth(
    http: httpx.Client, depth: int, opener: bytes, closed: bool
) -> None:
    closer = b"]" if opener != b'{"k":' else b"}"
    raw = opener * depth + (b"1" + closer * depth if closed else b"")
    response = http.post("/", content=raw)
    assert response.status_code == 200
    answer = response.json()
    if depth > 256 or not closed:
        check_response(answer)
        assert answer["error"]["code"] == -32700
        return
    for entry in answer if isinstance(answer, list) else [answer]:
        check_response(entry)
        assert entry["error"]["code"] == -32600  # valid JSON, but not a request


def ws_roundtrip(ws: ClientConnection, message: str | bytes, payload: Any) -> None:
    """Send, then prove with a sentinel call that nothing else (or exactly the answer) came back."""
    ws.send(message)
    answers = []
    ws.send(json.dumps({"jsonrpc": "2.0", "id": SENTINEL, "method": "echo"}))
    while True:
        answer = json.loads(ws.recv(timeout=30))
        if isinstance(answer, dict) and answer.get("id") == SENTINEL and "result" in answer:
            break
        answers.append(answer)
    if payload is not ParseFailure and not expects_answer(payload):
        assert answers == []
        return
    if not answers:
        # The concurrent sentinel may overtake the answer; it must still arrive.
        answers.append(json.loads(ws.recv(timeout=30)))
    assert len(answers) == 1
    check_answer(payload, answers[0])


@FUZZ
@given(payloads)
def test_ws_answers_any_json_validly(ws: ClientConnection, payload: Any) -> None:
    ws_roundtrip(ws, json.dumps(payload), payload)


@FUZZ
@given(st.binary(max_size=256))
def test_ws_answers_random_binary_frames_validly(ws: ClientConnection, raw: bytes) -> None:
    ws_roundtrip(ws, raw, strict_loads(raw))


def test_server_is_still_healthy_after_fuzzing(http: httpx.Client, ws: ClientConnection) -> None:
    assert http.get("/health").json() == {"ok": True}
    ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": ["alive"]}))
    assert json.loads(ws.recv(timeout=30))["result"] == ["alive"]
