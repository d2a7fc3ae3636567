"""Media the tests share: segments shaped as the camera writes them."""

from __future__ import annotations

import io

import av
import numpy as np

FRAMES_PER_SEGMENT = 5


def fmp4_segment(first_frame: int, frames: int = FRAMES_PER_SEGMENT) -> bytes:
    """One GOP of H.264 as a self-contained fragmented MP4, as the camera writes each segment."""
    buffer = io.BytesIO()
    flags = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
    with av.open(buffer, "w", format="mp4", options=flags) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": str(frames)}
        for n in range(frames):
            shade = (first_frame + n) * 15 % 256
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), shade, dtype=np.uint8), format="rgb24"
            )
            frame.pts = n
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()
