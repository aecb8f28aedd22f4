"""The provider's configuration: ``provider.yaml`` in the provider directory.

Written by ``pv provider init``, completed by ``pv provider register`` (the token ids) and read
by ``pv provider up``. Paths are relative to the provider directory unless absolute.
``network.mode``: ``user`` (QEMU user-mode networking, SSH forwarded on ``ssh_host``, default
127.0.0.1), ``routed`` (root: a bridge and subnet from ``pool`` per lease, SSH forwarded from a
host port by nftables, leases isolated from each other and from the host) or ``auto`` (routed
when run as root with nftables installed, else user). ``ssh_host``: the address renters are
told to connect to ("": 127.0.0.1 in user mode, the host's first global address routed).
Example::

    version: 1
    rpc_url: http://127.0.0.1:8545
    location: {region: cn-east, latitude: 31.23, longitude: 121.47}
    api: {host: 127.0.0.1, port: 8700}
    network: {mode: auto, pool: 10.213.0.0/16, ssh_host: ""}
    poll_seconds: 2
    resources:
      - name: small
        vcpus: 1
        memory_mib: 256
        max_vcpus: 2
        image: {kernel: images/vmlinuz, initrd: images/initrd.img}
        price_per_day: "1.5"          # PVC
        min_days: 1
        max_days: 30
        take_tasks: true
        token_id: 12                  # set by `pv provider register`
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from powerverse.infra.drivers.base import BootSource
from powerverse.infra.drivers.routednet import DEFAULT_POOL
from powerverse.infra.exceptions import ConfigError

__all__ = [
    "CONFIG_FILE",
    "ApiConfig",
    "ImageConfig",
    "LocationConfig",
    "NetworkConfig",
    "ProviderConfig",
    "ResourceConfig",
    "load_config",
    "save_config",
]

CONFIG_FILE = "provider.yaml"
PVC = 10**18
_SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True, kw_only=True)
class LocationConfig:
    """Where the machine is (the whitepaper's location: region and coordinates)."""

    region: str = ""
    latitude: float = 0.0
    longitude: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    """Where the agent's signed REST API listens."""

    host: str = "127.0.0.1"
    port: int = 8700


NETWORK_MODES = ("auto", "user", "routed")


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """How leases' VMs are networked (see the module's text)."""

    mode: str = "auto"
    pool: str = DEFAULT_POOL
    ssh_host: str = ""

    def effective_mode(self) -> str:
        """``user`` or ``routed``: ``auto`` decided for this process and host."""
        if self.mode != "auto":
            return self.mode
        return "routed" if os.geteuid() == 0 and shutil.which("nft", path=_SBIN) else "user"


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    """What a resource's VMs boot: a disk image or a kernel with an initrd."""

    disk: str | None = None
    disk_format: str = "qcow2"
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str = ""

    def boot_source(self, base: Path) -> BootSource:
        """The driver's BootSource, paths resolved against the provider directory."""

        def path(p: str | None) -> Path | None:
            return None if p is None else (base / p if not os.path.isabs(p) else Path(p))

        return BootSource(
            disk=path(self.disk),
            disk_format=self.disk_format,
            kernel=path(self.kernel),
            initrd=path(self.initrd),
            cmdline=self.cmdline,
        )


@dataclass(frozen=True, kw_only=True)
class ResourceConfig:
    """One virtual resource this host offers (one ResourceNFT once registered)."""

    name: str
    vcpus: int
    memory_mib: int
    image: ImageConfig
    max_vcpus: int | None = None
    disk_gib: int | None = None
    price_per_day: str = "1"
    min_days: int = 1
    max_days: int = 30
    take_tasks: bool = False
    token_id: int | None = None

    @property
    def price_wei(self) -> int:
        """The daily price in wei."""
        return int(Decimal(self.price_per_day) * PVC)


@dataclass(frozen=True, kw_only=True)
class ProviderConfig:
    """The whole provider configuration."""

    rpc_url: str = "http://127.0.0.1:8545"
    location: LocationConfig = field(default_factory=LocationConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    poll_seconds: float = 2.0
    resources: tuple[ResourceConfig, ...] = ()
    version: int = 1

    def with_token(self, name: str, token_id: int) -> ProviderConfig:
        """A copy with resource ``name``'s token id set."""
        return replace(
            self,
            resources=tuple(
                replace(r, token_id=token_id) if r.name == name else r for r in self.resources
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """The YAML document."""
        doc = asdict(self)
        doc["resources"] = [{k: v for k, v in r.items() if v is not None} for r in doc["resources"]]
        for r in doc["resources"]:
            r["image"] = {k: v for k, v in r["image"].items() if v is not None}
        return doc


def _check(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {what}")


def _fields(doc: object, where: str, allowed: set[str]) -> dict[str, Any]:
    _check(isinstance(doc, dict), where, "must be a mapping")
    assert isinstance(doc, dict)
    unknown = set(doc) - allowed
    _check(not unknown, where, f"unknown key(s) {sorted(unknown)}")
    return doc


def _int(doc: dict[str, Any], key: str, where: str, lo: int, hi: int) -> int | None:
    if key not in doc or doc[key] is None:
        return None
    value = doc[key]
    ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
    _check(ok, f"{where}.{key}", f"must be an integer in [{lo}, {hi}]")
    return int(value)


def _resource(doc: object, where: str) -> ResourceConfig:
    d = _fields(
        doc,
        where,
        {
            "name", "vcpus", "memory_mib", "max_vcpus", "disk_gib", "image", "price_per_day",
            "min_days", "max_days", "take_tasks", "token_id",
        },
    )  # fmt: skip
    name = d.get("name")
    _check(
        isinstance(name, str) and 0 < len(name) <= 63 and set(name) <= _NAME_CHARS,
        f"{where}.name",
        "must be 1-63 lower-case letters, digits or '-'",
    )
    vcpus = _int(d, "vcpus", where, 1, 1024)
    memory = _int(d, "memory_mib", where, 64, 1 << 24)
    _check(vcpus is not None, f"{where}.vcpus", "is required")
    _check(memory is not None, f"{where}.memory_mib", "is required")
    assert vcpus is not None and memory is not None
    max_vcpus = _int(d, "max_vcpus", where, vcpus, 1024)
    img = _fields(
        d.get("image"), f"{where}.image", {"disk", "disk_format", "kernel", "initrd", "cmdline"}
    )
    image = ImageConfig(
        disk=img.get("disk"),
        disk_format=str(img.get("disk_format", "qcow2")),
        kernel=img.get("kernel"),
        initrd=img.get("initrd"),
        cmdline=str(img.get("cmdline", "")),
    )
    _check(
        (image.disk is not None) or (image.kernel is not None and image.initrd is not None),
        f"{where}.image",
        "needs a disk, or a kernel and an initrd",
    )
    _check(image.disk_format in ("qcow2", "raw"), f"{where}.image.disk_format", "qcow2 or raw")
    price = str(d.get("price_per_day", "1"))
    try:
        ok = Decimal(price) > 0
    except InvalidOperation:
        ok = False
    _check(ok, f"{where}.price_per_day", f"must be a positive PVC amount, not {price!r}")
    min_days = _int(d, "min_days", where, 1, 3650) or 1
    max_days = _int(d, "max_days", where, min_days, 3650) or max(30, min_days)
    take = d.get("take_tasks", False)
    _check(isinstance(take, bool), f"{where}.take_tasks", "must be true or false")
    return ResourceConfig(
        name=str(name),
        vcpus=vcpus,
        memory_mib=memory,
        max_vcpus=max_vcpus,
        disk_gib=_int(d, "disk_gib", where, 1, 1 << 20),
        image=image,
        price_per_day=price,
        min_days=min_days,
        max_days=max_days,
        take_tasks=take,
        token_id=_int(d, "token_id", where, 1, 2**255),
    )


def parse_config(doc: object) -> ProviderConfig:
    """Check a parsed provider.yaml; ConfigError names the bad field."""
    d = _fields(
        doc,
        "provider.yaml",
        {"version", "rpc_url", "location", "api", "network", "poll_seconds", "resources"},
    )
    _check(d.get("version", 1) == 1, "version", "must be 1")
    loc = _fields(d.get("location", {}), "location", {"region", "latitude", "longitude"})
    lat, lon = loc.get("latitude", 0.0), loc.get("longitude", 0.0)
    _check(isinstance(lat, int | float) and -90 <= lat <= 90, "location.latitude", "in [-90, 90]")
    _check(
        isinstance(lon, int | float) and -180 <= lon <= 180, "location.longitude", "in [-180, 180]"
    )
    api = _fields(d.get("api", {}), "api", {"host", "port"})
    port = _int(api, "port", "api", 0, 65535)
    net = _fields(d.get("network", {}), "network", {"mode", "pool", "ssh_host"})
    mode = net.get("mode", "auto")
    _check(mode in NETWORK_MODES, "network.mode", f"one of {', '.join(NETWORK_MODES)}")
    pool = str(net.get("pool", DEFAULT_POOL))
    try:
        pool_ok = ipaddress.ip_network(pool).version == 4 and ipaddress.ip_network(pool).is_private
    except ValueError:
        pool_ok = False
    _check(pool_ok, "network.pool", f"must be a private IPv4 network, not {pool!r}")
    ssh_host = net.get("ssh_host", "")
    _check(isinstance(ssh_host, str), "network.ssh_host", "must be a host name or address")
    poll = d.get("poll_seconds", 2.0)
    _check(isinstance(poll, int | float) and 0.1 <= poll <= 3600, "poll_seconds", "in [0.1, 3600]")
    raw = d.get("resources", [])
    _check(isinstance(raw, list), "resources", "must be a list")
    resources = tuple(_resource(r, f"resources[{i}]") for i, r in enumerate(raw))
    names = [r.name for r in resources]
    _check(len(set(names)) == len(names), "resources", "names must be unique")
    return ProviderConfig(
        rpc_url=str(d.get("rpc_url", "http://127.0.0.1:8545")),
        location=LocationConfig(
            region=str(loc.get("region", "")), latitude=float(lat), longitude=float(lon)
        ),
        api=ApiConfig(host=str(api.get("host", "127.0.0.1")), port=8700 if port is None else port),
        network=NetworkConfig(mode=str(mode), pool=pool, ssh_host=str(ssh_host)),
        poll_seconds=float(poll),
        resources=resources,
    )


def load_config(directory: Path) -> ProviderConfig:
    """Read ``provider.yaml`` from the provider directory."""
    path = directory / CONFIG_FILE
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no {path}: run `pv provider init` first") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return parse_config(doc)


def save_config(directory: Path, config: ProviderConfig) -> Path:
    """Write ``provider.yaml`` atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config.to_json(), sort_keys=False))
    tmp.replace(path)
    return path
