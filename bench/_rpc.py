"""A small JSON-RPC client over one keep-alive HTTP connection, with batch requests."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import httpx

from bench.exceptions import NodeUnreachable, RpcError

__all__ = ["Call", "RpcClient"]

Call = tuple[str, Sequence[Any]]


class RpcClient:
    """Send JSON-RPC requests and batches to one node, reusing one HTTP connection."""

    def __init__(
        self, url: str, *, timeout: float = 120.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._http = httpx.Client(timeout=timeout, limits=limits, transport=transport)
        self._next_id = 0

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """Send one request and return its result; raise RpcError on an error reply."""
        reply = self._post(self._request(method, params))
        if not isinstance(reply, dict):
            raise RpcError(method, None, f"malformed reply: {reply!r:.200}")
        return _result(method, reply)

    def batch(self, calls: Sequence[Call]) -> list[Any | RpcError]:
        """Send one batch; return results in call order, an RpcError in place of each failure."""
        if not calls:
            return []
        requests = [self._request(method, params) for method, params in calls]
        replies = self._post(requests)
        if not isinstance(replies, list):
            raise RpcError(calls[0][0], None, f"batch answered with {replies!r:.200}")
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        out: list[Any | RpcError] = []
        for request, (method, _) in zip(requests, calls, strict=True):
            reply = by_id.get(request["id"])
            if reply is None:
                out.append(RpcError(method, None, "no reply in batch"))
                continue
            try:
                out.append(_result(method, reply))
            except RpcError as exc:
                out.append(exc)
        return out

    def batch_ok(self, calls: Sequence[Call]) -> list[Any]:
        """Send one batch and raise the first error, if any."""
        results = self.batch(calls)
        for result in results:
            if isinstance(result, RpcError):
                raise result
        return results

    def close(self) -> None:
        """Close the HTTP connection."""
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        self._next_id += 1
        return {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": list(params)}

    def _post(self, body: object) -> Any:
        try:
            response = self._http.post(self.url, json=body)
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"cannot reach node at {self.url}: {exc}") from exc
        try:
            return response.json()
        except ValueError as exc:
            raise RpcError(
                "http",
                response.status_code,
                f"node at {self.url} answered non-JSON: {response.text[:200]!r}",
            ) from exc


def _result(method: str, reply: dict[str, Any]) -> Any:
    """Return the result of one reply object, or raise its error."""
    error = reply.get("error")
    if error is not None:
        if isinstance(error, dict):
            code = error.get("code")
            raise RpcError(
                method,
                code if isinstance(code, int) else None,
                str(error.get("message", error)),
                error.get("data"),
            )
        raise RpcError(method, None, str(error))
    if "result" not in reply:
        raise RpcError(method, None, f"reply has neither result nor error: {reply!r:.200}")
    return reply["result"]
