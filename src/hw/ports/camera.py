"""Camera port: encoded H.264 packets with presentation times and key-frame flags."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import Field, field_validator

from hw.ports.base import PortConfig
from hw.ports.clock import Clock


@dataclass(frozen=True, slots=True)
class VideoPacket:
    """One encoded access unit in Annex B byte-stream form.

    Every key-frame packet carries SPS and PPS in-band, so a stream cut at any key frame (as the
    pre-event ring does) decodes on its own.
    """

    data: bytes
    pts: int  #: in ``time_base`` units, starting at 0 when the camera starts
    time_base: Fraction
    keyframe: bool
    monotonic_ns: int  #: capture time on the device's monotonic clock
    wall_ns: int  #: capture time on the wall clock (UTC ns since the epoch)

    @property
    def pts_seconds(self) -> float:
        return float(self.pts * self.time_base)


@dataclass(frozen=True, slots=True)
class CameraInfo:
    codec: str  #: always "h264" for now
    width: int
    height: int
    fps: Fraction
    keyframe_interval: int  #: frames per GOP
    time_base: Fraction


@runtime_checkable
class Camera(Protocol):
    """An H.264 camera. ``read`` blocks until the next packet is encoded."""

    @property
    def info(self) -> CameraInfo: ...

    def open(self) -> None: ...

    def read(self) -> VideoPacket: ...

    def close(self) -> None: ...


class CameraConfig(PortConfig):
    adapter: Literal["sim", "picamera2"] = "sim"
    camera_id: str = "BWC-SIM-0001"
    width: int = Field(default=640, gt=0, le=7680, multiple_of=2)
    height: int = Field(default=360, gt=0, le=4320, multiple_of=2)
    fps: int = Field(default=30, gt=0, le=120)
    keyframe_interval: int = Field(default=30, gt=0, le=600)
    bitrate: int = Field(default=1_000_000, gt=0)
    #: sim only: replay this H.264 or MP4 file (looped) instead of the synthetic pattern
    replay: Path | None = None

    @field_validator("replay")
    @classmethod
    def _replay_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"replay file {str(value)!r} does not exist")
        return value


def camera_info(cfg: CameraConfig, time_base: Fraction) -> CameraInfo:
    """What a camera configured by ``cfg`` reports; adapters differ only in their time base."""
    return CameraInfo(
        codec="h264",
        width=cfg.width,
        height=cfg.height,
        fps=Fraction(cfg.fps),
        keyframe_interval=cfg.keyframe_interval,
        time_base=time_base,
    )


def open_camera(cfg: CameraConfig, clock: Clock) -> Camera:
    if cfg.adapter == "sim":
        from hw.sim.camera import SimCamera

        return SimCamera(cfg, clock)
    from hw.real.camera import Picamera2Camera

    return Picamera2Camera(cfg, clock)
