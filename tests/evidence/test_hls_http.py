"""Over real HTTP: a stored clip as HLS, each part verified, played by FFmpeg's HLS client."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import SealedClip, seal_clip
from custody.keys import private_pem, write_atomic
from custody.manifest import parse_manifest
from evidence.agency_keys import FileAgencyKey
from evidence.api import create_app
from evidence.config import EvidenceConfig
from evidence.hls import PLAYLIST_TYPE
from evidence.ingest import IngestService
from evidence.playback import PlaybackService
from evidence.store import load_tokens
from tests.evidence.conftest import clip_info, serving
from tests.evidence.playback_helpers import (
    FPS,
    OTHER,
    SEGMENTS,
    Player,
    add_officers,
    audit_events,
    camera_segments,
    ingest,
    painted,
    shades,
)

FRAMES = 5  # per segment: one GOP
SEGMENT_NS = FRAMES * 10**9 // FPS


@pytest.fixture
def hls_player(
    cfg: EvidenceConfig, service: IngestService, agency_key: X25519PrivateKey, tmp_path: Path
) -> Iterator[Player]:
    key = tmp_path / "agency.key.pem"
    write_atomic(key, private_pem(agency_key), mode=0o600)
    headers = add_officers(cfg, OTHER)
    playback = PlaybackService.beside(service, FileAgencyKey(key))
    app = create_app(
        service, load_tokens(cfg), max_body_bytes=cfg.max_body_bytes, playback=playback
    )
    with serving(app) as url:
        yield Player(url, headers, tmp_path)


@pytest.fixture
def timed_clip(device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey) -> SealedClip:
    """Real H.264 segments on one timeline, as the camera writes them; the manifest agrees."""
    return seal_clip(
        camera_segments(SEGMENTS, FRAMES),
        device_key=device_key,
        agency_public=agency_key.public_key(),
        info=clip_info(),
        segment_ns=SEGMENT_NS,
    )


@pytest.fixture
def hls(hls_player: Player, timed_clip: SealedClip) -> str:
    """The HLS folder URL path of ``timed_clip``, ingested over HTTP."""
    evidence_id = ingest(hls_player.url, hls_player.headers["dock"], timed_clip).json()
    return f"/v1/evidence/{evidence_id['evidence_id']}/hls"


def test_the_playlist_lists_every_segment_with_its_own_init_section(
    hls_player: Player, hls: str
) -> None:
    answer = hls_player.get(f"{hls}/index.m3u8", "records")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(PLAYLIST_TYPE)
    text = answer.text
    assert text.startswith("#EXTM3U\n") and text.endswith("#EXT-X-ENDLIST\n")
    assert re.findall(r'#EXT-X-MAP:URI="(\d+)/init.mp4"', text) == [str(i) for i in range(SEGMENTS)]
    assert re.findall(r"^(\d+)/media.m4s$", text, re.M) == [str(i) for i in range(SEGMENTS)]
    assert re.findall(r"#EXTINF:([\d.]+),", text) == ["0.500000"] * SEGMENTS
    assert text.count("#EXT-X-DISCONTINUITY") == SEGMENTS - 1


def test_each_init_and_media_part_together_are_the_segment_the_manifest_hashes(
    hls_player: Player, hls: str, timed_clip: SealedClip
) -> None:
    for record in parse_manifest(timed_clip.manifest).segments:
        init = hls_player.get(f"{hls}/{record.index}/init.mp4", "records")
        media = hls_player.get(f"{hls}/{record.index}/media.m4s", "records")
        assert (init.status_code, media.status_code) == (200, 200)
        assert hashlib.sha256(init.content + media.content).hexdigest() == record.plain_sha256
        assert init.content[4:8] == b"ftyp" and b"moof" not in init.content
        assert media.content[4:8] == b"moof"


def test_ffmpeg_plays_the_playlist_over_http_to_every_frame_in_order(
    hls_player: Player, hls: str
) -> None:
    token = hls_player.headers["records"]["Authorization"]
    played = shades(f"{hls_player.url}{hls}/index.m3u8", headers=f"Authorization: {token}\r\n")
    assert played == pytest.approx(painted(SEGMENTS * FRAMES), abs=6)


def test_every_hls_part_served_is_an_audit_record(
    hls_player: Player, hls: str, service: IngestService
) -> None:
    hls_player.get(f"{hls}/index.m3u8", "records")
    hls_player.get(f"{hls}/0/init.mp4", "records")
    hls_player.get(f"{hls}/0/media.m4s", "records")
    parts = [r["data"]["part"] for r in audit_events(service, "evidence.played")]  # type: ignore[index]
    assert parts == ["hls playlist", "hls init 0", "hls media 0"]


@pytest.mark.parametrize("part", ["index.m3u8", "0/init.mp4", "0/media.m4s"])
def test_another_officer_gets_no_part_of_the_clip(hls_player: Player, hls: str, part: str) -> None:
    refused = hls_player.get(f"{hls}/{part}", OTHER)
    assert refused.status_code == 403
    assert "only their own clips" in refused.json()["error"]


def test_a_segment_past_the_clip_is_not_found(hls_player: Player, hls: str) -> None:
    refused = hls_player.get(f"{hls}/{SEGMENTS}/media.m4s", "records")
    assert refused.status_code == 404
    assert f"no segment {SEGMENTS}" in refused.json()["error"]


def test_a_tampered_segment_serves_neither_part(
    hls_player: Player, hls: str, cfg: EvidenceConfig, timed_clip: SealedClip
) -> None:
    sha = hashlib.sha256(timed_clip.manifest).hexdigest()
    blob = cfg.blobs_path / sha / "seg-000001.bwcs"
    data = bytearray(blob.read_bytes())
    data[30] ^= 0x01
    blob.chmod(0o600)
    blob.write_bytes(bytes(data))
    for part in ("1/init.mp4", "1/media.m4s"):
        refused = hls_player.get(f"{hls}/{part}", "records")
        assert refused.status_code == 422
        assert "is altered" in refused.json()["error"]
    assert hls_player.get(f"{hls}/0/media.m4s", "records").status_code == 200
