"""Camera port contract, run against every adapter: what the pre-event ring relies on."""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from hw.errors import AdapterUnavailable, DeviceClosed
from hw.ports.camera import Camera, CameraConfig, VideoPacket, open_camera
from hw.ports.clock import Clock
from hw.real.clock import SystemClock
from hw.sim.clock import SimClock
from tests.hw.camera_streams import NAL_PPS, NAL_SPS, decode, nal_types, write_test_card_video

GOP = 5
PACKETS = 3 * GOP + 1
WIDTH, HEIGHT = 320, 240


@pytest.fixture(scope="module")
def camera_replay_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "card.mp4"
    write_test_card_video(path, width=WIDTH, height=HEIGHT, frames=7)
    return path


def _config(adapter: str, replay: Path) -> CameraConfig:
    return CameraConfig(
        adapter="picamera2" if adapter == "picamera2" else "sim",
        fps=15,
        keyframe_interval=GOP,
        bitrate=500_000,
        replay=replay if adapter == "sim-replay" else None,
        width=WIDTH,
        height=HEIGHT,
    )


@pytest.fixture(params=["sim", "sim-replay", pytest.param("picamera2", marks=pytest.mark.real)])
def camera(request: pytest.FixtureRequest, camera_replay_file: Path) -> Iterator[Camera]:
    """An unopened camera of each adapter; closed after the test."""
    clock: Clock = SystemClock() if request.param == "picamera2" else SimClock(virtual=True)
    try:
        cam = open_camera(_config(request.param, camera_replay_file), clock)
    except AdapterUnavailable as exc:
        pytest.skip(f"no camera: {exc}")
    yield cam
    cam.close()


@pytest.fixture
def camera_packets(camera: Camera) -> list[VideoPacket]:
    camera.open()
    return [camera.read() for _ in range(PACKETS)]


def test_camera_satisfies_the_port(camera: Camera) -> None:
    assert isinstance(camera, Camera)


def test_info_reports_the_configured_stream(camera: Camera) -> None:
    info = camera.info
    assert (info.codec, info.width, info.height) == ("h264", WIDTH, HEIGHT)
    assert (info.fps, info.keyframe_interval) == (Fraction(15), GOP)


def test_first_packet_is_a_key_frame(camera_packets: list[VideoPacket]) -> None:
    assert camera_packets[0].keyframe


def test_key_frames_come_every_keyframe_interval(camera_packets: list[VideoPacket]) -> None:
    positions = [i for i, packet in enumerate(camera_packets) if packet.keyframe]
    assert positions == list(range(0, PACKETS, GOP))


def test_pts_rise_by_one_frame_per_packet(
    camera: Camera, camera_packets: list[VideoPacket]
) -> None:
    frame = 1 / camera.info.fps
    steps = [(b.pts - a.pts) * a.time_base for a, b in itertools.pairwise(camera_packets)]
    # A sensor's timestamps jitter a little; a sim camera's are exact.
    assert all(abs(step - frame) < frame / 10 for step in steps), steps
    assert all(packet.time_base == camera.info.time_base for packet in camera_packets)


def test_capture_times_rise_by_one_frame_per_packet(camera_packets: list[VideoPacket]) -> None:
    frame_ns = 1e9 / 15
    for a, b in itertools.pairwise(camera_packets):
        assert abs((b.monotonic_ns - a.monotonic_ns) - frame_ns) < frame_ns / 10
        assert abs((b.wall_ns - a.wall_ns) - frame_ns) < frame_ns / 10


def test_packets_are_annex_b(camera_packets: list[VideoPacket]) -> None:
    assert all(
        packet.data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")) for packet in camera_packets
    )


def test_every_key_frame_carries_sps_and_pps(camera_packets: list[VideoPacket]) -> None:
    key_frames = [packet for packet in camera_packets if packet.keyframe]
    assert len(key_frames) == 4
    for packet in key_frames:
        assert {NAL_SPS, NAL_PPS} <= set(nal_types(packet.data))


def test_packets_decode_to_frames_of_the_configured_size(camera_packets: list[VideoPacket]) -> None:
    frames = decode(camera_packets)
    assert len(frames) == PACKETS
    assert {(frame.width, frame.height) for frame in frames} == {(WIDTH, HEIGHT)}


def test_read_before_open_raises_device_closed(camera: Camera) -> None:
    with pytest.raises(DeviceClosed, match="open"):
        camera.read()


def test_read_after_close_raises_device_closed(camera: Camera) -> None:
    camera.open()
    camera.read()
    camera.close()
    with pytest.raises(DeviceClosed):
        camera.read()


def test_reopened_camera_starts_again_at_a_key_frame(camera: Camera) -> None:
    camera.open()
    for _ in range(GOP + 2):
        camera.read()
    camera.close()
    camera.open()
    assert camera.read().keyframe


def test_missing_picamera2_names_the_package_to_install() -> None:
    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is installed here")
    with pytest.raises(AdapterUnavailable, match=r"pip install bwc\[pi\]"):
        open_camera(CameraConfig(adapter="picamera2"), SystemClock())
