"""The QEMU driver on real VMs (TCG) booting the tiny image.

One VM serves most checks (module fixture; the host has two shared cores): SSH with the
injected key and no other, suspend/resume, the balloon and vCPU hot plug as the guest sees them,
volume hot plug, usage, soft and hard reboot, refusals of bad requests. Other tests boot their
own: a disk-backed VM (snapshot, destroy without a trace), VMs left by an agent killed with
SIGKILL (adoption), and, as root, tap networking with isolation between groups and routed
networking (per-group subnets, SSH through a host port, nothing between groups or to the host).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from powerverse.infra.drivers.routednet import RoutedNetwork
from powerverse.infra.exceptions import (
    DriverError,
    InstanceExists,
    InstanceNotFound,
    InvalidInstanceState,
    UnsupportedOperation,
)
from powerverse.infra.tinyimage import BOOT_MARKER, MIN_MEMORY_MIB, STATUS_PREFIX, TinyImage
from tests.infra.conftest import require_tools

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------- helpers


def keypair(directory: Path, name: str = "key") -> tuple[Path, str]:
    """A fresh ed25519 key pair: (private key file, public key line)."""
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, (directory / f"{name}.pub").read_text().strip()


def ssh(
    key: Path, port: int, command: str, host: str = "127.0.0.1"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", f"root@{host}", command],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def wait_for(what: str, check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def console_mark(driver: QemuDriver, instance_id: str) -> int:
    """Where the console log ends now (to wait for what comes after)."""
    return len(driver.console_log(instance_id, max_bytes=1 << 24))


def wait_console(
    driver: QemuDriver, instance_id: str, pattern: str, after: int = 0, timeout: float = 90
) -> str:
    """The console text after offset ``after`` once ``pattern`` (a regex) appears in it."""
    text = ""

    def seen() -> bool:
        nonlocal text
        text = driver.console_log(instance_id, max_bytes=1 << 24)[after:]
        return re.search(pattern, text) is not None

    try:
        wait_for(f"{pattern!r} on the console", seen, timeout)
    except AssertionError:
        raise AssertionError(
            f"no {pattern!r} on the console; it ends with:\n{text[-2000:]}"
        ) from None
    return text


def guest_status(driver: QemuDriver, instance_id: str, after: int) -> dict[str, int]:
    """The guest's first status line printed after offset ``after``."""
    text = wait_console(driver, instance_id, rf"{STATUS_PREFIX} .*\n", after)
    line = next(x for x in text.splitlines() if x.startswith(STATUS_PREFIX))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def kernel_boot(tiny: TinyImage, disk: Path | None = None) -> BootSource:
    return BootSource(kernel=tiny.kernel, initrd=tiny.initrd, cmdline=tiny.cmdline, disk=disk)


