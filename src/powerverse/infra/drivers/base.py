"""The driver interfaces: VMs (:class:`ComputeDriver`) and sandboxed tasks (:class:`TaskRunner`).

:class:`ComputeDriver` is modelled on OpenStack Nova's ``ComputeDriver``: one object per host
that spawns, controls and destroys instances named by a caller-chosen id (the agent uses the
rental id), and that can re-adopt the instances it left running after the agent restarts.
Calls are synchronous (the agent runs them in worker threads); every failure is a
:class:`~powerverse.infra.exceptions.DriverError`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BootSource",
    "ComputeDriver",
    "InstanceInfo",
    "InstanceSpec",
    "InstanceState",
    "InstanceUsage",
    "NetworkSpec",
    "TaskLimits",
    "TaskOutcome",
    "TaskResult",
    "TaskRunner",
    "TaskSpec",
    "VolumeAttachment",
]


@dataclass(frozen=True, kw_only=True)
class BootSource:
    """What an instance boots: a disk image (qcow2/raw, used through a qcow2 overlay) or a
    kernel with an initrd (and optionally a disk as well)."""

    disk: Path | None = None
    disk_format: str = "qcow2"  # "qcow2" | "raw"
    kernel: Path | None = None
    initrd: Path | None = None
    cmdline: str = ""
    cloud_init: bool = False  # attach a NoCloud seed (cloud images)


@dataclass(frozen=True, kw_only=True)
class NetworkSpec:
    """How the instance reaches (and is reached from) the network.

    ``user``: QEMU user-mode networking with the guest's port 22 forwarded to a host port
    (``ssh_host_port``; 0 picks a free one). ``tap``: a tap device on a per-lease bridge with
    no route to other leases (needs root). ``none``: no network device.
    """

    mode: str = "user"  # "user" | "tap" | "none"
    ssh_host_port: int = 0
    host_address: str = "127.0.0.1"
    forwards: tuple[tuple[int, int], ...] = ()  # extra (host port, guest port) TCP forwards
    isolation_group: str | None = None  # tap mode: leases in different groups cannot talk


@dataclass(frozen=True, kw_only=True)
class VolumeAttachment:
    """A block volume attached to an instance (a qcow2 file on the host)."""

    volume_id: str
    path: Path
    read_only: bool = False


@dataclass(frozen=True, kw_only=True)
class InstanceSpec:
    """Everything needed to start one instance."""

    instance_id: str
    vcpus: int
    memory_mib: int
    boot: BootSource
    max_vcpus: int | None = None  # hot-plug ceiling; None: vcpus
    max_memory_mib: int | None = None  # balloon ceiling; None: memory_mib
    disk_gib: int | None = None  # grow the overlay to this size
    ssh_public_keys: tuple[str, ...] = ()
    network: NetworkSpec = field(default_factory=NetworkSpec)
    volumes: tuple[VolumeAttachment, ...] = ()
    gpu_pci_addresses: tuple[str, ...] = ()  # vfio-pci passthrough, e.g. "0000:65:00.0"
    metadata: Mapping[str, str] = field(default_factory=dict)
    # shell commands run once at first boot (cloud-init `runcmd`; the tiny image runs them too)
    startup_commands: tuple[str, ...] = ()


class InstanceState(enum.Enum):
    """Where an instance is in its lifecycle."""

    BUILDING = "building"
    RUNNING = "running"
    PAUSED = "paused"
    SHUTOFF = "shutoff"
    CRASHED = "crashed"


@dataclass(frozen=True, kw_only=True)
class InstanceInfo:
    """What the driver knows about a live instance."""

    instance_id: str
    state: InstanceState
    vcpus: int
    memory_mib: int
    accel: str  # "kvm" (whitepaper "type1") | "tcg" ("type2") | "sandbox"
    pid: int | None = None
    ssh_host: str | None = None
    ssh_port: int | None = None
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class InstanceUsage:
    """Cumulative resource use of an instance, for metering."""

    instance_id: str
    cpu_seconds: float
    memory_rss_bytes: int
    disk_read_bytes: int
    disk_write_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int
    uptime_seconds: float


class ComputeDriver(ABC):
    """A host's VM driver (Nova's ComputeDriver, cut to what one provider host needs)."""

    name: str = "abstract"

    @abstractmethod
    def spawn(self, spec: InstanceSpec) -> InstanceInfo:
        """Create and start an instance; returns once it is running (not necessarily booted)."""

    @abstractmethod
    def destroy(self, instance_id: str) -> None:
        """Stop the instance and delete everything it left on the host (overlay, seed, sockets)."""

    @abstractmethod
    def suspend(self, instance_id: str) -> None:
        """Pause the instance's vCPUs (memory kept)."""

    @abstractmethod
    def resume(self, instance_id: str) -> None:
        """Continue a suspended instance."""

    @abstractmethod
    def reboot(self, instance_id: str, *, hard: bool = False) -> None:
        """Reboot: ACPI (soft) or reset (hard)."""

    @abstractmethod
    def resize(
        self, instance_id: str, *, vcpus: int | None = None, memory_mib: int | None = None
    ) -> InstanceInfo:
        """Change online vCPUs (hot plug) and guest memory (balloon) within the spec's ceilings."""

    @abstractmethod
    def console_log(self, instance_id: str, *, max_bytes: int = 65536) -> str:
        """The tail of the instance's serial console."""

    @abstractmethod
    def info(self, instance_id: str) -> InstanceInfo:
        """The instance's state and shape."""

    @abstractmethod
    def usage(self, instance_id: str) -> InstanceUsage:
        """The instance's cumulative resource use."""

    @abstractmethod
    def list_instances(self) -> list[str]:
        """Ids of the instances this driver runs (including re-adopted ones)."""

    @abstractmethod
    def adopt(self) -> list[str]:
        """After an agent restart: take back control of the instances still running, clean up
        those that died; returns the ids now under control."""

    @abstractmethod
    def attach_volume(self, instance_id: str, volume: VolumeAttachment) -> None:
        """Hot-plug a block volume."""

    @abstractmethod
    def detach_volume(self, instance_id: str, volume_id: str) -> None:
        """Hot-unplug a block volume."""

    @abstractmethod
    def snapshot(self, instance_id: str, target: Path) -> Path:
        """Write a standalone qcow2 of the instance's root disk to ``target``."""


