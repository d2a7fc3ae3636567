"""The signed profile's limits (custody) agree with the camera's own configuration (device, hw)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from custody.profile import FEEDBACK_CUES, INT_RANGES
from device.config import DeviceConfig
from device.feedback import EVENT_CUES, STATE_CUES
from hw.ports.camera import CameraConfig


def _limits(model: type[BaseModel], field: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in model.model_fields[field].metadata:
        for name in ("ge", "gt", "le", "multiple_of"):
            if getattr(item, name, None) is not None:
                found[name] = getattr(item, name)
    return found


@pytest.mark.parametrize(
    ("setting", "model", "field", "scale"),
    [
        ("pre_event_ms", DeviceConfig, "pre_event_s", 1000),
        ("storage_low_bytes", DeviceConfig, "storage_low_bytes", 1),
        ("storage_reserve_bytes", DeviceConfig, "storage_reserve_bytes", 1),
        ("video_width", CameraConfig, "width", 1),
        ("video_height", CameraConfig, "height", 1),
        ("video_fps", CameraConfig, "fps", 1),
    ],
)
def test_profile_ranges_match_the_camera_configuration(
    setting: str, model: type[BaseModel], field: str, scale: int
) -> None:
    low, high, step = INT_RANGES[setting]
    limits = _limits(model, field)
    lowest = limits["ge"] * scale if "ge" in limits else limits["gt"] * scale + 1
    smallest_valid = -(-lowest // step) * step
    assert low == smallest_valid, f"{setting}: lowest value differs from {model.__name__}.{field}"
    if "le" in limits:
        assert high == limits["le"] * scale
    assert step == limits.get("multiple_of", 1)


def test_profile_feedback_cues_are_the_cues_the_camera_plays() -> None:
    assert {state.value for state in STATE_CUES} | set(EVENT_CUES) == FEEDBACK_CUES
