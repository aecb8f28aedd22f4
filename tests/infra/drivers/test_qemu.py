"""The QEMU driver on real VMs (TCG): the tiny image boots, is reached over SSH with the injected
key, and is suspended, resumed, ballooned, given a vCPU, given and relieved of a volume,
snapshotted, re-adopted by a new driver, and destroyed without a trace."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from powerverse.infra.drivers.base import (
    BootSource,
    InstanceSpec,
    InstanceState,
    NetworkSpec,
    VolumeAttachment,
)
from powerverse.infra.drivers.qemu import QemuDriver
from powerverse.infra.exceptions import (
    DriverError,
    InstanceExists,
    InstanceNotFound,
    InvalidInstanceState,
    UnsupportedOperation,
)
from powerverse.infra.tinyimage import BOOT_MARKER, TinyImage, build_tiny_image
from tests.infra.conftest import require_tools

pytestmark = pytest.mark.slow

TOOLS = ("qemu-system-x86_64", "qemu-img", "genisoimage", "busybox", "dropbear", "ssh")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyImage:
    require_tools(*TOOLS)
    return build_tiny_image(tmp_path_factory.mktemp("tiny-image"))


def keypair(directory: Path, name: str = "key") -> tuple[Path, str]:
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, (directory / f"{name}.pub").read_text().strip()


def ssh(
    key: Path, port: int, command: str, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "root@127.0.0.1", command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def wait_console(driver: QemuDriver, instance_id: str, pattern: str, timeout: float = 90) -> str:
    """The console text once ``pattern`` (a regex) appears after what was there."""
    start = len(driver.console_log(instance_id, max_bytes=1 << 22))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = driver.console_log(instance_id, max_bytes=1 << 22)[start:]
        if re.search(pattern, text):
            return text
        time.sleep(0.3)
    raise AssertionError(f"no {pattern!r} on the console:\n{driver.console_log(instance_id)}")


def wait_boot(driver: QemuDriver, instance_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while BOOT_MARKER not in driver.console_log(instance_id):
        assert time.monotonic() < deadline, driver.console_log(instance_id)
        time.sleep(0.3)


def last_status(driver: QemuDriver, instance_id: str) -> dict[str, int]:
    lines = [x for x in driver.console_log(instance_id).splitlines() if "PV-STATUS" in x]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}


@pytest.fixture(scope="module")
def vm(
    tiny: TinyImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[QemuDriver, Path, Path]]:
    """One VM for the module's checks: 1 vCPU (2 max), 192 MiB of 256."""
    root = tmp_path_factory.mktemp("qemu")
    key, public = keypair(root)
    driver = QemuDriver(root / "state")
    spec = InstanceSpec(
        instance_id="vm-1", vcpus=1, max_vcpus=2, memory_mib=192, max_memory_mib=256,
        boot=BootSource(kernel=tiny.kernel, initrd=tiny.initrd, cmdline=tiny.cmdline),
        ssh_public_keys=(public,), startup_commands=("echo started > /tmp/startup",),
    )  # fmt: skip
    driver.spawn(spec)
    wait_boot(driver, "vm-1")
    try:
        yield driver, key, root
    finally:
        if "vm-1" in driver.list_instances():
            driver.destroy("vm-1")


def test_boots_and_serves_ssh_with_the_injected_key_only(vm: tuple[QemuDriver, Path, Path]) -> None:
    driver, key, root = vm
    info = driver.info("vm-1")
    assert info.state == InstanceState.RUNNING and info.accel == "tcg" and info.ssh_port
    done = ssh(key, info.ssh_port, "cat /tmp/startup; hostname")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["started", "vm-1"]
    other, _ = keypair(root, "other")
    refused = ssh(other, info.ssh_port, "true")
    assert refused.returncode != 0


def test_suspend_and_resume(vm: tuple[QemuDriver, Path, Path]) -> None:
    driver, _, _ = vm
    driver.suspend("vm-1")
    assert driver.info("vm-1").state == InstanceState.PAUSED
    frozen = driver.console_log("vm-1")
    time.sleep(2.5)
    assert driver.console_log("vm-1") == frozen  # the guest's status loop stopped
    with pytest.raises(InvalidInstanceState):
        driver.suspend("vm-1")
    driver.resume("vm-1")
    assert driver.info("vm-1").state == InstanceState.RUNNING
    wait_console(driver, "vm-1", "PV-STATUS")
    with pytest.raises(InvalidInstanceState):
        driver.resume("vm-1")


