"""Orchestration: a YAML template of VMs, volumes and networks, deployed and deleted as one stack.

The template format is documented for users in ``docs/orchestration.md``. Here:

- :func:`load_template` reads YAML (PyYAML's safe loader, duplicate keys refused), substitutes
  ``${name}`` parameters and checks everything strictly; a :class:`ConfigError` names the path
  of the bad field (``vms[1].memory: ...``).
- :func:`plan` lists what a deploy creates, in order: volumes, then each VM's replicas in
  dependency order (``depends_on``). VM instance ids are ``<stack>-<vm>-<index>``.
- :class:`Orchestrator` deploys a template as a named stack with a :class:`ComputeDriver`, a
  volume service and an image registry (:class:`VolumePort`, :class:`ImagePort`), recording
  every resource in the :class:`StackStore` before creating it. A failed step rolls back what
  was created; after a crash, :meth:`Orchestrator.resume` finishes the stack and
  :meth:`Orchestrator.delete` removes it, either way without leaving or duplicating anything.

Networks create nothing themselves: a network is an isolation group handed to the driver in
each VM's :class:`NetworkSpec` (``stack:<stack>`` for the VMs that name no network,
``stack:<stack>/<network>`` for each named one), so stacks never share a group.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any, NoReturn, Protocol

import yaml

from powerverse.infra.cloudinit import user_data
from powerverse.infra.drivers.base import (
    BootSource,
    ComputeDriver,
    InstanceInfo,
    InstanceSpec,
    InstanceState,
    NetworkSpec,
    VolumeAttachment,
)
from powerverse.infra.exceptions import (
    ConfigError,
    DriverError,
    InfraError,
    InstanceExists,
    InstanceNotFound,
    NotFound,
)
from powerverse.infra.stack_store import (
    ResourceKind,
    ResourceRecord,
    ResourceState,
    StackError,
    StackRecord,
    StackState,
    StackStore,
)

__all__ = [
    "DeployFailed",
    "ImagePort",
    "NetworkTemplate",
    "Orchestrator",
    "Plan",
    "Step",
    "Template",
    "VmTemplate",
    "VolumePort",
    "VolumeRecordLike",
    "VolumeRef",
    "VolumeTemplate",
    "isolation_group",
    "load_template",
    "parse_template",
    "plan",
    "volume_name",
    "volume_owner",
]

VERSION = 1
MAX_TEMPLATE_BYTES = 256 * 1024
MAX_NODES = 20_000  # values in a parsed template (YAML aliases can multiply them)
MAX_VCPUS = 1024
MIN_MEMORY_MIB, MAX_MEMORY_MIB = 32, 4 << 20  # 32 MiB .. 4 TiB
MAX_DISK_GIB = 1 << 16  # 64 TiB, as the volume service
MAX_COUNT = 64  # replicas of one VM
MAX_INSTANCES = 256  # VMs of one stack
MAX_COMMANDS, MAX_COMMAND_CHARS = 64, 4096
NETWORK_MODES = ("user", "routed", "tap", "none")

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_VAR = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_WHOLE_VAR = re.compile(r"^\$\{([^}]*)\}$")
_SIZE = re.compile(r"^(\d{1,12})\s*(MiB|GiB|TiB)$")
_MIB = {"MiB": 1, "GiB": 1024, "TiB": 1024 * 1024}
_IMAGE = re.compile(r"^[^\s\x00-\x1f]{1,200}$")


class DeployFailed(StackError):
    """A deploy (or resume) failed; ``rolled_back`` says whether everything was removed."""

    def __init__(self, message: str, *, rolled_back: bool) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


# ---------------------------------------------------------------------------- the template


@dataclass(frozen=True, kw_only=True)
class VolumeRef:
    """A VM's use of one of the stack's volumes."""

    name: str
    read_only: bool = False


@dataclass(frozen=True, kw_only=True)
class VmTemplate:
    """One VM of the template (``count`` identical replicas)."""

    name: str
    image: str
    vcpus: int
    memory_mib: int
    max_vcpus: int | None = None
    max_memory_mib: int | None = None
    disk_gib: int | None = None
    ssh_keys: tuple[str, ...] = ()
    volumes: tuple[VolumeRef, ...] = ()
    network: str | None = None
    startup_commands: tuple[str, ...] = ()
    count: int = 1
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class VolumeTemplate:
    """One block volume of the template."""

    name: str
    size_gib: int


@dataclass(frozen=True, kw_only=True)
class NetworkTemplate:
    """A named network: the VMs on it share an isolation group of their own."""

    name: str
    mode: str = "user"


@dataclass(frozen=True, kw_only=True)
class Template:
    """A checked template, parameters substituted."""

    vms: tuple[VmTemplate, ...]
    volumes: tuple[VolumeTemplate, ...] = ()
    networks: tuple[NetworkTemplate, ...] = ()
    description: str = ""
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        """The canonical document (what the stack store keeps; :meth:`from_json` reads it)."""
        vms = []
        for vm in self.vms:
            doc: dict[str, Any] = {
                "name": vm.name,
                "image": vm.image,
                "vcpus": vm.vcpus,
                "memory": vm.memory_mib,
                "max_vcpus": vm.max_vcpus,
                "max_memory": vm.max_memory_mib,
                "disk": vm.disk_gib,
                "ssh_keys": list(vm.ssh_keys),
                "volumes": [{"name": v.name, "read_only": v.read_only} for v in vm.volumes],
                "network": vm.network,
                "startup_commands": list(vm.startup_commands),
                "count": vm.count,
                "depends_on": list(vm.depends_on),
            }
            vms.append({k: v for k, v in doc.items() if v is not None})
        return {
            "version": self.version,
            "description": self.description,
            "volumes": [{"name": v.name, "size": v.size_gib} for v in self.volumes],
            "networks": [{"name": n.name, "mode": n.mode} for n in self.networks],
            "vms": vms,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Template:
        """Read a canonical document back (no parameter substitution)."""
        return _template(doc)


def _refuse_duplicate_keys(node: Any, seen: set[int]) -> None:
    """ConfigError if a mapping gives a key twice (safe_load would silently keep the last)."""
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[tuple[str, str]] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if (key.tag, key.value) in keys:
                    line = key.start_mark.line + 1
                    raise ConfigError(f"template line {line}: key {key.value!r} given twice")
                keys.add((key.tag, key.value))
            _refuse_duplicate_keys(value, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, seen)


def load_template(text: str, variables: Mapping[str, str | int] | None = None) -> Template:
    """Read and check a YAML template, substituting ``variables`` for its parameters."""
    if len(text.encode()) > MAX_TEMPLATE_BYTES:
        raise ConfigError(f"template: larger than {MAX_TEMPLATE_BYTES // 1024} KiB")
    try:
        _refuse_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader), set())
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"template: not valid YAML: {exc}") from None
    return parse_template(doc, variables)


def parse_template(doc: object, variables: Mapping[str, str | int] | None = None) -> Template:
    """Check a parsed template document; ConfigError names the bad field."""
    top = _fields(
        doc, "template", {"version", "description", "parameters", "vms", "volumes", "networks"}
    )
    values = _parameters(top.get("parameters"), variables or {})
    body = {k: v for k, v in top.items() if k != "parameters"}
    budget = [MAX_NODES]
    substituted = {k: _substitute(v, k, values, budget) for k, v in body.items()}
    return _template(substituted)


def _fail(where: str, what: str) -> NoReturn:
    raise ConfigError(f"{where}: {what}")


def _check(ok: bool, where: str, what: str) -> None:
    if not ok:
        _fail(where, what)


def _fields(doc: object, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        _fail(where, f"must be a mapping, not {type(doc).__name__}")
    unknown = sorted(str(k) for k in doc if k not in allowed)
    _check(not unknown, where, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return doc


def _parameters(doc: object, given: Mapping[str, str | int]) -> dict[str, str | int]:
    """The parameters' values: the template's defaults overridden by ``given``."""
    if doc is not None and not isinstance(doc, dict):
        _fail("parameters", "must be a mapping of names to defaults (null: required)")
    declared: dict[Any, Any] = doc or {}
    values: dict[str, str | int] = {}
    for name, default in declared.items():
        where = f"parameters.{name}"
        _check(isinstance(name, str) and bool(_PARAM.match(name)), where, "not a valid name")
        ok = default is None or (isinstance(default, str | int) and not isinstance(default, bool))
        _check(ok, where, "a default must be a string, an integer or null (required)")
        if default is not None:
            values[name] = default
    for name, value in given.items():
        _check(
            name in declared,
            f"parameters.{name}",
            f"not declared by the template (it declares {sorted(declared)})",
        )
        ok = isinstance(value, str | int) and not isinstance(value, bool)
        _check(ok, f"parameters.{name}", "a value must be a string or an integer")
        values[name] = value
    missing = sorted(n for n in declared if n not in values)
    _check(not missing, "parameters", f"no value given for required parameter(s) {missing}")
    return values


def _substitute(
    node: object, where: str, values: Mapping[str, str | int], budget: list[int]
) -> object:
    """``node`` with ``${name}`` replaced in every string (``$${`` stands for ``${``)."""
    budget[0] -= 1
    _check(budget[0] >= 0, "template", f"more than {MAX_NODES} values (YAML aliases?)")
    if isinstance(node, dict):
        return {k: _substitute(v, f"{where}.{k}", values, budget) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, f"{where}[{i}]", values, budget) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node
    whole = _WHOLE_VAR.match(node)
    if whole:
        return _value(whole[1], where, values)

    def one(match: re.Match[str]) -> str:
        return "${" if match[0] == "$${" else str(_value(match[1], where, values))

    return _VAR.sub(one, node)


def _value(name: str, where: str, values: Mapping[str, str | int]) -> str | int:
    _check(bool(_PARAM.match(name)), where, f"${{{name}}} is not a valid parameter name")
    if name not in values:
        _fail(where, f"unknown parameter ${{{name}}} (declared: {sorted(values)})")
    return values[name]


def _name(value: object, where: str) -> str:
    ok = isinstance(value, str) and bool(_NAME.match(value))
    _check(
        ok, where, f"{value!r} is not a DNS-safe name (1-63 of a-z, 0-9, '-'; no '-' at the ends)"
    )
    assert isinstance(value, str)
    return value


def _int(doc: Mapping[str, Any], key: str, where: str, lo: int, hi: int) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool)
    _check(ok, f"{where}.{key}", f"must be an integer, not {value!r}")
    _check(lo <= value <= hi, f"{where}.{key}", f"must be between {lo} and {hi}, not {value}")
    return int(value)


def _size(doc: Mapping[str, Any], key: str, where: str, unit: str, lo: int, hi: int) -> int | None:
    """A size in ``unit`` (MiB or GiB): an integer, or a string like ``512MiB`` or ``2GiB``."""
    value = doc.get(key)
    if value is None:
        return None
    at = f"{where}.{key}"
    usage = f"must be {unit} as an integer, or a string like '512MiB', '2GiB' or '1TiB'"
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.match(value.strip()) if isinstance(value, str) else None
        _check(match is not None, at, f"{usage}, not {value!r}")
        assert match is not None
        mib = int(match[1]) * _MIB[match[2]]
        _check(mib % _MIB[unit] == 0, at, f"{value!r} is not a whole number of {unit}")
        size = mib // _MIB[unit]
    _check(lo <= size <= hi, at, f"must be between {lo} and {hi} {unit}, not {size} {unit}")
    return size


def _list(doc: Mapping[str, Any], key: str, where: str, limit: int) -> list[Any]:
    value = doc.get(key)
    at = f"{where}.{key}" if where else key
    if value is None:
        return []
    _check(isinstance(value, list), at, f"must be a list, not {type(value).__name__}")
    _check(len(value) <= limit, at, f"at most {limit} entries, not {len(value)}")
    return list(value)


def _strings(doc: Mapping[str, Any], key: str, where: str, limit: int) -> list[str]:
    items = _list(doc, key, where, limit)
    for i, item in enumerate(items):
        _check(isinstance(item, str), f"{where}.{key}[{i}]", f"must be a string, not {item!r}")
    return items


def _vm(doc: object, where: str) -> VmTemplate:
    keys = {
        "name", "image", "vcpus", "memory", "max_vcpus", "max_memory", "disk", "ssh_keys",
        "volumes", "network", "startup_commands", "count", "depends_on",
    }  # fmt: skip
    d = _fields(doc, where, keys)
    name = _name(d.get("name"), f"{where}.name")
    image = d.get("image")
    _check(image is not None, f"{where}.image", "is required (an image id or name)")
    ok = isinstance(image, str) and bool(_IMAGE.match(image))
    _check(ok, f"{where}.image", f"must be an image id or name without spaces, not {image!r}")
    vcpus = _int(d, "vcpus", where, 1, MAX_VCPUS) or 1
    memory = _size(d, "memory", where, "MiB", MIN_MEMORY_MIB, MAX_MEMORY_MIB)
    _check(memory is not None, f"{where}.memory", "is required (e.g. 512MiB or 2GiB)")
    assert memory is not None
    keys_ = _strings(d, "ssh_keys", where, 32)
    for i, key in enumerate(keys_):
        try:
            user_data([key])
        except ConfigError as exc:
            _fail(f"{where}.ssh_keys[{i}]", str(exc))
    commands = _strings(d, "startup_commands", where, MAX_COMMANDS)
    for i, command in enumerate(commands):
        at = f"{where}.startup_commands[{i}]"
        _check(bool(command.strip()) and "\n" not in command, at, "must be one non-empty line")
        _check(len(command) <= MAX_COMMAND_CHARS, at, f"longer than {MAX_COMMAND_CHARS} characters")
    volumes = []
    for i, entry in enumerate(_list(d, "volumes", where, 16)):
        at = f"{where}.volumes[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        v = _fields(entry, at, {"name", "read_only"})
        read_only = v.get("read_only", False)
        _check(isinstance(read_only, bool), f"{at}.read_only", "must be true or false")
        volumes.append(VolumeRef(name=_name(v.get("name"), f"{at}.name"), read_only=read_only))
    network = d.get("network")
    if network is not None:
        network = _name(network, f"{where}.network")
    depends = [
        _name(x, f"{where}.depends_on[{i}]")
        for i, x in enumerate(_list(d, "depends_on", where, 64))
    ]
    return VmTemplate(
        name=name,
        image=str(image),
        vcpus=vcpus,
        memory_mib=memory,
        max_vcpus=_int(d, "max_vcpus", where, vcpus, MAX_VCPUS),
        max_memory_mib=_size(d, "max_memory", where, "MiB", memory, MAX_MEMORY_MIB),
        disk_gib=_size(d, "disk", where, "GiB", 1, MAX_DISK_GIB),
        ssh_keys=tuple(keys_),
        volumes=tuple(volumes),
        network=network,
        startup_commands=tuple(commands),
        count=_int(d, "count", where, 1, MAX_COUNT) or 1,
        depends_on=tuple(depends),
    )


def _volume(doc: object, where: str) -> VolumeTemplate:
    d = _fields(doc, where, {"name", "size"})
    name = _name(d.get("name"), f"{where}.name")
    size = _size(d, "size", where, "GiB", 1, MAX_DISK_GIB)
    _check(size is not None, f"{where}.size", "is required (e.g. 10GiB)")
    assert size is not None
    return VolumeTemplate(name=name, size_gib=size)


def _network(doc: object, where: str) -> NetworkTemplate:
    d = _fields(doc, where, {"name", "mode"})
    mode = d.get("mode", "user")
    _check(
        mode in NETWORK_MODES,
        f"{where}.mode",
        f"must be one of {list(NETWORK_MODES)}, not {mode!r}",
    )
    return NetworkTemplate(name=_name(d.get("name"), f"{where}.name"), mode=str(mode))


def _unique(names: Sequence[str], section: str) -> dict[str, int]:
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            _fail(
                f"{section}[{i}].name", f"duplicate name {name!r} (also {section}[{first[name]}])"
            )
        first[name] = i
    return first


def _template(doc: object) -> Template:
    d = _fields(doc, "template", {"version", "description", "vms", "volumes", "networks"})
    _check("version" in d, "version", f"is required (this is version {VERSION})")
    _check(
        d["version"] == VERSION and not isinstance(d["version"], bool),
        "version",
        f"must be {VERSION}, not {d['version']!r}",
    )
    description = d.get("description", "")
    _check(isinstance(description, str), "description", "must be a string")
    networks = tuple(
        _network(n, f"networks[{i}]") for i, n in enumerate(_list(d, "networks", "", 64))
    )
    volumes = tuple(_volume(v, f"volumes[{i}]") for i, v in enumerate(_list(d, "volumes", "", 256)))
    _check(d.get("vms") is not None, "vms", "is required (a list of VMs)")
    vms = tuple(_vm(v, f"vms[{i}]") for i, v in enumerate(_list(d, "vms", "", MAX_INSTANCES)))
    _check(bool(vms), "vms", "must list at least one VM")
    _unique([n.name for n in networks], "networks")
    volume_index = _unique([v.name for v in volumes], "volumes")
    vm_index = _unique([v.name for v in vms], "vms")
    users: dict[str, list[tuple[str, bool]]] = {}
    for i, vm in enumerate(vms):
        where = f"vms[{i}]"
        if vm.network is not None:
            known = [n.name for n in networks]
            _check(
                vm.network in known,
                f"{where}.network",
                f"no network {vm.network!r} in networks (has {known})",
            )
        seen: set[str] = set()
        for j, ref in enumerate(vm.volumes):
            at = f"{where}.volumes[{j}]"
            _check(
                ref.name in volume_index,
                at,
                f"no volume {ref.name!r} in volumes (has {sorted(volume_index)})",
            )
            _check(ref.name not in seen, at, f"volume {ref.name!r} listed twice")
            seen.add(ref.name)
            use = f"{where} {vm.name!r}" + ("" if ref.read_only else " read-write")
            users.setdefault(ref.name, []).extend([(use, ref.read_only)] * vm.count)
        for j, dep in enumerate(vm.depends_on):
            at = f"{where}.depends_on[{j}]"
            _check(dep != vm.name, at, "a VM cannot depend on itself")
            _check(dep in vm_index, at, f"no VM {dep!r} in vms (has {sorted(vm_index)})")
    for name, uses in users.items():
        _check(
            len(uses) == 1 or all(read_only for _, read_only in uses),
            f"volumes[{volume_index[name]}]",
            f"volume {name!r} would be attached to {len(uses)} VMs"
            f" ({', '.join(sorted({u for u, _ in uses}))}): a read-write volume attaches to one"
            " VM; share it read-only, or give each VM its own volume",
        )
    total = sum(vm.count for vm in vms)
    _check(
        total <= MAX_INSTANCES, "vms", f"{total} VMs in all; a stack has at most {MAX_INSTANCES}"
    )
    _creation_order(vms)  # refuses cycles
    return Template(
        vms=vms,
        volumes=volumes,
        networks=networks,
        description=description,
        version=VERSION,
    )


def _creation_order(vms: Sequence[VmTemplate]) -> list[VmTemplate]:
    """The VMs with every VM after those it depends on (template order among the rest)."""
    done: list[VmTemplate] = []
    placed: set[str] = set()
    pending = list(vms)
    while pending:
        ready = next((vm for vm in pending if set(vm.depends_on) <= placed), None)
        if ready is None:
            _fail("vms", f"depends_on has a cycle: {' -> '.join(_cycle(pending))}")
        pending.remove(ready)
        done.append(ready)
        placed.add(ready.name)
    return done


def _cycle(vms: Sequence[VmTemplate]) -> list[str]:
    """One dependency cycle among ``vms`` (each of which waits on another of them)."""
    by_name = {vm.name: vm for vm in vms}
    path = [vms[0].name]
    while True:
        nxt = next(d for d in by_name[path[-1]].depends_on if d in by_name)
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)


# ---------------------------------------------------------------------------- the plan


def isolation_group(stack: str, network: str | None) -> str:
    """The isolation group of a stack's default network or of one of its named networks."""
    return f"stack:{stack}" if network is None else f"stack:{stack}/{network}"


@dataclass(frozen=True, kw_only=True)
class Step:
    """One resource a deploy creates: a volume, or one replica of a VM."""

    kind: ResourceKind
    name: str  # "data" for a volume; "web-0" for replica 0 of VM "web"
    ref: str | None = None  # a VM's instance id
    volume: VolumeTemplate | None = None
    vm: VmTemplate | None = None
    index: int = 0

    @property
    def label(self) -> str:
        """``volume data`` or ``VM shop-web-0``."""
        return f"volume {self.name}" if self.volume is not None else f"VM {self.ref}"

    def describe(self) -> str:
        """One line for people."""
        if self.volume is not None:
            return f"create volume {self.name} ({self.volume.size_gib} GiB)"
        assert self.vm is not None
        vm = self.vm
        parts = [f"image {vm.image}", f"{vm.vcpus} vCPU", f"{vm.memory_mib} MiB"]
        if vm.disk_gib:
            parts.append(f"disk {vm.disk_gib} GiB")
        parts += [f"volume {v.name}{' (read-only)' if v.read_only else ''}" for v in vm.volumes]
        parts.append(f"network {vm.network or 'default'}")
        if vm.startup_commands:
            parts.append(f"{len(vm.startup_commands)} startup command(s)")
        return f"spawn VM {self.ref}: " + ", ".join(parts)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What deploying a template as stack ``stack`` creates, in order (delete: the reverse)."""

    stack: str
    steps: tuple[Step, ...]
    # the VM each attached volume is recorded as attached to (the first VM using it: a volume
    # shared read-only by several VMs stays protected until the last of them is gone)
    holders: Mapping[str, str]
    network_modes: Mapping[str, str]  # named network -> NetworkSpec mode

    def describe(self) -> list[str]:
        """The steps, one line each."""
        return [f"{i + 1}. {step.describe()}" for i, step in enumerate(self.steps)]


def plan(template: Template, stack: str) -> Plan:
    """The ordered steps of deploying ``template`` as ``stack`` (ConfigError for a bad name)."""
    _name(stack, "stack name")
    steps = []
    for volume in template.volumes:
        host_name = volume_name(stack, volume.name)
        _check(
            len(host_name) <= 63,
            "stack name",
            f"volume name {host_name!r} (stack-volume) is longer than 63 characters:"
            " use a shorter stack or volume name",
        )
        steps.append(Step(kind=ResourceKind.VOLUME, name=volume.name, volume=volume))
    holders: dict[str, str] = {}
    for vm in _creation_order(template.vms):
        for index in range(vm.count):
            instance_id = f"{stack}-{vm.name}-{index}"
            _check(
                len(instance_id) <= 63,
                "stack name",
                f"instance id {instance_id!r} (stack-vm-index) is longer than 63 characters:"
                " use a shorter stack or VM name",
            )
            name = f"{vm.name}-{index}"
            steps.append(Step(kind=ResourceKind.VM, name=name, ref=instance_id, vm=vm, index=index))
            for ref in vm.volumes:
                holders.setdefault(ref.name, instance_id)
    modes = {n.name: n.mode for n in template.networks}
    return Plan(stack=stack, steps=tuple(steps), holders=holders, network_modes=modes)


# ---------------------------------------------------------------------------- the services


class VolumeRecordLike(Protocol):
    """What the orchestrator reads of a volume's record."""

    @property
    def volume_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def attached_to(self) -> str | None: ...


class VolumePort(Protocol):
    """What the orchestrator needs of the block storage service (``infra.volumes``)."""

    def create(self, name: str, size_gib: int, *, owner: str = "") -> VolumeRecordLike:
        """A new empty volume."""
        ...

    def get(self, volume_id: str) -> VolumeRecordLike:
        """One volume (NotFound if unknown)."""
        ...

    def list(self, owner: str | None = None) -> Sequence[VolumeRecordLike]:
        """Every volume of ``owner``."""
        ...

    def attachment(self, volume_id: str, *, read_only: bool = False) -> VolumeAttachment:
        """What the driver needs to attach the volume."""
        ...

    def mark_attached(self, volume_id: str, instance_id: str) -> None:
        """Record that the volume is attached to the instance."""
        ...

    def mark_detached(self, volume_id: str) -> None:
        """Record that the volume is free."""
        ...

    def delete(self, volume_id: str) -> None:
        """Delete a detached volume (NotFound if unknown)."""
        ...


class ImagePort(Protocol):
    """What the orchestrator needs of the image registry (``infra.images``)."""

    def boot_source(self, image_id: str) -> BootSource:
        """What a VM of that image boots (NotFound if unknown)."""
        ...


def volume_name(stack: str, volume: str) -> str:
    """The name a stack's volume has in the volume service."""
    return f"{stack}-{volume}"


def volume_owner(stack: str) -> str:
    """The owner recorded on a stack's volumes: finds them even when a crash lost their ids."""
    return f"stack:{stack}"


# ---------------------------------------------------------------------------- the orchestrator

_LIVE_VM = (InstanceState.RUNNING, InstanceState.PAUSED, InstanceState.BUILDING)


class Orchestrator:
    """Deploys, resumes, deletes and shows stacks on one host."""

    def __init__(
        self,
        store: StackStore,
        driver: ComputeDriver,
        volumes: VolumePort,
        images: ImagePort,
    ) -> None:
        self.store = store
        self.driver = driver
        self.volumes = volumes
        self.images = images
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def _locked(self, stack: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(stack, threading.Lock())
        with lock:
            yield

    def plan(self, template: Template, stack: str) -> Plan:
        """The deploy's steps, after checking the stack name and that every image exists."""
        steps = plan(template, stack)
        self._boot_sources(template)
        return steps

    def _boot_sources(self, template: Template) -> dict[str, BootSource]:
        boots: dict[str, BootSource] = {}
        for i, vm in enumerate(template.vms):
            if vm.image not in boots:
                try:
                    boots[vm.image] = self.images.boot_source(vm.image)
                except InfraError as exc:
                    _fail(f"vms[{i}].image", f"{vm.image!r}: {exc}")
        return boots

    # ------------------------------------------------------------------ deploy and resume

    def deploy(self, template: Template, stack: str, owner: str) -> StackRecord:
        """Create the template's volumes and VMs as stack ``stack`` of ``owner``.

        Every resource is recorded before it is created. If a step fails, what was created is
        removed and DeployFailed raised; StackExists if the name is taken.
        """
        steps = plan(template, stack)
        boots = self._boot_sources(template)
        with self._locked(stack):
            self.store.create(
                stack,
                owner=owner,
                template=template.to_json(),
                resources=[(s.kind, s.name, s.ref) for s in steps.steps],
            )
            return self._run(stack, steps, boots)

    def resume(self, stack: str) -> StackRecord:
        """Finish a stack whose deploy was interrupted (a crash); a deployed stack is returned
        as it is. Resources that already exist are adopted, never created twice."""
        with self._locked(stack):
            record = self.store.get(stack)
            if record.state is StackState.DEPLOYED:
                return record
            if record.state is not StackState.DEPLOYING:
                raise StackError(f"stack {stack!r} is {record.state.value}: delete it instead")
            template = Template.from_json(record.template)
            steps = plan(template, stack)
            planned = [(s.kind, s.name) for s in steps.steps]
            if planned != [(r.kind, r.name) for r in record.resources]:
                raise StackError(f"stack {stack!r}: its records no longer match its template")
            return self._run(stack, steps, self._boot_sources(template))

    def _run(self, stack: str, steps: Plan, boots: Mapping[str, BootSource]) -> StackRecord:
        record = self.store.get(stack)
        volume_ids = {
            r.name: r.ref
            for r in record.resources
            if r.kind is ResourceKind.VOLUME and r.state is ResourceState.CREATED and r.ref
        }
        for step, rec in zip(steps.steps, record.resources, strict=True):
            if rec.state is ResourceState.CREATED:
                continue
            try:
                if rec.state not in (
                    ResourceState.PENDING,
                    ResourceState.CREATING,
                    ResourceState.FAILED,
                ):
                    raise StackError(f"{rec.kind.value} {rec.name} is {rec.state.value}")
                if step.volume is not None:
                    volume_ids[step.name] = self._create_volume(stack, step, rec)
                else:
                    self._create_vm(record, steps, step, rec, boots, volume_ids)
            except Exception as exc:
                self._rollback(stack, step, exc)
        self.store.set_state(stack, StackState.DEPLOYED)
        return self.store.get(stack)

    def _create_volume(self, stack: str, step: Step, rec: ResourceRecord) -> str:
        assert step.volume is not None
        owner, host_name = volume_owner(stack), volume_name(stack, step.name)
        if rec.state is ResourceState.CREATING:  # a crash may have left it made but unrecorded
            made = [v for v in self.volumes.list(owner) if v.name == host_name]
            if made:
                self.store.set_resource(
                    stack, rec.seq, ResourceState.CREATED, ref=made[0].volume_id
                )
                for extra in made[1:]:
                    self.volumes.delete(extra.volume_id)
                return made[0].volume_id
        self.store.set_resource(stack, rec.seq, ResourceState.CREATING)
        volume = self.volumes.create(host_name, step.volume.size_gib, owner=owner)
        self.store.set_resource(stack, rec.seq, ResourceState.CREATED, ref=volume.volume_id)
        return volume.volume_id

    def _create_vm(
        self,
        record: StackRecord,
        steps: Plan,
        step: Step,
        rec: ResourceRecord,
        boots: Mapping[str, BootSource],
        volume_ids: Mapping[str, str],
    ) -> None:
        vm, instance_id = step.vm, step.ref
        assert vm is not None and instance_id is not None
        found = self._info(instance_id) if rec.state is ResourceState.CREATING else None
        if found is not None and found.state not in _LIVE_VM:  # half made before a crash
            self._destroy(instance_id)
            found = None
        if found is None:
            self.store.set_resource(record.name, rec.seq, ResourceState.CREATING)
            spec = self._spec(record, steps, step, boots, volume_ids)
            try:
                self.driver.spawn(spec)
            except InstanceExists as exc:
                note = "the instance id is used by something outside the stack"
                self.store.set_resource(record.name, rec.seq, ResourceState.FAILED, note=note)
                raise StackError(f"instance {instance_id} already exists: {note}") from exc
        for ref in vm.volumes:
            if steps.holders[ref.name] == instance_id:
                self.volumes.mark_attached(volume_ids[ref.name], instance_id)
        self.store.set_resource(record.name, rec.seq, ResourceState.CREATED)

    def _spec(
        self,
        record: StackRecord,
        steps: Plan,
        step: Step,
        boots: Mapping[str, BootSource],
        volume_ids: Mapping[str, str],
    ) -> InstanceSpec:
        vm = step.vm
        assert vm is not None and step.ref is not None
        return InstanceSpec(
            instance_id=step.ref,
            vcpus=vm.vcpus,
            memory_mib=vm.memory_mib,
            boot=boots[vm.image],
            max_vcpus=vm.max_vcpus,
            max_memory_mib=vm.max_memory_mib,
            disk_gib=vm.disk_gib,
            ssh_public_keys=vm.ssh_keys,
            network=NetworkSpec(
                mode=steps.network_modes[vm.network] if vm.network else "user",
                isolation_group=isolation_group(record.name, vm.network),
            ),
            volumes=tuple(
                self.volumes.attachment(volume_ids[v.name], read_only=v.read_only)
                for v in vm.volumes
            ),
            metadata={
                "stack": record.name,
                "stack_owner": record.owner,
                "stack_vm": vm.name,
                "stack_index": str(step.index),
            },
            startup_commands=vm.startup_commands,
        )

    def _rollback(self, stack: str, step: Step, cause: Exception) -> NoReturn:
        what = f"stack {stack!r}: {step.label} failed: {cause}"
        self.store.set_state(stack, StackState.FAILED, note=what)
        try:
            self._teardown(stack)
        except Exception as again:
            note = f"{what}; the rollback stopped ({again}): run delete"
            self.store.set_state(stack, StackState.FAILED, note=note)
            raise DeployFailed(note, rolled_back=False) from cause
        raise DeployFailed(
            f"{what}; everything it created was removed", rolled_back=True
        ) from cause

    # ------------------------------------------------------------------ delete

    def delete(self, stack: str) -> bool:
        """Delete the stack's VMs (last created first), then its volumes, then its record.

        Idempotent: works on half-deployed and half-deleted stacks; False if there was no
        such stack. StackError if a resource cannot be deleted (run delete again once fixed).
        """
        with self._locked(stack):
            if self.store.find(stack) is None:
                return False
            self._teardown(stack)
            return True

    def _teardown(self, stack: str) -> None:
        record = self.store.get(stack)
        if record.state is not StackState.FAILED:
            self.store.set_state(stack, StackState.DELETING)
        ours = {r.ref for r in record.resources if r.kind is ResourceKind.VM and r.ref}
        for rec in reversed(record.resources):
            if rec.state is ResourceState.DELETED:
                continue
            if rec.state in (ResourceState.PENDING, ResourceState.FAILED):  # nothing of ours
                self.store.set_resource(stack, rec.seq, ResourceState.DELETED, note=rec.note)
                continue
            self.store.set_resource(stack, rec.seq, ResourceState.DELETING)
            try:
                if rec.kind is ResourceKind.VM:
                    assert rec.ref is not None
                    self._destroy(rec.ref)
                elif rec.ref is not None:  # else: the sweep below finds it by owner
                    self._delete_volume(rec.ref, ours)
            except Exception as exc:
                note = f"deleting {rec.kind.value} {rec.ref or rec.name} failed: {exc}"
                self.store.set_resource(stack, rec.seq, ResourceState.DELETING, note=note)
                raise StackError(f"stack {stack!r}: {note}; run delete again") from exc
            self.store.set_resource(stack, rec.seq, ResourceState.DELETED)
        for volume in self.volumes.list(volume_owner(stack)):  # made, but a crash lost its id
            try:
                self._delete_volume(volume.volume_id, ours)
            except Exception as exc:
                note = f"deleting volume {volume.volume_id} failed: {exc}"
                raise StackError(f"stack {stack!r}: {note}; run delete again") from exc
        self.store.remove(stack)

    def _destroy(self, instance_id: str) -> None:
        with suppress(InstanceNotFound):
            self.driver.destroy(instance_id)

    def _delete_volume(self, volume_id: str, ours: set[str]) -> None:
        try:
            volume = self.volumes.get(volume_id)
            if volume.attached_to is not None and volume.attached_to in ours:
                self.volumes.mark_detached(volume_id)  # its VM was destroyed above
            self.volumes.delete(volume_id)
        except NotFound:
            pass

    # ------------------------------------------------------------------ views

    def list_stacks(self, owner: str | None = None) -> list[StackRecord]:
        """Every stack (of ``owner``), with its resources' recorded states, oldest first."""
        found = (self.store.find(name) for name in self.store.names(owner))
        return [s for s in found if s is not None]

    def show(self, stack: str) -> StackRecord:
        """One stack (StackNotFound if unknown), each resource with what the host says now."""
        record = self.store.get(stack)
        resources = tuple(replace(r, live=self._live(r)) for r in record.resources)
        return replace(record, resources=resources)

    def _info(self, instance_id: str) -> InstanceInfo | None:
        try:
            return self.driver.info(instance_id)
        except InstanceNotFound:
            return None

    def _live(self, rec: ResourceRecord) -> str | None:
        if rec.ref is None or rec.state in (ResourceState.PENDING, ResourceState.DELETED):
            return None
        try:
            if rec.kind is ResourceKind.VM:
                info = self._info(rec.ref)
                return "missing" if info is None else info.state.value
            volume = self.volumes.get(rec.ref)
        except NotFound:
            return "missing"
        except DriverError as exc:
            return f"error: {exc}"
        return "available" if volume.attached_to is None else f"attached to {volume.attached_to}"
