"""Keys, a simulated card, a virtual clock and a clip writer's settings for the device tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device.config import DeviceConfig
from hw.sim.clock import SimClock
from hw.sim.storage import SimStorage
from tests.device.offload_rig import DockedCamera, build_docked_camera

START_WALL_NS = 1_700_000_000_000_000_000


@pytest.fixture
def virtual_clock() -> SimClock:
    """Virtual time: it stands still until a test advances it."""
    clock = SimClock(virtual=True, start_wall_ns=START_WALL_NS)
    clock.advance(60)  # the camera has been buffering for a minute
    return clock


@pytest.fixture
def sim_storage(tmp_path: Path) -> SimStorage:
    """A 64 MiB simulated card."""
    return SimStorage(tmp_path / "card", capacity_bytes=64 * 1024**2)


@pytest.fixture
def device_config() -> DeviceConfig:
    return DeviceConfig(
        device_id="cam-0042",
        serial="BWC1-000042",
        officer_id="officer-1187",
        pre_event_s=30,
        storage_reserve_bytes=4096,
    )


@pytest.fixture
def docked(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> Iterator[DockedCamera]:
    """A camera in the dock with sealed clips and an open one, its offload API on loopback."""
    camera = build_docked_camera(tmp_path, device_key, agency_key)
    yield camera
    camera.server.close()
    camera.camera.firmware.close()
    camera.camera.io.close()
