"""Stacks from YAML templates: every class of malformed template is refused with the bad field
named; deploy creates volumes then VMs in dependency order with their attachments, keys and
startup commands; a failure at any step rolls back; a crash at any point is resumed or deleted
without leaving or duplicating anything; delete is idempotent; stacks do not collide. The unit
tests run on an in-memory host (fake driver and services); one slow test deploys for real."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from powerverse.infra.drivers.base import (
    BootSource,
    ComputeDriver,
    InstanceInfo,
    InstanceSpec,
    InstanceState,
    InstanceUsage,
    VolumeAttachment,
)
from powerverse.infra.exceptions import (
    ConfigError,
    DriverError,
    InstanceExists,
    InstanceNotFound,
    NotFound,
    StorageError,
    UnsupportedOperation,
)
from powerverse.infra.orchestration import (
    MAX_NODES,
    DeployFailed,
    ImagePort,
    Orchestrator,
    Template,
    VolumePort,
    isolation_group,
    load_template,
    plan,
)
from powerverse.infra.stack_store import (
    ResourceKind,
    ResourceState,
    StackError,
    StackExists,
    StackNotFound,
    StackState,
    StackStore,
)
from tests.infra.conftest import require_tools

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0Zt3mJ4pF1x7Lk2cQ9vWm8Rz0yE5bN6uT3sD4aH2f alice@pc"

SHOP = """
version: 1
description: a web shop
parameters:
  key: null            # required
  replicas: 2
volumes:
  - {name: db-data, size: 2GiB}
  - {name: assets, size: 1}
networks:
  - {name: backend}
vms:
  - name: web
    image: tiny
    vcpus: 1
    memory: 256MiB
    count: ${replicas}
    depends_on: [db]
    volumes: [{name: assets, read_only: true}]
    ssh_keys: ["${key}"]
    startup_commands: ["echo web of ${replicas} > /tmp/role", "echo $${HOME}"]
  - name: db
    image: tiny
    vcpus: 2
    max_vcpus: 4
    memory: 1GiB
    max_memory: 2GiB
    disk: 10GiB
    network: backend
    volumes: [db-data]
    startup_commands: ["echo db > /tmp/role"]
"""


# ---------------------------------------------------------------------------- an in-memory host


class Crash(BaseException):
    """The agent process dies here (``kill -9``): no exception handler of its runs."""


@dataclass
class Host:
    """What the fake services hold, with every effect logged in order and injectable faults.

    ``faults[op] = ("before" | "after", exc)`` raises ``exc`` once, before or after ``op``
    (e.g. ``"spawn shop-web-0"``) takes effect.
    """

    log: list[str] = field(default_factory=list)
    faults: dict[str, tuple[str, BaseException]] = field(default_factory=dict)

    def enter(self, op: str) -> None:
        when, exc = self.faults.get(op, ("", None))
        if when == "before" and exc is not None:
            del self.faults[op]
            raise exc

    def leave(self, op: str) -> None:
        self.log.append(op)
        when, exc = self.faults.get(op, ("", None))
        if when == "after" and exc is not None:
            del self.faults[op]
            raise exc


class FakeDriver(ComputeDriver):
    """Instances as records; spawn refuses a taken id like the QEMU driver."""

    name = "fake"

    def __init__(self, host: Host) -> None:
        self.host = host
        self.specs: dict[str, InstanceSpec] = {}
        self.states: dict[str, InstanceState] = {}

    def spawn(self, spec: InstanceSpec) -> InstanceInfo:
        op = f"spawn {spec.instance_id}"
        self.host.enter(op)
        if spec.instance_id in self.specs:
            raise InstanceExists(f"instance {spec.instance_id} already exists")
        self.specs[spec.instance_id] = spec
        self.states[spec.instance_id] = InstanceState.RUNNING
        self.host.leave(op)
        return self.info(spec.instance_id)

    def destroy(self, instance_id: str) -> None:
        op = f"destroy {instance_id}"
        self.host.enter(op)
        if instance_id not in self.specs:
            raise InstanceNotFound(f"no instance {instance_id!r}")
        del self.specs[instance_id], self.states[instance_id]
        self.host.leave(op)

    def info(self, instance_id: str) -> InstanceInfo:
        if instance_id not in self.specs:
            raise InstanceNotFound(f"no instance {instance_id!r}")
        spec = self.specs[instance_id]
        return InstanceInfo(
            instance_id=instance_id, state=self.states[instance_id], vcpus=spec.vcpus,
            memory_mib=spec.memory_mib, accel="tcg",
            volumes=tuple(v.volume_id for v in spec.volumes),
        )  # fmt: skip

    def list_instances(self) -> list[str]:
        return sorted(self.specs)

    def adopt(self) -> list[str]:
        return self.list_instances()

    def _no(self, *_: object, **__: object) -> None:
        raise UnsupportedOperation("not in the fake driver")

    def suspend(self, instance_id: str) -> None:
        self._no()

    def resume(self, instance_id: str) -> None:
        self._no()

    def reboot(self, instance_id: str, *, hard: bool = False) -> None:
        self._no()

    def resize(
        self, instance_id: str, *, vcpus: int | None = None, memory_mib: int | None = None
    ) -> InstanceInfo:
        raise UnsupportedOperation("not in the fake driver")

    def console_log(self, instance_id: str, *, max_bytes: int = 65536) -> str:
        return ""

    def usage(self, instance_id: str) -> InstanceUsage:
        raise UnsupportedOperation("not in the fake driver")

    def attach_volume(self, instance_id: str, volume: VolumeAttachment) -> None:
        self._no()

    def detach_volume(self, instance_id: str, volume_id: str) -> None:
        self._no()

    def snapshot(self, instance_id: str, target: Path) -> Path:
        raise UnsupportedOperation("not in the fake driver")


@dataclass(frozen=True)
class FakeVolume:
    volume_id: str
    name: str
    size_gib: int
    owner: str
    attached_to: str | None = None


class FakeVolumes:
    """The volume service's bookkeeping rules (attached volumes cannot be deleted), in memory."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.volumes: dict[str, FakeVolume] = {}
        self.made = 0

    def create(self, name: str, size_gib: int, *, owner: str = "") -> FakeVolume:
        op = f"create volume {name}"
        self.host.enter(op)
        self.made += 1
        volume = FakeVolume(f"{name}-{self.made:04d}", name, size_gib, owner)
        self.volumes[volume.volume_id] = volume
        self.host.leave(op)
        return volume

    def get(self, volume_id: str) -> FakeVolume:
        if volume_id not in self.volumes:
            raise NotFound(f"no volume {volume_id!r}")
        return self.volumes[volume_id]

    def list(self, owner: str | None = None) -> list[FakeVolume]:
        return [v for v in self.volumes.values() if owner is None or v.owner == owner]

    def attachment(self, volume_id: str, *, read_only: bool = False) -> VolumeAttachment:
        self.get(volume_id)
        return VolumeAttachment(
            volume_id=volume_id, path=Path(f"/vols/{volume_id}.qcow2"), read_only=read_only
        )

    def mark_attached(self, volume_id: str, instance_id: str) -> None:
        op = f"attach {volume_id} {instance_id}"
        self.host.enter(op)
        current = self.get(volume_id).attached_to
        if current not in (None, instance_id):
            raise StorageError(f"volume {volume_id} is attached to {current}")
        self.volumes[volume_id] = replace(self.volumes[volume_id], attached_to=instance_id)
        self.host.leave(op)

    def mark_detached(self, volume_id: str) -> None:
        op = f"detach {volume_id}"
        self.host.enter(op)
        self.volumes[volume_id] = replace(self.get(volume_id), attached_to=None)
        self.host.leave(op)

    def delete(self, volume_id: str) -> None:
        op = f"delete volume {volume_id}"
        self.host.enter(op)
        if self.get(volume_id).attached_to is not None:
            raise StorageError(f"cannot delete volume {volume_id}: attached")
        del self.volumes[volume_id]
        self.host.leave(op)


