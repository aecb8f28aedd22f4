"""Polling filters (eth_newFilter, eth_newBlockFilter, eth_getFilterChanges, ...), as in geth.

Each filter buffers what arrived since it was last polled. A filter not polled for ``timeout``
seconds (geth: 5 minutes) is removed; its id then answers "filter not found" (-32000). Buffers
are bounded: past ``max_buffer`` entries the oldest are dropped and a warning is logged once.
The chain feeds the manager with on_new_block and on_pending_tx; time comes from ``clock``.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from powerverse.rpc.errors import (
    FilterNotFound,
    InvalidParams,
    LimitExceeded,
    positional_params,
)
from powerverse.rpc.logmatch import LogCriteria, matches, parse_filter_criteria

if TYPE_CHECKING:
    from powerverse.rpc.server import CallContext, Handler

__all__ = ["FilterInfo", "FilterKind", "FilterManager"]

log = logging.getLogger(__name__)

FilterKind = Literal["logs", "blocks", "pending"]


@dataclass(frozen=True)
class FilterInfo:
    """What a filter was installed for; criteria is set for log filters only."""

    id: str
    kind: FilterKind
    criteria: LogCriteria | None


@dataclass
class _Filter:
    """A live filter and the changes buffered since its last poll."""

    info: FilterInfo
    last_poll: float
    buffer: deque[Any] = field(default_factory=deque)
    warned_overflow: bool = False


class FilterManager:
    """Installs, feeds, polls and expires polling filters."""

    def __init__(
        self,
        clock: Callable[[], float],
        timeout: float = 300.0,
        *,
        max_filters: int = 10_000,
        max_buffer: int = 10_000,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._clock = clock
        self._timeout = timeout
        self._max_filters = max_filters
        self._max_buffer = max_buffer
        self._random_bytes = random_bytes
        self._filters: dict[str, _Filter] = {}

    def __len__(self) -> int:
        """Number of installed filters, expired ones not yet pruned included."""
        return len(self._filters)

    def new_log_filter(self, criteria: LogCriteria) -> str:
        """Install a filter collecting logs that match criteria; returns its id."""
        return self._install("logs", criteria)

    def new_block_filter(self) -> str:
        """Install a filter collecting new block hashes; returns its id."""
        return self._install("blocks", None)

    def new_pending_tx_filter(self) -> str:
        """Install a filter collecting hashes of transactions entering the pool; returns its id."""
        return self._install("pending", None)

    def get_changes(self, filter_id: str) -> list[Any]:
        """Return and clear what arrived since the last poll; restarts the expiry timer."""
        entry = self._lookup(filter_id)
        changes = list(entry.buffer)
        entry.buffer.clear()
        entry.warned_overflow = False
        return changes

    def get_filter(self, filter_id: str) -> FilterInfo:
        """The filter's kind and criteria (for eth_getFilterLogs); restarts the expiry timer."""
        return self._lookup(filter_id).info

    def uninstall(self, filter_id: str) -> bool:
        """Remove a filter; False when the id is unknown or already expired."""
        self.prune()
        return self._filters.pop(filter_id.lower(), None) is not None

    def on_new_block(self, block_hash: str, logs: Sequence[Mapping[str, Any]]) -> None:
        """Feed a newly imported block: its hash to block filters, matching logs to log filters."""
        self.prune()
        for entry in self._filters.values():
            criteria = entry.info.criteria
            if entry.info.kind == "blocks":
                self._append(entry, [block_hash])
            elif criteria is not None:
                self._append(entry, [log for log in logs if matches(log, criteria)])

    def on_pending_tx(self, tx_hash: str) -> None:
        """Feed the hash of a transaction that entered the pool."""
        self.prune()
        for entry in self._filters.values():
            if entry.info.kind == "pending":
                self._append(entry, [tx_hash])

    def prune(self) -> int:
        """Remove filters not polled within the timeout; returns how many were removed."""
        now = self._clock()
        expired = [fid for fid, f in self._filters.items() if now - f.last_poll >= self._timeout]
        for fid in expired:
            del self._filters[fid]
        return len(expired)

    def rpc_methods(self) -> dict[str, Handler]:
        """JSON-RPC handlers for the chain-independent filter methods (not eth_getFilterLogs)."""
        return {
            "eth_newFilter": self._rpc_new_filter,
            "eth_newBlockFilter": self._rpc_new_block_filter,
            "eth_newPendingTransactionFilter": self._rpc_new_pending_filter,
            "eth_getFilterChanges": self._rpc_get_changes,
            "eth_uninstallFilter": self._rpc_uninstall,
        }

    def _install(self, kind: FilterKind, criteria: LogCriteria | None) -> str:
        """Register a new filter under a fresh random id."""
        self.prune()
        if len(self._filters) >= self._max_filters:
            raise LimitExceeded(f"too many filters installed (limit {self._max_filters})")
        filter_id = "0x" + self._random_bytes(16).hex()
        self._filters[filter_id] = _Filter(FilterInfo(filter_id, kind, criteria), self._clock())
        return filter_id

    def _lookup(self, filter_id: str) -> _Filter:
        """Find a live filter and mark it polled; unknown or expired ids raise FilterNotFound."""
        self.prune()
        entry = self._filters.get(filter_id.lower())
        if entry is None:
            raise FilterNotFound()
        entry.last_poll = self._clock()
        return entry

    def _append(self, entry: _Filter, items: list[Any]) -> None:
        """Buffer items, dropping the oldest beyond max_buffer."""
        if not items:
            return
        entry.buffer.extend(items)
        excess = len(entry.buffer) - self._max_buffer
        if excess <= 0:
            return
        for _ in range(excess):
            entry.buffer.popleft()
        if not entry.warned_overflow:
            entry.warned_overflow = True
            log.warning(
                "filter %s buffer full (%d entries): dropping oldest; poll it more often",
                entry.info.id,
                self._max_buffer,
            )

    async def _rpc_new_filter(self, params: Any, ctx: CallContext) -> str:
        """eth_newFilter(criteria)."""
        (criteria,) = positional_params(params, 1, 1)
        return self.new_log_filter(parse_filter_criteria(criteria))

    async def _rpc_new_block_filter(self, params: Any, ctx: CallContext) -> str:
        """eth_newBlockFilter()."""
        positional_params(params, 0, 0)
        return self.new_block_filter()

    async def _rpc_new_pending_filter(self, params: Any, ctx: CallContext) -> str:
        """eth_newPendingTransactionFilter([fullTx]); full transactions are not supported."""
        (full,) = positional_params(params, 0, 1)
        if full not in (None, False):
            raise InvalidParams("full transaction objects are not supported for pending filters")
        return self.new_pending_tx_filter()

    async def _rpc_get_changes(self, params: Any, ctx: CallContext) -> list[Any]:
        """eth_getFilterChanges(id)."""
        return self.get_changes(_filter_id_param(params))

    async def _rpc_uninstall(self, params: Any, ctx: CallContext) -> bool:
        """eth_uninstallFilter(id)."""
        return self.uninstall(_filter_id_param(params))


def _filter_id_param(params: Any) -> str:
    """The single filter-id argument."""
    (filter_id,) = positional_params(params, 1, 1)
    if not isinstance(filter_id, str):
        raise InvalidParams("invalid argument 0: filter id must be a hex string")
    return filter_id
