"""Keys, a simulated card, a virtual clock and a clip writer's settings for the device tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.config import DeviceConfig
from hw.sim.clock import SimClock
from hw.sim.storage import SimStorage

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