def qemu_processes(directory: Path) -> list[psutil.Process]:
    """Live QEMU processes whose command line mentions ``directory``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        if "qemu" not in (proc.info["name"] or "") or proc.info["status"] == "zombie":
            continue
        if any(str(directory) in arg for arg in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


# ---------------------------------------------------------------------- the shared VM


@dataclass
class Vm:
    driver: QemuDriver
    key: Path
    root: Path
    port: int


@pytest.fixture(scope="module")
def vm(tiny: TinyImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vm]:
    """One booted VM: 1 vCPU (2 at most), 192 MiB of 256, the test key, a startup command."""
    root = tmp_path_factory.mktemp("qemu")
    key, public = keypair(root)
    driver = QemuDriver(root / "state", accel="tcg")
    spec = InstanceSpec(
        instance_id="vm-1", vcpus=1, max_vcpus=2, memory_mib=192, max_memory_mib=256,
        boot=kernel_boot(tiny), ssh_public_keys=(public,),
        startup_commands=("echo started > /tmp/startup",),
    )  # fmt: skip
    info = driver.spawn(spec)
    assert info.ssh_port is not None
    try:
        wait_console(driver, "vm-1", BOOT_MARKER)
        yield Vm(driver, key, root, info.ssh_port)
    finally:
        if "vm-1" in driver.list_instances():
            driver.destroy("vm-1")


def test_boots_and_serves_ssh_with_the_injected_key_only(vm: Vm) -> None:
    info = vm.driver.info("vm-1")
    assert info.state == InstanceState.RUNNING and info.accel == "tcg"
    assert info.ssh_host == "127.0.0.1" and info.pid is not None
    done = ssh(vm.key, vm.port, "cat /tmp/startup; hostname; grep -c ^processor /proc/cpuinfo")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["started", "vm-1", "1"]
    address = ssh(vm.key, vm.port, "ip -4 addr show eth0").stdout
    assert "10.0.2.15/" in address  # QEMU user networking's DHCP lease
    other, _ = keypair(vm.root, "other")
    refused = ssh(other, vm.port, "true")
    assert refused.returncode != 0 and "Permission denied" in refused.stderr


def test_suspend_stops_the_guest_and_resume_continues_it(vm: Vm) -> None:
    driver = vm.driver
    driver.suspend("vm-1")
    assert driver.info("vm-1").state == InstanceState.PAUSED
    with pytest.raises(InvalidInstanceState, match="only a running one"):
        driver.suspend("vm-1")
    frozen = driver.console_log("vm-1")
    time.sleep(3)  # the guest prints a status line every second while it runs
    assert driver.console_log("vm-1") == frozen
    mark = console_mark(driver, "vm-1")
    driver.resume("vm-1")
    assert driver.info("vm-1").state == InstanceState.RUNNING
    wait_console(driver, "vm-1", STATUS_PREFIX, mark)
    with pytest.raises(InvalidInstanceState, match="only a suspended one"):
        driver.resume("vm-1")


def test_the_balloon_takes_memory_and_the_guest_sees_it(vm: Vm) -> None:
    driver = vm.driver
    assert driver.balloon_actual_mib("vm-1") == 192  # ballooned to its size at spawn
    before = guest_status(driver, "vm-1", console_mark(driver, "vm-1"))
    assert before["balloon_kb"] == 64 * 1024  # 256 MiB started, 64 MiB in the balloon
    assert driver.resize("vm-1", memory_mib=128).memory_mib == 128
    wait_for("the balloon to reach 128 MiB", lambda: driver.balloon_actual_mib("vm-1") == 128)
    wait_console(driver, "vm-1", rf"balloon_kb={128 * 1024}\b", console_mark(driver, "vm-1"))
    after = guest_status(driver, "vm-1", console_mark(driver, "vm-1"))
    assert after["memtotal_kb"] <= before["memtotal_kb"] - 60 * 1024  # the guest has less
    with pytest.raises(UnsupportedOperation, match="ceiling of 256"):
        driver.resize("vm-1", memory_mib=512)
    with pytest.raises(DriverError, match="at least 32"):
        driver.resize("vm-1", memory_mib=16)
    assert driver.info("vm-1").memory_mib == 128


def test_a_hot_plugged_vcpu_comes_online_in_the_guest(vm: Vm) -> None:
    driver = vm.driver
    assert guest_status(driver, "vm-1", console_mark(driver, "vm-1"))["cpus"] == 1
    mark = console_mark(driver, "vm-1")
    assert driver.resize("vm-1", vcpus=2).vcpus == 2
    wait_console(driver, "vm-1", rf"{STATUS_PREFIX} cpus=2 ", mark)
    assert ssh(vm.key, vm.port, "grep -c ^processor /proc/cpuinfo").stdout.strip() == "2"
    with pytest.raises(UnsupportedOperation, match="ceiling of 2"):
        driver.resize("vm-1", vcpus=3)
    with pytest.raises(UnsupportedOperation, match="not taken away"):
        driver.resize("vm-1", vcpus=1)
    with pytest.raises(DriverError, match="at least 1"):
        driver.resize("vm-1", vcpus=0)
    assert driver.info("vm-1").vcpus == 2


def test_volumes_are_hot_plugged_and_unplugged(vm: Vm) -> None:
    driver = vm.driver
    volume = vm.root / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(volume), "64M"], check=True)
    disks = set(ssh(vm.key, vm.port, "ls /sys/block").stdout.split())
    driver.attach_volume("vm-1", VolumeAttachment(volume_id="data", path=volume))
    assert driver.info("vm-1").volumes == ("data",)
    new: set[str] = set()

    def appeared() -> bool:
        nonlocal new
        new = set(ssh(vm.key, vm.port, "ls /sys/block").stdout.split()) - disks
        return bool(new)

    wait_for("the volume in the guest", appeared, timeout=30)
    (name,) = new
    assert re.fullmatch(r"vd[a-z]", name)
    size = ssh(vm.key, vm.port, f"cat /sys/block/{name}/size").stdout.strip()
    assert int(size) * 512 == 64 << 20
    with pytest.raises(DriverError, match="already attached"):
        driver.attach_volume("vm-1", VolumeAttachment(volume_id="data", path=volume))
    with pytest.raises(DriverError, match="no file"):
        driver.attach_volume("vm-1", VolumeAttachment(volume_id="x", path=vm.root / "none"))
    driver.detach_volume("vm-1", "data")
    assert set(ssh(vm.key, vm.port, "ls /sys/block").stdout.split()) == disks
    assert driver.info("vm-1").volumes == ()
    with pytest.raises(DriverError, match="not attached"):
        driver.detach_volume("vm-1", "data")


def test_usage_counts_the_vms_cpu_memory_and_disk(vm: Vm) -> None:
    usage = vm.driver.usage("vm-1")
    assert usage.instance_id == "vm-1"
    assert usage.cpu_seconds > 1 and usage.memory_rss_bytes > 32 << 20
    assert usage.disk_read_bytes > 0  # the guest read its seed
    assert usage.uptime_seconds > 1
    assert usage.net_rx_bytes == usage.net_tx_bytes == 0  # user networking keeps no counters


def test_soft_and_hard_reboot_boot_the_guest_again(vm: Vm) -> None:
    driver = vm.driver
    for hard in (False, True):
        mark = console_mark(driver, "vm-1")
        if hard:
            driver.suspend("vm-1")
            with pytest.raises(InvalidInstanceState, match="soft reboot needs a running"):
                driver.reboot("vm-1")
        driver.reboot("vm-1", hard=hard)  # a hard reboot also wakes a suspended VM
        wait_console(driver, "vm-1", BOOT_MARKER, mark)
        assert driver.info("vm-1").state == InstanceState.RUNNING
    # hot-plugged vCPUs and the balloon target survive a reset (the new kernel's balloon
    # driver inflates again, in steps)
    info = driver.info("vm-1")
    balloon = (256 - info.memory_mib) * 1024
    pattern = rf"{STATUS_PREFIX} cpus={info.vcpus} .*balloon_kb={balloon}\b"
    wait_console(driver, "vm-1", pattern, console_mark(driver, "vm-1"))
    assert ssh(vm.key, vm.port, "cat /proc/cpuinfo").stdout.count("processor\t") == info.vcpus


def test_bad_requests_are_refused_clearly(vm: Vm, tiny: TinyImage) -> None:
    driver = vm.driver
    boot = kernel_boot(tiny)

    def spec(**changes: object) -> InstanceSpec:
        fields: dict[str, object] = {"instance_id": "x", "vcpus": 1, "memory_mib": 64, "boot": boot}
        fields.update(changes)
        return InstanceSpec(**fields)  # type: ignore[arg-type]

    with pytest.raises(InstanceExists, match="vm-1 already exists"):
        driver.spawn(spec(instance_id="vm-1"))
    for call in (
        lambda: driver.info("nope"),
        lambda: driver.destroy("nope"),
        lambda: driver.suspend("nope"),
        lambda: driver.resize("nope", vcpus=2),
        lambda: driver.console_log("nope"),
        lambda: driver.destroy("../etc"),
    ):
        with pytest.raises(InstanceNotFound):
            call()
    with pytest.raises(DriverError, match="instance id"):
        driver.spawn(spec(instance_id="Bad_ID"))
    with pytest.raises(DriverError, match="max_vcpus"):
        driver.spawn(spec(vcpus=2, max_vcpus=1))
    with pytest.raises(DriverError, match="max_memory_mib"):
        driver.spawn(spec(memory_mib=128, max_memory_mib=64))
    with pytest.raises(DriverError, match="does not exist"):
        driver.spawn(spec(boot=BootSource(kernel=vm.root / "no-kernel", initrd=tiny.initrd)))
    with pytest.raises(DriverError, match="not an OpenSSH public key"):
        driver.spawn(spec(ssh_public_keys=("hello",)))
    with pytest.raises(DriverError, match="GPU address"):
        driver.spawn(spec(gpu_pci_addresses=("gpu0",)))
    with pytest.raises(UnsupportedOperation, match=r"no PCI device 0000:ff:1f\.7"):
        driver.spawn(spec(gpu_pci_addresses=("ff:1f.7",)))
    with pytest.raises(DriverError, match="forwards"):
        driver.spawn(spec(network=NetworkSpec(mode="none", forwards=((8080, 80),))))
    if os.geteuid() != 0:
        with pytest.raises(UnsupportedOperation, match="needs root"):
            driver.spawn(spec(network=NetworkSpec(mode="tap")))
    with pytest.raises(UnsupportedOperation, match="no disk"):
        driver.snapshot("vm-1", vm.root / "never.qcow2")
    assert driver.list_instances() == ["vm-1"]  # nothing half-made was left
    assert sorted(p.name for p in (vm.root / "state" / "instances").iterdir()) == ["vm-1"]


# ---------------------------------------------------------------------- adoption

_AGENT = """
import sys, time
from pathlib import Path
from powerverse.infra.drivers.base import BootSource, InstanceSpec, NetworkSpec
from powerverse.infra.drivers.qemu import QemuDriver
state, kernel, initrd = map(Path, sys.argv[1:4])
driver = QemuDriver(state, accel="tcg")
boot = BootSource(kernel=kernel, initrd=initrd, cmdline="console=ttyS0 quiet")
for name in ("kept", "doomed"):
    driver.spawn(InstanceSpec(instance_id=name, vcpus=1, memory_mib=96, boot=boot,
                              network=NetworkSpec(mode="none")))
