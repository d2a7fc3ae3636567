"""Picamera2Camera: the Raspberry Pi camera through picamera2 and its hardware H.264 encoder.

picamera2's encoder thread hands every encoded frame to an ``Output``; ours turns it into a
:class:`~hw.ports.camera.VideoPacket` and puts it in a bounded queue that ``read`` takes from.
``H264Encoder(repeat=True)`` repeats SPS/PPS before every key frame, so a stream cut at any key
frame decodes alone.

Time base is microseconds: picamera2 gives each frame the sensor timestamp, in microseconds since
the encoder started, and that is the packet's pts. Capture times on the injected clock are the
sensor timestamps shifted so that the first frame is stamped when it arrived, which places every
frame later than its exposure by the first frame's encoding latency (a few milliseconds).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from hw.errors import AdapterUnavailable, DeviceClosed, DeviceError
from hw.ports.camera import CameraConfig, CameraInfo, VideoPacket, camera_info
from hw.ports.clock import Clock

_TIME_BASE = Fraction(1, 1_000_000)
_STALL_SECONDS = 2.0  # no frame for this long means the camera or its cable failed
_FrameSink = Callable[[bytes, bool, int], None]


def _queue_output_class(output_base: type[Any]) -> type[Any]:
    """A ``picamera2.outputs.Output`` subclass that hands frames to a callback.

    Built after picamera2 is imported so that this module imports without it.
    """

    class QueueOutput(output_base):  # type: ignore[misc]
        def __init__(self, sink: _FrameSink) -> None:
            super().__init__()
            self._sink = sink

        def outputframe(
            self,
            frame: bytes | None,
            keyframe: bool = True,
            timestamp: int | None = None,
            packet: object = None,
            audio: bool = False,
        ) -> None:
            if audio or frame is None or timestamp is None:
                return
            self._sink(bytes(frame), bool(keyframe), int(timestamp))

    return QueueOutput


class Picamera2Camera:
    def __init__(self, cfg: CameraConfig, clock: Clock) -> None:
        try:
            from picamera2 import Picamera2
            from picamera2.encoders import H264Encoder
            from picamera2.outputs import Output
        except ImportError as exc:
            raise AdapterUnavailable(
                f"picamera2 is not installed ({exc}): run 'pip install bwc[pi]' on the Raspberry "
                "Pi and 'sudo apt install python3-libcamera'"
            ) from exc
        try:
            cameras = Picamera2.global_camera_info()
        except RuntimeError as exc:
            raise AdapterUnavailable(f"libcamera cannot list cameras ({exc}): update it") from exc
        if not cameras:
            raise AdapterUnavailable(
                "no camera detected: connect the camera ribbon cable (contacts facing the board) "
                "and check 'rpicam-hello --list-cameras'"
            )
        self._picamera2_class: Any = Picamera2
        self._encoder_class: Any = H264Encoder
        self._output_class = _queue_output_class(Output)
        self._cfg = cfg
        self._clock = clock
        self._picam: Any = None
        self._packets: queue.Queue[VideoPacket | None] = queue.Queue(maxsize=2 * cfg.fps)
        self._lock = threading.Lock()
        self._anchor_ns: int | None = None  # clock monotonic time of sensor timestamp 0
        self._resync = False
        self.frames_dropped = 0  #: frames lost because ``read`` fell behind

    @property
    def info(self) -> CameraInfo:
        return camera_info(self._cfg, _TIME_BASE)

    def open(self) -> None:
        with self._lock:
            if self._picam is not None:
                return
            self._packets = queue.Queue(maxsize=2 * self._cfg.fps)
            self._anchor_ns, self._resync = None, False
            cfg = self._cfg
            try:
                picam = self._picamera2_class()
            except (RuntimeError, IndexError) as exc:
                raise AdapterUnavailable(
                    f"cannot open the camera ({exc}): check the ribbon cable and that no other "
                    "program is using the camera"
                ) from exc
            try:
                video = picam.create_video_configuration(
                    main={"size": (cfg.width, cfg.height)}, controls={"FrameRate": cfg.fps}
                )
                picam.configure(video)
                encoder = self._encoder_class(
                    bitrate=cfg.bitrate, repeat=True, iperiod=cfg.keyframe_interval
                )
                picam.start_recording(encoder, self._output_class(self._on_frame))
            except (RuntimeError, ValueError, OSError) as exc:
                picam.close()
                raise DeviceError(
                    f"the camera refused {cfg.width}x{cfg.height} at {cfg.fps} fps ({exc}): "
                    "choose a mode the sensor supports"
                ) from exc
            self._picam = picam

    def read(self) -> VideoPacket:
        if self._picam is None:
            raise DeviceClosed("the camera is not open: call open() before read()")
        try:
            packet = self._packets.get(timeout=_STALL_SECONDS)
        except queue.Empty as exc:
            raise DeviceError(
                f"the camera sent no frame for {_STALL_SECONDS:.0f} s: check the ribbon cable"
            ) from exc
        if packet is None:
            raise DeviceClosed("the camera was closed while reading")
        return packet

    def close(self) -> None:
        with self._lock:
            picam, self._picam = self._picam, None
            if picam is None:
                return
            try:
                picam.stop_recording()
            except RuntimeError as exc:
                raise DeviceError(f"the camera did not stop cleanly: {exc}") from exc
            finally:
                picam.close()
                self._wake_reader()

    def _wake_reader(self) -> None:
        while True:
            try:
                self._packets.put_nowait(None)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._packets.get_nowait()

    def _on_frame(self, data: bytes, keyframe: bool, timestamp_us: int) -> None:
        """Runs on picamera2's encoder thread."""
        # After a drop the decoder needs a key frame again: skip to the next one.
        if self._resync and not keyframe:
            self.frames_dropped += 1
            return
        self._resync = False
        now_ns = self._clock.monotonic_ns()
        if self._anchor_ns is None:
            self._anchor_ns = now_ns - timestamp_us * 1000
        monotonic_ns = self._anchor_ns + timestamp_us * 1000
        packet = VideoPacket(
            data=data,
            pts=timestamp_us,
            time_base=_TIME_BASE,
            keyframe=keyframe,
            monotonic_ns=monotonic_ns,
            wall_ns=self._clock.wall_ns() - (now_ns - monotonic_ns),
        )
        try:
            self._packets.put_nowait(packet)
        except queue.Full:
            self.frames_dropped += 1
            self._resync = True
