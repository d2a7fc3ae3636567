"""SimCamera: real H.264 from libx264 (through PyAV) of a test card or a replayed file.

Packets are what the Pi's hardware encoder gives: Annex B access units, no B-frames (so packets
come out in capture order and pts == dts), a key frame every ``keyframe_interval`` frames and SPS
and PPS repeated in front of every key frame, so a stream cut at any key frame decodes alone.

Time base is ``1/fps``: frame ``n`` has pts ``n``. ``read`` paces itself on the injected clock:
frame ``n`` is captured at ``open time + n / fps`` on the clock's monotonic time, scheduled from
the start rather than from the previous frame so that it never drifts. With a virtual
:class:`~hw.sim.clock.SimClock` the waits return at once and advance time, so tests run as fast as
the encoder; with a real-time clock the camera runs in real time. If encoding falls behind, frames
are captured late rather than dropped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import av.error
import numpy as np

from hw.errors import AdapterUnavailable, ConfigError, DeviceClosed, DeviceError
from hw.ports.camera import CameraConfig, CameraInfo, VideoPacket, camera_info
from hw.ports.clock import Clock
from hw.sim.testcard import MIN_HEIGHT, MIN_WIDTH, Plane, TestCard

_NS = 1_000_000_000


class _FrameSource(Protocol):
    def picture(self, index: int, wall_ns: int) -> Plane: ...

    def close(self) -> None: ...


class _TestCardSource:
    def __init__(self, cfg: CameraConfig) -> None:
        self._card = TestCard(cfg.width, cfg.height, cfg.camera_id)

    def picture(self, index: int, wall_ns: int) -> Plane:
        return self._card.draw(index, wall_ns)

    def close(self) -> None:
        pass


class _ReplaySource:
    """Decodes a video file's frames in a loop, scaled to the configured size.

    Frames are re-encoded rather than passed through so that every key frame carries SPS/PPS
    and the GOP matches the configuration whatever the file's own encoder did.
    """

    def __init__(self, path: Path, width: int, height: int) -> None:
        self._path, self._width, self._height = path, width, height
        self._container: av.container.InputContainer | None = None
        self._frames = self._restart()

    def picture(self, index: int, wall_ns: int) -> Plane:
        for _attempt in range(2):
            frame = next(self._frames, None)
            if frame is not None:
                scaled = frame.reformat(width=self._width, height=self._height, format="yuv420p")
                # A fresh array drops the decoded frame's picture type, which libx264 would
                # otherwise obey and turn every I-frame of the file into an extra key frame.
                return np.asarray(scaled.to_ndarray(), dtype=np.uint8)
            self._frames = self._restart()
        raise ConfigError(f"replay file {str(self._path)!r} has no video frames: pick another file")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def _restart(self) -> Iterator[av.VideoFrame]:
        self.close()
        try:
            self._container = av.open(str(self._path), mode="r")
        except av.error.FFmpegError as exc:
            raise ConfigError(
                f"cannot open replay file {str(self._path)!r} ({exc}): give an H.264 or MP4 video"
            ) from exc
        if not self._container.streams.video:
            raise ConfigError(f"replay file {str(self._path)!r} has no video stream")
        return _decoded(self._container, self._path)


def _decoded(container: av.container.InputContainer, path: Path) -> Iterator[av.VideoFrame]:
    try:
        yield from container.decode(video=0)
    except av.error.FFmpegError as exc:
        raise DeviceError(f"cannot decode replay file {str(path)!r}: {exc}") from exc


def _open_encoder(cfg: CameraConfig) -> av.VideoCodecContext:
    if "libx264" not in av.codecs_available:
        raise AdapterUnavailable(
            "PyAV was built without libx264: reinstall it with 'pip install --force-reinstall av'"
        )
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = cfg.width, cfg.height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, cfg.fps)
    encoder.framerate = Fraction(cfg.fps)
    encoder.bit_rate = cfg.bitrate
    gop = cfg.keyframe_interval
    encoder.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        # Fixed GOP, parameter sets on every key frame, no B-frames: what the ring needs.
        "x264-params": (
            f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1:bframes=0:annexb=1"
        ),
    }
    try:
        encoder.open()
    except av.error.FFmpegError as exc:
        raise ConfigError(f"libx264 rejected the camera configuration: {exc}") from exc
    return encoder


class SimCamera:
    """A camera made of libx264 and a test card (or a replayed file), paced by a clock."""

    def __init__(self, cfg: CameraConfig, clock: Clock) -> None:
        if cfg.width < MIN_WIDTH or cfg.height < MIN_HEIGHT:
            raise ConfigError(
                f"the sim camera needs at least {MIN_WIDTH}x{MIN_HEIGHT} to draw its timestamp: "
                f"raise [camera] width/height (now {cfg.width}x{cfg.height})"
            )
        self._cfg = cfg
        self._clock = clock
        self._time_base = Fraction(1, cfg.fps)
        self._lock = threading.Lock()
        self._encoder: av.VideoCodecContext | None = None
        self._source: _FrameSource | None = None
        self._ready: deque[VideoPacket] = deque()
        self._captured: dict[int, tuple[int, int]] = {}  # pts -> (monotonic_ns, wall_ns)
        self._start_ns = 0
        self._next_index = 0
        self.frames_encoded = 0  #: test control: frames handed to the encoder since open

    @property
    def info(self) -> CameraInfo:
        return camera_info(self._cfg, self._time_base)

    @property
    def is_open(self) -> bool:
        return self._encoder is not None

    def open(self) -> None:
        with self._lock:
            if self._encoder is not None:
                return
            source: _FrameSource = (
                _TestCardSource(self._cfg)
                if self._cfg.replay is None
                else _ReplaySource(self._cfg.replay, self._cfg.width, self._cfg.height)
            )
            try:
                self._encoder = _open_encoder(self._cfg)
            except BaseException:
                source.close()
                raise
            self._source = source
            self._ready.clear()
            self._captured.clear()
            self._next_index = 0
            self.frames_encoded = 0
            self._start_ns = self._clock.monotonic_ns()

    def read(self) -> VideoPacket:
        """The next packet, returned once its frame's capture time has come on the clock."""
        with self._lock:
            while not self._ready:
                self._capture_one()
            return self._ready.popleft()

    def close(self) -> None:
        with self._lock:
            if self._source is not None:
                self._source.close()
            self._encoder = None
            self._source = None
            self._ready.clear()
            self._captured.clear()

    def _capture_one(self) -> None:
        encoder, source = self._encoder, self._source
        if encoder is None or source is None:
            raise DeviceClosed("the camera is not open: call open() before read()")
        index = self._next_index
        self._wait_until(self._start_ns + index * _NS // self._cfg.fps)
        monotonic_ns, wall_ns = self._clock.monotonic_ns(), self._clock.wall_ns()
        frame = av.VideoFrame.from_ndarray(source.picture(index, wall_ns), format="yuv420p")
        frame.pts = index
        frame.time_base = self._time_base
        self._captured[index] = (monotonic_ns, wall_ns)
        try:
            packets = encoder.encode(frame)
        except av.error.FFmpegError as exc:
            raise DeviceError(f"the sim camera's H.264 encoder failed: {exc}") from exc
        self._next_index += 1
        self.frames_encoded += 1
        for packet in packets:
            self._ready.append(self._to_video_packet(packet))

    def _to_video_packet(self, packet: av.Packet[Any]) -> VideoPacket:
        if packet.pts is None:
            raise DeviceError("the sim camera's encoder produced a packet without a timestamp")
        monotonic_ns, wall_ns = self._captured.pop(packet.pts)
        return VideoPacket(
            data=bytes(packet),
            pts=packet.pts,
            time_base=self._time_base,
            keyframe=packet.is_keyframe,
            monotonic_ns=monotonic_ns,
            wall_ns=wall_ns,
        )

    def _wait_until(self, due_ns: int) -> None:
        # Loop because a sleep may end a little early (float rounding, signals).
        while (remaining := due_ns - self._clock.monotonic_ns()) > 0:
            self._clock.sleep(remaining / _NS)
