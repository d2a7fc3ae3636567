"""H.264 helpers for the camera tests: NAL unit types, decoding packets, writing replay files."""

from __future__ import annotations

import re
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from hw.ports.camera import VideoPacket
from hw.sim.testcard import Stamp, TestCard, read_stamp

NAL_SPS, NAL_PPS, NAL_IDR = 7, 8, 5
_START_CODE = re.compile(b"\x00\x00\x01")


def nal_types(annex_b: bytes) -> list[int]:
    """Types of the NAL units in an Annex B byte stream, in order."""
    return [
        annex_b[m.end()] & 0x1F for m in _START_CODE.finditer(annex_b) if m.end() < len(annex_b)
    ]


def decode(packets: Iterable[VideoPacket]) -> list[av.VideoFrame]:
    """Decode packets with a fresh FFmpeg h264 decoder, flushing it at the end."""
    decoder = av.CodecContext.create("h264", "r")
    frames: list[av.VideoFrame] = []
    for packet in packets:
        frames.extend(decoder.decode(av.Packet(packet.data)))
    frames.extend(decoder.decode(None))
    return frames


def luma(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)


def stamps(frames: Iterable[av.VideoFrame]) -> list[Stamp | None]:
    return [read_stamp(luma(frame)) for frame in frames]


REPLAY_FIRST_WALL_MS = 1_700_000_000_000


def write_test_card_video(path: Path, *, width: int, height: int, frames: int) -> None:
    """A video whose frame ``i`` is stamped with counter ``i``, encoded with libx264's defaults.

    The defaults (B-frames, 250-frame GOP, headers only at the start) are what the sim camera
    must re-encode away when it replays the file. The suffix picks the container (.mp4, .h264).
    """
    card = TestCard(width, height, "REPLAY")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(15))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            wall_ns = (REPLAY_FIRST_WALL_MS + index) * 1_000_000
            frame = av.VideoFrame.from_ndarray(card.draw(index, wall_ns), format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, 15)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
