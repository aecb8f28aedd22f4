"""NoCloud seeds: the documents cloud-init reads (checked as YAML), refusals of input that would
break or inject into them, and the ISO itself (label ``cidata``, both files) read back with
isoinfo."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from powerverse.infra.cloudinit import meta_data, user_data, write_seed
from powerverse.infra.exceptions import ConfigError
from tests.infra.conftest import require_tools

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHb0s1xHgpbaMMnW1Wd4MzGjOSV3bzlsMHXkIYYgWKj4 alice@pc"
RSA = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 bob"


def test_meta_data_names_the_instance_and_host() -> None:
    doc = yaml.safe_load(meta_data("rental-7", "rental-7"))
    assert doc == {"instance-id": "rental-7", "local-hostname": "rental-7"}


def test_user_data_is_cloud_config_with_keys_and_commands() -> None:
    text = user_data([KEY, f"  {RSA}\n"], ["echo 'hi: there' > /tmp/x", 'touch "/tmp/y z"'])
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert doc["ssh_authorized_keys"] == [KEY, RSA]
    assert doc["runcmd"] == ["echo 'hi: there' > /tmp/x", 'touch "/tmp/y z"']
    assert doc["disable_root"] is False and doc["ssh_pwauth"] is False
    assert "runcmd" not in yaml.safe_load(user_data([KEY]))


@pytest.mark.parametrize(
    "key",
    [
        "hello",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",  # a key type OpenSSH no longer accepts
        f"{KEY}\nruncmd: [reboot]",  # a second line smuggled into the YAML
        "ssh-ed25519 AAAA*not-base64*",
    ],
)
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="not an OpenSSH public key"):
        user_data([key])


def test_bad_commands_and_hostnames_are_refused() -> None:
    with pytest.raises(ConfigError, match="one non-empty line"):
        user_data([KEY], ["echo a\nreboot"])
    with pytest.raises(ConfigError, match="one non-empty line"):
        user_data([KEY], ["   "])
    for hostname in ("Bad_Host", "-x", "x" * 64, "a.b"):
        with pytest.raises(ConfigError, match="not a valid DNS label"):
            meta_data("i-1", hostname)


def test_the_seed_iso_is_labelled_cidata_and_holds_both_files(tmp_path: Path) -> None:
    require_tools("genisoimage", "isoinfo")
    seed = write_seed(
        tmp_path / "seed.iso", instance_id="vm-9", hostname="vm-9", ssh_keys=[KEY],
        commands=["echo ready"],
    )  # fmt: skip
    assert seed == tmp_path / "seed.iso"
    info = subprocess.run(["isoinfo", "-d", "-i", str(seed)], capture_output=True, text=True)
    assert "Volume id: cidata" in info.stdout
    for name, expected in (
        ("user-data", user_data([KEY], ["echo ready"])),
        ("meta-data", meta_data("vm-9", "vm-9")),
    ):
        read = subprocess.run(
            ["isoinfo", "-R", "-i", str(seed), "-x", f"/{name}"], capture_output=True, text=True
        )
        assert read.stdout == expected


def test_a_bad_seed_writes_nothing(tmp_path: Path) -> None:
    require_tools("genisoimage")
    with pytest.raises(ConfigError):
        write_seed(tmp_path / "seed.iso", instance_id="i", hostname="i", ssh_keys=["nope"])
    assert not (tmp_path / "seed.iso").exists()
