"""ReplayCamera: the benchmark's hardware edge hands out recorded packets like a live camera."""

from __future__ import annotations

from fractions import Fraction

import pytest
from bench.replay_camera import ReplayCamera

from hw.errors import ConfigError, DeviceClosed
from hw.ports.camera import Camera, CameraInfo, VideoPacket
from hw.sim.clock import SimClock

FPS = 10
INFO = CameraInfo("h264", 320, 240, Fraction(FPS), 2, Fraction(1, FPS))
FRAME_NS = 1_000_000_000 // FPS


def recorded(frames: int = 4) -> list[VideoPacket]:
    """Packets as a camera recorded them: pts 0.., one key frame every two frames."""
    return [
        VideoPacket(bytes([n]) * 10, n, INFO.time_base, n % 2 == 0, n * FRAME_NS, n * FRAME_NS)
        for n in range(frames)
    ]


@pytest.fixture
def clock() -> SimClock:
    clock = SimClock(virtual=True, start_wall_ns=1_700_000_000_000_000_000)
    clock.advance(5)  # the replay opens some time after boot
    return clock


@pytest.fixture
def camera(clock: SimClock) -> ReplayCamera:
    camera = ReplayCamera(INFO, recorded(), clock)
    camera.open()
    return camera


def test_it_is_a_camera(camera: ReplayCamera) -> None:
    assert isinstance(camera, Camera)


def test_each_packet_comes_out_at_its_capture_time(camera: ReplayCamera, clock: SimClock) -> None:
    opened = clock.monotonic_ns()
    times = [camera.read().monotonic_ns for _ in range(4)]
    assert times == [opened + n * FRAME_NS for n in range(4)]
    assert clock.monotonic_ns() == times[-1]


def test_the_payload_is_handed_out_unchanged(camera: ReplayCamera) -> None:
    assert [camera.read().data for _ in range(4)] == [p.data for p in recorded()]


def test_after_the_last_packet_it_starts_again_with_time_running_on(
    camera: ReplayCamera, clock: SimClock
) -> None:
    opened = clock.monotonic_ns()
    packets = [camera.read() for _ in range(8)]
    assert [p.pts for p in packets] == list(range(8))
    assert [p.monotonic_ns - opened for p in packets] == [n * FRAME_NS for n in range(8)]
    assert packets[4].keyframe and packets[4].data == packets[0].data


def test_reading_a_closed_camera_raises(camera: ReplayCamera) -> None:
    camera.close()
    with pytest.raises(DeviceClosed):
        camera.read()


def test_a_replay_must_start_on_a_key_frame(clock: SimClock) -> None:
    with pytest.raises(ConfigError):
        ReplayCamera(INFO, recorded()[1:], clock)
