"""Keys and sealed clips shared by the custody tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import SealedClip, seal_clip
from custody.manifest import ClipInfo, EventRecord

START_WALL_NS = 1_700_000_000_000_000_000


@pytest.fixture
def info() -> ClipInfo:
    return ClipInfo(
        device_id="cam-0042",
        device_serial="BWC1-000042",
        officer_id="officer-1187",
        firmware_version="0.1.0",
        start_wall_ns=START_WALL_NS,
        start_monotonic_ns=12_000_000_000,
        time_sync_offset_ns=-3_500_000,
        triggers=({"kind": "button", "gesture": "double-press"},),
        pre_event_ns=30_000_000_000,
    )


@pytest.fixture
def plaintexts() -> list[bytes]:
    return [bytes([i]) * (200 + 37 * i) for i in range(5)]


@pytest.fixture
def clip(
    plaintexts: list[bytes],
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    info: ClipInfo,
) -> SealedClip:
    gnss = EventRecord(
        "gnss", START_WALL_NS + 1, 12_000_000_001, {"lat_e7": 515_007_592, "lon_e7": -1_246_354}
    )
    return seal_clip(
        plaintexts,
        device_key=device_key,
        agency_public=agency_key.public_key(),
        info=info,
        events=[(2, gnss)],
    )


@pytest.fixture
def clip_folder(tmp_path: Path, clip: SealedClip) -> Path:
    folder = tmp_path / "clip"
    clip.write_to(folder)
    return folder
