"""ReplayCamera: a Camera-port adapter that hands out packets encoded earlier, paced on a clock.

The recording-path figure excludes encoding, so the firmware is fed this camera instead of one
that encodes: it is the hardware edge, like a Pi whose encoder runs on the GPU. Each packet comes
out when its capture time has come on the injected clock (with a virtual clock, at once) and is
stamped with that time, as a real camera would. At the end of the packets it starts again from
the first one with pts and times running on, so the firmware sees one unbroken stream.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from hw.errors import ConfigError, DeviceClosed
from hw.ports.camera import CameraInfo, VideoPacket
from hw.ports.clock import Clock

_NS = 1_000_000_000


class ReplayCamera:
    def __init__(self, info: CameraInfo, packets: Sequence[VideoPacket], clock: Clock) -> None:
        if not packets or not packets[0].keyframe:
            raise ConfigError("a replay needs packets that start with a key frame: re-encode it")
        self._info = info
        self._packets = packets
        self._clock = clock
        self._lock = threading.Lock()
        first, last = packets[0], packets[-1]
        frame_ticks = round(1 / (info.fps * info.time_base))
        self._loop_pts = last.pts - first.pts + frame_ticks
        self._loop_ns = round(self._loop_pts * info.time_base * _NS)
        self._open = False
        self._start_ns = 0
        self._next = 0  #: packets handed out since open, across loops

    @property
    def info(self) -> CameraInfo:
        return self._info

    @property
    def packets_read(self) -> int:
        """Test control: packets handed out since ``open``."""
        return self._next

    def open(self) -> None:
        with self._lock:
            if self._open:
                return
            self._open = True
            self._start_ns = self._clock.monotonic_ns()
            self._next = 0

    def read(self) -> VideoPacket:
        with self._lock:
            if not self._open:
                raise DeviceClosed("the camera is not open: call open() before read()")
            loop, i = divmod(self._next, len(self._packets))
            first, packet = self._packets[0], self._packets[i]
            due = self._start_ns + loop * self._loop_ns + (packet.monotonic_ns - first.monotonic_ns)
            while (remaining := due - self._clock.monotonic_ns()) > 0:
                self._clock.sleep(remaining / _NS)
            self._next += 1
            return replace(
                packet,
                pts=packet.pts + loop * self._loop_pts,
                monotonic_ns=due,
                wall_ns=self._clock.wall_ns(),
            )

    def close(self) -> None:
        with self._lock:
            self._open = False