print("spawned", flush=True)
time.sleep(600)
"""


def test_vms_survive_an_agent_killed_with_sigkill_and_are_adopted(
    tiny: TinyImage, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with subprocess.Popen(
        [sys.executable, "-c", _AGENT, str(state), str(tiny.kernel), str(tiny.initrd)],
        stdout=subprocess.PIPE, text=True,
    ) as agent:  # fmt: skip
        try:
            assert agent.stdout is not None and agent.stdout.readline().strip() == "spawned"
        finally:
            agent.send_signal(signal.SIGKILL)
            agent.wait()
    survivors = {p.pid for p in qemu_processes(state)}
    assert len(survivors) == 2  # both QEMUs outlived the agent
    doomed = int((state / "instances" / "doomed" / "qemu.pid").read_text())
    os.kill(doomed, signal.SIGKILL)  # and one of them then died
    wait_for("the killed QEMU to go", lambda: doomed not in {p.pid for p in qemu_processes(state)})
    (state / "instances" / "half-made").mkdir()  # a spawn cut short before its record

    driver = QemuDriver(state, accel="tcg")  # the restarted agent
    assert driver.adopt() == ["kept"]
    assert sorted(p.name for p in (state / "instances").iterdir()) == ["kept"]
    assert driver.info("kept").state == InstanceState.RUNNING
    driver.suspend("kept")  # under control again
    assert driver.info("kept").state == InstanceState.PAUSED
    driver.destroy("kept")
    assert qemu_processes(state) == [] and list((state / "instances").iterdir()) == []


def test_a_qemu_still_starting_at_restart_is_adopted_or_killed_never_leaked(
    tiny: TinyImage, tmp_path: Path
) -> None:
    """The agent killed while QEMU daemonized: its pidfile is not there yet when the restarted
    agent adopts. A QEMU that comes up is adopted; one that never answers is killed, so it
    cannot hold the instance's devices and ports while the instance is made again."""
    state = tmp_path / "state"
    first = QemuDriver(state, accel="tcg")
    for name in ("slow", "stuck"):
        first.spawn(InstanceSpec(instance_id=name, vcpus=1, memory_mib=MIN_MEMORY_MIB,
                                 boot=kernel_boot(tiny)))  # fmt: skip
    pidfiles = {n: state / "instances" / n / "qemu.pid" for n in ("slow", "stuck")}
    pids = {n: int(f.read_text()) for n, f in pidfiles.items()}
    for f in pidfiles.values():
        f.unlink()  # as if QEMU had not written it yet
    restore = threading.Timer(2.0, lambda: pidfiles["slow"].write_text(f"{pids['slow']}\n"))
    restore.start()  # "slow" finishes starting 2 s into the adoption; "stuck" never does
    try:
        restarted = QemuDriver(state, accel="tcg", adopt_wait=6.0)
        assert restarted.adopt() == ["slow"]
    finally:
        restore.cancel()
    assert restarted.info("slow").state == InstanceState.RUNNING
    wait_for("the stuck QEMU to be killed", lambda: not psutil.pid_exists(pids["stuck"])
             or psutil.Process(pids["stuck"]).status() == psutil.STATUS_ZOMBIE)  # fmt: skip
    assert not (state / "instances" / "stuck").exists()
    restarted.destroy("slow")
    assert qemu_processes(state) == []


