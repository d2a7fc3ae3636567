"""What the playback tests share: callers with tokens, ingest over HTTP, reading what comes back."""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import requests

from custody.clip import SealedClip
from custody.keys import write_atomic
from evidence.config import EvidenceConfig
from evidence.ingest import IngestService
from tests.evidence.conftest import clip_info

SEGMENTS = 4
FPS = 10  # tests.media encodes at 10 frames per second, and so does camera_segments
TIMEOUT = 10
OWNER = clip_info().officer_id  # the officer the sealed clips name
OTHER = "officer-2000"


@dataclass(frozen=True)
class Player:
    url: str
    headers: dict[str, dict[str, str]]  # request headers by caller: role, or officer's name
    tmp_dir: Path  # where decrypted MP4s are built

    def get(self, path: str, caller: str, **kw: str) -> requests.Response:
        headers = self.headers[caller] | kw
        return requests.get(f"{self.url}{path}", headers=headers, timeout=TIMEOUT)


def add_officers(cfg: EvidenceConfig, *names: str) -> dict[str, dict[str, str]]:
    """Add officer tokens to the token file; request headers by role (the dev tokens) and by
    each added officer's name."""
    body = json.loads(cfg.tokens_path.read_text())
    for name in names:
        body["tokens"].append({"name": name, "role": "officer", "token": secrets.token_urlsafe(24)})
    write_atomic(cfg.tokens_path, json.dumps(body).encode(), mode=0o600, overwrite=True)
    return {
        e["name"] if e["name"] in names else e["role"]: {"Authorization": f"Bearer {e['token']}"}
        for e in body["tokens"]
    }


def ingest(url: str, dock: dict[str, str], clip: SealedClip) -> requests.Response:
    """Create, send and complete an upload over HTTP; the completion answer (the receipt)."""
    created = requests.post(f"{url}/v1/uploads", data=clip.manifest, headers=dock, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    upload = f"{url}/v1/uploads/{created.json()['upload_id']}"
    for index, blob in sorted(clip.segments.items()):
        put = requests.put(f"{upload}/segments/{index}", data=blob, headers=dock, timeout=TIMEOUT)
        assert put.status_code == 200, put.text
    completed = requests.post(f"{upload}/complete", headers=dock, timeout=TIMEOUT)
    assert completed.status_code == 200, completed.text
    return completed


def packets(mp4: bytes) -> list[bytes]:
    """The payload of every video packet, in file order."""
    with av.open(io.BytesIO(mp4), "r") as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def shades(video: bytes | str, **options: str) -> list[float]:
    """The mean grey of every decoded frame, in order: frame n is painted grey n * 15 % 256
    (tests.media and camera_segments), so this shows which frames came back, in which order."""
    source = io.BytesIO(video) if isinstance(video, bytes) else video
    with av.open(source, "r", options=options, timeout=TIMEOUT) as container:
        return [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]


def painted(frames: int) -> list[int]:
    return [n * 15 % 256 for n in range(frames)]


def audit_events(service: IngestService, event: str) -> list[dict[str, object]]:
    lines = service.metadata.audit_log().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


# As device.segmenter muxes: packets keep their timestamps and each fragment's tfdt is its real
# decode time, so the segments of a clip form one continuous timeline.
CAMERA_MUX = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof+frag_discont",
    "use_editlist": "0",
    "avoid_negative_ts": "make_non_negative",
}


def camera_segments(count: int, frames: int) -> list[bytes]:
    """``count`` GOPs of ``frames`` frames from one H.264 encoder, each a self-contained fMP4."""
    encoder = av.CodecContext.create("libx264", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = 64, 48, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, FPS), Fraction(FPS)
    encoder.options = {"g": str(frames), "bf": "0"}
    encoded = []
    for n in range(count * frames):
        grey = np.full((48, 64, 3), n * 15 % 256, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(grey, format="rgb24")
        frame.pts, frame.time_base = n, encoder.time_base
        encoded += encoder.encode(frame)
    encoded += encoder.encode(None)
    segments = []
    for first in range(0, count * frames, frames):
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mp4", options=CAMERA_MUX) as container:
            stream = container.add_stream("h264", rate=FPS)
            stream.width, stream.height = 64, 48
            stream.codec_context.extradata = encoder.extradata
            for packet in encoded[first : first + frames]:
                packet.stream = stream
                container.mux(packet)
        segments.append(buffer.getvalue())
    return segments