def test_balloon_and_vcpu_hot_plug_are_seen_by_the_guest(vm: tuple[QemuDriver, Path, Path]) -> None:
    driver, _, _ = vm
    assert driver.balloon_actual_mib("vm-1") == 192  # ballooned to its size at spawn
    before = last_status(driver, "vm-1")
    driver.resize("vm-1", memory_mib=128)
    deadline = time.monotonic() + 30
    while driver.balloon_actual_mib("vm-1") != 128:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    wait_console(driver, "vm-1", "PV-STATUS")
    after = last_status(driver, "vm-1")
    assert after["memfree_kb"] < before["memfree_kb"] - 32 * 1024  # the guest gave memory back
    assert before["cpus"] == 1
    info = driver.resize("vm-1", vcpus=2)
    assert info.vcpus == 2
    wait_console(driver, "vm-1", r"PV-STATUS cpus=2")
    with pytest.raises(DriverError, match="between"):
        driver.resize("vm-1", vcpus=3)
    with pytest.raises(DriverError, match="between"):
        driver.resize("vm-1", memory_mib=512)


def test_volumes_attach_and_detach(vm: tuple[QemuDriver, Path, Path]) -> None:
    driver, key, root = vm
    volume = root / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(volume), "64M"], check=True)
    port = driver.info("vm-1").ssh_port
    assert port is not None
    disks = ssh(key, port, "ls /sys/block").stdout.split()
    driver.attach_volume("vm-1", VolumeAttachment(volume_id="data", path=volume))
    deadline = time.monotonic() + 30
    while len(ssh(key, port, "ls /sys/block").stdout.split()) == len(disks):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert driver.info("vm-1").volumes[-1] == "data"
    with pytest.raises(DriverError, match="already attached"):
        driver.attach_volume("vm-1", VolumeAttachment(volume_id="data", path=volume))
    driver.detach_volume("vm-1", "data")
    assert ssh(key, port, "ls /sys/block").stdout.split() == disks
    with pytest.raises(DriverError, match="not attached"):
        driver.detach_volume("vm-1", "data")


def test_a_new_driver_adopts_the_running_vm(vm: tuple[QemuDriver, Path, Path]) -> None:
    _, _, root = vm
    restarted = QemuDriver(root / "state")  # the agent was killed and started again
    assert restarted.adopt() == ["vm-1"]
    assert restarted.info("vm-1").state == InstanceState.RUNNING
    assert restarted.usage("vm-1").cpu_seconds > 0
    assert restarted.usage("vm-1").memory_rss_bytes > 0


def test_bad_requests_are_refused_clearly(
    vm: tuple[QemuDriver, Path, Path], tiny: TinyImage
) -> None:
    driver, _, _ = vm
    boot = BootSource(kernel=tiny.kernel, initrd=tiny.initrd)
    with pytest.raises(InstanceExists):
        driver.spawn(InstanceSpec(instance_id="vm-1", vcpus=1, memory_mib=64, boot=boot))
    with pytest.raises(InstanceNotFound):
        driver.info("nope")
    with pytest.raises(InstanceNotFound):
        driver.destroy("../etc")
    with pytest.raises(DriverError, match="id"):
        driver.spawn(InstanceSpec(instance_id="Bad_ID", vcpus=1, memory_mib=64, boot=boot))
    with pytest.raises(DriverError, match="max_vcpus"):
        driver.spawn(InstanceSpec(instance_id="x", vcpus=2, max_vcpus=1, memory_mib=64, boot=boot))
    with pytest.raises(UnsupportedOperation):
        driver.spawn(
            InstanceSpec(instance_id="x", vcpus=1, memory_mib=64, boot=boot,
                         network=NetworkSpec(mode="tap"))
        )  # fmt: skip
    with pytest.raises(UnsupportedOperation, match="no disk"):
        driver.snapshot("vm-1", Path("/tmp/never.qcow2"))
    assert driver.list_instances() == ["vm-1"]  # nothing half-made was left


def test_disk_vm_snapshot_and_destroy_leaves_nothing(tiny: TinyImage, tmp_path: Path) -> None:
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "32M"], check=True)
    driver = QemuDriver(tmp_path / "state")
    spec = InstanceSpec(
        instance_id="disk-vm", vcpus=1, memory_mib=128,
        boot=BootSource(disk=base, kernel=tiny.kernel, initrd=tiny.initrd),
        network=NetworkSpec(mode="none"),
    )  # fmt: skip
    info = driver.spawn(spec)
    pid = info.pid
    assert pid is not None and psutil.pid_exists(pid)
    wait_boot(driver, "disk-vm")
    shot = driver.snapshot("disk-vm", tmp_path / "shot.qcow2")
    done = subprocess.run(
        ["qemu-img", "info", "--output=json", str(shot)], capture_output=True, text=True, check=True
    )
    assert '"format": "qcow2"' in done.stdout and "backing" not in done.stdout
    assert driver.info("disk-vm").state == InstanceState.RUNNING  # resumed after the snapshot
    driver.destroy("disk-vm")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert driver.list_instances() == []
    assert list((tmp_path / "state" / "instances").iterdir()) == []
    assert base.exists()  # the base image is never touched
