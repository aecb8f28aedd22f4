"""The p2p configuration refuses unusable limits."""

from __future__ import annotations

import dataclasses

import pytest

from powerverse.p2p import P2PConfig


def test_defaults_are_consistent() -> None:
    config = P2PConfig()
    assert config.max_frame_size == 8 * 1024 * 1024
    assert 0 < config.max_payload_size < config.max_frame_size
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_peers = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides",
    [
        {"max_frame_size": 0},
        {"max_frame_size": 2**32},
        {"handshake_timeout": 0},
        {"request_timeout": -1},
        {"ban_threshold": 5},
        {"target_peers": 10, "max_peers": 5},
        {"max_frame_size": 1024 * 1024, "rate_bytes_burst": 1000.0},
        {"pex_max_addresses": 300},
        {"score_recovery_per_s": -1},
    ],
)
def test_bad_values_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        P2PConfig(**overrides)  # type: ignore[arg-type]
