"""``bwc verify --export``: decrypted fMP4 segments become one MP4 that plays every frame."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import pytest

from custody.clip import seal_clip, segment_name
from custody.keys import Role, load_agency_public_key, load_signing_key, write_key_pair
from custody.manifest import ClipInfo
from tests.cli.conftest import Run
from tests.media import FRAMES_PER_SEGMENT, fmp4_segment

SEGMENTS = 3
INFO = ClipInfo("cam-0042", "BWC1-000042", "officer-1187", "0.1.0", 1_700_000_000_000_000_000, 0)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    device = write_key_pair(tmp_path / "keys", Role.DEVICE)
    agency = write_key_pair(tmp_path / "keys", Role.AGENCY)
    return device.private, device.public, agency.private


@pytest.fixture
def video_clip(tmp_path: Path, keys: tuple[Path, Path, Path]) -> Path:
    device_private, _, agency_private = keys
    clip = seal_clip(
        [fmp4_segment(i * FRAMES_PER_SEGMENT) for i in range(SEGMENTS)],
        device_key=load_signing_key(device_private),
        agency_public=load_agency_public_key(agency_private.with_name("agency.pub.pem")),
        info=INFO,
    )
    clip.write_to(tmp_path / "clip")
    return tmp_path / "clip"


def test_export_writes_an_mp4_with_every_frame(
    bwc: Callable[..., Run], video_clip: Path, keys: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, device_public, agency_private = keys
    out = tmp_path / "clip.mp4"
    run = bwc(
        "verify", str(video_clip), "--device-key", str(device_public),
        "--agency-key", str(agency_private), "--export", str(out),
    )  # fmt: skip
    assert run.code == 0, run.out + run.err
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == SEGMENTS * FRAMES_PER_SEGMENT
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)


def test_a_tampered_clip_is_not_exported(
    bwc: Callable[..., Run], video_clip: Path, keys: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, device_public, agency_private = keys
    segment = video_clip / segment_name(1)
    segment.write_bytes(segment.read_bytes()[:-1])
    out = tmp_path / "clip.mp4"
    run = bwc(
        "verify", str(video_clip), "--device-key", str(device_public),
        "--agency-key", str(agency_private), "--export", str(out),
    )  # fmt: skip
    assert run.code == 1
    assert "not exported" in run.out
    assert not out.exists()


def test_export_without_the_agency_key_is_refused(
    bwc: Callable[..., Run], video_clip: Path, keys: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    run = bwc(
        "verify", str(video_clip), "--device-key", str(keys[1]), "--export", str(tmp_path / "x.mp4")
    )
    assert run.code == 2
    assert "--export needs a clip folder and --agency-key" in run.err
