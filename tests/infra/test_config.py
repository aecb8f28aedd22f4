"""provider.yaml: round trip, defaults, and every malformed field named in the error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from powerverse.infra.config import (
    ImageConfig,
    NetworkConfig,
    ProviderConfig,
    load_config,
    parse_config,
    save_config,
)
from powerverse.infra.exceptions import ConfigError

SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"

GOOD: dict[str, Any] = {
    "rpc_url": "http://127.0.0.1:9545",
    "location": {"region": "cn-east", "latitude": 31.23, "longitude": 121.47},
    "api": {"host": "127.0.0.1", "port": 8700},
    "resources": [
        {
            "name": "small",
            "vcpus": 1,
            "memory_mib": 256,
            "max_vcpus": 2,
            "image": {"kernel": "images/vmlinuz", "initrd": "images/initrd.img"},
            "price_per_day": "1.5",
            "take_tasks": True,
        }
    ],
}


def test_round_trip_and_defaults(tmp_path: Path) -> None:
    config = parse_config(GOOD)
    (small,) = config.resources
    assert small.price_wei == 1_500_000_000_000_000_000 and small.min_days == 1
    assert small.max_days == 30 and small.token_id is None and small.take_tasks
    boot = small.image.boot_source(tmp_path)
    assert boot.kernel == tmp_path / "images/vmlinuz" and boot.disk is None
    save_config(tmp_path, config.with_token("small", 12))
    again = load_config(tmp_path)
    assert again.resources[0].token_id == 12
    assert again == config.with_token("small", 12)
    assert parse_config({}) == ProviderConfig()


def test_absolute_image_paths_stay_absolute(tmp_path: Path) -> None:
    image = ImageConfig(disk="/var/lib/images/debian.qcow2")
    assert image.boot_source(tmp_path).disk == Path("/var/lib/images/debian.qcow2")


def _with(path: str, value: object) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(yaml.safe_dump(GOOD))
    target: Any = doc
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    target[keys[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("resources.0.vcpus", 0, "resources[0].vcpus"),
        ("resources.0.vcpus", "2", "resources[0].vcpus"),
        ("resources.0.memory_mib", 1, "resources[0].memory_mib"),
        ("resources.0.max_vcpus", 0, "resources[0].max_vcpus"),  # below vcpus
        ("resources.0.name", "Big VM", "resources[0].name"),
        ("resources.0.price_per_day", "free", "resources[0].price_per_day"),
        ("resources.0.price_per_day", "-1", "resources[0].price_per_day"),
        ("resources.0.image", {"kernel": "k"}, "resources[0].image"),
        ("resources.0.image", {"disk": "d", "disk_format": "vmdk"}, "disk_format"),
        ("resources.0.take_tasks", "yes", "resources[0].take_tasks"),
        ("resources.0.colour", "blue", "resources[0]"),
        ("location.latitude", 91, "location.latitude"),
        ("api.port", 70000, "api.port"),
        ("network", {"mode": "bridge"}, "network.mode"),
        ("network", {"pool": "8.8.0.0/16"}, "network.pool"),  # not private
        ("network", {"pool": "fd00::/64"}, "network.pool"),  # not IPv4
        ("network", {"pool": "10.1.2.3/33"}, "network.pool"),
        ("network", {"ssh_host": 7}, "network.ssh_host"),
        ("network", {"mtu": 1500}, "network"),
        ("poll_seconds", 0, "poll_seconds"),
        ("version", 2, "version"),
        ("resources", {"small": 1}, "resources"),
    ],
)
def test_bad_fields_are_named(path: str, value: object, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_config(_with(path, value))


def test_duplicate_names_missing_and_unreadable_files(tmp_path: Path) -> None:
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    doc["resources"].append(dict(doc["resources"][0]))
    with pytest.raises(ConfigError, match="unique"):
        parse_config(doc)
    with pytest.raises(ConfigError, match="pv provider init"):
        load_config(tmp_path)
    (tmp_path / "provider.yaml").write_text("resources: [unclosed")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_network_modes() -> None:
    doc = _with("network", {"mode": "routed", "pool": "10.99.0.0/16", "ssh_host": "vm.example"})
    config = parse_config(doc)
    assert config.network == NetworkConfig(
        mode="routed", pool="10.99.0.0/16", ssh_host="vm.example"
    )
    assert config.network.effective_mode() == "routed"
    assert NetworkConfig(mode="user").effective_mode() == "user"
    auto = NetworkConfig().effective_mode()
    assert auto == ("routed" if os.geteuid() == 0 and shutil.which("nft", path=SBIN) else "user")
    assert parse_config(config.to_json()) == config  # round trip
