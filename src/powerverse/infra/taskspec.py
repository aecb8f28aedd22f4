"""Task specs (what a task order's ``specCid`` names) and task results.

A task spec is a JSON document::

    {"argv": ["python3", "/inputs/job.py"],      # required: the command, run in the sandbox
     "inputs": {"job.py": "<cid>"},              # optional: objects mounted read-only at /inputs
     "env": {"SEED": "7"},                       # optional
     "limits": {"wall_seconds": 600, "memory_mib": 512, "max_processes": 64,
                "cpu_seconds": 600, "network": false}}

``specCid`` is either the content id of that document (in the agent's object store, uploaded
through the agent API or the storage service) or, for small specs, a ``data:`` URI
(``data:application/json;base64,...``) that carries it on chain.

The result is a manifest ``{"exit_code": N, "files": {"<name>": "<cid>", ...}, "outcome":
"succeeded"}`` (sorted keys, compact JSON) stored in the object store; the order's result
content id is the manifest's, and the result hash is the SHA-256 of the manifest bytes, so a
consumer who knows the expected outputs can post a task with the expected hash (HASH
acceptance).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from powerverse.infra.drivers.base import TaskLimits, TaskResult
from powerverse.infra.exceptions import ConfigError

__all__ = [
    "MAX_SPEC_BYTES",
    "ContentStore",
    "TaskDocument",
    "decode_spec",
    "encode_data_uri",
    "result_manifest",
]

MAX_SPEC_BYTES = 64 * 1024
_DATA_PREFIX = "data:application/json;base64,"
_LIMIT_KEYS = {"wall_seconds", "cpu_seconds", "memory_mib", "max_processes", "network"}


class ContentStore(Protocol):
    """What tasks need of the object store."""

    def get_bytes(self, cid: str) -> bytes:
        """The bytes of object ``cid``."""
        ...

    def path_of(self, cid: str) -> Path:
        """A read-only path holding object ``cid``."""
        ...

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; its content id."""
        ...

    def put_file(self, path: Path) -> str:
        """Store the file at ``path``; its content id."""
        ...


@dataclass(frozen=True, kw_only=True)
class TaskDocument:
    """A parsed task spec."""

    argv: tuple[str, ...]
    inputs: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    limits: TaskLimits = field(default_factory=TaskLimits)


def encode_data_uri(doc: Mapping[str, Any]) -> str:
    """A spec as a ``data:`` URI (for small specs carried on chain)."""
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return _DATA_PREFIX + base64.b64encode(raw).decode()


def _load(spec_cid: str, store: ContentStore | None) -> bytes:
    if spec_cid.startswith(_DATA_PREFIX):
        try:
            return base64.b64decode(spec_cid[len(_DATA_PREFIX) :], validate=True)
        except ValueError as exc:
            raise ConfigError(f"task spec data URI is not base64: {exc}") from None
    if store is None:
        raise ConfigError(f"task spec {spec_cid!r} is not a data URI and no object store is set")
    try:
        return store.get_bytes(spec_cid)
    except Exception as exc:  # the store names what was wrong (bad CID, missing object)
        raise ConfigError(f"task spec {spec_cid!r} cannot be read: {exc}") from None


def decode_spec(spec_cid: str, store: ContentStore | None = None) -> TaskDocument:
    """Parse and check the task spec ``spec_cid`` names; ConfigError says what is wrong."""
    raw = _load(spec_cid, store)
    if len(raw) > MAX_SPEC_BYTES:
        raise ConfigError(f"task spec is {len(raw)} bytes (at most {MAX_SPEC_BYTES})")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"task spec is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError("task spec must be a JSON object")
    unknown = set(doc) - {"argv", "inputs", "env", "limits"}
    if unknown:
        raise ConfigError(f"task spec: unknown field(s) {sorted(unknown)}")
    argv = doc.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ConfigError("task spec: argv must be a non-empty list of strings")
    inputs = _str_map(doc.get("inputs", {}), "inputs")
    for name in inputs:
        if not name or "/" in name or name in (".", ".."):
            raise ConfigError(f"task spec: input name {name!r} must be a plain file name")
    env = _str_map(doc.get("env", {}), "env")
    return TaskDocument(
        argv=tuple(argv), inputs=inputs, env=env, limits=_limits(doc.get("limits", {}))
    )


def _str_map(value: object, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"task spec: {name} must map strings to strings")
    return dict(value)


def _limits(value: object) -> TaskLimits:
    if not isinstance(value, dict):
        raise ConfigError("task spec: limits must be an object")
    unknown = set(value) - _LIMIT_KEYS
    if unknown:
        raise ConfigError(f"task spec: unknown limit(s) {sorted(unknown)}")
    base = TaskLimits()
    out: dict[str, Any] = {}
    for key, ceiling in (
        ("wall_seconds", 7 * 86_400),
        ("cpu_seconds", 7 * 86_400),
        ("memory_mib", 1 << 20),
        ("max_processes", 4096),
    ):
        if key in value:
            item = value[key]
            if (
                isinstance(item, bool)
                or not isinstance(item, int | float)
                or not 0 < item <= ceiling
            ):
                raise ConfigError(f"task spec: limits.{key} must be a number in (0, {ceiling}]")
            out[key] = item
    network = value.get("network", False)
    if not isinstance(network, bool):
        raise ConfigError("task spec: limits.network must be true or false")
    return TaskLimits(
        cpu_seconds=int(out.get("cpu_seconds", base.cpu_seconds)),
        wall_seconds=float(out.get("wall_seconds", base.wall_seconds)),
        memory_bytes=int(out["memory_mib"]) << 20 if "memory_mib" in out else base.memory_bytes,
        max_processes=int(out.get("max_processes", base.max_processes)),
        network=network,
    )


def result_manifest(result: TaskResult, store: ContentStore) -> tuple[str, bytes]:
    """Store a task's output files and its manifest; (manifest cid, SHA-256 of the manifest)."""
    files: dict[str, str] = {}
    root = result.output_dir
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        files[path.relative_to(root).as_posix()] = store.put_file(path)
    manifest = {"exit_code": result.exit_code, "files": files, "outcome": result.outcome.value}
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return store.put_bytes(raw), hashlib.sha256(raw).digest()
