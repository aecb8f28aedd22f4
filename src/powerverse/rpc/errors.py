"""JSON-RPC errors: each one knows its code, message and optional data, as geth answers them.

Handlers raise these; the server turns them into the "error" member of a response.
Anything else a handler raises becomes InternalError (-32603) and is logged.

    RpcError                         base; code -32000 unless a subclass says otherwise
    ├── ParseError                   -32700  body is not valid JSON
    ├── InvalidRequest               -32600  valid JSON, but not a JSON-RPC 2.0 request
    ├── MethodNotFound               -32601  "the method X does not exist/is not available"
    │   ├── MethodNotAllowed         -32601  exists, but disabled here (dev-only methods)
    │   └── NotificationsUnsupported -32601  subscriptions over a transport without push
    ├── InvalidParams                -32602  wrong number, type or format of parameters
    ├── InternalError                -32603  unexpected failure inside the node
    ├── ServerError                  -32000  generic failure ("nonce too low", ...)
    │   ├── FilterNotFound           -32000  "filter not found" (unknown or expired id)
    │   ├── SubscriptionNotFound     -32000  "subscription not found"
    │   └── Unauthorized             -32000  caller may not use this method
    ├── ResourceNotFound             -32001  requested block/tx/receipt does not exist
    ├── LimitExceeded                -32005  request exceeds a configured limit
    └── ExecutionReverted                 3  EVM revert; data is the revert bytes as 0x-hex
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ExecutionReverted",
    "FilterNotFound",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "LimitExceeded",
    "MethodNotAllowed",
    "MethodNotFound",
    "NotificationsUnsupported",
    "ParseError",
    "ResourceNotFound",
    "RpcError",
    "ServerError",
    "SubscriptionNotFound",
    "Unauthorized",
    "decode_revert_reason",
    "positional_params",
]

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
_PANIC_REASONS = {
    0x00: "generic panic",
    0x01: "assert(false)",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "enum overflow",
    0x22: "invalid encoded storage byte array accessed",
    0x31: "out-of-bounds array access; popping on an empty array",
    0x32: "out-of-bounds access of an array or bytesN",
    0x41: "out of memory",
    0x51: "uninitialized function",
}


class RpcError(Exception):
    """A failure reported to the caller as a JSON-RPC error object."""

    code: ClassVar[int] = -32000
    default_message: ClassVar[str] = "server error"

    def __init__(self, message: str | None = None, data: Any | None = None) -> None:
        self.message: str = message if message is not None else self.default_message
        self.data: Any | None = data
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-RPC error object; "data" only when there is some."""
        obj: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            obj["data"] = self.data
        return obj

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r})"


class ParseError(RpcError):
    """The request body is not valid JSON."""

    code = -32700
    default_message = "parse error"


class InvalidRequest(RpcError):
    """The JSON is valid but is not a JSON-RPC 2.0 request object or batch."""

    code = -32600
    default_message = "invalid request"


class MethodNotFound(RpcError):
    """No handler is registered for the method."""

    code = -32601
    default_message = "method not found"

    def __init__(self, method: str | None = None, data: Any | None = None) -> None:
        message = None
        if method is not None:
            message = f"the method {_clip(method)} does not exist/is not available"
        super().__init__(message, data)


class MethodNotAllowed(MethodNotFound):
    """The method exists but is disabled on this node (for example dev-only methods)."""

    def __init__(
        self,
        method: str,
        reason: str = "it is only enabled in dev mode (start the node with --dev)",
        data: Any | None = None,
    ) -> None:
        RpcError.__init__(self, f"the method {_clip(method)} is not available: {reason}", data)


class NotificationsUnsupported(MethodNotFound):
    """Subscriptions were requested over a transport that cannot push (HTTP)."""

    default_message = "notifications not supported"

    def __init__(self, message: str | None = None, data: Any | None = None) -> None:
        RpcError.__init__(self, message, data)


class InvalidParams(RpcError):
    """The parameters have the wrong count, type or format."""

    code = -32602
    default_message = "invalid params"


class InternalError(RpcError):
    """Unexpected failure inside the node; details go to the log, not the caller."""

    code = -32603
    default_message = "internal error"


class ServerError(RpcError):
    """Generic failure with a descriptive message, such as "nonce too low"."""

    code = -32000
    default_message = "server error"


class FilterNotFound(ServerError):
    """The filter id is unknown, uninstalled or expired."""

    default_message = "filter not found"


class SubscriptionNotFound(ServerError):
    """The subscription id is unknown or belongs to another connection."""

    default_message = "subscription not found"


class Unauthorized(ServerError):
    """The caller may not use this method here."""

    default_message = "unauthorized"


class ResourceNotFound(RpcError):
    """The requested resource (block, transaction, receipt) does not exist (EIP-1474)."""

    code = -32001
    default_message = "resource not found"


class LimitExceeded(RpcError):
    """The request exceeds a configured limit (EIP-1474)."""

    code = -32005
    default_message = "limit exceeded"


class ExecutionReverted(RpcError):
    """The EVM reverted; message carries the decoded reason, data the raw revert bytes.

    Without an explicit reason, one is decoded from bytes data when it is a Solidity
    Error(string) or Panic(uint256) payload, as geth does.
    """

    code = 3
    default_message = "execution reverted"

    def __init__(self, reason: str | None = None, data: bytes | str | None = None) -> None:
        if reason is None and isinstance(data, bytes | bytearray | memoryview):
            reason = decode_revert_reason(bytes(data))
        message = f"execution reverted: {reason}" if reason else "execution reverted"
        if data is None:
            hex_data = "0x"
        elif isinstance(data, bytes | bytearray | memoryview):
            hex_data = "0x" + bytes(data).hex()
        else:
            hex_data = data
        super().__init__(message, hex_data)
        self.reason: str | None = reason

    @classmethod
    def from_revert_data(cls, data: bytes) -> ExecutionReverted:
        """Build the error from raw revert bytes, decoding Error(string) and Panic(uint256)."""
        return cls(None, data)


def decode_revert_reason(data: bytes) -> str | None:
    """Decode a Solidity Error(string) or Panic(uint256) payload; None when it is neither."""
    if len(data) == 4 + 32 and data[:4] == _PANIC_SELECTOR:
        code = int.from_bytes(data[4:], "big")
        return _PANIC_REASONS.get(code, f"unknown panic code: {code:#x}")
    if len(data) < 4 + 64 or data[:4] != _ERROR_SELECTOR:
        return None
    body = data[4:]
    offset = int.from_bytes(body[:32], "big")
    if offset + 32 > len(body):
        return None
    length = int.from_bytes(body[offset : offset + 32], "big")
    start = offset + 32
    if start + length > len(body):
        return None
    try:
        return body[start : start + length].decode("utf-8")
    except UnicodeDecodeError:
        return None


def positional_params(params: Any, minimum: int, maximum: int) -> list[Any]:
    """Check a positional parameter list (geth wording) and pad it with None up to maximum."""
    if isinstance(params, dict):
        raise InvalidParams("non-array args")
    if not isinstance(params, list):
        raise InvalidParams("invalid params: expected an array")
    if len(params) > maximum:
        raise InvalidParams(f"too many arguments, want at most {maximum}")
    if len(params) < minimum:
        raise InvalidParams(f"missing value for required argument {len(params)}")
    return [*params, *([None] * (maximum - len(params)))]


def _clip(text: str, limit: int = 200) -> str:
    """Shorten caller-supplied text so an error message cannot become huge."""
    return text if len(text) <= limit else text[:limit] + "…"
