"""Shared helpers of the infra tests.

Tests that need a system tool (QEMU, bubblewrap...) use :func:`require_tools`: they skip on a
machine without it, and fail instead where ``PV_REQUIRE_INFRA_TOOLS=1`` (CI, whose set-up
installs them), so a broken set-up cannot turn the VM tests into silent skips.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_tools(*names: str) -> None:
    """Skip (or, in CI, fail) unless every tool in ``names`` is on PATH."""
    missing = [n for n in names if shutil.which(n) is None]
    if not missing:
        return
    message = f"needs {', '.join(missing)} (installed by ./scripts/setup as root)"
    if os.environ.get("PV_REQUIRE_INFRA_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)
