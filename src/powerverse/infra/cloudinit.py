"""cloud-init NoCloud seeds: the renter's SSH keys, hostname and first-boot commands.

A seed is an ISO9660 volume labelled ``cidata`` holding ``meta-data``, ``user-data`` and, on a
routed network, ``network-config``
(cloud-init's NoCloud datasource), written with genisoimage and attached to the VM as a
read-only disk. Cloud images run cloud-init, which reads it; the tiny test image reads the same
things (keys, hostname, ``runcmd``, the static address) itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from powerverse.infra.exceptions import ConfigError, DriverError
from powerverse.infra.tools import find_tool

__all__ = ["meta_data", "user_data", "write_seed"]

_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_KEY_TYPES = r"ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com"
_KEY = re.compile(rf"^({_KEY_TYPES}) [A-Za-z0-9+/=]+( [^\n]*)?$")


def meta_data(instance_id: str, hostname: str) -> str:
    """The NoCloud ``meta-data`` document."""
    if not _HOSTNAME.match(hostname):
        raise ConfigError(f"hostname {hostname!r} is not a valid DNS label")
    return f"instance-id: {json.dumps(instance_id)}\nlocal-hostname: {hostname}\n"


def user_data(ssh_keys: Sequence[str], commands: Sequence[str] = ()) -> str:
    """The ``#cloud-config`` user-data: authorized keys for root and the default user, runcmd.

    Keys must be single OpenSSH public key lines; commands single lines (JSON-quoted, which
    YAML reads as double-quoted strings).
    """
    lines = ["#cloud-config", "disable_root: false", "ssh_pwauth: false"]
    if ssh_keys:
        lines.append("ssh_authorized_keys:")
        for key in ssh_keys:
            key = key.strip()
            if not _KEY.match(key):
                raise ConfigError(f"not an OpenSSH public key line: {key[:40]!r}")
            lines.append(f"  - {json.dumps(key)}")
    if commands:
        lines.append("runcmd:")
        for command in commands:
            if "\n" in command or not command.strip():
                raise ConfigError(f"a startup command must be one non-empty line: {command!r}")
            lines.append(f"  - {json.dumps(command)}")
    return "\n".join(lines) + "\n"


def write_seed(
    target: Path,
    *,
    instance_id: str,
    hostname: str,
    ssh_keys: Sequence[str],
    commands: Sequence[str] = (),
    network_config: str | None = None,
) -> Path:
    """Write the seed ISO to ``target`` (with a ``network-config`` when given: the guest's
    static address on a routed network)."""
    genisoimage = find_tool("genisoimage")
    with tempfile.TemporaryDirectory(prefix="pv-seed-") as tmp:
        src = Path(tmp)
        (src / "meta-data").write_text(meta_data(instance_id, hostname))
        (src / "user-data").write_text(user_data(ssh_keys, commands))
        files = [str(src / "user-data"), str(src / "meta-data")]
        if network_config is not None:
            (src / "network-config").write_text(network_config)
            files.append(str(src / "network-config"))
        done = subprocess.run(
            [genisoimage, "-quiet", "-output", str(target), "-volid", "cidata", "-joliet",
             "-rock", *files],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise DriverError(f"genisoimage failed: {done.stderr.strip()}")
    return target
