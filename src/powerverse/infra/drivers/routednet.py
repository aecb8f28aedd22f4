"""Routed per-lease networks on a Linux host (root): a bridge and a subnet per isolation group.

Each isolation group (a lease, or a stack's network) gets a bridge ``pvrt-<hash>`` holding the
gateway address of its own small subnet (a ``/28`` from ``10.213.0.0/16`` by default); each
instance of the group gets the next free address in it, handed to the guest in the NoCloud
seed's ``network-config``. One nftables table, ``ip powerverse``, does the rest for all groups:

- ``sshfwd``: a map from a host TCP port to a guest address and port; connections to any local
  address of the host (but 127.0.0.0/8) on that port are DNATed to the guest's SSH port, so a
  renter reaches its VM at ``<host address>:<port>``;
- traffic from one group's bridge to another's is rejected (also when it goes through a
  forwarded port of the host), so leases cannot reach each other; traffic within a bridge is
  let through (with ``br_netfilter`` loaded, as on Docker hosts, bridged frames pass the IP
  forward hook too: ``samebridge`` lists each bridge paired with itself);
- traffic from the bridges to the host itself is rejected (the agent's API, the chain's RPC,
  other VMs' forwarded ports), except replies to connections the host opened;
- guests' own connections out are masqueraded behind the host's address.

IPv4 forwarding is switched on (``net.ipv4.ip_forward = 1``), as every VM host does. Group
allocations live in ``/run/powerverse/net`` (they vanish at reboot, with the bridges), guarded by
a file lock, so several drivers on one host share the pool without overlapping.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from powerverse.infra.exceptions import DriverError, ToolMissing, UnsupportedOperation

__all__ = [
    "BRIDGE_PREFIX",
    "DEFAULT_POOL",
    "GroupAddress",
    "RoutedNetwork",
    "network_config",
    "primary_address",
]

DEFAULT_POOL = "10.213.0.0/16"
TABLE = "powerverse"
BRIDGE_PREFIX = "pvrt-"  # the tap mode's unrouted bridges are pvbr-*


@dataclass(frozen=True, kw_only=True)
class GroupAddress:
    """An instance's place in its group's subnet."""

    bridge: str
    address: str  # the guest's, e.g. 10.213.0.2
    gateway: str  # the bridge's, e.g. 10.213.0.1
    prefix: int  # e.g. 28


def _nft_rules(pool: str) -> str:
    return f"""
table ip {TABLE} {{
  map sshfwd {{ type inet_service : ipv4_addr . inet_service; }}
  set samebridge {{ type ifname . ifname; }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local dnat ip addr . port to tcp dport map @sshfwd
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
    ip daddr != 127.0.0.0/8 fib daddr type local dnat ip addr . port to tcp dport map @sshfwd
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {pool} oifname != "{BRIDGE_PREFIX}*" masquerade
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname . oifname @samebridge accept
    iifname "{BRIDGE_PREFIX}*" oifname "{BRIDGE_PREFIX}*" reject with icmp type admin-prohibited
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "{BRIDGE_PREFIX}*" ct state established,related accept
    iifname "{BRIDGE_PREFIX}*" meta l4proto tcp reject with tcp reset
    iifname "{BRIDGE_PREFIX}*" reject with icmp type admin-prohibited
  }}
}}
"""


def _run(tool: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        package = {"nft": "nftables", "ip": "iproute2"}.get(tool, tool)
        raise ToolMissing(f"{tool} is not installed (Debian: apt-get install {package})")
    return subprocess.run(
        [path, *args], input=stdin, capture_output=True, text=True, check=False, timeout=30
    )


def _must(tool: str, *args: str, stdin: str | None = None) -> str:
    done = _run(tool, *args, stdin=stdin)
    if done.returncode != 0:
        raise DriverError(f"{tool} {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return done.stdout


def primary_address() -> str:
    """The host's first global IPv4 address outside the VM bridges (where renters connect)."""
    out = json.loads(_must("ip", "-j", "-4", "addr", "show", "scope", "global"))
    for link in out:
        if str(link.get("ifname", "")).startswith(BRIDGE_PREFIX):
            continue
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet":
                return str(addr["local"])
    raise DriverError("the host has no global IPv4 address to forward SSH ports from")