class FakeImages:
    def __init__(self, images: Mapping[str, BootSource]) -> None:
        self.images = dict(images)

    def boot_source(self, image_id: str) -> BootSource:
        if image_id not in self.images:
            raise NotFound(f"no image {image_id!r}")
        return self.images[image_id]


TINY = BootSource(kernel=Path("/images/vmlinuz"), initrd=Path("/images/initrd"), cmdline="quiet")


@dataclass
class Env:
    tmp: Path
    host: Host
    driver: FakeDriver
    volumes: FakeVolumes
    images: FakeImages
    orch: Orchestrator

    def restart(self) -> Orchestrator:
        """The agent starts again after a crash: a fresh store and orchestrator, same host."""
        self.orch.store.close()
        self.orch = Orchestrator(
            StackStore(self.tmp / "stacks.sqlite"), self.driver, self.volumes, self.images
        )
        return self.orch

    def empty(self) -> bool:
        return not self.driver.specs and not self.volumes.volumes


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    host = Host()
    driver, volumes, images = FakeDriver(host), FakeVolumes(host), FakeImages({"tiny": TINY})
    orch = Orchestrator(StackStore(tmp_path / "stacks.sqlite"), driver, volumes, images)
    e = Env(tmp_path, host, driver, volumes, images, orch)
    yield e
    e.orch.store.close()


def shop(**variables: str | int) -> Template:
    return load_template(SHOP, {"key": KEY, **variables})


SHOP_ORDER = [
    "create volume shop-db-data",
    "create volume shop-assets",
    "spawn shop-db-0",
    "attach shop-db-data-0001 shop-db-0",
    "spawn shop-web-0",
    "attach shop-assets-0002 shop-web-0",
    "spawn shop-web-1",
]
SHOP_STEPS = ["volume db-data", "volume assets", "VM shop-db-0", "VM shop-web-0", "VM shop-web-1"]


# ---------------------------------------------------------------------------- validation

M = "{name: a, image: tiny, memory: 64}"  # a minimal VM


def vms(*entries: str, extra: str = "") -> str:
    return f"version: 1\n{extra}vms: [{', '.join(entries)}]\n"


