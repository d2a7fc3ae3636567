"""The sim camera's own behaviour: what it draws, how it paces itself, replay, configuration."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hw.errors import ConfigError, DeviceClosed
from hw.ports.camera import CameraConfig, VideoPacket
from hw.ports.clock import Clock
from hw.sim.camera import SimCamera
from hw.sim.clock import SimClock
from hw.sim.testcard import (
    FONT,
    GLYPH_H,
    GLYPH_W,
    Stamp,
    TestCard,
    draw_stamp,
    read_stamp,
    wall_text,
)
from tests.hw.camera_streams import (
    REPLAY_FIRST_WALL_MS,
    decode,
    luma,
    stamps,
    write_test_card_video,
)

FPS = 30
FRAME_NS = 1_000_000_000 // FPS
START_WALL_NS = 1_767_225_600_123_456_789  # 2026-01-01 00:00:00.123456789 UTC


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock(virtual=True, start_wall_ns=START_WALL_NS)


MakeCamera = Callable[..., SimCamera]


@pytest.fixture
def make_sim_camera() -> Iterator[MakeCamera]:
    """Build and open sim cameras (virtual clock unless one is given); all closed afterwards."""
    cameras: list[SimCamera] = []

    def make(clock: Clock | None = None, **settings: Any) -> SimCamera:
        camera = SimCamera(CameraConfig(**settings), clock or SimClock(virtual=True))
        cameras.append(camera)
        camera.open()
        return camera

    yield make
    for camera in cameras:
        camera.close()


@pytest.fixture
def sim_camera(make_sim_camera: MakeCamera, sim_clock: SimClock) -> SimCamera:
    return make_sim_camera(sim_clock, fps=FPS, keyframe_interval=10)


def _read(camera: SimCamera, count: int) -> list[VideoPacket]:
    return [camera.read() for _ in range(count)]


def _ocr_line(plane: np.ndarray, card: TestCard, line: int, length: int) -> str:
    """Read ``length`` characters of burned-in text by matching each cell against the font."""
    top, left = card.text_origin(line)
    scale = card.scale
    # Sample the middle of each font pixel, where compression blurs least.
    rows = top + np.arange(GLYPH_H) * scale + scale // 2
    text = []
    for index in range(length):
        cols = left + (index * (GLYPH_W + 1) + np.arange(GLYPH_W)) * scale + scale // 2
        cell = plane[np.ix_(rows, cols)] > 128
        text.append(min(FONT, key=lambda ch: int(np.count_nonzero(FONT[ch] != cell))))
    return "".join(text)


def test_decoded_frames_carry_the_capture_time_of_their_packet(sim_camera: SimCamera) -> None:
    packets = _read(sim_camera, 45)
    read_back = stamps(decode(packets))
    assert read_back == [Stamp(p.wall_ns // 1_000_000, frame) for frame, p in enumerate(packets)]


def test_burned_in_text_shows_the_camera_id_and_wall_clock_time(sim_camera: SimCamera) -> None:
    packets = _read(sim_camera, 3)
    card = TestCard(640, 360, "BWC-SIM-0001")
    for packet, frame in zip(packets, decode(packets), strict=True):
        plane = luma(frame)
        assert _ocr_line(plane, card, 0, 12) == "BWC-SIM-0001"
        expected = wall_text(packet.wall_ns)
        assert _ocr_line(plane, card, 1, len(expected)) == expected


def test_wall_clock_text_is_utc_to_the_millisecond() -> None:
    assert wall_text(START_WALL_NS) == "2026-01-01 00:00:00.123Z"


def test_every_frame_moves(sim_camera: SimCamera) -> None:
    planes = [luma(frame).astype(np.int16) for frame in decode(_read(sim_camera, 10))]
    picture = slice(60, 280)  # between the text and the stamp
    for before, after in itertools.pairwise(planes):
        assert np.abs(after[picture] - before[picture]).mean() > 10


def test_packets_are_captured_on_the_frame_schedule(
    sim_camera: SimCamera, sim_clock: SimClock
) -> None:
    packets = _read(sim_camera, 60)
    assert [p.monotonic_ns for p in packets] == [n * 10**9 // FPS for n in range(60)]
    assert sim_clock.monotonic_ns() == packets[-1].monotonic_ns


class _OversleepingClock(SimClock):
    """A virtual clock whose sleeps overrun by 4 ms, like a loaded scheduler."""

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds + 0.004)


def test_late_wakeups_do_not_accumulate_into_drift(make_sim_camera: MakeCamera) -> None:
    camera = make_sim_camera(_OversleepingClock(virtual=True), width=160, height=120, fps=FPS)
    packets = _read(camera, 90)
    lateness = [p.monotonic_ns - n * 10**9 // FPS for n, p in enumerate(packets)]
    assert max(lateness) <= 4_000_000


def test_a_real_time_clock_delivers_frames_in_real_time(make_sim_camera: MakeCamera) -> None:
    clock = SimClock()
    camera = make_sim_camera(clock, width=160, height=120, fps=FPS)
    packets = _read(camera, 7)
    # The seventh frame is due 6/30 s after open; the host's clock must agree it came no sooner.
    assert clock.monotonic_ns() >= packets[-1].monotonic_ns >= 6 * 10**9 // FPS


def test_frames_encoded_counts_frames_given_to_the_encoder(sim_camera: SimCamera) -> None:
    _read(sim_camera, 12)
    assert sim_camera.frames_encoded == 12


def test_stream_cut_at_the_second_key_frame_decodes_alone(sim_camera: SimCamera) -> None:
    packets = _read(sim_camera, 25)
    second_key = [i for i, p in enumerate(packets) if p.keyframe][1]
    tail = packets[second_key:]
    assert second_key == 10
    assert stamps(decode(tail)) == [
        Stamp(p.wall_ns // 1_000_000, second_key + i) for i, p in enumerate(tail)
    ]


@pytest.fixture(params=["mp4", "h264"])
def replay_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"card.{request.param}"
    write_test_card_video(path, width=320, height=240, frames=12)
    return path


def test_replay_plays_the_file_in_a_loop_with_continuous_pts(
    make_sim_camera: MakeCamera, replay_file: Path
) -> None:
    camera = make_sim_camera(width=320, height=240, keyframe_interval=5, replay=replay_file)
    packets = _read(camera, 30)
    counters = [s.frame if s else None for s in stamps(decode(packets))]
    assert counters == [n % 12 for n in range(30)]
    assert [p.pts for p in packets] == list(range(30))


def test_replay_keeps_the_pictures_of_the_file(
    make_sim_camera: MakeCamera, replay_file: Path
) -> None:
    camera = make_sim_camera(width=320, height=240, replay=replay_file)
    first = read_stamp(luma(decode(_read(camera, 1))[0]))
    assert first == Stamp(REPLAY_FIRST_WALL_MS, 0)


def test_replay_of_a_file_that_is_not_video_is_refused_at_open(
    make_sim_camera: MakeCamera, tmp_path: Path
) -> None:
    not_video = tmp_path / "notes.h264"
    not_video.write_bytes(b"these are not the frames you are looking for" * 10)
    with pytest.raises(ConfigError, match=r"notes\.h264.*H\.264 or MP4"):
        make_sim_camera(replay=not_video)


def test_missing_replay_file_is_rejected_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"replay(.|\n)*does not exist"):
        CameraConfig(replay=tmp_path / "gone.mp4")


@pytest.mark.parametrize("field", ["fps", "width", "height", "keyframe_interval", "bitrate"])
def test_non_positive_numbers_are_rejected_naming_the_field(field: str) -> None:
    with pytest.raises(ValidationError, match=rf"{field}\n.*greater than 0"):
        CameraConfig.model_validate({field: -30})


def test_a_frame_too_small_for_the_stamp_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 160x120"):
        SimCamera(CameraConfig(width=64, height=64), SimClock(virtual=True))


def test_read_after_close_raises_even_mid_gop(sim_camera: SimCamera) -> None:
    _read(sim_camera, 3)
    sim_camera.close()
    with pytest.raises(DeviceClosed, match="open"):
        sim_camera.read()


@given(wall_ms=st.integers(0, 2**48 - 1), frame=st.integers(0, 2**24 - 1))
def test_stamp_round_trips_any_time_and_counter(wall_ms: int, frame: int) -> None:
    plane = np.full((120, 160), 128, dtype=np.uint8)
    draw_stamp(plane, Stamp(wall_ms, frame))
    assert read_stamp(plane) == Stamp(wall_ms, frame)


def test_a_picture_without_a_stamp_reads_as_none() -> None:
    assert read_stamp(np.full((360, 640), 128, dtype=np.uint8)) is None
