"""Helpers shared by CLI commands: JSON output, errors with exit codes, RPC calls."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
import typing
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import httpx
import typer
from rich.console import Console

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

err_console = Console(stderr=True, soft_wrap=True)
DEFAULT_RPC = "http://127.0.0.1:8545"
R = TypeVar("R")


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


def option_bundle(
    param: str, bundle: type[Any], *, without: Collection[str] = ()
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """A decorator that hands a command a group of options as one value.

    `bundle` is a dataclass whose fields are typed ``Annotated[..., typer.Option(...)]`` with
    defaults. In the signature Typer reads (``__signature__``), the command's keyword-only
    parameter `param` stands for those fields (less `without`) as options, in field order; the
    command gets ``bundle(**their values)`` as `param`. Stack it below ``@app.command(...)``.
    """
    hints = typing.get_type_hints(bundle, include_extras=True)
    kind = inspect.Parameter.KEYWORD_ONLY
    added = [
        inspect.Parameter(f.name, kind, annotation=hints[f.name], default=f.default)
        for f in dataclasses.fields(bundle)
        if f.name not in without
    ]

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        signature = inspect.signature(command, eval_str=True)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index(param)
        if params[at].kind is not kind:
            raise TypeError(f"{command.__qualname__}: {param} must be keyword-only (after *)")

        @functools.wraps(command)
        def with_bundle(*args: Any, **kwargs: Any) -> R:
            chosen = {p.name: kwargs.pop(p.name) for p in added if p.name in kwargs}
            return command(*args, **kwargs, **{param: bundle(**chosen)})

        new = signature.replace(parameters=[*params[:at], *added, *params[at + 1 :]])
        with_bundle.__signature__ = new  # type: ignore[attr-defined]
        annotations = {p.name: p.annotation for p in new.parameters.values()}
        with_bundle.__annotations__ = {**annotations, "return": new.return_annotation}
        return with_bundle

    return decorate
