"""The ``qemu`` ComputeDriver: VMs run by QEMU and controlled over QMP.

Each instance lives in ``<state_dir>/instances/<id>/``: ``record.json`` (its shape, ports and
accelerator), the root disk as a qcow2 overlay over the base image, the cloud-init seed, the QMP
socket, the serial console log and QEMU's pidfile. QEMU runs daemonized (``-daemonize``), so a
VM outlives the agent: after a restart :meth:`QemuDriver.adopt` finds the still-running ones by
pidfile and QMP socket and removes what dead ones left behind.

- Acceleration: ``kvm`` (whitepaper "type1") or ``tcg`` ("type2"), decided by a trial boot
  (:mod:`powerverse.infra.accel`) unless given.
- Networking: QEMU user mode with the guest's SSH port forwarded to a host port. Tap devices on
  per-lease bridges are not implemented yet (``mode="tap"`` raises UnsupportedOperation).
- Resize: vCPUs by hot plug (``-smp cpus=N,maxcpus=M`` then ``device_add`` of the next
  hot-pluggable CPU, ``device_del`` to take one back), memory by the virtio balloon within the
  memory the VM was started with.
- GPU passthrough: each ``gpu_pci_addresses`` entry becomes ``-device vfio-pci,host=ADDR``; the
  host must have bound the device to vfio-pci first (docs/infra.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
from qemu.qmp.legacy import QEMUMonitorProtocol

from powerverse.infra.cloudinit import write_seed
from powerverse.infra.drivers.base import (
    ComputeDriver,
    InstanceInfo,
    InstanceSpec,
    InstanceState,
    InstanceUsage,
    VolumeAttachment,
)
from powerverse.infra.exceptions import (
    DriverError,
    InstanceExists,
    InstanceNotFound,
    InvalidInstanceState,
    UnsupportedOperation,
)
from powerverse.infra.tools import find_tool

__all__ = ["QemuDriver"]

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_QMP_TIMEOUT = 10.0
_STATES = {
    "running": InstanceState.RUNNING,
    "paused": InstanceState.PAUSED,
    "suspended": InstanceState.PAUSED,
    "shutdown": InstanceState.SHUTOFF,
    "internal-error": InstanceState.CRASHED,
    "guest-panicked": InstanceState.CRASHED,
    "inmigrate": InstanceState.BUILDING,
    "prelaunch": InstanceState.BUILDING,
}


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class QemuDriver(ComputeDriver):
    """VMs on this host under QEMU, with their files in ``state_dir``."""

    name = "qemu"

    def __init__(self, state_dir: Path, *, accel: str = "tcg", machine: str = "pc") -> None:
        if accel not in ("kvm", "tcg"):
            raise ValueError(f"accel must be 'kvm' or 'tcg', not {accel!r}")
        self.state_dir = state_dir
        self.accel = accel
        self.machine = machine
        (state_dir / "instances").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ files and QMP

    def _dir(self, instance_id: str) -> Path:
        if not _ID.match(instance_id):
            raise InstanceNotFound(f"no instance {instance_id!r} (ids are lower-case a-z0-9-)")
        return self.state_dir / "instances" / instance_id

    def _record(self, instance_id: str) -> dict[str, Any]:
        path = self._dir(instance_id) / "record.json"
        try:
            doc: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise InstanceNotFound(f"no instance {instance_id!r} on this host") from None
        return doc

    def _save(self, instance_id: str, record: dict[str, Any]) -> None:
        path = self._dir(instance_id) / "record.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(path)

    def _pid(self, instance_id: str) -> int | None:
        try:
            pid = int((self._dir(instance_id) / "qemu.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE or "qemu" not in proc.name():
                return None
        except psutil.Error:
            return None
        return pid

    def _qmp(self, instance_id: str, command: str, args: dict[str, Any] | None = None) -> Any:
        sock = self._dir(instance_id) / "qmp.sock"
        if self._pid(instance_id) is None:
            raise InvalidInstanceState(f"instance {instance_id} is not running")
        qmp = QEMUMonitorProtocol(str(sock))
        try:
            qmp.connect()
            qmp.settimeout(_QMP_TIMEOUT)
            reply = qmp.cmd_raw(command, args)
        except (OSError, ValueError) as exc:
            raise DriverError(f"instance {instance_id}: QMP {command} failed: {exc}") from None
        finally:
            with contextlib.suppress(Exception):
                qmp.close()
        if "error" in reply:
            raise DriverError(f"instance {instance_id}: {command}: {reply['error'].get('desc')}")
        return reply.get("return")

    # ------------------------------------------------------------------ lifecycle

    def spawn(self, spec: InstanceSpec) -> InstanceInfo:
        if not _ID.match(spec.instance_id):
            raise DriverError(f"instance id {spec.instance_id!r}: use lower-case a-z, 0-9 and -")
        if spec.vcpus < 1 or spec.memory_mib < 32:
            raise DriverError("an instance needs at least 1 vCPU and 32 MiB of memory")
        max_vcpus = spec.max_vcpus or spec.vcpus
        max_memory = spec.max_memory_mib or spec.memory_mib
        if max_vcpus < spec.vcpus or max_memory < spec.memory_mib:
            raise DriverError("max_vcpus and max_memory_mib must not be below vcpus and memory")
        if spec.network.mode not in ("user", "none"):
            raise UnsupportedOperation(
                f"network mode {spec.network.mode!r} is not supported yet (use 'user')"
            )
        boot = spec.boot
        if boot.disk is None and (boot.kernel is None or boot.initrd is None):
            raise DriverError("boot needs a disk image or a kernel and an initrd")
        directory = self._dir(spec.instance_id)
        try:
            directory.mkdir(parents=True)
        except FileExistsError:
            raise InstanceExists(f"instance {spec.instance_id} already exists") from None
        try:
            return self._spawn(spec, directory, max_vcpus, max_memory)
        except BaseException:
            self._kill(spec.instance_id)
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def _spawn(
        self, spec: InstanceSpec, directory: Path, max_vcpus: int, max_memory: int
    ) -> InstanceInfo:
        qemu = find_tool("qemu-system-x86_64")
        boot = spec.boot
        args = [
            qemu, "-name", f"pv-{spec.instance_id}",
            "-machine", f"{self.machine},accel={self.accel}",
            "-cpu", "host" if self.accel == "kvm" else "max",
            "-m", str(max_memory),
            "-smp", f"{spec.vcpus},maxcpus={max_vcpus}",
            "-display", "none", "-monitor", "none", "-no-reboot",
            "-serial", f"file:{directory / 'console.log'}",
            "-qmp", f"unix:{directory / 'qmp.sock'},server=on,wait=off",
            "-pidfile", str(directory / "qemu.pid"), "-daemonize",
            "-device", "virtio-balloon-pci,id=balloon0",
        ]  # fmt: skip
        if boot.kernel is not None and boot.initrd is not None:
            args += ["-kernel", str(boot.kernel), "-initrd", str(boot.initrd)]
            args += ["-append", boot.cmdline or "console=ttyS0 panic=-1"]
        if boot.disk is not None:
            overlay = directory / "disk.qcow2"
            create = [find_tool("qemu-img"), "create", "-q", "-f", "qcow2"]
            create += ["-b", str(boot.disk.resolve()), "-F", boot.disk_format, str(overlay)]
            if spec.disk_gib:
                create.append(f"{spec.disk_gib}G")
            done = subprocess.run(create, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise DriverError(f"qemu-img create failed: {done.stderr.strip()}")
            args += ["-drive", f"file={overlay},format=qcow2,if=virtio,id=root"]
        if spec.ssh_public_keys or spec.startup_commands or boot.cloud_init:
            seed = write_seed(
                directory / "seed.iso",
                instance_id=spec.instance_id,
                hostname=spec.instance_id,
                ssh_keys=spec.ssh_public_keys,
                commands=spec.startup_commands,
            )
            args += ["-drive", f"file={seed},format=raw,if=virtio,readonly=on,id=seed"]
        for volume in spec.volumes:
            args += ["-drive", _drive(volume) + f",if=virtio,id=vol-{volume.volume_id}"]
        ssh_port: int | None = None
        if spec.network.mode == "user":
            host = spec.network.host_address
            ssh_port = spec.network.ssh_host_port or _free_port(host)
            forwards = [f"hostfwd=tcp:{host}:{ssh_port}-:22"]
            forwards += [f"hostfwd=tcp:{host}:{h}-:{g}" for h, g in spec.network.forwards]
            args += ["-netdev", "user,id=net0," + ",".join(forwards)]
            args += ["-device", "virtio-net-pci,netdev=net0"]
        else:
            args += ["-nic", "none"]
        for address in spec.gpu_pci_addresses:
            args += ["-device", f"vfio-pci,host={address}"]
        record = {
            "instance_id": spec.instance_id,
            "vcpus": spec.vcpus,
            "max_vcpus": max_vcpus,
            "memory_mib": spec.memory_mib,
            "max_memory_mib": max_memory,
            "ssh_host": spec.network.host_address if ssh_port else None,
            "ssh_port": ssh_port,
            "accel": self.accel,
            "volumes": [v.volume_id for v in spec.volumes],
            "hotplugged": [],
            "started_at": time.time(),
            "metadata": dict(spec.metadata),
        }
        self._save(spec.instance_id, record)
        done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise DriverError(f"QEMU did not start: {done.stderr.strip()[-500:]}")
        if spec.memory_mib < max_memory:
            self._qmp(spec.instance_id, "balloon", {"value": spec.memory_mib << 20})
        return self.info(spec.instance_id)

    def _kill(self, instance_id: str) -> None:
        pid = self._pid(instance_id)
        if pid is None:
            return
        with contextlib.suppress(DriverError):
            self._qmp(instance_id, "quit")
        try:
            proc = psutil.Process(pid)
            proc.wait(timeout=5)
        except psutil.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(timeout=5)
        except psutil.Error:
            pass

    def destroy(self, instance_id: str) -> None:
        self._record(instance_id)  # InstanceNotFound for unknown ids
        self._kill(instance_id)
        shutil.rmtree(self._dir(instance_id), ignore_errors=True)

    def suspend(self, instance_id: str) -> None:
        if self.info(instance_id).state != InstanceState.RUNNING:
            raise InvalidInstanceState(f"instance {instance_id} is not running")
        self._qmp(instance_id, "stop")

    def resume(self, instance_id: str) -> None:
        if self.info(instance_id).state != InstanceState.PAUSED:
            raise InvalidInstanceState(f"instance {instance_id} is not suspended")
        self._qmp(instance_id, "cont")

    def reboot(self, instance_id: str, *, hard: bool = False) -> None:
        self._record(instance_id)
        if hard:
            self._qmp(instance_id, "system_reset")
        else:
            keys = [{"type": "qcode", "data": k} for k in ("ctrl", "alt", "delete")]
            self._qmp(instance_id, "send-key", {"keys": keys})

    def resize(
        self, instance_id: str, *, vcpus: int | None = None, memory_mib: int | None = None
    ) -> InstanceInfo:
        record = self._record(instance_id)
        if vcpus is not None and not 1 <= vcpus <= record["max_vcpus"]:
            raise DriverError(f"vcpus must be between 1 and {record['max_vcpus']}")
        if memory_mib is not None and not 32 <= memory_mib <= record["max_memory_mib"]:
            raise DriverError(f"memory_mib must be between 32 and {record['max_memory_mib']}")
        if vcpus is not None:
            self._set_vcpus(instance_id, record, vcpus)
        if memory_mib is not None:
            self._qmp(instance_id, "balloon", {"value": memory_mib << 20})
            record = self._record(instance_id)
            record["memory_mib"] = memory_mib
            self._save(instance_id, record)
        return self.info(instance_id)

    def _set_vcpus(self, instance_id: str, record: dict[str, Any], vcpus: int) -> None:
        current = int(record["vcpus"])
        plugged: list[str] = list(record.get("hotplugged", []))
        while current < vcpus:
            slots = self._qmp(instance_id, "query-hotpluggable-cpus")
            free = [s for s in slots if "qom-path" not in s]
            if not free:
                raise DriverError("no hot-pluggable CPU slot left")
            slot = min(free, key=lambda s: tuple(sorted(s["props"].items())))
            dev_id = f"cpu{current}"
            device = {"driver": slot["type"], "id": dev_id, **slot["props"]}
            self._qmp(instance_id, "device_add", device)
            plugged.append(dev_id)
            current += 1
        while current > vcpus:
            if not plugged:
                raise UnsupportedOperation("only hot-plugged vCPUs can be taken away")
            self._qmp(instance_id, "device_del", {"id": plugged.pop()})
            current -= 1
        record["vcpus"], record["hotplugged"] = current, plugged
        self._save(instance_id, record)

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
            except DriverError:
                state = InstanceState.BUILDING  # QMP not up yet
        memory = int(record["memory_mib"])
        return InstanceInfo(
            instance_id=instance_id,
            state=state,
            vcpus=int(record["vcpus"]),
            memory_mib=memory,
            accel=str(record["accel"]),
            pid=pid,
            ssh_host=record.get("ssh_host"),
            ssh_port=record.get("ssh_port"),
            volumes=tuple(record.get("volumes", [])),
        )

    def balloon_actual_mib(self, instance_id: str) -> int:
        """Guest memory as the balloon driver reports it (the guest's view)."""
        return int(self._qmp(instance_id, "query-balloon")["actual"]) >> 20

    def usage(self, instance_id: str) -> InstanceUsage:
        record = self._record(instance_id)
        pid = self._pid(instance_id)
        cpu = rss = rd = wr = 0
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                times = proc.cpu_times()
                cpu, rss = times.user + times.system, proc.memory_info().rss
            with contextlib.suppress(DriverError):
                for dev in self._qmp(instance_id, "query-blockstats"):
                    rd += int(dev["stats"]["rd_bytes"])
                    wr += int(dev["stats"]["wr_bytes"])
        return InstanceUsage(
            instance_id=instance_id,
            cpu_seconds=float(cpu),
            memory_rss_bytes=int(rss),
            disk_read_bytes=rd,
            disk_write_bytes=wr,
            net_rx_bytes=0,  # user-mode networking keeps no byte counters
            net_tx_bytes=0,
            uptime_seconds=max(0.0, time.time() - float(record["started_at"])),
        )

    def list_instances(self) -> list[str]:
        root = self.state_dir / "instances"
        return sorted(p.name for p in root.iterdir() if (p / "record.json").exists())

    def adopt(self) -> list[str]:
        adopted = []
        for instance_id in self.list_instances():
            if self._pid(instance_id) is not None:
                adopted.append(instance_id)
            else:  # died with the host or was killed: nothing to serve, free its files
                shutil.rmtree(self._dir(instance_id), ignore_errors=True)
        for leftover in (self.state_dir / "instances").iterdir():
            if leftover.name not in adopted and not (leftover / "record.json").exists():
                shutil.rmtree(leftover, ignore_errors=True)  # a spawn cut short
        return adopted

    def attach_volume(self, instance_id: str, volume: VolumeAttachment) -> None:
        record = self._record(instance_id)
        if volume.volume_id in record["volumes"]:
            raise DriverError(f"volume {volume.volume_id} is already attached")
        node = f"vol-{volume.volume_id}"
        self._qmp(
            instance_id,
            "blockdev-add",
            {
                "driver": "qcow2",
                "node-name": node,
                "read-only": volume.read_only,
                "file": {"driver": "file", "filename": str(volume.path)},
            },
        )
        try:
            self._qmp(
                instance_id,
                "device_add",
                {"driver": "virtio-blk-pci", "id": f"dev-{volume.volume_id}", "drive": node},
            )
        except DriverError:
            with contextlib.suppress(DriverError):
                self._qmp(instance_id, "blockdev-del", {"node-name": node})
            raise
        record["volumes"].append(volume.volume_id)
        self._save(instance_id, record)

    def detach_volume(self, instance_id: str, volume_id: str) -> None:
        record = self._record(instance_id)
        if volume_id not in record["volumes"]:
            raise DriverError(f"volume {volume_id} is not attached to {instance_id}")
        self._qmp(instance_id, "device_del", {"id": f"dev-{volume_id}"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the guest acknowledges the unplug
            devices = self._qmp(instance_id, "query-block")
            if not any(_is_device(d, volume_id) for d in devices):
                break
            time.sleep(0.2)
        else:
            raise DriverError(f"the guest did not release volume {volume_id}")
        with contextlib.suppress(DriverError):
            self._qmp(instance_id, "blockdev-del", {"node-name": f"vol-{volume_id}"})
        record["volumes"].remove(volume_id)
        self._save(instance_id, record)

    def snapshot(self, instance_id: str, target: Path) -> Path:
        self._record(instance_id)
        overlay = self._dir(instance_id) / "disk.qcow2"
        if not overlay.exists():
            raise UnsupportedOperation(f"instance {instance_id} has no disk to snapshot")
        running = self.info(instance_id).state == InstanceState.RUNNING
        if running:
            self._qmp(instance_id, "stop")
        try:
            done = subprocess.run(
                [find_tool("qemu-img"), "convert", "-U", "-O", "qcow2", str(overlay), str(target)],
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            if running:
                self._qmp(instance_id, "cont")
        if done.returncode != 0:
            raise DriverError(f"snapshot failed: {done.stderr.strip()}")
        return target


def _is_device(block: dict[str, Any], volume_id: str) -> bool:
    qdev = str(block.get("qdev", ""))
    return qdev == f"dev-{volume_id}" or qdev.startswith(f"/machine/peripheral/dev-{volume_id}/")


def _drive(volume: VolumeAttachment) -> str:
    ro = ",readonly=on" if volume.read_only else ""
    return f"file={volume.path},format=qcow2{ro}"
