"""Fixtures of the driver tests: the tiny VM image, built once per test session."""

from __future__ import annotations

import pytest

from powerverse.infra.tinyimage import TinyImage, build_tiny_image
from tests.infra.conftest import require_tools

VM_TOOLS = ("qemu-system-x86_64", "qemu-img", "genisoimage", "busybox", "dropbear", "ssh")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyImage:
    """The tiny image (host cloud kernel, busybox, dropbear), cached for the session."""
    require_tools(*VM_TOOLS)
    return build_tiny_image(tmp_path_factory.mktemp("tiny-image"))
