"""The benchmark's video: encoded once per run by the sim camera, then replayed from a file.

Encoding is what the figures exclude, so it happens once, before anything is measured. The
stream is kept as two files in the run's work folder:

- ``stream.h264``: every packet's Annex B bytes back to back, which is also a raw H.264 file the
  ffmpeg peer reads, so ours and the peer see the very same bytes;
- ``stream.json``: the camera's description and, per packet, its size, pts, key-frame flag and
  capture times, so the packets can be cut out of ``stream.h264`` again one by one.

The sim camera is the real libx264 encoder (what the Pi's hardware encoder gives: no B-frames,
SPS/PPS before every key frame, one key frame per second) on a moving test card with a burned-in
clock, on a virtual clock so it runs as fast as the encoder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from hw.ports.camera import CameraConfig, CameraInfo, VideoPacket
from hw.sim.camera import SimCamera
from hw.sim.clock import SimClock

DATA_NAME = "stream.h264"
INDEX_NAME = "stream.json"
START_WALL_NS = 1_700_000_000_000_000_000


@dataclass(frozen=True)
class Scenario:
    """What one run encodes and measures; ``--quick`` and ``--smoke`` shrink it."""

    mode: str
    width: int
    height: int
    fps: int
    bitrate: int  #: the encoder's target, bits per second
    seconds: int  #: length of the encoded stream
    ring_s: float  #: the pre-event ring's configured time
    repeats: int = 3  #: runs of each CPU measurement; the median is reported

    @property
    def label(self) -> str:
        """``1080p30`` and friends, for figure notes."""
        return f"{self.height}p{self.fps}"

    def describe(self) -> str:
        return (
            f"{self.mode} mode: {self.width}x{self.height} at {self.fps} fps, "
            f"libx264 ultrafast at {self.bitrate / 1e6:g} Mbit/s target, "
            f"{self.seconds} s stream, {self.ring_s:g} s ring"
        )


@dataclass(frozen=True)
class EncodedStream:
    """The packets of one encoded stream, on disk; :meth:`packets` reads them back in order."""

    folder: Path
    info: CameraInfo
    sizes: tuple[int, ...]
    pts: tuple[int, ...]
    keyframes: tuple[bool, ...]
    monotonic_ns: tuple[int, ...]
    wall_ns: tuple[int, ...]

    @property
    def data_path(self) -> Path:
        return self.folder / DATA_NAME

    @property
    def frames(self) -> int:
        return len(self.sizes)

    @property
    def duration_s(self) -> float:
        """First frame's start to the last frame's end."""
        if not self.pts:
            return 0.0
        frame = 1 / (self.info.fps * self.info.time_base)
        return float((self.pts[-1] - self.pts[0] + frame) * self.info.time_base)

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes)

    @property
    def bytes_per_s(self) -> float:
        return self.total_bytes / self.duration_s if self.pts else 0.0

    def packets(self) -> Iterator[VideoPacket]:
        """Each packet, read from ``stream.h264`` one at a time (never the whole file at once)."""
        with self.data_path.open("rb") as data:
            for i, size in enumerate(self.sizes):
                payload = data.read(size)
                if len(payload) != size:
                    raise ValueError(
                        f"{self.data_path} ends inside packet {i}: delete the work folder "
                        "and run the benchmark again"
                    )
                yield VideoPacket(
                    data=payload,
                    pts=self.pts[i],
                    time_base=self.info.time_base,
                    keyframe=self.keyframes[i],
                    monotonic_ns=self.monotonic_ns[i],
                    wall_ns=self.wall_ns[i],
                )

    def save_index(self) -> None:
        info = self.info
        index: dict[str, Any] = {
            "info": {
                "codec": info.codec,
                "width": info.width,
                "height": info.height,
                "fps": str(info.fps),
                "keyframe_interval": info.keyframe_interval,
                "time_base": str(info.time_base),
            },
            "sizes": self.sizes,
            "pts": self.pts,
            "keyframes": self.keyframes,
            "monotonic_ns": self.monotonic_ns,
            "wall_ns": self.wall_ns,
        }
        (self.folder / INDEX_NAME).write_text(json.dumps(index), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> EncodedStream:
        index = json.loads((folder / INDEX_NAME).read_text(encoding="utf-8"))
        raw = index["info"]
        info = CameraInfo(
            codec=raw["codec"],
            width=raw["width"],
            height=raw["height"],
            fps=Fraction(raw["fps"]),
            keyframe_interval=raw["keyframe_interval"],
            time_base=Fraction(raw["time_base"]),
        )
        return cls(
            folder=folder,
            info=info,
            sizes=tuple(index["sizes"]),
            pts=tuple(index["pts"]),
            keyframes=tuple(index["keyframes"]),
            monotonic_ns=tuple(index["monotonic_ns"]),
            wall_ns=tuple(index["wall_ns"]),
        )


def encode_stream(scenario: Scenario, folder: Path) -> EncodedStream:
    """Encode ``scenario.seconds`` of video with the sim camera into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    clock = SimClock(virtual=True, start_wall_ns=START_WALL_NS)
    camera = SimCamera(
        CameraConfig(
            width=scenario.width,
            height=scenario.height,
            fps=scenario.fps,
            keyframe_interval=scenario.fps,  # one GOP, hence one segment, per second
            bitrate=scenario.bitrate,
        ),
        clock,
    )
    sizes: list[int] = []
    pts: list[int] = []
    keyframes: list[bool] = []
    monotonic_ns: list[int] = []
    wall_ns: list[int] = []
    camera.open()
    try:
        with (folder / DATA_NAME).open("wb") as data:
            for _ in range(scenario.seconds * scenario.fps):
                packet = camera.read()
                data.write(packet.data)
                sizes.append(len(packet.data))
                pts.append(packet.pts)
                keyframes.append(packet.keyframe)
                monotonic_ns.append(packet.monotonic_ns)
                wall_ns.append(packet.wall_ns)
        info = camera.info
    finally:
        camera.close()
    stream = EncodedStream(
        folder,
        info,
        tuple(sizes),
        tuple(pts),
        tuple(keyframes),
        tuple(monotonic_ns),
        tuple(wall_ns),
    )
    stream.save_index()
    return stream
