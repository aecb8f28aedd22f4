"""JSON-RPC 2.0 server over HTTP POST and WebSocket on one port and path, answering like geth.

Transport rules (documented choices):

- HTTP: POST "/" carries a request or a batch. The Content-Type header is not checked (geth
  insists on application/json; we accept any, so `curl -d` works). Bodies larger than
  ``max_body_bytes`` get HTTP 413 with a JSON-RPC error body; the body is read incrementally and
  never buffered past the limit. A request or batch made only of notifications gets HTTP 204 with
  no body. Every other answer is HTTP 200 with an application/json body, errors included.
  GET "/" answers 200 with an empty body (geth's health probe); GET "/health" answers {"ok": true}.
  Idle kept-alive connections are closed after ``keep_alive_timeout`` seconds (120, as geth).
- WebSocket: the same requests in text (or binary) frames; requests on one connection run
  concurrently (at most ``max_ws_inflight`` at a time), each batch in order. A message larger
  than ``max_ws_message_bytes`` closes the socket with code 1009. Notifications queue in a bounded
  per-connection buffer; a client that does not keep up is disconnected with code 1008 (one
  that stops reading altogether is dropped by the keepalive ping timeout, about 40 s).
  A handshake carrying an Origin header is refused (403) unless the origin is in
  ``cors_origins`` ("*" allows any); clients that send no Origin (non-browsers) are accepted.
- CORS: preflight OPTIONS is answered for ``cors_origins`` (methods GET/POST, header Content-Type).
- "params" may be absent or null (treated as []); "id" must be a string, number or null;
  "jsonrpc" must be "2.0". JSON nested deeper than MAX_JSON_DEPTH (256) is a parse error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import operator
import re
import secrets
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from powerverse.rpc.errors import (
    InternalError,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RpcError,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "CallContext",
    "Handler",
    "RpcServer",
    "WsSession",
    "dumps",
    "parse_json",
]

log = logging.getLogger(__name__)

CLOSE_SLOW_CONSUMER = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
MAX_JSON_DEPTH = 256

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[]{}", b"\x02\x00\x02\x00")  # opener +1, closer -1 (after -1 per byte)


@dataclass(frozen=True)
class CallContext:
    """What a handler knows about the caller: transport, WebSocket session, remote address."""

    transport: Literal["http", "ws"]
    session: WsSession | None = None
    remote: str | None = None


Handler = Callable[[Any, CallContext], Awaitable[Any]]


class WsSession:
    """One WebSocket connection as handlers see it: push notifications and close hooks."""

    def __init__(self, session_id: str | None = None, *, max_queue: int = 4096) -> None:
        self.id: str = session_id if session_id is not None else "0x" + secrets.token_hex(16)
        self.on_close: list[Callable[[], None]] = []
        self._max_queue = max_queue
        self._outgoing: deque[str] = deque()
        self._held: list[str] = []
        self._hold_depth = 0
        self._wake = asyncio.Event()
        self._close_request: tuple[int, str] | None = None
        self._finished = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def closed(self) -> bool:
        """True once the connection is closing or gone; notifications are then dropped."""
        return self._close_request is not None or self._finished

    @property
    def close_request(self) -> tuple[int, str] | None:
        """The (code, reason) the server was asked to close with, if any."""
        return self._close_request

    async def notify(self, subscription_id: str, result: Any) -> None:
        """Queue an eth_subscription notification for this connection."""
        message = {
            "jsonrpc": "2.0",
            "method": "eth_subscription",
            "params": {"subscription": subscription_id, "result": result},
        }
        try:
            text = dumps(message)
        except (TypeError, ValueError, RecursionError):
            log.exception("dropping unencodable notification for subscription %s", subscription_id)
            return
        self._push(text, notification=True)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Ask the server to close the connection; queued messages are discarded."""
        if self.closed:
            return
        self._close_request = (code, reason)
        self._outgoing.clear()
        self._held.clear()
        self._wake.set()

    def drain(self) -> list[str]:
        """Remove and return the messages waiting to be sent (used by tests and tools)."""
        messages = list(self._outgoing)
        self._outgoing.clear()
        return messages

    def _push(self, text: str, *, notification: bool) -> None:
        """Queue an outgoing message; overflowing the bound drops the connection."""
        if self.closed:
            return
        if len(self._outgoing) + len(self._held) >= self._max_queue:
            log.warning(
                "closing websocket session %s: %d messages queued, client too slow",
                self.id,
                self._max_queue,
            )
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: outgoing queue full")
            return
        if notification and self._hold_depth > 0:
            self._held.append(text)
            return
        self._outgoing.append(text)
        self._wake.set()

    def _hold(self) -> None:
        """Defer notifications until the batch being answered has been queued."""
        self._hold_depth += 1

    def _release(self) -> None:
        """Undo one _hold; the last release queues the deferred notifications."""
        self._hold_depth -= 1
        if self._hold_depth == 0 and self._held:
            self._outgoing.extend(self._held)
            self._held.clear()
            self._wake.set()

    def _finish(self) -> None:
        """Mark the connection gone and run the on_close hooks once."""
        if self._finished:
            return
        self._finished = True
        self._outgoing.clear()
        self._held.clear()
        for task in list(self._tasks):
            task.cancel()
        callbacks, self.on_close = self.on_close, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("websocket on_close callback failed for session %s", self.id)