@dataclass(frozen=True, kw_only=True)
class TaskLimits:
    """Resource limits of one task."""

    cpu_seconds: int = 3600
    wall_seconds: float = 3600.0
    memory_bytes: int = 1 << 30
    max_processes: int = 256
    max_output_bytes: int = 1 << 30
    network: bool = False


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """A command to run over read-only inputs, writing only its output directory."""

    task_id: str
    argv: tuple[str, ...]
    inputs: Mapping[str, Path] = field(default_factory=dict)  # name in /inputs -> host path
    env: Mapping[str, str] = field(default_factory=dict)
    limits: TaskLimits = field(default_factory=TaskLimits)


class TaskOutcome(enum.Enum):
    """How a task ended."""

    SUCCEEDED = "succeeded"  # exit status 0
    FAILED = "failed"  # non-zero exit status
    TIMED_OUT = "timed_out"  # wall or CPU time limit
    OUT_OF_MEMORY = "out_of_memory"
    PROCESS_LIMIT = "process_limit"  # killed because it hit its process limit
    OUTPUT_LIMIT = "output_limit"


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    """The end of a task: its outcome, exit status, logs and output directory."""

    task_id: str
    outcome: TaskOutcome
    exit_code: int | None
    wall_seconds: float
    output_dir: Path
    stdout_tail: str = ""
    stderr_tail: str = ""


class TaskRunner(ABC):
    """Runs tasks in isolation (the ``sandbox`` driver; a VM-backed runner later)."""

    name: str = "abstract"

    @abstractmethod
    def run(self, spec: TaskSpec, output_dir: Path) -> TaskResult:
        """Run the task to its end (or its limits); outputs land in ``output_dir``."""
