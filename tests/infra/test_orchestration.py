"""Stacks from YAML templates: every malformed template named; deploy and delete as one; a
failed or crashed deploy is rolled back or cleaned up; one stack for real on QEMU."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from powerverse.infra.drivers.base import BootSource, InstanceInfo, InstanceSpec, InstanceState
from powerverse.infra.drivers.qemu import QemuDriver
from powerverse.infra.exceptions import ConfigError, DriverError, InstanceNotFound
from powerverse.infra.orchestration import Orchestrator, parse_template
from powerverse.infra.tinyimage import BOOT_MARKER, TinyImage
from powerverse.infra.volumes import VolumeService
from tests.infra.conftest import require_tools
from tests.infra.drivers.test_qemu import tiny  # noqa: F401  (the session's tiny image)

GOOD = """
version: 1
volumes:
  - {name: data, size_gib: 1}
networks:
  - {name: backend}
vms:
  - name: web
    image: ${image}
    vcpus: 1
    memory_mib: 128
    count: 2
    networks: [backend]
    volumes: [{name: data, read_only: true}]
    startup: ["echo ready > /tmp/ready"]
  - name: db
    image: ${image}
    vcpus: 1
    memory_mib: 128
"""


class FakeDriver:
    def __init__(self, fail_on: str | None = None) -> None:
        self.specs: dict[str, InstanceSpec] = {}
        self.fail_on = fail_on

    def spawn(self, spec: InstanceSpec) -> InstanceInfo:
        if spec.instance_id == self.fail_on:
            raise DriverError("no room")
        self.specs[spec.instance_id] = spec
        return InstanceInfo(instance_id=spec.instance_id, state=InstanceState.RUNNING, vcpus=1,
                            memory_mib=128, accel="tcg")  # fmt: skip

    def destroy(self, instance_id: str) -> None:
        if instance_id not in self.specs:
            raise InstanceNotFound(instance_id)
        del self.specs[instance_id]


class Images:
    def __init__(self, boot: BootSource) -> None:
        self.boot = boot

    def boot_source(self, image_id: str) -> BootSource:
        assert image_id == "tiny"
        return self.boot


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("vms: []\nversion: 1", "vms"),
        ("version: 2\nvms: [{name: a, image: i, vcpus: 1, memory_mib: 64}]", "version"),
        ("version: 1\nvms: [{name: A_B, image: i, vcpus: 1, memory_mib: 64}]", "vms[0].name"),
        ("version: 1\nvms: [{name: a, image: i, vcpus: 0, memory_mib: 64}]", "vms[0].vcpus"),
        ("version: 1\nvms: [{name: a, image: i, vcpus: 1, memory_mib: '2GiB'}]", "memory_mib"),
        ("version: 1\nvms: [{name: a, image: i, vcpus: 1}]", "missing"),
        ("version: 1\nvms: [{name: a, image: i, vcpus: 1, memory_mib: 64, gpu: 1}]", "unknown"),
        ("version: 1\nvms: [{name: a, image: i, vcpus: 1, memory_mib: 64, networks: [x]}]",
         "no network"),
        ("version: 1\nvms: [{name: a, image: i, vcpus: 1, memory_mib: 64, volumes: [{name: v}]}]",
         "no volume"),
        ("version: 1\nvms: [{name: a, image: i, vcpus: 1, memory_mib: 64, count: 99}]", "count"),
        ("version: 1\nvms: [{name: a, image: i, vcpus: 1, memory_mib: 64},"
         " {name: a, image: i, vcpus: 1, memory_mib: 64}]", "unique"),
        ("version: 1\nvolumes: [{name: v, size_gib: 1}]\nvms: [{name: a, image: i, vcpus: 1,"
         " memory_mib: 64, count: 2, volumes: [{name: v}]}]", "read-write"),
        ("version: 1\nvms: [{name: a, image: '${missing}', vcpus: 1, memory_mib: 64}]",
         "variable"),
        ("version: 1\nvms: [unclosed", "YAML"),
        ("- just a list", "mapping"),
    ],
)  # fmt: skip
def test_malformed_templates_are_named(text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_template(text)


def test_deploy_and_delete_as_one(tmp_path: Path) -> None:
    require_tools("qemu-img")
    template = parse_template(GOOD, {"image": "tiny"})
    driver, volumes = FakeDriver(), VolumeService(tmp_path / "vols")
    orch = Orchestrator(tmp_path, driver, volumes, Images(BootSource(disk=Path("/base"))))  # type: ignore[arg-type]
    ids = orch.deploy(template, "shop")
    assert ids == ["shop-web-0", "shop-web-1", "shop-db-0"]
    web = driver.specs["shop-web-0"]
    assert web.startup_commands == ("echo ready > /tmp/ready",)
    assert web.network.isolation_group == "shop-backend"
    assert driver.specs["shop-db-0"].network.isolation_group == "shop-default"
    (data,) = volumes.list(owner="stack:shop")
    assert [v.volume_id for v in web.volumes] == [data.volume_id] and web.volumes[0].read_only
    with pytest.raises(ConfigError, match="exists"):
        orch.deploy(template, "shop")
    other = orch.deploy(template, "blog")  # two stacks do not collide
    assert other[0] == "blog-web-0" and orch.stacks() == ["blog", "shop"]
    assert orch.delete("shop") == 4  # three VMs and the volume
    assert volumes.list(owner="stack:shop") == [] and "shop-db-0" not in driver.specs
    assert orch.delete("shop") == 0  # deleting twice is fine
    assert orch.stacks() == ["blog"]


def test_a_failed_deploy_rolls_back_and_a_crashed_one_is_cleaned_up(tmp_path: Path) -> None:
    require_tools("qemu-img")
    template = parse_template(GOOD, {"image": "tiny"})
    volumes = VolumeService(tmp_path / "vols")
    images = Images(BootSource(disk=Path("/base")))
    failing = FakeDriver(fail_on="shop-db-0")
    orch = Orchestrator(tmp_path, failing, volumes, images)  # type: ignore[arg-type]
    with pytest.raises(DriverError):
        orch.deploy(template, "shop")
    assert failing.specs == {} and volumes.list() == [] and orch.stacks() == []

    crashing = FakeDriver()
    orch = Orchestrator(tmp_path, crashing, volumes, images)  # type: ignore[arg-type]
    real_spawn = crashing.spawn

    def crash_after_first(spec: InstanceSpec) -> InstanceInfo:
        if crashing.specs:
            raise KeyboardInterrupt  # the process dies mid-deploy: no rollback runs
        return real_spawn(spec)

    crashing.spawn = crash_after_first  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        orch.deploy(template, "shop")
    restarted = Orchestrator(tmp_path, crashing, volumes, images)  # type: ignore[arg-type]
    assert [k for k, _, _ in restarted.resources("shop")] == ["volume", "vm", "vm"]
    restarted.delete("shop")
    assert crashing.specs == {} and volumes.list() == []


@pytest.mark.slow
def test_a_real_stack_on_qemu(tmp_path: Path, tiny: TinyImage) -> None:  # noqa: F811
    require_tools("qemu-system-x86_64", "qemu-img", "genisoimage")
    text = """
version: 1
volumes: [{name: scratch, size_gib: 1}]
vms:
  - {name: box, image: tiny, vcpus: 1, memory_mib: 128, volumes: [{name: scratch}]}
"""
    driver = QemuDriver(tmp_path / "vms")
    volumes = VolumeService(tmp_path / "vols")
    boot = BootSource(kernel=tiny.kernel, initrd=tiny.initrd, cmdline=tiny.cmdline)
    orch = Orchestrator(tmp_path, driver, volumes, Images(boot))
    (instance,) = orch.deploy(parse_template(text), "demo")
    deadline = time.monotonic() + 120
    while BOOT_MARKER not in driver.console_log(instance):
        assert time.monotonic() < deadline, driver.console_log(instance)
        time.sleep(0.3)
    assert driver.info(instance).volumes == (volumes.list()[0].volume_id,)
    orch.delete("demo")
    assert driver.list_instances() == [] and volumes.list() == []
