"""WebSocket subscriptions (eth_subscribe / eth_unsubscribe) and their notifications, as geth.

Kinds: "newHeads" (one notification per block, the header JSON), "logs" (one notification
per matching log, criteria as for eth_getLogs minus blockHash), "newPendingTransactions"
(transaction hashes, or full transactions when asked and the feeder provides them).
Subscriptions belong to their connection and disappear when it closes.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from powerverse.rpc.errors import (
    InvalidParams,
    LimitExceeded,
    NotificationsUnsupported,
    SubscriptionNotFound,
    positional_params,
)
from powerverse.rpc.logmatch import LogCriteria, matches, parse_filter_criteria

if TYPE_CHECKING:
    from powerverse.rpc.server import CallContext, Handler, WsSession

__all__ = ["SUBSCRIPTION_KINDS", "SubscriptionKind", "SubscriptionManager"]

log = logging.getLogger(__name__)

SubscriptionKind = Literal["newHeads", "logs", "newPendingTransactions"]
SUBSCRIPTION_KINDS: tuple[str, ...] = ("newHeads", "logs", "newPendingTransactions")


@dataclass(frozen=True)
class _Subscription:
    """One subscription: its owner, kind and options."""

    id: str
    session: WsSession
    kind: SubscriptionKind
    criteria: LogCriteria | None = None
    full_tx: bool = False


class SubscriptionManager:
    """Tracks subscriptions per WebSocket session and pushes chain events to them."""

    def __init__(
        self,
        *,
        max_per_session: int = 1000,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._max_per_session = max_per_session
        self._random_bytes = random_bytes
        self._subs: dict[str, _Subscription] = {}
        self._by_session: dict[str, set[str]] = {}

    def __len__(self) -> int:
        """Number of live subscriptions."""
        return len(self._subs)

    def subscribe(self, session: WsSession | None, kind: str, params: Any = None) -> str:
        """Create a subscription owned by session; returns its 0x-prefixed random id."""
        if session is None:
            raise NotificationsUnsupported()
        if session.closed:
            raise NotificationsUnsupported("connection is closing")
        sub = self._build(session, kind, params)
        owned = self._by_session.get(session.id)
        if owned is None:
            owned = self._by_session[session.id] = set()
            session.on_close.append(lambda: self._drop_session(session.id))
        if len(owned) >= self._max_per_session:
            raise LimitExceeded(
                f"too many subscriptions on this connection ({self._max_per_session})"
            )
        self._subs[sub.id] = sub
        owned.add(sub.id)
        return sub.id

    def unsubscribe(self, session: WsSession | None, subscription_id: str) -> bool:
        """Cancel a subscription; False unless it exists and belongs to this session."""
        sub = self._subs.get(subscription_id.lower())
        if session is None or sub is None or sub.session is not session:
            return False
        del self._subs[sub.id]
        self._by_session.get(session.id, set()).discard(sub.id)
        return True

    async def on_new_block(
        self, header_json: Mapping[str, Any], logs: Sequence[Mapping[str, Any]]
    ) -> None:
        """Notify newHeads subscribers of the header, then logs subscribers of each matching log."""
        current = list(self._subs.values())
        for sub in current:
            if sub.kind == "newHeads":
                await self._send(sub, header_json)
        for sub in current:
            if sub.kind == "logs" and sub.criteria is not None:
                for entry in logs:
                    if matches(entry, sub.criteria):
                        await self._send(sub, entry)

    async def on_pending_tx(self, tx_hash: str, tx_json: Mapping[str, Any] | None = None) -> None:
        """Notify newPendingTransactions subscribers (full object when asked and given)."""
        for sub in list(self._subs.values()):
            if sub.kind == "newPendingTransactions":
                await self._send(sub, tx_json if sub.full_tx and tx_json is not None else tx_hash)

    def rpc_methods(self) -> dict[str, Handler]:
        """JSON-RPC handlers for eth_subscribe and eth_unsubscribe."""
        return {"eth_subscribe": self._rpc_subscribe, "eth_unsubscribe": self._rpc_unsubscribe}

    def _build(self, session: WsSession, kind: str, params: Any) -> _Subscription:
        """Validate kind and options into a subscription with a fresh id."""
        sub_id = "0x" + self._random_bytes(16).hex()
        if kind == "newHeads":
            if params is not None:
                raise InvalidParams("newHeads takes no options")
            return _Subscription(sub_id, session, "newHeads")
        if kind == "logs":
            criteria = parse_filter_criteria(params)
            if criteria.block_hash is not None:
                raise InvalidParams("logs subscriptions cannot filter on blockHash")
            return _Subscription(sub_id, session, "logs", criteria)
        if kind == "newPendingTransactions":
            if params is not None and not isinstance(params, bool):
                raise InvalidParams("newPendingTransactions takes an optional boolean (full tx)")
            return _Subscription(sub_id, session, "newPendingTransactions", full_tx=bool(params))
        raise InvalidParams(
            f"unsupported subscription kind {kind!r}: "
            f"expected one of {', '.join(SUBSCRIPTION_KINDS)}"
        )

    async def _send(self, sub: _Subscription, result: Any) -> None:
        """Push one notification, never letting one broken session stop the others."""
        if sub.session.closed:
            return
        try:
            await sub.session.notify(sub.id, result)
        except Exception:
            log.exception("notification for subscription %s failed", sub.id)

    def _drop_session(self, session_id: str) -> None:
        """Forget every subscription of a closed session."""
        for sub_id in self._by_session.pop(session_id, set()):
            self._subs.pop(sub_id, None)

    async def _rpc_subscribe(self, params: Any, ctx: CallContext) -> str:
        """eth_subscribe(kind, [options])."""
        kind, options = positional_params(params, 1, 2)
        if not isinstance(kind, str):
            raise InvalidParams("invalid argument 0: subscription kind must be a string")
        return self.subscribe(ctx.session, kind, options)

    async def _rpc_unsubscribe(self, params: Any, ctx: CallContext) -> bool:
        """eth_unsubscribe(id); unknown or foreign ids answer "subscription not found"."""
        if ctx.session is None:
            raise NotificationsUnsupported()
        (sub_id,) = positional_params(params, 1, 1)
        if not isinstance(sub_id, str):
            raise InvalidParams("invalid argument 0: subscription id must be a hex string")
        if not self.unsubscribe(ctx.session, sub_id):
            raise SubscriptionNotFound()
        return True