def alias_bomb() -> str:
    """A few lines of YAML whose aliases make a million values."""
    levels = ["  - &l0 [" + ", ".join(["1"] * 10) + "]"]
    levels += [f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 6)]
    return vms(M, extra="description:\n" + "\n".join(levels) + "\n")


BAD: list[tuple[str, dict[str, str | int], str]] = [
    # document
    ("version: 1\nvms: [unclosed", {}, "template: not valid YAML"),
    ("- just a list", {}, "template: must be a mapping"),
    ("x" * (300 * 1024), {}, "template: larger than 256 KiB"),
    (f"vms: [{M}]", {}, "version: is required"),
    (f"version: 2\nvms: [{M}]", {}, "version: must be 1, not 2"),
    (vms(M, extra="extra: 1\n"), {}, r"template: unknown key\(s\) \['extra'\]"),
    (f"version: 1\nversion: 1\nvms: [{M}]", {}, "line 2: key 'version' given twice"),
    ("version: 1\nvms:\n - {name: a, image: tiny, memory: 64, memory: 128}", {}, "given twice"),
    ("version: 1", {}, "vms: is required"),
    ("version: 1\nvms: []", {}, "vms: must list at least one VM"),
    ("version: 1\nvms: {a: 1}", {}, "vms: must be a list, not dict"),
    ("version: 1\nvms: [3]", {}, r"vms\[0\]: must be a mapping, not int"),
    # VM fields
    (
        vms("{name: a, image: tiny, memory: 64, gpu: 1}"),
        {},
        r"vms\[0\]: unknown key\(s\) \['gpu'\]",
    ),
    (vms("{name: Web, image: tiny, memory: 64}"), {}, r"vms\[0\]\.name: 'Web' is not a DNS-safe"),
    (vms("{name: web_1, image: tiny, memory: 64}"), {}, r"vms\[0\]\.name: .* not a DNS-safe"),
    (vms("{name: -web, image: tiny, memory: 64}"), {}, r"vms\[0\]\.name: .* not a DNS-safe"),
    (vms("{name: web-, image: tiny, memory: 64}"), {}, r"vms\[0\]\.name: .* not a DNS-safe"),
    (vms(f"{{name: {'a' * 64}, image: tiny, memory: 64}}"), {}, r"vms\[0\]\.name: .* DNS-safe"),
    (vms("{name: 7, image: tiny, memory: 64}"), {}, r"vms\[0\]\.name: 7 is not a DNS-safe"),
    (vms("{image: tiny, memory: 64}"), {}, r"vms\[0\]\.name: None is not"),
    (vms(M, M), {}, r"vms\[1\]\.name: duplicate name 'a' \(also vms\[0\]\)"),
    (vms("{name: a, memory: 64}"), {}, r"vms\[0\]\.image: is required"),
    (vms("{name: a, image: 'two words', memory: 64}"), {}, r"vms\[0\]\.image: must be an image"),
    (
        vms("{name: a, image: tiny, memory: 64, vcpus: 0}"),
        {},
        r"vms\[0\]\.vcpus: must be between 1",
    ),
    (vms("{name: a, image: tiny, memory: 64, vcpus: 5000}"), {}, r"vms\[0\]\.vcpus: .*between"),
    (vms("{name: a, image: tiny, memory: 64, vcpus: two}"), {}, r"vms\[0\]\.vcpus: must be an int"),
    (
        vms("{name: a, image: tiny, memory: 64, vcpus: true}"),
        {},
        r"vms\[0\]\.vcpus: must be an int",
    ),
    (vms("{name: a, image: tiny, memory: 64, vcpus: 1.5}"), {}, r"vms\[0\]\.vcpus: must be an int"),
    (vms("{name: a, image: tiny, vcpus: 2, max_vcpus: 1, memory: 64}"), {}, r"max_vcpus: .*2 and"),
    # sizes
    (vms("{name: a, image: tiny}"), {}, r"vms\[0\]\.memory: is required"),
    (vms("{name: a, image: tiny, memory: 2GB}"), {}, r"vms\[0\]\.memory: must be MiB .*'2GB'"),
    (vms("{name: a, image: tiny, memory: 1.5}"), {}, r"vms\[0\]\.memory: must be MiB"),
    (vms("{name: a, image: tiny, memory: 16}"), {}, r"vms\[0\]\.memory: .*32 and 4194304 MiB"),
    (vms("{name: a, image: tiny, memory: 5TiB}"), {}, r"vms\[0\]\.memory: .*not 5242880 MiB"),
    (vms("{name: a, image: tiny, memory: -1}"), {}, r"vms\[0\]\.memory: must be between"),
    (vms("{name: a, image: tiny, memory: 1GiB, max_memory: 512MiB}"), {}, r"max_memory: .*1024"),
    (vms("{name: a, image: tiny, memory: 64, disk: 0}"), {}, r"vms\[0\]\.disk: must be between 1"),
    (vms("{name: a, image: tiny, memory: 64, disk: 100TiB}"), {}, r"vms\[0\]\.disk: .*65536 GiB"),
    (vms("{name: a, image: tiny, memory: 64, disk: 512MiB}"), {}, r"disk: '512MiB' is not a whole"),
    (vms(M, extra="volumes: [{name: v, size: 0}]\n"), {}, r"volumes\[0\]\.size: must be between"),
    (vms(M, extra="volumes: [{name: v}]\n"), {}, r"volumes\[0\]\.size: is required"),
    (vms(M, extra="volumes: [{name: v, size: 1MiB}]\n"), {}, r"volumes\[0\]\.size: .*whole"),
    (vms(M, extra="volumes: [{name: v, size: 1, kind: ssd}]\n"), {}, r"volumes\[0\]: unknown"),
    (vms(M, extra="volumes: [{name: V, size: 1}]\n"), {}, r"volumes\[0\]\.name: 'V' is not"),
    (
        vms(M, extra="volumes: [{name: v, size: 1}, {name: v, size: 2}]\n"),
        {},
        r"volumes\[1\]\.name: dup",
    ),
    (vms(M, extra="networks: [{name: n}, {name: n}]\n"), {}, r"networks\[1\]\.name: duplicate"),
    (
        vms(M, extra="networks: [{name: n, mode: bridge}]\n"),
        {},
        r"networks\[0\]\.mode: must be one",
    ),
    # dangling references, cycles, sharing
    (
        vms("{name: a, image: tiny, memory: 64, volumes: [x]}"),
        {},
        r"vms\[0\]\.volumes\[0\]: no volume 'x'",
    ),
    (
        vms("{name: a, image: tiny, memory: 64, network: x}"),
        {},
        r"vms\[0\]\.network: no network 'x'",
    ),
    (vms("{name: a, image: tiny, memory: 64, depends_on: [x]}"), {}, r"depends_on\[0\]: no VM 'x'"),
    (vms("{name: a, image: tiny, memory: 64, depends_on: [a]}"), {}, r"depends_on\[0\]: .*itself"),
    (
        vms(
            "{name: a, image: tiny, memory: 64, depends_on: [b]}",
            "{name: b, image: tiny, memory: 64, depends_on: [c]}",
            "{name: c, image: tiny, memory: 64, depends_on: [a]}",
        ),
        {},
        "vms: depends_on has a cycle: a -> b -> c -> a",
    ),
    (
        vms(
            "{name: a, image: tiny, memory: 64, volumes: [v, {name: v, read_only: true}]}",
            extra="volumes: [{name: v, size: 1}]\n",
        ),
        {},
        r"vms\[0\]\.volumes\[1\]: volume 'v' listed twice",
    ),
    (
        vms(
            "{name: a, image: tiny, memory: 64, volumes: [{name: v, read_only: 1}]}",
            extra="volumes: [{name: v, size: 1}]\n",
        ),
        {},
        r"vms\[0\]\.volumes\[0\]\.read_only: must be true or false",
    ),
    (
        vms(
            "{name: a, image: tiny, memory: 64, count: 2, volumes: [v]}",
            extra="volumes: [{name: v, size: 1}]\n",
        ),
        {},
        r"volumes\[0\]: volume 'v' would be attached to 2 VMs \(vms\[0\] 'a' read-write\)",
    ),
    (
        vms(
            "{name: a, image: tiny, memory: 64, volumes: [{name: v, read_only: true}]}",
            "{name: b, image: tiny, memory: 64, volumes: [v]}",
            extra="volumes: [{name: v, size: 1}]\n",
        ),
        {},
        r"volumes\[0\]: volume 'v' would be attached to 2 VMs",
    ),
    (
        vms("{name: a, image: tiny, memory: 64, count: 0}"),
        {},
        r"vms\[0\]\.count: must be between 1",
    ),
    (vms("{name: a, image: tiny, memory: 64, count: 65}"), {}, r"vms\[0\]\.count: .*and 64"),
    (
        vms(*[f"{{name: v{i}, image: tiny, memory: 64, count: 64}}" for i in range(5)]),
        {},
        "vms: 320 VMs in all; a stack has at most 256",
    ),
    # keys and commands
    (
        vms("{name: a, image: tiny, memory: 64, ssh_keys: [not-a-key]}"),
        {},
        r"ssh_keys\[0\]: not an",
    ),
    (
        vms(f"{{name: a, image: tiny, memory: 64, ssh_keys: '{KEY}'}}"),
        {},
        r"ssh_keys: must be a list",
    ),
    (
        vms('{name: a, image: tiny, memory: 64, startup_commands: ["a\\nb"]}'),
        {},
        r"\[0\]: must be one",
    ),
    (vms('{name: a, image: tiny, memory: 64, startup_commands: [" "]}'), {}, r"\[0\]: must be one"),
    (
        vms("{name: a, image: tiny, memory: 64, startup_commands: [5]}"),
        {},
        r"\[0\]: must be a string",
    ),
    (vms(f"{{name: a, image: tiny, memory: 64, startup_commands: [{'x' * 4097}]}}"), {}, "longer"),
    # parameters
    (
        vms("{name: a, image: '${nope}', memory: 64}"),
        {},
        r"vms\[0\]\.image: unknown parameter \$\{nope\}",
    ),
    (
        vms("{name: a, image: 'x${a b}', memory: 64}"),
        {},
        r"vms\[0\]\.image: \$\{a b\} is not a valid",
    ),
    (vms(M), {"x": "1"}, r"parameters\.x: not declared by the template"),
    (vms(M, extra="parameters: {k: null}\n"), {}, r"parameters: no value given for .*\['k'\]"),
    (vms(M, extra="parameters: {bad-name: 1}\n"), {}, r"parameters\.bad-name: not a valid name"),
    (vms(M, extra="parameters: {k: [1]}\n"), {}, r"parameters\.k: a default must be"),
    (vms(M, extra="parameters: [k]\n"), {}, "parameters: must be a mapping"),
    (vms(M, extra="parameters: {k: 1}\n"), {"k": True}, r"parameters\.k: a value must be"),
    (alias_bomb(), {}, f"template: more than {MAX_NODES} values"),
]


