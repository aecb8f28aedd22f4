"""The ``qemu`` ComputeDriver: VMs run by QEMU and controlled over QMP.

Each instance lives in ``<state_dir>/instances/<id>/``: ``record.json`` (its shape, ports,
network devices and accelerator), the root disk as a qcow2 overlay over the base image
(``disk.qcow2``), the cloud-init seed (``seed.iso``), the QMP socket (``qmp.sock``), the serial
console log (``console.log``) and QEMU's pidfile (``qemu.pid``). QEMU runs daemonized
(``-daemonize``: its own session, re-parented to init), so a VM outlives the agent, even a
``kill -9``: after a restart :meth:`QemuDriver.adopt` takes back the instances whose QEMU is
alive and answers on its QMP socket, and removes what dead ones left behind.

- Acceleration: ``kvm`` (whitepaper "type1") or ``tcg`` ("type2"); ``accel="auto"`` decides by
  a trial boot of the tiny image (:mod:`powerverse.infra.accel`, cached in the state directory).
- Networking: ``user`` (the default): QEMU user-mode networking, the guest's port 22 forwarded
  to ``ssh_host_port`` on ``host_address`` (a free port when 0), plus extra forwards. ``tap``
  (needs root, else UnsupportedOperation): a tap device on the bridge ``pvbr-<hash of
  isolation_group>`` (the instance's own when no group is given); the bridges carry no host
  address and are not routed, so leases in different groups share no segment, while members
  of one group do. Addressing and an uplink for a bridge are the operator's network set-up.
  ``routed`` (root): the same per-group bridges, each with a subnet and gateway of its own, the
  guest's static address in the seed's ``network-config``, SSH forwarded from a host port by
  nftables DNAT, no traffic between groups or from guests to the host, outbound masqueraded
  (:mod:`powerverse.infra.drivers.routednet`). ``none``: no network device.
- Resize: vCPUs by hot plug (``-smp N,maxcpus=M``, then ``device_add`` of the next free slot
  from ``query-hotpluggable-cpus``), up only: QEMU 7.2 (Debian 12) crashes on the first reset
  after a vCPU unplug, so taking vCPUs away is refused. Memory by the virtio balloon, both
  ways, within the memory the VM was started with (``max_memory_mib``).
- Reboot: soft is Ctrl-Alt-Del (the guest's init reboots cleanly; ACPI power-button would power
  a cloud image off instead), hard is ``system_reset``.
- Volumes: ``blockdev-add`` + ``device_add virtio-blk-pci``; detach waits for the guest to
  release the device, then ``blockdev-del``.
- Snapshot: the VM is paused (QEMU flushes its disks on ``stop``), the overlay is flattened with
  ``qemu-img convert`` into a standalone qcow2, and the VM continues.
- Usage: CPU time and RSS of the QEMU process (psutil), disk bytes from ``query-blockstats``,
  network bytes from the tap device's counters (user-mode networking keeps none: 0).
- GPU passthrough: each ``gpu_pci_addresses`` entry becomes ``-device vfio-pci,host=ADDR``. The
  host must have bound the device to the ``vfio-pci`` driver first (IOMMU on; ``driverctl
  set-override ADDR vfio-pci`` or writing to ``/sys/bus/pci/devices/ADDR/driver_override``);
  spawn refuses a device that is absent or bound elsewhere. Its memory is pinned, so the
  balloon cannot take memory from such a VM.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil

from powerverse.infra.accel import KVM_DEVICE, cpu_model, detect_accel
from powerverse.infra.cloudinit import meta_data, user_data, write_seed
from powerverse.infra.drivers.base import (
    ComputeDriver,
    InstanceInfo,
    InstanceSpec,
    InstanceState,
    InstanceUsage,
    VolumeAttachment,
)
from powerverse.infra.drivers.qmp import DEFAULT_TIMEOUT, QmpError, QmpSession
from powerverse.infra.drivers.routednet import (
    BRIDGE_PREFIX,
    RoutedNetwork,
    host_nameservers,
    network_config,
    primary_address,
)
from powerverse.infra.exceptions import (
    ConfigError,
    DriverError,
    InstanceExists,
    InstanceNotFound,
    InvalidInstanceState,
    ToolMissing,
    UnsupportedOperation,
)
from powerverse.infra.tinyimage import build_tiny_image
from powerverse.infra.tools import find_tool

__all__ = ["QemuDriver"]

_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # a DNS label: it is the hostname
_VOLUME_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$")
_PCI = re.compile(r"^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_MIN_MEMORY_MIB = 32
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the final NUL
_PORT_TRIES = 5
_STATES = {
    "running": InstanceState.RUNNING,
    "paused": InstanceState.PAUSED,
    "suspended": InstanceState.PAUSED,
    "shutdown": InstanceState.SHUTOFF,
    "internal-error": InstanceState.CRASHED,
    "io-error": InstanceState.CRASHED,
    "guest-panicked": InstanceState.CRASHED,
    "inmigrate": InstanceState.BUILDING,
    "prelaunch": InstanceState.BUILDING,
}
NETWORK_MODES = ("user", "routed", "tap", "none")
_BRIDGE_LOCK = threading.Lock()  # bridges are shared by the instances of a group


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _mac(instance_id: str) -> str:
    """A stable locally administered MAC per instance (QEMU gives every NIC the same one)."""
    h = _short_hash(instance_id)
    return f"52:54:00:{h[0:2]}:{h[2:4]}:{h[4:6]}"


class QemuDriver(ComputeDriver):
    """VMs on this host under QEMU, with their files in ``state_dir``.

    ``accel`` is "tcg" (the default: works everywhere), "kvm", or "auto": a trial boot decides
    (:func:`~powerverse.infra.accel.detect_accel`, cached in ``state_dir/accel.json``; the tiny
    image it boots is built into ``state_dir/images``). ``clock`` gives the wall time (uptimes).
    """

    name = "qemu"

    def __init__(
        self,
        state_dir: Path,
        *,
        accel: str = "tcg",
        machine: str = "pc",
        qmp_timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        routed: RoutedNetwork | None = None,
        adopt_wait: float = 60.0,
    ) -> None:
        """``adopt_wait``: how long :meth:`adopt` waits for a QEMU still starting."""
        if accel not in ("auto", "kvm", "tcg"):
            raise ValueError(f"accel must be 'auto', 'kvm' or 'tcg', not {accel!r}")
        self.state_dir = state_dir
        self.machine = machine
        self.qmp_timeout = qmp_timeout
        self.clock = clock
        self.routed = routed or RoutedNetwork()
        self.adopt_wait = adopt_wait
        # Host interface names are shared by every driver on the host: salting them with the
        # state directory keeps two agents' "rental-2" (or a crashed test's) apart.
        self._net_salt = _short_hash(str(state_dir.resolve()))
        (state_dir / "instances").mkdir(parents=True, exist_ok=True)
        if accel == "auto":
            accel = "tcg"
            if KVM_DEVICE.exists():
                image = build_tiny_image(state_dir / "images")
                accel = detect_accel(state_dir / "accel.json", image)
        self.accel = accel
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()

    # ------------------------------------------------------------------ files, locks, QMP

    def _dir(self, instance_id: str) -> Path:
        if not _ID.match(instance_id):
            raise InstanceNotFound(f"no instance {instance_id!r} (ids are lower-case a-z0-9-)")
        return self.state_dir / "instances" / instance_id

    @contextlib.contextmanager
    def _locked(self, instance_id: str) -> Iterator[None]:
        """Serialize the operations on one instance (the agent calls from several threads)."""
        with self._locks_guard:
            lock = self._locks.setdefault(instance_id, threading.RLock())
        with lock:
            yield

    def _record(self, instance_id: str) -> dict[str, Any]:
        path = self._dir(instance_id) / "record.json"
        try:
            doc: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise InstanceNotFound(f"no instance {instance_id!r} on this host") from None
        return doc

    def _save(self, instance_id: str, record: Mapping[str, Any]) -> None:
        path = self._dir(instance_id) / "record.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(path)

    def _pid(self, instance_id: str) -> int | None:
        """The pid of the instance's live QEMU (checked by its command line, not just the
        pidfile, so a recycled pid is never mistaken for it)."""
        directory = self._dir(instance_id)
        try:
            pid = int((directory / "qemu.pid").read_text().strip())
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            if not any(str(directory / "qmp.sock") in arg for arg in proc.cmdline()):
                return None
        except (OSError, ValueError, psutil.Error):
            return None
        return pid

    @contextlib.contextmanager
    def _session(self, instance_id: str) -> Iterator[QmpSession]:
        """A QMP session, under the instance's lock: QEMU serves one QMP client at a time, so
        a second thread's connection would wait unanswered until the first one closes."""
        with self._locked(instance_id):
            if self._pid(instance_id) is None:
                raise InvalidInstanceState(f"instance {instance_id} is not running (QEMU is gone)")
            sock = self._dir(instance_id) / "qmp.sock"
            with QmpSession(sock, timeout=self.qmp_timeout) as session:
                yield session

    def _qmp(self, instance_id: str, command: str, args: Mapping[str, Any] | None = None) -> Any:
        with self._session(instance_id) as session:
            return session.execute(command, args)

    # ------------------------------------------------------------------ spawn

    def spawn(self, spec: InstanceSpec) -> InstanceInfo:
        _check_spec(spec)
        directory = self._dir(spec.instance_id)
        sock = directory / "qmp.sock"
        if len(os.fsencode(sock)) > _SOCKET_PATH_MAX:
            raise DriverError(
                f"the QMP socket path {sock} is longer than {_SOCKET_PATH_MAX} bytes, the limit "
                "of a unix socket: give the driver a shorter state directory"
            )
        with self._locked(spec.instance_id):
            try:
                directory.mkdir(parents=True)
            except FileExistsError:
                raise InstanceExists(
                    f"instance {spec.instance_id} already exists (destroy it first)"
                ) from None
            try:
                return self._spawn(spec, directory)
            except BaseException:
                self._kill(spec.instance_id)
                with contextlib.suppress(OSError, DriverError):
                    self._teardown_network(spec.instance_id)
                shutil.rmtree(directory, ignore_errors=True)
                raise

    def _spawn(self, spec: InstanceSpec, directory: Path) -> InstanceInfo:
        boot = spec.boot
        max_vcpus = spec.max_vcpus or spec.vcpus
        max_memory = spec.max_memory_mib or spec.memory_mib
        args = [
            find_tool("qemu-system-x86_64"), "-name", f"pv-{spec.instance_id}",
            "-machine", f"{self.machine},accel={self.accel}",
            "-cpu", cpu_model(self.accel),
            "-m", str(max_memory),
            "-smp", f"{spec.vcpus},maxcpus={max_vcpus}",
            "-display", "none", "-monitor", "none", "-nodefaults", "-vga", "none",
            "-serial", f"file:{directory / 'console.log'}",
            "-qmp", f"unix:{directory / 'qmp.sock'},server=on,wait=off",
            "-pidfile", str(directory / "qemu.pid"), "-daemonize",
            "-device", "virtio-balloon-pci,id=balloon0",
        ]  # fmt: skip
        if boot.kernel is not None and boot.initrd is not None:
            args += ["-kernel", str(boot.kernel), "-initrd", str(boot.initrd)]
            args += ["-append", boot.cmdline or "console=ttyS0 panic=-1"]
        if boot.disk is not None:
            overlay = _overlay(directory / "disk.qcow2", boot.disk, boot.disk_format, spec.disk_gib)
            args += ["-drive", f"file={overlay},format=qcow2,if=virtio,id=root"]
        record = self._new_record(spec, max_vcpus, max_memory)
        self._save(spec.instance_id, record)  # before QEMU: adopt() cleans up after a crash
        net_config = None
        if spec.network.mode == "routed":
            net_config = self._attach_routed(spec, record)
        if spec.ssh_public_keys or spec.startup_commands or boot.cloud_init or net_config:
            seed = write_seed(
                directory / "seed.iso",
                instance_id=spec.instance_id,
                hostname=spec.instance_id,
                ssh_keys=spec.ssh_public_keys,
                commands=spec.startup_commands,
                network_config=net_config,
            )
            args += ["-drive", f"file={seed},format=raw,if=virtio,readonly=on,id=seed"]
        for volume in spec.volumes:
            args += _volume_args(volume)
        for address in spec.gpu_pci_addresses:
            args += ["-device", f"vfio-pci,host={_vfio_device(address)}"]
        if spec.network.mode == "routed":
            self.routed.forward(int(record["ssh_port"]), str(record["guest_address"]))
            netdev = f"tap,id=net0,ifname={record['tap']},script=no,downscript=no"
            self._start(args + _nic(netdev, spec.instance_id))
        elif spec.network.mode == "tap":
            tap, bridge = _tap_names(
                spec.instance_id, spec.network.isolation_group, salt=self._net_salt
            )
            record["tap"], record["bridge"] = tap, bridge
            self._save(spec.instance_id, record)  # first, so a failure below removes them
            _tap_up(tap, bridge)
            netdev = f"tap,id=net0,ifname={tap},script=no,downscript=no"
            self._start(args + _nic(netdev, spec.instance_id))
        elif spec.network.mode == "user":
            self._start_user_net(spec, args, record)
        else:
            self._start(args)
        if spec.memory_mib < max_memory:
            self._qmp(spec.instance_id, "balloon", {"value": spec.memory_mib << 20})
        return self.info(spec.instance_id)

    def _new_record(self, spec: InstanceSpec, max_vcpus: int, max_memory: int) -> dict[str, Any]:
        return {
            "instance_id": spec.instance_id,
            "vcpus": spec.vcpus,
            "max_vcpus": max_vcpus,
            "memory_mib": spec.memory_mib,
            "max_memory_mib": max_memory,
            "network": spec.network.mode,
            "ssh_host": None,
            "ssh_port": None,
            "tap": None,
            "bridge": None,
            "guest_address": None,
            "accel": self.accel,
            "volumes": [v.volume_id for v in spec.volumes],
            "hotplugged": [],
            "started_at": self.clock(),
            "metadata": dict(spec.metadata),
        }

    def _attach_routed(self, spec: InstanceSpec, record: dict[str, Any]) -> str:
        """Give the instance an address on its group's bridge, a tap on it and a host port for
        SSH (recorded before each step, so a failure or a crash is cleaned up); the guest's
        ``network-config``."""
        self.routed.ensure_host()
        tap, bridge = _tap_names(
            spec.instance_id, spec.network.isolation_group, BRIDGE_PREFIX, salt=self._net_salt
        )
        record["tap"], record["bridge"] = tap, bridge
        self._save(spec.instance_id, record)
        where = self.routed.attach(spec.instance_id, bridge)
        host = spec.network.host_address
        if host in ("", "0.0.0.0") or host.startswith("127."):
            host = primary_address()
        record["guest_address"] = where.address
        record["ssh_host"] = host
        record["ssh_port"] = spec.network.ssh_host_port or self.routed.free_port()
        self._save(spec.instance_id, record)
        _tap_up(tap, bridge)
        return network_config(_mac(spec.instance_id), where, host_nameservers())

    def _start_user_net(self, spec: InstanceSpec, args: list[str], record: dict[str, Any]) -> None:
        """Start with user-mode networking; a free port picked here can be taken by someone
        else before QEMU binds it, so an automatic port is retried with another."""
        host = spec.network.host_address
        for attempt in range(_PORT_TRIES):
            port = spec.network.ssh_host_port or _free_port(host)
            forwards = [f"hostfwd=tcp:{host}:{port}-:22"]
            forwards += [f"hostfwd=tcp:{host}:{h}-:{g}" for h, g in spec.network.forwards]
            record["ssh_host"], record["ssh_port"] = host, port
            self._save(spec.instance_id, record)
            try:
                self._start(args + _nic("user,id=net0," + ",".join(forwards), spec.instance_id))
                return
            except DriverError as exc:
                retry = not spec.network.ssh_host_port and attempt + 1 < _PORT_TRIES
                if not (retry and "host forwarding" in str(exc)):
                    raise

    def _start(self, args: list[str]) -> None:
        done = subprocess.run(
            args, capture_output=True, text=True, check=False, timeout=60, start_new_session=True
        )
        if done.returncode != 0:
            raise DriverError(f"QEMU did not start: {done.stderr.strip()[-500:]}")

    # ------------------------------------------------------------------ destroy

    def _processes(self, instance_id: str) -> list[psutil.Process]:
        """Every live QEMU process started for the instance (its command line names the
        instance's QMP socket), found even before QEMU has written its pidfile: a QEMU still
        daemonizing when the agent was killed."""
        sock = str(self._dir(instance_id) / "qmp.sock")
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(sock in arg for arg in proc.info["cmdline"] or ()):
                found.append(proc)
        return found

    def _kill(self, instance_id: str) -> None:
        """Stop the instance's QEMU: ``quit`` over QMP, SIGKILL when that does not do it; then
        SIGKILL whatever else was started for it (a QEMU that had not written its pidfile)."""
        self._stop_qemu(instance_id)
        for proc in self._processes(instance_id):
            with contextlib.suppress(psutil.Error):
                proc.kill()
                proc.wait(timeout=5)

    def _stop_qemu(self, instance_id: str) -> None:
        pid = self._pid(instance_id)
        if pid is None:
            return
        with contextlib.suppress(DriverError):
            self._qmp(instance_id, "quit")
        try:
            psutil.Process(pid).wait(timeout=5)
        except psutil.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(timeout=5)
        except psutil.Error:
            pass

    def _teardown_network(self, instance_id: str) -> None:
        try:
            record = self._record(instance_id)
        except InstanceNotFound:
            return
        if record.get("network") == "routed":
            if record.get("ssh_port"):
                self.routed.unforward(int(record["ssh_port"]))
            if record.get("bridge"):
                self.routed.detach(instance_id, str(record["bridge"]))
        if record.get("tap"):
            _tap_down(str(record["tap"]), str(record["bridge"]))

    def _remove(self, instance_id: str) -> None:
        self._kill(instance_id)
        self._teardown_network(instance_id)
        shutil.rmtree(self._dir(instance_id), ignore_errors=True)

    def destroy(self, instance_id: str) -> None:
        with self._locked(instance_id):
            self._record(instance_id)  # InstanceNotFound for unknown ids
            self._remove(instance_id)

    # ------------------------------------------------------------------ power

    def suspend(self, instance_id: str) -> None:
        with self._locked(instance_id):
            state = self.info(instance_id).state
            if state != InstanceState.RUNNING:
                raise InvalidInstanceState(
                    f"instance {instance_id} is {state.value}: only a running one can be suspended"
                )
            self._qmp(instance_id, "stop")

    def resume(self, instance_id: str) -> None:
        with self._locked(instance_id):
            state = self.info(instance_id).state
            if state != InstanceState.PAUSED:
                raise InvalidInstanceState(
                    f"instance {instance_id} is {state.value}: only a suspended one can be resumed"
                )
            self._qmp(instance_id, "cont")

    def reboot(self, instance_id: str, *, hard: bool = False) -> None:
        with self._locked(instance_id):
            state = self.info(instance_id).state
            if state not in (InstanceState.RUNNING, InstanceState.PAUSED, InstanceState.CRASHED):
                raise InvalidInstanceState(f"instance {instance_id} is {state.value}")
            if hard:
                self._qmp(instance_id, "system_reset")
                if state != InstanceState.RUNNING:  # a reset leaves these in "prelaunch"
                    self._qmp(instance_id, "cont")
            else:
                if state != InstanceState.RUNNING:
                    raise InvalidInstanceState(
                        f"instance {instance_id} is {state.value}: a soft reboot needs a running "
                        "guest (use hard=True)"
                    )
                keys = [{"type": "qcode", "data": k} for k in ("ctrl", "alt", "delete")]
                self._qmp(instance_id, "send-key", {"keys": keys})

    # ------------------------------------------------------------------ resize

    def resize(
        self, instance_id: str, *, vcpus: int | None = None, memory_mib: int | None = None
    ) -> InstanceInfo:
        with self._locked(instance_id):
            record = self._record(instance_id)
            if vcpus is not None:
                _check_range("vcpus", vcpus, 1, int(record["max_vcpus"]), "max_vcpus")
            if memory_mib is not None:
                ceiling = int(record["max_memory_mib"])
                _check_range("memory_mib", memory_mib, _MIN_MEMORY_MIB, ceiling, "max_memory_mib")
            if vcpus is not None:
                self._set_vcpus(instance_id, record, vcpus)
            if memory_mib is not None:
                self._qmp(instance_id, "balloon", {"value": memory_mib << 20})
                record["memory_mib"] = memory_mib
                self._save(instance_id, record)
            return self.info(instance_id)

    def _set_vcpus(self, instance_id: str, record: dict[str, Any], vcpus: int) -> None:
        current = int(record["vcpus"])
        if vcpus < current:
            raise UnsupportedOperation(
                f"instance {instance_id} has {current} vCPUs: they can be added while it runs, "
                "not taken away (QEMU 7.2 crashes on the next reset after a vCPU unplug)"
            )
        plugged: list[str] = list(record.get("hotplugged", []))
        with self._session(instance_id) as qmp:
            while current < vcpus:
                slots = qmp.execute("query-hotpluggable-cpus")
                free = [s for s in slots if "qom-path" not in s]
                if not free:
                    raise DriverError(f"instance {instance_id}: no hot-pluggable CPU slot left")
                slot = min(free, key=lambda s: tuple(sorted(s["props"].items())))
                props = slot["props"]
                dev_id = "cpu-" + "-".join(str(props[k]) for k in sorted(props))
                qmp.execute("device_add", {"driver": slot["type"], "id": dev_id, **props})
                plugged.append(dev_id)
                current += 1
                record["vcpus"], record["hotplugged"] = current, plugged
                self._save(instance_id, record)

    # ------------------------------------------------------------------ observation

    def console_log(self, instance_id: str, *, max_bytes: int = 65536) -> str:
        self._record(instance_id)
        path = self._dir(instance_id) / "console.log"
        try:
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - max_bytes))
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def info(self, instance_id: str) -> InstanceInfo:
        record = self._record(instance_id)
        pid = self._pid(instance_id)
        if pid is None:
            state = InstanceState.SHUTOFF
        else:
            try:
                status = self._qmp(instance_id, "query-status")
                state = _STATES.get(status.get("status"), InstanceState.RUNNING)
            except QmpError:
                state = InstanceState.BUILDING  # QMP not up (yet)
            except InvalidInstanceState:
                pid, state = None, InstanceState.SHUTOFF  # exited just now
        return InstanceInfo(
            instance_id=instance_id,
            state=state,
            vcpus=int(record["vcpus"]),
            memory_mib=int(record["memory_mib"]),
            accel=str(record["accel"]),
            pid=pid,
            ssh_host=record.get("ssh_host"),
            ssh_port=record.get("ssh_port"),
            volumes=tuple(record.get("volumes", [])),
        )

    def balloon_actual_mib(self, instance_id: str) -> int:
        """Guest memory as the balloon device reports it (what the guest has given back)."""
        return int(self._qmp(instance_id, "query-balloon")["actual"]) >> 20

    def usage(self, instance_id: str) -> InstanceUsage:
        record = self._record(instance_id)
        pid = self._pid(instance_id)
        cpu = 0.0
        rss = rd = wr = 0
        uptime = 0.0
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                with proc.oneshot():
                    times = proc.cpu_times()
                    cpu, rss = times.user + times.system, proc.memory_info().rss
                    uptime = max(0.0, self.clock() - proc.create_time())
            with contextlib.suppress(DriverError):
                for dev in self._qmp(instance_id, "query-blockstats"):
                    rd += int(dev["stats"]["rd_bytes"])
                    wr += int(dev["stats"]["wr_bytes"])
        rx = tx = 0
        if record.get("tap"):  # the host side of a tap counts the other way round
            rx = _net_counter(str(record["tap"]), "tx_bytes")
            tx = _net_counter(str(record["tap"]), "rx_bytes")
        return InstanceUsage(
            instance_id=instance_id,
            cpu_seconds=float(cpu),
            memory_rss_bytes=int(rss),
            disk_read_bytes=rd,
            disk_write_bytes=wr,
            net_rx_bytes=rx,
            net_tx_bytes=tx,
            uptime_seconds=uptime,
        )

    def list_instances(self) -> list[str]:
        root = self.state_dir / "instances"
        return sorted(p.name for p in root.iterdir() if (p / "record.json").exists())

    def adopt(self) -> list[str]:
        adopted = []
        for instance_id in self.list_instances():
            with self._locked(instance_id):
                if self._answers(instance_id) or self._comes_up(instance_id, self.adopt_wait):
                    adopted.append(instance_id)
                else:  # died (with the host, or killed), or cannot be controlled: free it
                    self._remove(instance_id)
        for leftover in (self.state_dir / "instances").iterdir():
            if leftover.name not in adopted and not (leftover / "record.json").exists():
                shutil.rmtree(leftover, ignore_errors=True)  # a spawn cut short before QEMU
        return adopted

    def _comes_up(self, instance_id: str, timeout: float = 60.0) -> bool:
        """Whether a QEMU still starting for the instance (the agent was killed while it
        daemonized) comes to answer on QMP within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self._processes(instance_id):
            if self._answers(instance_id):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return False

    def _answers(self, instance_id: str) -> bool:
        """Whether the instance's QEMU is alive and answers on its QMP socket."""
        try:
            self._qmp(instance_id, "query-status")
        except DriverError:
            return False
        return True

    # ------------------------------------------------------------------ volumes

    def attach_volume(self, instance_id: str, volume: VolumeAttachment) -> None:
        _check_volume_id(volume.volume_id)
        if not volume.path.is_file():
            raise DriverError(f"volume {volume.volume_id}: no file at {volume.path}")
        with self._locked(instance_id):
            record = self._record(instance_id)
            if volume.volume_id in record["volumes"]:
                raise DriverError(f"volume {volume.volume_id} is already attached")
            node = f"vol-{volume.volume_id}"
            with self._session(instance_id) as qmp:
                qmp.execute(
                    "blockdev-add",
                    {
                        "driver": "qcow2",
                        "node-name": node,
                        "read-only": volume.read_only,
                        "file": {"driver": "file", "filename": str(volume.path)},
                    },
                )
                try:
                    qmp.execute(
                        "device_add",
                        {
                            "driver": "virtio-blk-pci",
                            "id": f"dev-{volume.volume_id}",
                            "drive": node,
                        },
                    )
                except DriverError:
                    with contextlib.suppress(DriverError):
                        qmp.execute("blockdev-del", {"node-name": node})
                    raise
            record["volumes"].append(volume.volume_id)
            self._save(instance_id, record)

    def detach_volume(self, instance_id: str, volume_id: str) -> None:
        with self._locked(instance_id):
            record = self._record(instance_id)
            if volume_id not in record["volumes"]:
                raise DriverError(f"volume {volume_id} is not attached to {instance_id}")
            device = f"dev-{volume_id}"
            with self._session(instance_id) as qmp:
                qmp.execute("device_del", {"id": device})
                _wait_gone(
                    qmp, device, f"the guest of {instance_id} did not release volume {volume_id}"
                )
                _wait_until(
                    lambda: _try(qmp, "blockdev-del", {"node-name": f"vol-{volume_id}"}),
                    f"QEMU kept volume {volume_id} open",
                )
            record["volumes"].remove(volume_id)
            self._save(instance_id, record)

    # ------------------------------------------------------------------ snapshot

    def snapshot(self, instance_id: str, target: Path) -> Path:
        with self._locked(instance_id):
            self._record(instance_id)
            overlay = self._dir(instance_id) / "disk.qcow2"
            if not overlay.exists():
                raise UnsupportedOperation(
                    f"instance {instance_id} has no disk to snapshot (it boots a kernel only)"
                )
            running = self.info(instance_id).state == InstanceState.RUNNING
            tmp = target.with_name(f".{target.name}.partial")
            if running:
                self._qmp(instance_id, "stop")  # QEMU flushes the disks before it reports
            try:
                done = subprocess.run(
                    [find_tool("qemu-img"), "convert", "-U", "-O", "qcow2", str(overlay), str(tmp)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
            finally:
                if running:
                    self._qmp(instance_id, "cont")
            if done.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise DriverError(f"snapshot of {instance_id} failed: {done.stderr.strip()}")
            tmp.replace(target)
            return target


# ---------------------------------------------------------------------- helpers


def _check_spec(spec: InstanceSpec) -> None:
    """Refuse a spec the driver cannot run, naming the field."""
    if not _ID.match(spec.instance_id):
        raise DriverError(
            f"instance id {spec.instance_id!r}: use 1-63 lower-case letters, digits and '-'"
        )
    if spec.vcpus < 1 or spec.memory_mib < _MIN_MEMORY_MIB:
        raise DriverError(f"an instance needs at least 1 vCPU and {_MIN_MEMORY_MIB} MiB of memory")
    if (spec.max_vcpus or spec.vcpus) < spec.vcpus:
        raise DriverError(f"max_vcpus ({spec.max_vcpus}) is below vcpus ({spec.vcpus})")
    if (spec.max_memory_mib or spec.memory_mib) < spec.memory_mib:
        raise DriverError(
            f"max_memory_mib ({spec.max_memory_mib}) is below memory_mib ({spec.memory_mib})"
        )
    boot = spec.boot
    if boot.disk is None and (boot.kernel is None or boot.initrd is None):
        raise DriverError("boot needs a disk image, or a kernel and an initrd")
    for path in (boot.disk, boot.kernel, boot.initrd):
        if path is not None and not path.is_file():
            raise DriverError(f"boot file {path} does not exist")
    if boot.disk_format not in ("qcow2", "raw"):
        raise DriverError(f"disk_format must be 'qcow2' or 'raw', not {boot.disk_format!r}")
    for volume in spec.volumes:
        _check_volume_id(volume.volume_id)
    try:  # what goes into the seed: keys and commands (the hostname is the id)
        meta_data(spec.instance_id, spec.instance_id)
        user_data(spec.ssh_public_keys, spec.startup_commands)
    except ConfigError as exc:
        raise DriverError(f"instance {spec.instance_id}: {exc}") from None
    mode = spec.network.mode
    if mode not in NETWORK_MODES:
        raise DriverError(f"network mode {mode!r}: use one of {', '.join(NETWORK_MODES)}")
    if mode != "user" and spec.network.forwards:
        raise DriverError("port forwards apply to network mode 'user' only")
    if mode in ("tap", "routed") and os.geteuid() != 0:
        raise UnsupportedOperation(
            f"network mode {mode!r} needs root (it creates tap devices and bridges); "
            "run the agent as root or use mode 'user'"
        )


def _check_range(name: str, value: int, low: int, ceiling: int, field: str) -> None:
    if value < low:
        raise DriverError(f"{name} must be at least {low}, not {value}")
    if value > ceiling:
        raise UnsupportedOperation(
            f"{name} {value} is above the instance's ceiling of {ceiling} ({field}, fixed at "
            "spawn): spawn it with a higher ceiling"
        )


def _check_volume_id(volume_id: str) -> None:
    if not _VOLUME_ID.match(volume_id):
        raise DriverError(
            f"volume id {volume_id!r}: use up to 41 letters, digits, '_', '.' and '-'"
        )


def _overlay(overlay: Path, base: Path, base_format: str, disk_gib: int | None) -> Path:
    """A qcow2 overlay over ``base`` (which is never written), grown to ``disk_gib``."""
    create = [find_tool("qemu-img"), "create", "-q", "-f", "qcow2"]
    create += ["-b", str(base.resolve()), "-F", base_format, str(overlay)]
    if disk_gib:
        create.append(f"{disk_gib}G")
    done = subprocess.run(create, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DriverError(f"qemu-img create failed: {done.stderr.strip()}")
    return overlay


def _volume_args(volume: VolumeAttachment) -> list[str]:
    """A volume attached at start, with the same node and device names as a hot-plugged one."""
    ro = "on" if volume.read_only else "off"
    node = f"vol-{volume.volume_id}"
    return [
        "-blockdev",
        f"driver=qcow2,node-name={node},read-only={ro},"
        f"file.driver=file,file.filename={volume.path}",
        "-device",
        f"virtio-blk-pci,id=dev-{volume.volume_id},drive={node}",
    ]


def _nic(netdev: str, instance_id: str) -> list[str]:
    return ["-netdev", netdev, "-device", f"virtio-net-pci,netdev=net0,mac={_mac(instance_id)}"]


def _vfio_device(address: str) -> str:
    """Check that a PCI device exists and is bound to vfio-pci; its full address."""
    if not _PCI.match(address):
        raise DriverError(f"GPU address {address!r}: expected a PCI address like 0000:65:00.0")
    full = address if address.count(":") == 2 else f"0000:{address}"
    device = Path("/sys/bus/pci/devices") / full
    if not device.exists():
        raise UnsupportedOperation(f"no PCI device {full} on this host")
    driver = device / "driver"
    bound = driver.resolve().name if driver.exists() else None
    if bound != "vfio-pci":
        raise UnsupportedOperation(
            f"PCI device {full} is bound to {bound or 'no driver'}, not vfio-pci: bind it first "
            f"(driverctl set-override {full} vfio-pci)"
        )
    return full


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
    if ip is None:
        raise ToolMissing("ip is not installed (Debian: apt-get install iproute2)")
    return subprocess.run([ip, *args], capture_output=True, text=True, check=False)


def _tap_names(
    instance_id: str, group: str | None, bridge_prefix: str = "pvbr-", *, salt: str = ""
) -> tuple[str, str]:
    """The instance's tap device and its isolation group's bridge (interface names are at most
    15 characters, hence the hashes; ``salt`` names the driver, so that two drivers' instance
    ids and groups never share a device)."""
    return (
        f"pvtap-{_short_hash(f'{salt}/{instance_id}')}",
        f"{bridge_prefix}{_short_hash(f'{salt}/{group or instance_id}')}",
    )


def _tap_up(tap: str, bridge: str) -> None:
    """Create the tap device on the bridge (and the bridge when it is the group's first)."""
    with _BRIDGE_LOCK:
        if not Path("/sys/class/net", bridge).exists():
            made = _ip("link", "add", bridge, "type", "bridge")
            if made.returncode != 0 and not Path("/sys/class/net", bridge).exists():
                raise DriverError(f"cannot create bridge {bridge}: {made.stderr.strip()}")
        if Path("/sys/class/net", tap).exists():  # left by a crash of this very instance
            _ip("link", "del", tap)
        for step in (
            ("link", "set", bridge, "up"),
            ("tuntap", "add", "dev", tap, "mode", "tap"),
            ("link", "set", tap, "master", bridge),
            ("link", "set", tap, "up"),
        ):
            done = _ip(*step)
            if done.returncode != 0:
                raise DriverError(f"ip {' '.join(step)} failed: {done.stderr.strip()}")


def _tap_down(tap: str, bridge: str) -> None:
    """Remove the tap device, and its bridge once no other instance uses it."""
    with _BRIDGE_LOCK:
        if Path("/sys/class/net", tap).exists():
            _ip("link", "del", tap)
        ports = Path("/sys/class/net", bridge, "brif")
        if ports.is_dir() and not any(ports.iterdir()):
            _ip("link", "del", bridge)


def _net_counter(device: str, name: str) -> int:
    try:
        return int(Path("/sys/class/net", device, "statistics", name).read_text())
    except (OSError, ValueError):
        return 0


def _peripherals(qmp: QmpSession) -> set[str]:
    """Ids of the devices added with an id (``device_add``, ``-device id=``)."""
    return {p["name"] for p in qmp.execute("qom-list", {"path": "/machine/peripheral"})}


def _wait_gone(qmp: QmpSession, device_id: str, failure: str) -> None:
    """Wait for the guest to release an unplugged device (it must acknowledge the unplug)."""
    _wait_until(lambda: device_id not in _peripherals(qmp), failure)


def _try(qmp: QmpSession, command: str, args: Mapping[str, Any]) -> bool:
    try:
        qmp.execute(command, args)
    except QmpError as exc:
        if exc.error_class is None:
            raise
        return False
    return True


def _wait_until(done: Callable[[], bool], failure: str, timeout: float = 30.0) -> None:
    """Poll ``done`` until it holds; DriverError(``failure``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise DriverError(failure)
        time.sleep(0.2)