class RpcServer:
    """Serves a method table over JSON-RPC 2.0 via HTTP and WebSocket on one port."""

    def __init__(
        self,
        methods: Mapping[str, Handler],
        *,
        max_body_bytes: int = 5 * 1024 * 1024,
        max_batch: int = 1000,
        cors_origins: Sequence[str] = ("*",),
        max_ws_message_bytes: int = 5 * 1024 * 1024,
        max_ws_queue: int = 4096,
        max_ws_inflight: int = 32,
        shutdown_timeout: int = 5,
        keep_alive_timeout: int = 120,
    ) -> None:
        self.methods = methods  # looked up per call, so later additions are served
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch
        self.cors_origins = tuple(cors_origins)
        self.max_ws_message_bytes = max_ws_message_bytes
        self.max_ws_queue = max_ws_queue
        self.max_ws_inflight = max_ws_inflight
        self.shutdown_timeout = shutdown_timeout
        # An idle kept-alive HTTP connection is closed after this many seconds (geth: 120 s).
        # uvicorn's 5 s default made clients that pause a few seconds race the close.
        self.keep_alive_timeout = keep_alive_timeout
        self.host: str | None = None
        self.port: int | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        middleware = []
        if self.cors_origins:
            middleware.append(
                Middleware(
                    CORSMiddleware,
                    allow_origins=self.cors_origins,
                    allow_methods=("GET", "POST", "OPTIONS"),
                    allow_headers=("Content-Type",),
                    max_age=600,
                )
            )
        self.app = Starlette(
            routes=[
                Route("/", self._http_endpoint, methods=["POST", "GET"]),
                Route("/health", self._health_endpoint, methods=["GET"]),
                WebSocketRoute("/", self._ws_endpoint),
            ],
            middleware=middleware,
        )

    @property
    def url(self) -> str:
        """The http:// URL of the running server."""
        if self.port is None or self.host is None:
            raise RuntimeError("server is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind host:port (0 picks a free port, see .port) and serve in the current event loop."""
        if self._task is not None:
            raise RuntimeError("server already started")
        sock = _bind(host, port)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            http="httptools",
            ws="websockets-sansio",
            lifespan="off",
            ws_max_size=self.max_ws_message_bytes,
            timeout_graceful_shutdown=self.shutdown_timeout,
            timeout_keep_alive=self.keep_alive_timeout,
            proxy_headers=False,
            server_header=False,
        )
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="rpc-server")
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not server.ready.is_set():
            ready.cancel()
            sock.close()
            task.result()  # raises the startup failure, if any
            raise RuntimeError(f"JSON-RPC server on {host}:{port} stopped during startup")
        self._server, self._task = server, task
        self.host, self.port = host, int(sock.getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, close WebSockets, let in-flight HTTP requests finish, then return."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await task
        finally:
            self._server = self._task = None
            self.port = None

    async def _health_endpoint(self, request: Request) -> Response:
        """Liveness probe."""
        return Response(b'{"ok":true}', media_type="application/json")

    async def _http_endpoint(self, request: Request) -> Response:
        """Answer one HTTP POST carrying a request or a batch."""
        if request.method in ("GET", "HEAD"):
            return Response(status_code=200)
        try:
            body = await self._read_body(request)
        except _BodyTooLarge:
            error = InvalidRequest(f"request body too large: limit is {self.max_body_bytes} bytes")
            return _json_response(_error_text(error, None), status_code=413)
        except ClientDisconnect:
            return Response(status_code=400)
        client = request.client
        ctx = CallContext("http", None, f"{client.host}:{client.port}" if client else None)
        out = await self._handle_raw(body, ctx)
        if out is None:
            return Response(status_code=204)
        return _json_response(out)

    async def _read_body(self, request: Request) -> bytes:
        """Read the body chunk by chunk, giving up as soon as it exceeds the limit."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _BodyTooLarge
        body = bytearray()
        async for chunk in request.stream():
            if len(body) + len(chunk) > self.max_body_bytes:
                raise _BodyTooLarge
            body += chunk
        return bytes(body)

    async def _ws_endpoint(self, websocket: WebSocket) -> None:
        """Serve one WebSocket connection until either side closes it."""
        origin = websocket.headers.get("origin")
        if origin and "*" not in self.cors_origins and origin not in self.cors_origins:
            log.info("rejecting websocket from origin %s", origin)
            await websocket.close(code=1008)
            return
        await websocket.accept()
        session = WsSession(max_queue=self.max_ws_queue)
        client = websocket.client
        ctx = CallContext("ws", session, f"{client.host}:{client.port}" if client else None)
        sender = asyncio.create_task(self._ws_send_loop(websocket, session))
        receiver = asyncio.create_task(self._ws_receive_loop(websocket, session, ctx))
        try:
            await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver.done() and session.close_request is not None:
                await asyncio.wait({sender}, timeout=self.shutdown_timeout)
        finally:
            for task in (sender, receiver):
                task.cancel()
            session._finish()
            await asyncio.gather(sender, receiver, return_exceptions=True)

    async def _ws_receive_loop(
        self, websocket: WebSocket, session: WsSession, ctx: CallContext
    ) -> None:
        """Read messages and start a task for each; stops on disconnect or an oversize message."""
        slots = asyncio.Semaphore(self.max_ws_inflight)

        def finished(task: asyncio.Task[None]) -> None:
            session._tasks.discard(task)
            slots.release()

        while not session.closed:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw: str | bytes = message.get("text") or message.get("bytes") or b""
            size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "replace"))
            if size > self.max_ws_message_bytes:
                session.close(CLOSE_MESSAGE_TOO_BIG, "message too big")
                return
            await slots.acquire()
            task = asyncio.create_task(self._ws_handle(raw, session, ctx))
            session._tasks.add(task)
            task.add_done_callback(finished)

    async def _ws_send_loop(self, websocket: WebSocket, session: WsSession) -> None:
        """Write queued messages in order; performs the close the session asked for."""
        while True:
            await session._wake.wait()
            session._wake.clear()
            while session._outgoing and session.close_request is None:
                await websocket.send_text(session._outgoing.popleft())
            if session.close_request is not None:
                code, reason = session.close_request
                with contextlib.suppress(Exception):
                    await websocket.close(code, reason)
                return

    async def _ws_handle(self, raw: str | bytes, session: WsSession, ctx: CallContext) -> None:
        """Answer one WebSocket message, keeping a batch's notifications behind its response."""
        try:
            payload = parse_json(raw)
        except ParseError as exc:
            session._push(_error_text(exc, None), notification=False)
            return
        batch = isinstance(payload, list)
        if batch:
            session._hold()
        try:
            out = await self._dispatch(payload, ctx)
            if out is not None:
                session._push(out, notification=False)
        finally:
            if batch:
                session._release()

    async def _handle_raw(self, raw: str | bytes, ctx: CallContext) -> str | None:
        """Parse and answer one message; None when nothing is to be sent back."""
        try:
            payload = parse_json(raw)
        except ParseError as exc:
            return _error_text(exc, None)
        return await self._dispatch(payload, ctx)

    async def _dispatch(self, payload: Any, ctx: CallContext) -> str | None:
        """Answer a parsed request or batch; a bug here still yields a JSON-RPC error."""
        try:
            return await self._dispatch_unguarded(payload, ctx)
        except Exception:
            log.exception("internal error while dispatching a JSON-RPC message")
            return _error_text(InternalError(), None)

    async def _dispatch_unguarded(self, payload: Any, ctx: CallContext) -> str | None:
        """Answer a parsed request or batch as JSON text; None for notifications only."""
        if not isinstance(payload, list):
            return await self._call(payload, ctx)
        if not payload:
            return _error_text(InvalidRequest("empty batch"), None)
        if len(payload) > self.max_batch:
            first_id = next(
                (
                    r["id"]
                    for r in payload
                    if isinstance(r, dict) and "id" in r and _valid_id(r["id"])
                ),
                None,
            )
            return "[" + _error_text(InvalidRequest("batch too large"), first_id) + "]"
        parts = []
        for item in payload:
            answer = await self._call(item, ctx)
            if answer is not None:
                parts.append(answer)
        return "[" + ",".join(parts) + "]" if parts else None

    async def _call(self, request: Any, ctx: CallContext) -> str | None:
        """Validate and run one request; the encoded response, or None for a notification."""
        if not isinstance(request, dict):
            return _error_text(InvalidRequest("invalid request: not a JSON object"), None)
        is_call = "id" in request
        req_id = request.get("id")
        if not _valid_id(req_id):
            return _error_text(
                InvalidRequest("invalid request: id must be string, number or null"), None
            )
        if request.get("jsonrpc") != "2.0":
            return _error_text(InvalidRequest('invalid request: "jsonrpc" must be "2.0"'), req_id)
        method = request.get("method")
        if not isinstance(method, str):
            return _error_text(InvalidRequest('invalid request: "method" must be a string'), req_id)
        params = request.get("params")
        if params is None:
            params = []
        elif not isinstance(params, list | dict):
            return _error_text(
                InvalidRequest('invalid request: "params" must be an array or object'), req_id
            )
        handler = self.methods.get(method)
        if handler is None:
            return _error_text(MethodNotFound(method), req_id) if is_call else None
        try:
            result = await handler(params, ctx)
        except RpcError as exc:
            return _error_text(exc, req_id) if is_call else None
        except Exception:
            log.exception("internal error in JSON-RPC method %.200s", method)
            return _error_text(InternalError(), req_id) if is_call else None
        if not is_call:
            return None
        try:
            return dumps({"jsonrpc": "2.0", "id": req_id, "result": result})
        except (TypeError, ValueError, RecursionError):
            log.exception("result of JSON-RPC method %.200s is not JSON-encodable", method)
            return _error_text(InternalError(), req_id)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signal handling to the host program and reports readiness."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Do not touch SIGINT/SIGTERM: the node owns them."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening, then signal readiness."""
        await super().startup(sockets=sockets)
        self.ready.set()


class _BodyTooLarge(Exception):
    """The HTTP body exceeds max_body_bytes."""


def parse_json(raw: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode a JSON text strictly (no NaN/Infinity, bounded nesting); failures are ParseError."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if _nesting_depth(data, max_depth) > max_depth:
        raise ParseError(f"parse error: JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ParseError() from exc


def _nesting_depth(data: bytes, limit: int) -> int:
    """Deepest array/object nesting outside string literals (0 when it cannot exceed limit).

    py-evm raises the interpreter's recursion limit to 100000, so json.loads on deeply nested
    input would overflow the C stack and kill the process instead of raising RecursionError.
    The scan runs in C-level loops: strings are cut out, brackets kept, depth accumulated.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return 0
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS).translate(_STEPS)
    if not brackets:
        return 0
    depths = map(operator.sub, itertools.accumulate(brackets), range(1, len(brackets) + 1))
    return int(max(depths))


