"""The pure parts of routed networking: the guest's network-config, resolvers, pool checks
(the host side is tested with real VMs in test_qemu.py, as root)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from powerverse.infra.drivers.routednet import (
    GroupAddress,
    RoutedNetwork,
    host_nameservers,
    network_config,
)
from powerverse.infra.exceptions import DriverError

WHERE = GroupAddress(bridge="pvrt-1234abcd", address="10.213.0.2", gateway="10.213.0.1", prefix=28)


def test_network_config_is_cloud_init_v2_for_the_nic() -> None:
    doc = yaml.safe_load(network_config("52:54:00:aa:bb:cc", WHERE, ["192.0.2.53"]))
    assert doc["version"] == 2
    (nic,) = doc["ethernets"].values()
    assert nic["match"] == {"macaddress": "52:54:00:aa:bb:cc"}
    assert nic["addresses"] == ["10.213.0.2/28"]
    assert nic["routes"] == [{"to": "0.0.0.0/0", "via": "10.213.0.1"}]
    assert nic["nameservers"] == {"addresses": ["192.0.2.53"]}
    bare = yaml.safe_load(network_config("52:54:00:aa:bb:cc", WHERE, []))
    assert "nameservers" not in bare["ethernets"]["lease0"]


def test_host_nameservers_skip_loopback_and_ipv6(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nnameserver 2001:db8::1\n"
        "nameserver not-an-ip\nsearch example\nnameserver 198.51.100.7\n"
    )
    assert host_nameservers(resolv) == ["192.0.2.1", "198.51.100.7"]
    assert host_nameservers(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("pool", "prefix", "words"),
    [
        ("8.8.0.0/16", 28, "private"),
        ("fd00::/64", 28, "not an IPv4 network"),
        ("10.0.0.0/33", 28, "not an IPv4 network"),
        ("10.213.0.0/16", 16, "does not fit"),
        ("10.213.0.0/16", 30, "does not fit"),
    ],
)
def test_bad_pools_are_refused(pool: str, prefix: int, words: str, tmp_path: Path) -> None:
    with pytest.raises(DriverError, match=words):
        RoutedNetwork(pool=pool, prefix=prefix, run_dir=tmp_path)