@pytest.mark.parametrize(("text", "variables", "message"), BAD)
def test_every_malformed_template_is_refused_with_the_field_named(
    text: str, variables: dict[str, str | int], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_template(text, variables)


def test_a_good_template_is_read_with_units_defaults_and_parameters() -> None:
    template = load_template(SHOP, {"key": KEY, "replicas": 3})
    web, db = template.vms
    assert (web.count, web.vcpus, web.memory_mib, web.ssh_keys) == (3, 1, 256, (KEY,))
    assert web.startup_commands == ("echo web of 3 > /tmp/role", "echo ${HOME}")
    assert (db.memory_mib, db.max_memory_mib, db.disk_gib, db.max_vcpus) == (1024, 2048, 10, 4)
    assert [(v.name, v.size_gib) for v in template.volumes] == [("db-data", 2), ("assets", 1)]
    assert [v.read_only for v in web.volumes + db.volumes] == [True, False]
    assert load_template(SHOP, {"key": KEY}).vms[0].count == 2  # the default
    again = type(template).from_json(template.to_json())
    assert again == template  # the stored form reads back the same (no re-substitution)


def test_the_documented_example_is_a_valid_template() -> None:
    docs = Path(__file__).parents[2] / "docs" / "orchestration.md"
    example = re.search(r"```yaml\n(.*?)```", docs.read_text(), re.S)
    assert example is not None
    template = load_template(example[1], {"image": "tiny", "admin_key": KEY})
    assert [s.label for s in plan(template, "shop").steps] == SHOP_STEPS


def test_the_plan_lists_volumes_then_vms_in_dependency_order() -> None:
    steps = plan(shop(), "shop")
    assert [s.label for s in steps.steps] == SHOP_STEPS
    assert steps.holders == {"db-data": "shop-db-0", "assets": "shop-web-0"}
    lines = steps.describe()
    assert lines[0] == "1. create volume db-data (2 GiB)"
    assert lines[2].startswith("3. spawn VM shop-db-0: image tiny, 2 vCPU, 1024 MiB, disk 10 GiB")
    assert "volume assets (read-only)" in lines[3] and "network default" in lines[3]


@pytest.mark.parametrize(
    ("stack", "message"),
    [
        ("Shop", "stack name: 'Shop' is not a DNS-safe name"),
        ("shop_1", "stack name: 'shop_1' is not"),
        ("", "stack name: '' is not"),
        ("s" * 58, r"instance id 's{58}-web-0' .* longer than 63"),
        ("s" * 56, r"volume name 's{56}-db-data' .* longer than 63"),
    ],
)
def test_stack_names_must_be_dns_safe_and_leave_room_for_ids(stack: str, message: str) -> None:
    template = shop() if "volume" in message else load_template(vms(M.replace(": a,", ": web,")))
    with pytest.raises(ConfigError, match=message):
        plan(template, stack)


# ---------------------------------------------------------------------------- deploy


def test_deploy_creates_volumes_then_vms_with_attachments_keys_and_startup_commands(
    env: Env,
) -> None:
    record = env.orch.deploy(shop(), "shop", "0xAlice")
    assert env.host.log == SHOP_ORDER
    assert record.state is StackState.DEPLOYED and record.owner == "0xAlice"
    assert [(r.kind, r.name, r.state) for r in record.resources] == [
        (ResourceKind.VOLUME, "db-data", ResourceState.CREATED),
        (ResourceKind.VOLUME, "assets", ResourceState.CREATED),
        (ResourceKind.VM, "db-0", ResourceState.CREATED),
        (ResourceKind.VM, "web-0", ResourceState.CREATED),
        (ResourceKind.VM, "web-1", ResourceState.CREATED),
    ]
    db, web0, web1 = (env.driver.specs[f"shop-{n}"] for n in ("db-0", "web-0", "web-1"))
    assert (db.vcpus, db.max_vcpus, db.memory_mib, db.max_memory_mib, db.disk_gib) == (
        2, 4, 1024, 2048, 10,
    )  # fmt: skip
    assert db.boot == TINY and db.startup_commands == ("echo db > /tmp/role",)
    assert db.volumes == (
        VolumeAttachment(volume_id="shop-db-data-0001", path=Path("/vols/shop-db-data-0001.qcow2")),
    )
    assert db.network.mode == "user"
    assert db.network.isolation_group == isolation_group("shop", "backend") == "stack:shop/backend"
    assert web0.network.isolation_group == web1.network.isolation_group == "stack:shop"
    for web in (web0, web1):
        assert web.ssh_public_keys == (KEY,) and web.volumes[0].read_only
        assert web.volumes[0].volume_id == "shop-assets-0002"
        assert web.startup_commands == ("echo web of 2 > /tmp/role", "echo ${HOME}")
    assert web1.metadata == {
        "stack": "shop", "stack_owner": "0xAlice", "stack_vm": "web", "stack_index": "1",
    }  # fmt: skip
    assert {v.name: v.attached_to for v in env.volumes.list()} == {
        "shop-db-data": "shop-db-0",
        "shop-assets": "shop-web-0",  # shared read-only: held by the first of its VMs
    }
    assert all(v.owner == "stack:shop" for v in env.volumes.list())


def test_unknown_images_and_taken_names_are_refused_before_anything_is_made(env: Env) -> None:
    template = load_template(vms("{name: a, image: gone, memory: 64}"))
    with pytest.raises(ConfigError, match=r"vms\[0\]\.image: 'gone': no image 'gone'"):
        env.orch.deploy(template, "x", "o")
    with pytest.raises(ConfigError, match="stack name"):
        env.orch.deploy(shop(), "Bad", "o")
    assert env.host.log == [] and env.orch.list_stacks() == []
    env.orch.deploy(shop(), "shop", "o")
    made = list(env.host.log)
    with pytest.raises(StackExists, match="stack 'shop' already exists"):
        env.orch.deploy(shop(), "shop", "o")
    assert env.host.log == made


@pytest.mark.parametrize("failing", range(len(SHOP_ORDER)))
def test_a_failure_at_any_step_rolls_back_everything_made(env: Env, failing: int) -> None:
    op = SHOP_ORDER[failing]
    env.host.faults[op] = ("before", DriverError("no room"))
    step = SHOP_STEPS[[0, 1, 2, 2, 3, 3, 4][failing]]  # the step an operation belongs to
    with pytest.raises(DeployFailed, match=f"'shop': {step} failed: no room; everything") as err:
        env.orch.deploy(shop(), "shop", "o")
    assert err.value.rolled_back
    assert env.empty(), (env.driver.specs, env.volumes.volumes)
    assert env.orch.list_stacks() == []
    made, undone = env.host.log[:failing], env.host.log[failing:]
    expected = [f"destroy {op.split()[1]}" for op in reversed(made) if op.startswith("spawn")]
    for volume_id in ("shop-assets-0002", "shop-db-data-0001"):  # volumes: last made first
        if any(op.startswith(f"attach {volume_id}") for op in made):
            expected.append(f"detach {volume_id}")
        if f"create volume {volume_id[:-5]}" in made:
            expected.append(f"delete volume {volume_id}")
    assert undone == expected  # exactly what was made, undone last first
    # the name is free again
    env.orch.deploy(shop(), "shop", "o")
    assert env.orch.show("shop").state is StackState.DEPLOYED


def test_a_foreign_instance_with_the_same_id_is_never_destroyed(env: Env) -> None:
    foreign = InstanceSpec(instance_id="shop-web-1", vcpus=1, memory_mib=64, boot=TINY)
    env.driver.spawn(foreign)
    with pytest.raises(DeployFailed, match="VM shop-web-1 failed: instance shop-web-1 already"):
        env.orch.deploy(shop(), "shop", "o")
    assert env.driver.list_instances() == ["shop-web-1"]
    assert env.driver.specs["shop-web-1"] is foreign and env.volumes.volumes == {}


def test_a_rollback_that_cannot_finish_leaves_the_stack_for_delete(env: Env) -> None:
    env.host.faults["spawn shop-web-1"] = ("before", DriverError("no room"))
    env.host.faults["destroy shop-db-0"] = ("before", DriverError("QEMU hangs"))
    with pytest.raises(DeployFailed, match=r"rollback stopped .*QEMU hangs.*run delete") as err:
        env.orch.deploy(shop(), "shop", "o")
    assert not err.value.rolled_back
    stuck = env.orch.show("shop")
    assert stuck.state is StackState.FAILED and "no room" in stuck.note
    states = {r.name: (r.state, r.live) for r in stuck.resources}
    assert states["web-0"] == (ResourceState.DELETED, None)
    assert states["db-0"] == (ResourceState.DELETING, "running")
    with pytest.raises(StackError, match="delete it instead"):
        env.orch.resume("shop")
    assert env.orch.delete("shop") is True
    assert env.empty() and env.orch.list_stacks() == []


# ---------------------------------------------------------------------------- crashes

# every point at which the agent can die during a deploy of SHOP: (operation, before or after)
CRASH_POINTS = [(op, when) for op in SHOP_ORDER for when in ("before", "after")]


@pytest.mark.parametrize(("op", "when"), CRASH_POINTS)
def test_a_crash_at_any_point_then_delete_removes_everything(env: Env, op: str, when: str) -> None:
    env.host.faults[op] = (when, Crash())
    with pytest.raises(Crash):
        env.orch.deploy(shop(), "shop", "o")
    orch = env.restart()
    assert orch.show("shop").state is StackState.DEPLOYING
    assert orch.delete("shop") is True
    assert env.empty(), (env.driver.specs, env.volumes.volumes)
    assert orch.list_stacks() == []
    assert orch.delete("shop") is False  # twice is fine


@pytest.mark.parametrize(("op", "when"), CRASH_POINTS)
def test_a_crash_at_any_point_then_resume_finishes_without_duplicates(
    env: Env, op: str, when: str
) -> None:
    env.host.faults[op] = (when, Crash())
    with pytest.raises(Crash):
        env.orch.deploy(shop(), "shop", "o")
    orch = env.restart()
    record = orch.resume("shop")
    assert record.state is StackState.DEPLOYED
    assert all(r.state is ResourceState.CREATED for r in record.resources)
    assert env.driver.list_instances() == ["shop-db-0", "shop-web-0", "shop-web-1"]
    volumes = env.volumes.list()
    assert sorted(v.name for v in volumes) == ["shop-assets", "shop-db-data"]  # none twice
    refs = {r.name: r.ref for r in record.resources if r.kind is ResourceKind.VOLUME}
    assert {v.name: v.volume_id for v in volumes} == {
        "shop-db-data": refs["db-data"],
        "shop-assets": refs["assets"],
    }
    assert env.driver.specs["shop-db-0"].volumes[0].volume_id == refs["db-data"]
    assert {v.name: v.attached_to for v in volumes} == {
        "shop-db-data": "shop-db-0",
        "shop-assets": "shop-web-0",
    }
    assert orch.resume("shop") == orch.store.get("shop")  # resuming a deployed stack: no-op
    assert orch.delete("shop") and env.empty()


def test_a_crash_during_delete_is_finished_by_delete(env: Env) -> None:
    env.orch.deploy(shop(), "shop", "o")
    env.host.faults["delete volume shop-assets-0002"] = ("after", Crash())
    with pytest.raises(Crash):
        env.orch.delete("shop")
    orch = env.restart()
    assert orch.show("shop").state is StackState.DELETING
    with pytest.raises(StackError, match="is deleting: delete it instead"):
        orch.resume("shop")
    assert orch.delete("shop") is True
    assert env.empty() and orch.delete("shop") is False


def test_a_vm_left_dead_by_a_crash_is_made_again_on_resume(env: Env) -> None:
    env.host.faults["spawn shop-web-0"] = ("after", Crash())
    with pytest.raises(Crash):
        env.orch.deploy(shop(), "shop", "o")
    env.driver.states["shop-web-0"] = InstanceState.CRASHED  # QEMU died with the agent
    env.restart().resume("shop")
    assert env.host.log[-4:] == [
        "destroy shop-web-0",
        "spawn shop-web-0",
        "attach shop-assets-0002 shop-web-0",
        "spawn shop-web-1",
    ]
    assert env.driver.states["shop-web-0"] is InstanceState.RUNNING


# ---------------------------------------------------------------------------- delete, views


def test_delete_goes_in_reverse_order_and_twice_is_fine(env: Env) -> None:
    env.orch.deploy(shop(), "shop", "o")
    del env.host.log[:]
    assert env.orch.delete("shop") is True
    assert env.host.log == [
        "destroy shop-web-1",
        "destroy shop-web-0",
        "destroy shop-db-0",
        "detach shop-assets-0002",
        "delete volume shop-assets-0002",
        "detach shop-db-data-0001",
        "delete volume shop-db-data-0001",
    ]
    assert env.empty()
    assert env.orch.delete("shop") is False
    assert env.orch.delete("never-was") is False
    with pytest.raises(StackNotFound, match="no stack 'shop'"):
        env.orch.show("shop")


def test_delete_tolerates_resources_already_gone(env: Env) -> None:
    env.orch.deploy(shop(), "shop", "o")
    env.driver.destroy("shop-web-0")  # someone removed them by hand
    env.volumes.mark_detached("shop-assets-0002")
    env.volumes.delete("shop-assets-0002")
    shown = {r.name: r.live for r in env.orch.show("shop").resources}
    assert shown == {
        "db-data": "attached to shop-db-0",
        "assets": "missing",
        "db-0": "running",
        "web-0": "missing",
        "web-1": "running",
    }
    assert env.orch.delete("shop") and env.empty()


def test_a_volume_attached_outside_the_stack_stops_delete_with_a_clear_error(env: Env) -> None:
    env.orch.deploy(shop(), "shop", "o")
    env.volumes.mark_detached("shop-db-data-0001")
    env.volumes.mark_attached("shop-db-data-0001", "rental-7")
    with pytest.raises(StackError, match=r"deleting volume shop-db-data-0001 failed: .*attached"):
        env.orch.delete("shop")
    assert env.orch.show("shop").state is StackState.DELETING
    env.volumes.mark_detached("shop-db-data-0001")
    assert env.orch.delete("shop") and env.empty()


def test_two_stacks_do_not_collide(env: Env) -> None:
    env.orch.deploy(shop(), "shop", "0xAlice")
    env.orch.deploy(shop(replicas=1), "blog", "0xBob")
    assert env.driver.list_instances() == [
        "blog-db-0", "blog-web-0", "shop-db-0", "shop-web-0", "shop-web-1",
    ]  # fmt: skip
    assert [s.name for s in env.orch.list_stacks()] == ["shop", "blog"]
    assert [s.name for s in env.orch.list_stacks(owner="0xBob")] == ["blog"]
    assert env.driver.specs["blog-web-0"].network.isolation_group == "stack:blog"
    env.orch.delete("shop")
    assert env.driver.list_instances() == ["blog-db-0", "blog-web-0"]
    assert sorted(v.name for v in env.volumes.list()) == ["blog-assets", "blog-db-data"]
    assert env.orch.show("blog").state is StackState.DEPLOYED


def test_stack_names_that_would_share_instance_ids_are_refused(env: Env) -> None:
    one = load_template(vms("{name: b-c, image: tiny, memory: 64}"))
    two = load_template(vms("{name: c, image: tiny, memory: 64}"))
    env.orch.deploy(one, "a", "o")  # a-b-c-0
    with pytest.raises(StackExists, match="would reuse vm id 'a-b-c-0' of stack 'a'"):
        env.orch.deploy(two, "a-b", "o")  # a-b-c-0 too
    assert env.driver.list_instances() == ["a-b-c-0"] and len(env.orch.list_stacks()) == 1


def test_the_real_services_fit_the_ports(tmp_path: Path) -> None:
    """The volume service and image registry plug in as they are (mypy checks this too)."""
    from powerverse.infra.images import ImageRegistry
    from powerverse.infra.objects import ObjectStore
    from powerverse.infra.volumes import VolumeService

    volumes: VolumePort = VolumeService(tmp_path / "vols")
    images: ImagePort = ImageRegistry(tmp_path / "images", ObjectStore(tmp_path / "objects"))
    with pytest.raises(NotFound):
        images.boot_source("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
    assert list(volumes.list("stack:none")) == []


# ---------------------------------------------------------------------------- for real


def ssh(key: Path, port: int, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
         "-o", "LogLevel=ERROR", "root@127.0.0.1", command],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_a_one_vm_one_volume_stack_on_qemu(tmp_path: Path) -> None:
    from powerverse.infra.drivers.qemu import QemuDriver
    from powerverse.infra.images import ImageRegistry
    from powerverse.infra.objects import ObjectStore
    from powerverse.infra.tinyimage import BOOT_MARKER, build_tiny_image
    from powerverse.infra.volumes import VolumeService

    require_tools("qemu-system-x86_64", "qemu-img", "genisoimage", "busybox", "dropbear", "ssh")
    tiny = build_tiny_image(tmp_path / "tiny")
    images = ImageRegistry(tmp_path / "images", ObjectStore(tmp_path / "objects"))
    image = images.register(
        "tiny", format="kernel", kernel=tiny.kernel, initrd=tiny.initrd, cmdline=tiny.cmdline
    )
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    driver = QemuDriver(tmp_path / "vms")
    volumes = VolumeService(tmp_path / "vols")
    orch = Orchestrator(StackStore(tmp_path / "stacks.sqlite"), driver, volumes, images)
    template = load_template(
        """
version: 1
parameters: {image: null, key: null}
volumes: [{name: scratch, size: 1GiB}]
vms:
  - name: box
    image: ${image}
    memory: 160MiB
    volumes: [scratch]
    ssh_keys: ["${key}"]
    startup_commands: ["echo made-by-the-stack > /tmp/role"]
""",
        {"image": image.image_id, "key": public},
    )
    record = orch.deploy(template, "demo", "0xAlice")
    try:
        (volume,) = volumes.list(owner="stack:demo")
        assert volume.attached_to == "demo-box-0" and volume.size_gib == 1
        assert driver.info("demo-box-0").volumes == (volume.volume_id,)
        deadline = time.monotonic() + 150
        while BOOT_MARKER not in driver.console_log("demo-box-0"):
            assert time.monotonic() < deadline, driver.console_log("demo-box-0")
            time.sleep(0.3)
        port = driver.info("demo-box-0").ssh_port
        assert port is not None
        done = ssh(key, port, "cat /tmp/role; ls /sys/block")
        while "made-by-the-stack" not in done.stdout and time.monotonic() < deadline:
            time.sleep(1)
            done = ssh(key, port, "cat /tmp/role; ls /sys/block")
        assert "made-by-the-stack" in done.stdout, done
        disks = re.findall(r"\bvd[a-z]\b", done.stdout)
        assert len(disks) == 2, done.stdout  # the cloud-init seed and the stack's volume
        assert record.state is StackState.DEPLOYED
    finally:
        assert orch.delete("demo") is True
    assert driver.list_instances() == [] and volumes.list() == []
    assert list((tmp_path / "vms" / "instances").iterdir()) == []
    assert list((tmp_path / "vols" / "volumes").iterdir()) == []
    assert orch.delete("demo") is False