def dumps(obj: Any) -> str:
    """Encode compact ASCII JSON; bytes become 0x-hex, NaN and unknown types raise."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_json_default)


def _json_default(obj: Any) -> Any:
    """Encode bytes-like values as 0x-prefixed hex."""
    if isinstance(obj, bytes | bytearray | memoryview):
        return "0x" + bytes(obj).hex()
    raise TypeError(f"{type(obj).__name__} is not JSON-encodable")


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def _valid_id(value: Any) -> bool:
    """JSON-RPC ids are strings, numbers or null (booleans are not numbers here)."""
    return value is None or isinstance(value, str) or type(value) in (int, float)


def _error_text(error: RpcError, req_id: Any) -> str:
    """Encode an error response, falling back to a bare internal error if data cannot encode."""
    try:
        return dumps({"jsonrpc": "2.0", "id": req_id, "error": error.to_json()})
    except (TypeError, ValueError, RecursionError):
        log.exception("error object %r is not JSON-encodable", error)
        return dumps({"jsonrpc": "2.0", "id": req_id, "error": InternalError().to_json()})


def _json_response(text: str, status_code: int = 200) -> Response:
    """An application/json response."""
    return Response(text.encode("ascii"), status_code=status_code, media_type="application/json")


def _bind(host: str, port: int) -> socket.socket:
    """Create a listening-ready TCP socket bound to host:port."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
