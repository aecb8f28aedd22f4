"""Errors of the benchmark scripts.

BenchError
├── NodeUnreachable   (no HTTP answer at the URL)
├── RpcError          (a JSON-RPC error reply, or a malformed one)
├── NodeStartError    (a spawned node exited early or never answered)
├── HardhatInstallError
└── LoadError         (a tx was refused, or not included in time)
"""

from __future__ import annotations


class BenchError(Exception):
    """Base class of every error raised by the bench package."""


class NodeUnreachable(BenchError):
    """The node's JSON-RPC endpoint did not answer over HTTP."""


class RpcError(BenchError):
    """The node answered a JSON-RPC request with an error."""

    def __init__(self, method: str, code: int | None, message: str, data: object = None) -> None:
        super().__init__(f"{method}: {message}" + (f" (code {code})" if code is not None else ""))
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class NodeStartError(BenchError):
    """A node process started by the bench exited early or never became ready."""


class HardhatInstallError(BenchError):
    """The pinned Hardhat 2 npm package could not be installed."""


class LoadError(BenchError):
    """The load could not be applied: a tx was refused or not included in time."""
