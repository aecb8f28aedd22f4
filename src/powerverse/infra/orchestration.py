"""Template orchestration: a YAML stack of VMs, volumes and networks, deployed and deleted as one.

Format (docs/infra.md has a full example)::

    version: 1
    volumes:
      - {name: data, size_gib: 1}
    networks:
      - {name: backend}                 # VMs on different networks cannot reach each other
    vms:
      - name: web
        image: <image id>               # resolved by the image registry
        vcpus: 1
        memory_mib: 256
        count: 2                        # web-0, web-1
        networks: [backend]
        volumes: [{name: data, read_only: true}]
        ssh_keys: ["ssh-ed25519 AAAA..."]
        startup: ["echo ready > /tmp/ready"]

Every resource is recorded in the stack store BEFORE it is created, so a deploy cut short (a
failure, a crash) is finished by :meth:`Orchestrator.delete`, which removes whatever exists in
reverse order and is idempotent. A failed deploy rolls back what it created.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import yaml

from powerverse.infra.drivers.base import (
    BootSource,
    ComputeDriver,
    InstanceSpec,
    NetworkSpec,
    VolumeAttachment,
)
from powerverse.infra.exceptions import ConfigError, InfraError, InstanceNotFound, NotFound

__all__ = ["Orchestrator", "StackTemplate", "parse_template"]

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
MAX_COUNT = 32


class Volumes(Protocol):
    """What stacks need of the volume service."""

    def create(self, name: str, size_gib: int, *, owner: str = "") -> Any:
        """A new volume (with a ``volume_id``)."""
        ...

    def attachment(self, volume_id: str, *, read_only: bool = False) -> VolumeAttachment:
        """What the driver attaches."""
        ...

    def delete(self, volume_id: str) -> None:
        """Remove a detached volume."""
        ...

    def mark_attached(self, volume_id: str, instance_id: str) -> None:
        """Record an attachment."""
        ...

    def mark_detached(self, volume_id: str) -> None:
        """Record a detachment."""
        ...


class Images(Protocol):
    """What stacks need of the image registry."""

    def boot_source(self, image_id: str) -> BootSource:
        """What a VM of this image boots."""
        ...


@dataclass(frozen=True)
class VmTemplate:
    """One VM entry (``count`` copies)."""

    name: str
    image: str
    vcpus: int
    memory_mib: int
    count: int
    networks: tuple[str, ...]
    volumes: tuple[tuple[str, bool], ...]
    ssh_keys: tuple[str, ...]
    startup: tuple[str, ...]


@dataclass(frozen=True)
class StackTemplate:
    """A checked template."""

    volumes: tuple[tuple[str, int], ...]
    networks: tuple[str, ...]
    vms: tuple[VmTemplate, ...]


def _fail(where: str, what: str) -> ConfigError:
    return ConfigError(f"{where}: {what}")


def _map(value: object, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "must be a mapping")
    unknown, missing = set(value) - allowed, required - set(value)
    if unknown:
        raise _fail(where, f"unknown key(s) {sorted(unknown)}")
    if missing:
        raise _fail(where, f"missing {sorted(missing)}")
    return value


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _fail(where, "must be a DNS-safe name (a-z, 0-9, '-', at most 32)")
    return value


def _int(value: object, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(where, f"must be an integer in [{lo}, {hi}]")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(where, "must be a list of non-empty strings")
    return tuple(value)


def _unique(names: list[str], where: str) -> None:
    if len(set(names)) != len(names):
        raise _fail(where, "names must be unique")


def parse_template(text: str, variables: Mapping[str, str] | None = None) -> StackTemplate:
    """Parse and check a template; ``${name}`` is replaced from ``variables`` first."""
    values = dict(variables or {})

    def substitute(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ConfigError(f"template variable ${{{match.group(1)}}} is not given")
        return values[match.group(1)]

    text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", substitute, text)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"template is not YAML: {exc}") from None
    top = _map(doc, "template", {"version", "volumes", "networks", "vms"}, {"version", "vms"})
    if top["version"] != 1:
        raise _fail("version", "must be 1")
    volumes = []
    for i, v in enumerate(top.get("volumes") or []):
        item = _map(v, f"volumes[{i}]", {"name", "size_gib"}, {"name", "size_gib"})
        volumes.append(
            (
                _name(item["name"], f"volumes[{i}].name"),
                _int(item["size_gib"], f"volumes[{i}].size_gib", 1, 4096),
            )
        )
    _unique([n for n, _ in volumes], "volumes")
    networks = []
    for i, n in enumerate(top.get("networks") or []):
        item = _map(n, f"networks[{i}]", {"name"}, {"name"})
        networks.append(_name(item["name"], f"networks[{i}].name"))
    _unique(networks, "networks")
    if not isinstance(top["vms"], list) or not top["vms"]:
        raise _fail("vms", "must be a non-empty list")
    vms, used_volumes = [], []
    keys = {
        "name",
        "image",
        "vcpus",
        "memory_mib",
        "count",
        "networks",
        "volumes",
        "ssh_keys",
        "startup",
    }
    for i, v in enumerate(top["vms"]):
        at = f"vms[{i}]"
        item = _map(v, at, keys, {"name", "image", "vcpus", "memory_mib"})
        if not isinstance(item["image"], str) or not item["image"]:
            raise _fail(f"{at}.image", "must name an image")
        nets = _strings(item.get("networks", []), f"{at}.networks")
        for net in nets:
            if net not in networks:
                raise _fail(f"{at}.networks", f"no network named {net!r}")
        if len(nets) > 1:
            raise _fail(f"{at}.networks", "a VM joins one network (user-mode networking)")
        attached = []
        for j, a in enumerate(item.get("volumes", [])):
            ref = _map(a, f"{at}.volumes[{j}]", {"name", "read_only"}, {"name"})
            if ref["name"] not in [n for n, _ in volumes]:
                raise _fail(f"{at}.volumes[{j}]", f"no volume named {ref['name']!r}")
            read_only = ref.get("read_only", False)
            if not isinstance(read_only, bool):
                raise _fail(f"{at}.volumes[{j}].read_only", "must be true or false")
            attached.append((str(ref["name"]), read_only))
        count = _int(item.get("count", 1), f"{at}.count", 1, MAX_COUNT)
        used_volumes += [n for n, ro in attached if not ro] * count
        startup = _strings(item.get("startup", []), f"{at}.startup")
        if any("\n" in s for s in startup):
            raise _fail(f"{at}.startup", "each command is one line")
        vms.append(
            VmTemplate(
                name=_name(item["name"], f"{at}.name"),
                image=item["image"],
                vcpus=_int(item["vcpus"], f"{at}.vcpus", 1, 256),
                memory_mib=_int(item["memory_mib"], f"{at}.memory_mib", 64, 1 << 20),
                count=count,
                networks=nets,
                volumes=tuple(attached),
                ssh_keys=_strings(item.get("ssh_keys", []), f"{at}.ssh_keys"),
                startup=startup,
            )
        )
    _unique([v.name for v in vms], "vms")
    for name in set(used_volumes):
        if used_volumes.count(name) > 1:
            raise _fail("vms", f"volume {name!r} is attached read-write to more than one VM")
    return StackTemplate(tuple(volumes), tuple(networks), tuple(vms))


class Orchestrator:
    """Deploys and deletes stacks; their records live in ``stacks.sqlite``."""

    def __init__(self, root: Path, driver: ComputeDriver, volumes: Volumes, images: Images) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.driver, self.volumes, self.images = driver, volumes, images
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "stacks.sqlite", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS resources (stack TEXT NOT NULL, seq INTEGER NOT NULL,"
            " kind TEXT NOT NULL, ident TEXT NOT NULL, extra TEXT NOT NULL,"
            " PRIMARY KEY (stack, seq))"
        )
        self._db.commit()

    def _record(self, stack: str, kind: str, ident: str, extra: dict[str, Any]) -> None:
        with self._lock:
            seq = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM resources WHERE stack = ?", (stack,)
            ).fetchone()[0]
            self._db.execute(
                "INSERT INTO resources VALUES (?, ?, ?, ?, ?)",
                (stack, seq, kind, ident, json.dumps(extra)),
            )
            self._db.commit()

    def resources(self, stack: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, id, details) of what the stack holds, in creation order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, ident, extra FROM resources WHERE stack = ? ORDER BY seq", (stack,)
            ).fetchall()
        return [(k, i, json.loads(e)) for k, i, e in rows]

    def stacks(self) -> list[str]:
        """Names of the stacks with resources."""
        with self._lock:
            return [
                r[0]
                for r in self._db.execute("SELECT DISTINCT stack FROM resources ORDER BY stack")
            ]

    def deploy(self, template: StackTemplate, stack: str) -> list[str]:
        """Create the stack's volumes, then its VMs; returns the instance ids."""
        _name(stack, "stack")
        if self.resources(stack):
            raise ConfigError(f"stack {stack!r} exists; delete it first")
        try:
            volume_ids: dict[str, str] = {}
            for name, size in template.volumes:
                volume = self.volumes.create(f"{stack}-{name}", size, owner=f"stack:{stack}")
                self._record(stack, "volume", volume.volume_id, {"name": name})
                volume_ids[name] = volume.volume_id
            instances = []
            for vm in template.vms:
                boot = self.images.boot_source(vm.image)
                group = f"{stack}-{vm.networks[0]}" if vm.networks else f"{stack}-default"
                for index in range(vm.count):
                    instance_id = f"{stack}-{vm.name}-{index}"
                    attachments = tuple(
                        self.volumes.attachment(volume_ids[n], read_only=ro) for n, ro in vm.volumes
                    )
                    self._record(
                        stack, "vm", instance_id, {"volumes": [a.volume_id for a in attachments]}
                    )
                    self.driver.spawn(
                        InstanceSpec(
                            instance_id=instance_id,
                            vcpus=vm.vcpus,
                            memory_mib=vm.memory_mib,
                            boot=replace(boot),
                            ssh_public_keys=vm.ssh_keys,
                            volumes=attachments,
                            network=NetworkSpec(mode="user", isolation_group=group),
                            startup_commands=vm.startup,
                            metadata={"stack": stack},
                        )
                    )
                    for a in attachments:  # read-only ones may be shared by several VMs
                        if not a.read_only:
                            self.volumes.mark_attached(a.volume_id, instance_id)
                    instances.append(instance_id)
        except (InfraError, OSError):
            self.delete(stack)  # roll back what was created
            raise
        return instances

    def delete(self, stack: str) -> int:
        """Remove everything of the stack (reverse order, idempotent); how much was removed."""
        removed = 0
        for kind, ident, extra in reversed(self.resources(stack)):
            if kind == "vm":
                try:
                    self.driver.destroy(ident)
                    removed += 1
                except InstanceNotFound:
                    pass
                for volume_id in extra.get("volumes", []):
                    with contextlib.suppress(NotFound):
                        self.volumes.mark_detached(volume_id)
            else:
                try:
                    self.volumes.delete(ident)
                    removed += 1
                except NotFound:
                    pass
        with self._lock:
            self._db.execute("DELETE FROM resources WHERE stack = ?", (stack,))
            self._db.commit()
        return removed
