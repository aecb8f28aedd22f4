"""Helpers shared by CLI commands: JSON output, errors with exit codes, RPC calls."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

err_console = Console(stderr=True, soft_wrap=True)
DEFAULT_RPC = "http://127.0.0.1:8545"


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    """Print an error on stderr and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def parse_utc_time(text: str, option: str) -> int:
    """Unix seconds from an ISO 8601 date or date-time (UTC unless it says otherwise), or from
    plain unix seconds; exit 2 naming `option` otherwise."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        fail(
            f"{option} {text!r}: expected an ISO date such as 2026-01-01 or "
            "2026-01-01T12:00:00Z (UTC), or unix seconds",
            EXIT_USAGE,
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = moment.timestamp()
    if seconds < 0 or seconds != int(seconds):
        fail(f"{option} {text!r}: must be whole seconds from 1970 on", EXIT_USAGE)
    return int(seconds)


def print_json(doc: Any, *, one_line: bool = False) -> None:
    """Exactly one JSON document on stdout (one line for long-running commands)."""
    text = json.dumps(doc, sort_keys=True, indent=None if one_line else 2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 10.0) -> Any:
    """One JSON-RPC call; unreachable nodes and RPC errors end the command clearly."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    try:
        response = httpx.post(url, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        fail(
            f"cannot reach a node at {url} ({exc.__class__.__name__}); "
            "is `pv node` running? Use --rpc to point elsewhere.",
            EXIT_UNREACHABLE,
        )
    try:
        doc = response.json()
    except ValueError:
        fail(f"{url} did not answer with JSON (HTTP {response.status_code})", EXIT_UNREACHABLE)
    if "error" in doc:
        err = doc["error"]
        fail(f"{method} failed: {err.get('message')} (code {err.get('code')})")
    return doc.get("result")