def network_config(mac: str, where: GroupAddress, nameservers: list[str]) -> str:
    """The NoCloud ``network-config`` (version 2) giving the NIC with ``mac`` its address."""
    lines = [
        "version: 2",
        "ethernets:",
        "  lease0:",
        "    match:",
        f'      macaddress: "{mac}"',
        "    addresses:",
        f"      - {where.address}/{where.prefix}",
        "    routes:",
        "      - to: 0.0.0.0/0",
        f"        via: {where.gateway}",
    ]
    if nameservers:
        lines += ["    nameservers:", "      addresses:"]
        lines += [f"        - {ns}" for ns in nameservers]
    return "\n".join(lines) + "\n"


def host_nameservers(resolv: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The host's IPv4 resolvers a guest can use (loopback ones, e.g. systemd-resolved's, not)."""
    found = []
    with contextlib.suppress(OSError):
        for line in resolv.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    ip = ipaddress.ip_address(parts[1])
                    if ip.version == 4 and not ip.is_loopback:
                        found.append(str(ip))
    return found


class RoutedNetwork:
    """Allocates group subnets and guest addresses, and keeps the host's nftables table."""

    def __init__(
        self,
        *,
        pool: str = DEFAULT_POOL,
        prefix: int = 28,
        run_dir: Path = Path("/run/powerverse/net"),
    ) -> None:
        try:
            self.pool = ipaddress.IPv4Network(pool)
        except ValueError:
            raise DriverError(f"the VM address pool {pool!r} is not an IPv4 network") from None
        if not self.pool.is_private:
            raise DriverError(f"the VM address pool {pool} must be a private IPv4 network")
        if not self.pool.prefixlen < prefix <= 29:
            raise DriverError(f"a group subnet /{prefix} does not fit the pool {pool}")
        self.prefix = prefix
        self.run_dir = run_dir

    # ------------------------------------------------------------------ host set-up

    def ensure_host(self) -> None:
        """The nftables table (created once) and IPv4 forwarding; UnsupportedOperation when
        this process cannot change the host's network."""
        if os.geteuid() != 0:
            raise UnsupportedOperation(
                "routed networking needs root (bridges, nftables); run the agent as root or "
                "use network mode 'user'"
            )
        if _run("nft", "list", "table", "ip", TABLE).returncode != 0:
            _must("nft", "-f", "-", stdin=_nft_rules(str(self.pool)))
        forwarding = Path("/proc/sys/net/ipv4/ip_forward")
        if forwarding.read_text().strip() != "1":
            forwarding.write_text("1\n")

    # ------------------------------------------------------------------ allocation

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _groups(self) -> dict[str, dict[str, object]]:
        groups = {}
        for path in self.run_dir.glob(f"{BRIDGE_PREFIX}*.json"):
            with contextlib.suppress(OSError, ValueError):
                groups[path.stem] = json.loads(path.read_text())
        return groups

    def _save(self, bridge: str, group: dict[str, object]) -> None:
        path = self.run_dir / f"{bridge}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(group))
        tmp.replace(path)

    def _host_networks(self) -> list[ipaddress.IPv4Network]:
        nets = []
        for link in json.loads(_must("ip", "-j", "-4", "addr", "show")):
            for addr in link.get("addr_info", []):
                if addr.get("family") == "inet":
                    nets.append(
                        ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False)
                    )
        return nets

    def attach(self, instance_id: str, bridge: str) -> GroupAddress:
        """A guest address for ``instance_id`` on ``bridge`` (created, with its gateway address,
        when it is the group's first): the same one again if it already has one."""
        with self._locked():
            groups = self._groups()
            group = groups.get(bridge)
            if group is None:
                subnet = self._free_subnet(groups)
                group = {"subnet": str(subnet), "members": {}}
            subnet = ipaddress.IPv4Network(str(group["subnet"]))
            members = group["members"]
            assert isinstance(members, dict)
            hosts = list(subnet.hosts())
            gateway = hosts[0]
            if instance_id not in members:
                used = set(members.values())
                free = [str(h) for h in hosts[1:] if str(h) not in used]
                if not free:
                    raise DriverError(
                        f"isolation group {bridge} is full ({len(hosts) - 1} instances in "
                        f"{subnet}); give the driver a larger group prefix"
                    )
                members[instance_id] = free[0]
            self._save(bridge, group)
            self._bridge_up(bridge, f"{gateway}/{subnet.prefixlen}")
            return GroupAddress(
                bridge=bridge,
                address=str(members[instance_id]),
                gateway=str(gateway),
                prefix=subnet.prefixlen,
            )

    def _free_subnet(self, groups: dict[str, dict[str, object]]) -> ipaddress.IPv4Network:
        taken = [ipaddress.IPv4Network(str(g["subnet"])) for g in groups.values()]
        taken += self._host_networks()
        for candidate in self.pool.subnets(new_prefix=self.prefix):
            if not any(candidate.overlaps(t) for t in taken):
                return candidate
        raise DriverError(f"no free /{self.prefix} left in the VM address pool {self.pool}")

    def _bridge_up(self, bridge: str, gateway: str) -> None:
        if not Path("/sys/class/net", bridge).exists():
            made = _run("ip", "link", "add", bridge, "type", "bridge")
            if made.returncode != 0 and not Path("/sys/class/net", bridge).exists():
                raise DriverError(f"cannot create bridge {bridge}: {made.stderr.strip()}")
        have = _run("ip", "-j", "-4", "addr", "show", "dev", bridge).stdout
        if gateway.split("/")[0] not in have:
            _must("ip", "addr", "add", gateway, "dev", bridge)
        _must("ip", "link", "set", bridge, "up")
        _must("nft", "add", "element", "ip", TABLE, "samebridge", f'{{ "{bridge}" . "{bridge}" }}')

    def detach(self, instance_id: str, bridge: str) -> None:
        """Give back the instance's address; the group's subnet too when it was the last."""
        with self._locked():
            group = self._groups().get(bridge)
            if group is None:
                return
            members = group["members"]
            assert isinstance(members, dict)
            members.pop(instance_id, None)
            if members:
                self._save(bridge, group)
            else:
                (self.run_dir / f"{bridge}.json").unlink(missing_ok=True)
                _run("nft", "delete", "element", "ip", TABLE, "samebridge",
                     f'{{ "{bridge}" . "{bridge}" }}')  # fmt: skip

    # ------------------------------------------------------------------ SSH forwards

    def forwarded_ports(self) -> set[int]:
        """Host ports the ``sshfwd`` map holds."""
        done = _run("nft", "-j", "list", "map", "ip", TABLE, "sshfwd")
        if done.returncode != 0:
            return set()
        ports = set()
        for item in json.loads(done.stdout).get("nftables", []):
            for element in item.get("map", {}).get("elem", []):
                key = element[0] if isinstance(element, list) else None
                if isinstance(key, int):
                    ports.add(key)
        return ports

    def forward(self, host_port: int, address: str, guest_port: int = 22) -> None:
        """Send connections to ``host_port`` on the host's addresses to ``address:guest_port``."""
        _must(
            "nft", "add", "element", "ip", TABLE, "sshfwd",
            f"{{ {host_port} : {address} . {guest_port} }}",
        )  # fmt: skip

    def unforward(self, host_port: int) -> None:
        """Remove the forward of ``host_port`` (nothing when there is none)."""
        _run("nft", "delete", "element", "ip", TABLE, "sshfwd", f"{{ {host_port} }}")

    def free_port(self) -> int:
        """A host TCP port nothing listens on and no forward uses."""
        taken = self.forwarded_ports()
        for _ in range(64):
            with socket.socket() as sock:
                sock.bind(("0.0.0.0", 0))
                port = int(sock.getsockname()[1])
            if port not in taken:
                return port
        raise DriverError("no free host port for an SSH forward")
