"""Acceleration by trial boot: the trial machinery on real QEMU (a TCG boot of the tiny image
is seen, a boot that cannot finish in time is not and leaves no QEMU behind), the cached
verdict (reused, redone after a host change, a corrupt cache or ``force``), this host's real
verdict, and the QEMU driver's ``accel="auto"``."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from powerverse.infra.accel import (
    ACCELS,
    KVM_DEVICE,
    detect_accel,
    host_fingerprint,
    kvm_boots,
    trial_boot,
)
from powerverse.infra.drivers.qemu import QemuDriver
from powerverse.infra.tinyimage import TinyImage, build_tiny_image
from tests.infra.conftest import require_tools


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyImage:
    require_tools("qemu-system-x86_64", "busybox", "dropbear")
    return build_tiny_image(tmp_path_factory.mktemp("tiny-image"))


def trial_qemus() -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if "qemu" in p.name() and p.status() != psutil.STATUS_ZOMBIE
    ]


@pytest.mark.slow
def test_a_trial_boot_sees_the_marker_under_tcg(tiny: TinyImage) -> None:
    assert trial_boot(tiny, accel="tcg", timeout=120) is True
    assert trial_qemus() == []


def test_a_trial_that_runs_out_of_time_fails_and_kills_qemu(tiny: TinyImage) -> None:
    assert trial_boot(tiny, accel="tcg", timeout=0.5) is False  # like a KVM boot that hangs
    assert trial_qemus() == []


def test_no_kvm_device_means_no_trial(tiny: TinyImage, tmp_path: Path) -> None:
    assert kvm_boots(tiny, device=tmp_path / "no-kvm") is False
    with pytest.raises(ValueError, match="accel"):
        trial_boot(tiny, accel="hvf", timeout=1)


def test_the_verdict_is_cached_with_the_host_fingerprint(tiny: TinyImage, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "accel.json"
    no_kvm = tmp_path / "no-kvm"
    assert detect_accel(cache, tiny, device=no_kvm, clock=lambda: 1234.0) == "tcg"
    doc = json.loads(cache.read_text())
    assert doc == {"accel": "tcg", "host": host_fingerprint(no_kvm), "checked_at": 1234}

    cache.write_text(json.dumps({**doc, "accel": "kvm"}))  # as if a trial had succeeded
    assert detect_accel(cache, tiny, device=no_kvm) == "kvm"  # reused, no new trial
    assert detect_accel(cache, tiny, device=no_kvm, force=True) == "tcg"  # redone

    cache.write_text(json.dumps({**doc, "accel": "kvm", "host": "another kernel"}))
    assert detect_accel(cache, tiny, device=no_kvm) == "tcg"  # the host changed: redone
    cache.write_text("{not json")
    assert detect_accel(cache, tiny, device=no_kvm) == "tcg"  # corrupt: redone
    assert json.loads(cache.read_text())["accel"] == "tcg"


@pytest.mark.slow
def test_this_hosts_verdict_matches_a_kvm_trial(tiny: TinyImage, tmp_path: Path) -> None:
    """On the project's machines the KVM device exists but a KVM boot fails: "tcg"."""
    cache = tmp_path / "accel.json"
    verdict = detect_accel(cache, tiny, timeout=20)
    assert verdict in ACCELS
    assert verdict == ("kvm" if kvm_boots(tiny, timeout=20) else "tcg")
    assert json.loads(cache.read_text())["accel"] == verdict
    assert trial_qemus() == []


def test_the_driver_takes_auto_from_the_cached_verdict(tmp_path: Path) -> None:
    require_tools("qemu-system-x86_64", "busybox", "dropbear")
    state = tmp_path / "state"
    state.mkdir()
    cached = {"accel": "kvm", "host": host_fingerprint(), "checked_at": 0}
    (state / "accel.json").write_text(json.dumps(cached))
    expected = "kvm" if KVM_DEVICE.exists() else "tcg"  # no device: TCG without a trial
    assert QemuDriver(state, accel="auto").accel == expected
    assert QemuDriver(state, accel="tcg").accel == "tcg"
    with pytest.raises(ValueError, match="accel"):
        QemuDriver(state, accel="xen")