# ---------------------------------------------------------------------- disk, snapshot, destroy


def test_disk_vm_snapshot_keeps_guest_writes_and_destroy_leaves_nothing(
    tiny: TinyImage, tmp_path: Path
) -> None:
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "32M"], check=True)
    state = tmp_path / "state"
    driver = QemuDriver(state, accel="tcg")
    write = "echo PV-DISK-DATA | dd of=/dev/vda bs=512 seek=1 conv=notrunc,fsync"
    spec = InstanceSpec(
        instance_id="disk-vm", vcpus=1, memory_mib=MIN_MEMORY_MIB,
        boot=kernel_boot(tiny, disk=base), network=NetworkSpec(mode="none"),
        startup_commands=(write,),
    )  # fmt: skip
    info = driver.spawn(spec)
    assert info.pid is not None and info.ssh_port is None
    wait_console(driver, "disk-vm", BOOT_MARKER)  # startup commands run before the marker
    shot = driver.snapshot("disk-vm", tmp_path / "shot.qcow2")
    assert driver.info("disk-vm").state == InstanceState.RUNNING  # continued after the snapshot
    check = subprocess.run(["qemu-img", "check", str(shot)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    described = subprocess.run(
        ["qemu-img", "info", "--output=json", str(shot)], capture_output=True, text=True, check=True
    ).stdout
    assert '"format": "qcow2"' in described and "backing" not in described  # standalone
    raw = tmp_path / "shot.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(shot), str(raw)], check=True)
    with raw.open("rb") as f:
        f.seek(512)
        assert f.read(13) == b"PV-DISK-DATA\n"
    with base.open("rb") as f:
        assert b"PV-DISK-DATA" not in f.read()  # the base image is never written

    driver.destroy("disk-vm")
    assert not psutil.pid_exists(info.pid) or psutil.Process(info.pid).status() == "zombie"
    assert qemu_processes(state) == []
    assert driver.list_instances() == []
    assert list((state / "instances").iterdir()) == []  # no overlay, seed, socket, log, pidfile
    with pytest.raises(InstanceNotFound):
        driver.destroy("disk-vm")


# ---------------------------------------------------------------------- tap networking


def _free_subnet() -> ipaddress.IPv4Network:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for third in range(200, 250):
        net = ipaddress.IPv4Network(f"10.{third}.77.0/24")
        if str(net.network_address)[:-1] not in routes:
            return net
    raise AssertionError("no free 10.x.77.0/24 subnet on this host")


def tap_devices(driver: QemuDriver, instance_id: str) -> tuple[str, str]:
    """The host-side tap device and bridge of an instance, from its record."""
    record = json.loads((driver.state_dir / "instances" / instance_id / "record.json").read_text())
    return str(record["tap"]), str(record["bridge"])


@pytest.mark.skipif(os.geteuid() != 0, reason="tap networking needs root")
def test_tap_networking_isolates_groups(tiny: TinyImage, tmp_path: Path) -> None:
    net = _free_subnet()
    host, a_ip, b_ip = (str(net.network_address + i) for i in (1, 2, 3))
    key, public = keypair(tmp_path)
    driver = QemuDriver(tmp_path / "state", accel="tcg")
    group = f"test-{os.getpid()}"

    def spawn(name: str, ip: str, isolation: str, *commands: str) -> None:
        spec = InstanceSpec(
            instance_id=name, vcpus=1, memory_mib=MIN_MEMORY_MIB, boot=kernel_boot(tiny),
            ssh_public_keys=(public,),
            network=NetworkSpec(mode="tap", isolation_group=isolation),
            startup_commands=(f"ip addr add {ip}/24 dev eth0", *commands),
        )  # fmt: skip
        driver.spawn(spec)

    spawn("tap-a", a_ip, f"{group}-a")
    spawn("tap-b", b_ip, f"{group}-b", f"ping -c 60 -i 0.5 {a_ip} >/dev/null 2>&1 &")
    tap_a, bridge_a = tap_devices(driver, "tap-a")
    tap_b, bridge_b = tap_devices(driver, "tap-b")
    try:
        assert bridge_a != bridge_b
        assert Path(f"/sys/class/net/{tap_a}/master").resolve().name == bridge_a
        assert Path(f"/sys/class/net/{tap_b}/master").resolve().name == bridge_b
        for name in ("tap-a", "tap-b"):
            wait_console(driver, name, BOOT_MARKER)
        subprocess.run(["ip", "addr", "add", f"{host}/24", "dev", bridge_a], check=True)
        wait_for("SSH over the tap", lambda: ssh(key, 22, "true", host=a_ip).returncode == 0)
        assert ssh(key, 22, f"ping -c 2 -W 2 {host}", host=a_ip).returncode == 0  # same segment
        assert ssh(key, 22, f"ping -c 3 -W 1 {b_ip}", host=a_ip).returncode != 0  # other group
        sent_by_b = int(Path(f"/sys/class/net/{tap_b}/statistics/rx_bytes").read_text())
        assert sent_by_b > 0  # B's network works: its packets just reach nobody
        usage = driver.usage("tap-a")
        assert usage.net_rx_bytes > 0 and usage.net_tx_bytes > 0
    finally:
        for name in ("tap-a", "tap-b"):
            driver.destroy(name)
    for device in (tap_a, tap_b, bridge_a, bridge_b):
        assert not Path("/sys/class/net", device).exists()  # taps and empty bridges are gone


@pytest.mark.skipif(os.geteuid() != 0, reason="tap networking needs root")
def test_two_drivers_never_share_a_tap_and_a_leftover_tap_is_replaced(
    tiny: TinyImage, tmp_path: Path
) -> None:
    """Two agents on one host (or an earlier run's leftovers) use the same instance ids and
    groups ("rental-2"): their host devices must not collide (the CI failure of a kill -9 e2e,
    where a stale tap made `ip tuntap add` fail with EBUSY and the rental was declined)."""
    drivers = [QemuDriver(tmp_path / f"state-{i}", accel="tcg") for i in range(2)]
    spec = InstanceSpec(
        instance_id="rental-2", vcpus=1, memory_mib=MIN_MEMORY_MIB, boot=kernel_boot(tiny),
        network=NetworkSpec(mode="tap", isolation_group="rental-2"),
    )  # fmt: skip
    # a persistent tap left by a crash of the second driver's own rental-2
    drivers[1].spawn(spec)
    stale_tap, _ = tap_devices(drivers[1], "rental-2")
    drivers[1].destroy("rental-2")
    subprocess.run(["ip", "tuntap", "add", "dev", stale_tap, "mode", "tap"], check=True)
    try:
        for driver in drivers:
            driver.spawn(spec)
        (tap_0, bridge_0), (tap_1, bridge_1) = (tap_devices(d, "rental-2") for d in drivers)
        assert tap_0 != tap_1 and bridge_0 != bridge_1 and tap_1 == stale_tap
        assert Path(f"/sys/class/net/{tap_1}/master").resolve().name == bridge_1
    finally:
        for driver in drivers:
            with contextlib.suppress(InstanceNotFound):
                driver.destroy("rental-2")
        if Path("/sys/class/net", stale_tap).exists():
            subprocess.run(["ip", "link", "del", stale_tap], check=False)
    assert not Path("/sys/class/net", tap_0).exists()


# ---------------------------------------------------------------------- routed networking


def _nft_forwards() -> str:
    done = subprocess.run(["nft", "list", "map", "ip", "powerverse", "sshfwd"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return done.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="routed networking needs root")
def test_routed_networking_reaches_each_lease_and_isolates_them(
    tiny: TinyImage, tmp_path: Path
) -> None:
    """Three VMs, two groups: the renter reaches each over its forwarded host port; VMs of one
    group talk to each other; nothing crosses groups (not even through the host's forwards),
    and guests cannot reach the host's own services."""
    require_tools("nft")
    key, public = keypair(tmp_path)
    routed = RoutedNetwork(run_dir=tmp_path / "net")
    driver = QemuDriver(tmp_path / "state", accel="tcg", routed=routed)
    group = f"routed-{os.getpid()}"
    names = {"rt-a1": f"{group}-a", "rt-a2": f"{group}-a", "rt-b": f"{group}-b"}
    infos = {}
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen()
    host_service = listener.getsockname()[1]
    try:
        for name, isolation in names.items():
            spec = InstanceSpec(
                instance_id=name, vcpus=1, memory_mib=MIN_MEMORY_MIB, boot=kernel_boot(tiny),
                ssh_public_keys=(public,),
                network=NetworkSpec(mode="routed", isolation_group=isolation),
            )  # fmt: skip
            infos[name] = driver.spawn(spec)
        records = {
            n: json.loads((driver.state_dir / "instances" / n / "record.json").read_text())
            for n in names
        }
        a1, a2, b = (records[n] for n in names)
        assert a1["bridge"] == a2["bridge"] != b["bridge"]
        assert a1["guest_address"] != a2["guest_address"]
        a_net = ipaddress.ip_network(f"{a1['guest_address']}/28", strict=False)
        assert ipaddress.ip_address(a2["guest_address"]) in a_net
        assert ipaddress.ip_address(b["guest_address"]) not in a_net
        host = a1["ssh_host"]
        assert not host.startswith("127.")
        for name in names:
            wait_console(driver, name, BOOT_MARKER)
            info = infos[name]
            assert (info.ssh_host, info.ssh_port) == (host, records[name]["ssh_port"])
            port = info.ssh_port or 0
            wait_for(f"SSH to {name} through the host's port",
                     lambda p=port: ssh(key, p, "true", host=host).returncode == 0)  # fmt: skip
        # the guest has the address the driver gave it
        shown = ssh(key, infos["rt-a1"].ssh_port, "ip -4 addr show eth0", host=host).stdout
        assert a1["guest_address"] in shown

        def from_a1(target: str, port: int) -> str:
            """What a1 reads from target:port in 3 s: an SSH banner when it connects to an SSH
            server, "nc: can't connect ..." when refused."""
            command = f"nc -w 3 {target} {port} </dev/null 2>&1 | head -n 1 | head -c 30"
            return ssh(key, infos["rt-a1"].ssh_port, command, host=host).stdout

        assert from_a1(a2["guest_address"], 22).startswith("SSH-2.0")  # same group
        assert "can't connect" in from_a1(b["guest_address"], 22)  # other group: refused
        assert "can't connect" in from_a1(host, infos["rt-b"].ssh_port or 0)  # via the host too
        assert "can't connect" in from_a1(host, host_service)  # the host's own services
        gateway = str(next(a_net.hosts()))
        assert "can't connect" in from_a1(gateway, host_service)
        listener.settimeout(0.5)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing got through to the host's listener
        usage = driver.usage("rt-a1")
        assert usage.net_rx_bytes > 0 and usage.net_tx_bytes > 0
    finally:
        listener.close()
        for name in names:
            with contextlib.suppress(InstanceNotFound):
                driver.destroy(name)
    forwards = _nft_forwards()
    for record in records.values():
        assert f"{record['ssh_port']} :" not in forwards  # forwards removed
        for device in (record["tap"], record["bridge"]):
            assert not Path("/sys/class/net", device).exists()
    assert list((tmp_path / "net").glob("*.json")) == []  # subnets given back
