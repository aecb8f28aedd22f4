"""The public surface of powerverse.p2p, which the node is written against."""

from __future__ import annotations

import inspect

import powerverse.p2p as p2p
from powerverse.p2p import Host, P2PError


def test_every_public_name_exists_and_errors_share_one_base() -> None:
    for name in p2p.__all__:
        assert hasattr(p2p, name), name
    errors = [getattr(p2p, n) for n in p2p.__all__ if n.endswith(("Error", "Failed"))]
    assert errors and all(issubclass(e, P2PError) for e in errors)


def test_host_methods() -> None:
    public = {n for n, _ in inspect.getmembers(Host) if not n.startswith("_")}
    assert public >= {
        "start",
        "stop",
        "connect",
        "disconnect",
        "publish",
        "subscribe",
        "unsubscribe",
        "request",
        "on_request",
        "penalize",
        "ban",
        "banned",
        "peers",
        "peer_id",
        "listen_address",
    }
    for name in ("start", "stop", "connect", "disconnect", "request"):
        assert inspect.iscoroutinefunction(getattr(Host, name)), name
    for name in ("publish", "subscribe", "penalize", "on_request", "peers"):
        assert not inspect.iscoroutinefunction(getattr(Host, name)), name
