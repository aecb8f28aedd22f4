"""Locating the system tools the agent drives (QEMU, qemu-img, bubblewrap, genisoimage)."""

from __future__ import annotations

import shutil

from powerverse.infra.exceptions import ToolMissing

__all__ = ["find_tool", "has_tool"]

_PACKAGES = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "bwrap": "bubblewrap",
    "genisoimage": "genisoimage",
    "busybox": "busybox-static",
}


def has_tool(name: str) -> bool:
    """True when ``name`` is on PATH."""
    return shutil.which(name) is not None


def find_tool(name: str) -> str:
    """The path of ``name``, or ToolMissing naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        package = _PACKAGES.get(name, name)
        raise ToolMissing(f"{name} is not installed (Debian: apt-get install {package})")
    return path
