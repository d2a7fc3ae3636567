"""Recorded media for the ring, segmenter and audio tests: the real sim camera and microphone.

:func:`record` runs a :class:`SimCamera` and a :class:`SimMicrophone` on one virtual clock and
returns what the firmware would see, in arrival order: for each video frame, the AAC packets the
encoder has produced from the microphone so far, then the frame.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from device.media import AudioEncoder, AudioFormat, EncodedAudio
from hw.ports.camera import CameraConfig, CameraInfo, VideoPacket
from hw.ports.microphone import MicrophoneConfig
from hw.sim.camera import SimCamera
from hw.sim.clock import SimClock
from hw.sim.microphone import SimMicrophone
from hw.sim.testcard import read_stamp

SAMPLE_RATE = 48_000
TONE_HZ = 440.0


@dataclass(frozen=True)
class Recording:
    info: CameraInfo
    audio_format: AudioFormat | None
    events: tuple[VideoPacket | EncodedAudio, ...]  #: in arrival order

    @property
    def video(self) -> list[VideoPacket]:
        return [e for e in self.events if isinstance(e, VideoPacket)]

    @property
    def audio(self) -> list[EncodedAudio]:
        return [e for e in self.events if isinstance(e, EncodedAudio)]


def record(
    frames: int,
    *,
    fps: int = 30,
    gop: int = 30,
    width: int = 160,
    height: int = 120,
    audio: bool = False,
) -> Recording:
    clock = SimClock(virtual=True, start_wall_ns=1_700_000_000_000_000_000)
    camera = SimCamera(
        CameraConfig(width=width, height=height, fps=fps, keyframe_interval=gop, bitrate=300_000),
        clock,
    )
    mic_cfg = MicrophoneConfig(sample_rate=SAMPLE_RATE, channels=1, chunk_ms=20, tone_hz=TONE_HZ)
    mic = SimMicrophone(mic_cfg, clock)
    encoder = AudioEncoder(SAMPLE_RATE, 1) if audio else None
    camera.open()
    mic.open()
    events: list[VideoPacket | EncodedAudio] = []
    chunk_s = Fraction(mic_cfg.chunk_ms, 1000)
    try:
        for _ in range(frames):
            packet = camera.read()
            # Chunks whose last sample was recorded by this frame's capture time.
            while encoder is not None and (mic.chunks_read + 1) * chunk_s <= packet.pts_seconds:
                events.extend(encoder.encode(mic.read()))
            events.append(packet)
    finally:
        camera.close()
        mic.close()
    return Recording(camera.info, encoder.format if encoder else None, tuple(events))


def decode_video(mp4: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(mp4), "r", format="mp4") as container:
        return list(container.decode(video=0))


def decode_audio(mp4: bytes) -> list[av.AudioFrame]:
    with av.open(io.BytesIO(mp4), "r", format="mp4") as container:
        return list(container.decode(audio=0))


def frame_counter(frame: av.VideoFrame) -> int:
    """The sim camera's frame counter, read back from the picture itself."""
    luma = np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
    stamp = read_stamp(luma)
    assert stamp is not None, "the frame's stamp is unreadable: the picture is corrupt"
    return stamp.frame


def time_of(frame: av.VideoFrame | av.AudioFrame) -> Fraction:
    """A decoded frame's presentation time in seconds, exactly."""
    assert frame.pts is not None and frame.time_base is not None
    return frame.pts * frame.time_base


def box_types(mp4: bytes) -> list[str]:
    """The top-level ISO BMFF boxes of a file, in order."""
    types: list[str] = []
    offset = 0
    while offset + 8 <= len(mp4):
        size = int.from_bytes(mp4[offset : offset + 4], "big")
        types.append(mp4[offset + 4 : offset + 8].decode("ascii"))
        if size < 8:
            break
        offset += size
    return types
