"""Over real HTTP: a stored clip plays back decrypted, to those allowed, only if it verifies."""

from __future__ import annotations

import hashlib
import io
import socket
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import MemorySegments, SealedClip, decrypt_segments, segment_name
from custody.keys import private_pem, write_atomic
from custody.manifest import parse_manifest
from custody.receipt import verify_receipt
from evidence.agency_keys import AgencyKey, FileAgencyKey, HttpAgencyKey
from evidence.api import create_app
from evidence.app_factory import build_app
from evidence.config import EvidenceConfig, KmsSettings
from evidence.ingest import IngestService
from evidence.playback import PlaybackService
from evidence.store import load_tokens
from tests.evidence.conftest import Live, seal, serving
from tests.evidence.key_service import key_service
from tests.evidence.playback_helpers import (
    FPS,
    OTHER,
    OWNER,
    SEGMENTS,
    TIMEOUT,
    Player,
    add_officers,
    audit_events,
    ingest,
    packets,
    painted,
    shades,
)
from tests.media import FRAMES_PER_SEGMENT, fmp4_segment

KMS_TOKEN = "kms-token-for-playback-tests"


@pytest.fixture(params=["file", "http"])
def provider(
    request: pytest.FixtureRequest, tmp_path: Path, agency_key: X25519PrivateKey
) -> Iterator[AgencyKey]:
    """The agency key: a PEM file, or a key service on loopback holding it."""
    if request.param == "file":
        path = tmp_path / "agency.key.pem"
        write_atomic(path, private_pem(agency_key), mode=0o600)
        yield FileAgencyKey(path)
        return
    token = tmp_path / "kms.token"
    write_atomic(token, KMS_TOKEN.encode(), mode=0o600)
    with key_service(agency_key, KMS_TOKEN) as kms:
        yield HttpAgencyKey(KmsSettings(url=kms.url, token_file=token))


@pytest.fixture
def player(
    cfg: EvidenceConfig, service: IngestService, provider: AgencyKey, tmp_path: Path
) -> Iterator[Player]:
    """The API on loopback with playback set up, and tokens for the clip's officer and another."""
    headers = add_officers(cfg, OWNER, OTHER)
    tmp_dir = tmp_path / "playback-tmp"
    tmp_dir.mkdir()
    playback = PlaybackService.beside(service, provider, tmp_dir=tmp_dir)
    app = create_app(
        service, load_tokens(cfg), max_body_bytes=cfg.max_body_bytes, playback=playback
    )
    with serving(app) as url:
        yield Player(url, headers, tmp_dir)


@pytest.fixture
def video_clip(device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey) -> SealedClip:
    """A clip of real H.264: SEGMENTS self-contained fMP4 segments of one GOP each."""
    plaintexts = [fmp4_segment(i * FRAMES_PER_SEGMENT) for i in range(SEGMENTS)]
    return seal(device_key, agency_key, plaintexts)


@pytest.fixture
def stored(player: Player, video_clip: SealedClip) -> str:
    """The evidence id of ``video_clip``, ingested over HTTP."""
    return str(ingest(player.url, player.headers["dock"], video_clip).json()["evidence_id"])


def test_an_ingested_clip_plays_back_over_http_frame_for_frame_as_its_manifest_says(
    player: Player,
    video_clip: SealedClip,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    store_public: Ed25519PublicKey,
) -> None:
    completed = ingest(player.url, player.headers["dock"], video_clip)
    assert verify_receipt(completed.content, store_public, video_clip.manifest).ok
    evidence = f"/v1/evidence/{completed.json()['evidence_id']}"
    manifest = parse_manifest(player.get(f"{evidence}/manifest", "records").content)
    stored = {i: player.get(f"{evidence}/segments/{i}", "records").content for i in range(SEGMENTS)}
    for record in manifest.segments:
        assert hashlib.sha256(stored[record.index]).hexdigest() == record.cipher_sha256
    plaintexts = list(decrypt_segments(MemorySegments(stored), manifest, agency_key))
    assert [hashlib.sha256(p).hexdigest() for p in plaintexts] == [
        r.plain_sha256 for r in manifest.segments
    ]

    played = player.get(f"{evidence}/playback.mp4", "records")

    assert played.status_code == 200, played.text
    assert played.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(played.content), "r") as container:
        times = [f.time for f in container.decode(video=0)]
    assert times == pytest.approx([n / FPS for n in range(SEGMENTS * FRAMES_PER_SEGMENT)])
    assert shades(played.content) == pytest.approx(painted(len(times)), abs=6)
    # Remuxed, never re-encoded: exactly the verified plaintexts' packets, in clip order.
    assert packets(played.content) == [p for seg in plaintexts for p in packets(seg)]


def test_every_playback_is_an_audit_record_naming_who_and_which_clip(
    player: Player, stored: str, service: IngestService
) -> None:
    assert player.get(f"/v1/evidence/{stored}/playback.mp4", "supervisor").status_code == 200
    (played,) = audit_events(service, "evidence.played")
    assert played["actor"] == "supervisor:dev-supervisor"
    assert played["data"] == {
        "evidence_id": stored,
        "clip_id": service.metadata.evidence(stored).clip_id,  # type: ignore[union-attr]
        "part": "mp4",
    }


def test_an_officer_plays_their_own_clip(player: Player, stored: str) -> None:
    played = player.get(f"/v1/evidence/{stored}/playback.mp4", OWNER)
    assert played.status_code == 200, played.text
    assert len(packets(played.content)) == SEGMENTS * FRAMES_PER_SEGMENT


def test_an_officer_may_not_play_another_officers_clip(
    player: Player, stored: str, service: IngestService
) -> None:
    refused = player.get(f"/v1/evidence/{stored}/playback.mp4", OTHER)
    assert refused.status_code == 403
    assert "only their own clips" in refused.json()["error"]
    (logged,) = audit_events(service, "playback.refused")
    assert logged["actor"] == f"officer:{OTHER}"
    assert audit_events(service, "evidence.played") == []


@pytest.mark.parametrize("role", ["dock", "auditor", "admin"])
def test_roles_without_playback_are_refused(player: Player, stored: str, role: str) -> None:
    refused = player.get(f"/v1/evidence/{stored}/playback.mp4", role)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith(f"a {role} token may not do this")


def test_an_unknown_clip_is_not_found(player: Player) -> None:
    refused = player.get(
        f"/v1/evidence/{'0' * 8}-0000-4000-8000-{'0' * 12}/playback.mp4", "records"
    )
    assert refused.status_code == 404
    assert "does not exist" in refused.json()["error"]


def test_a_tampered_stored_segment_is_refused_and_nothing_is_streamed(
    player: Player, stored: str, cfg: EvidenceConfig, service: IngestService
) -> None:
    evidence = service.metadata.evidence(stored)
    assert evidence is not None
    blob = cfg.blobs_path / evidence.manifest_sha256 / segment_name(SEGMENTS - 1)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01  # the last byte of the last segment: everything before it still decrypts
    blob.chmod(0o600)
    blob.write_bytes(bytes(data))

    refused = player.get(f"/v1/evidence/{stored}/playback.mp4", "records")

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/json"
    assert (
        f"stored segment {SEGMENTS - 1} of evidence {stored} is altered" in refused.json()["error"]
    )
    assert list(player.tmp_dir.iterdir()) == []
    assert audit_events(service, "evidence.played") == []


def test_playback_leaves_no_decrypted_file_behind(player: Player, stored: str) -> None:
    assert player.get(f"/v1/evidence/{stored}/playback.mp4", "records").status_code == 200
    assert list(player.tmp_dir.iterdir()) == []


def test_a_byte_range_is_answered_with_exactly_those_bytes(player: Player, stored: str) -> None:
    whole = player.get(f"/v1/evidence/{stored}/playback.mp4", "records").content
    part = player.get(f"/v1/evidence/{stored}/playback.mp4", "records", Range="bytes=100-299")
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-299/{len(whole)}"
    assert part.content == whole[100:300]
    tail = player.get(f"/v1/evidence/{stored}/playback.mp4", "records", Range="bytes=-50")
    assert tail.content == whole[-50:]


def test_a_range_past_the_end_is_refused_with_the_size(player: Player, stored: str) -> None:
    size = len(player.get(f"/v1/evidence/{stored}/playback.mp4", "records").content)
    refused = player.get(f"/v1/evidence/{stored}/playback.mp4", "records", Range=f"bytes={size}-")
    assert refused.status_code == 416
    assert refused.headers["content-range"] == f"bytes */{size}"
    assert "past the end" in refused.json()["error"]


def test_without_an_agency_key_playback_says_what_to_configure(
    live: Live, video_clip: SealedClip
) -> None:
    evidence_id = ingest(live.url, live.dock, video_clip).json()["evidence_id"]
    refused = requests.get(
        f"{live.url}/v1/evidence/{evidence_id}/playback.mp4", headers=live.records, timeout=TIMEOUT
    )
    assert refused.status_code == 409
    assert "set agency_key" in refused.json()["error"]
    assert "agency_kms" in refused.json()["error"]


def test_a_clip_for_another_agency_key_is_refused_naming_the_key(
    cfg: EvidenceConfig, service: IngestService, device_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    other = tmp_path / "other-agency.key.pem"
    write_atomic(other, private_pem(X25519PrivateKey.generate()), mode=0o600)
    playback = PlaybackService.beside(service, FileAgencyKey(other))
    app = create_app(
        service, load_tokens(cfg), max_body_bytes=cfg.max_body_bytes, playback=playback
    )
    clip = seal(device_key, X25519PrivateKey.generate(), [fmp4_segment(0)])
    recipient = parse_manifest(clip.manifest).header.data_key.recipient
    with serving(app) as url:
        headers = add_officers(cfg)
        evidence_id = ingest(url, headers["dock"], clip).json()["evidence_id"]
        refused = requests.get(
            f"{url}/v1/evidence/{evidence_id}/playback.mp4",
            headers=headers["records"],
            timeout=TIMEOUT,
        )
    assert refused.status_code == 503
    assert f"configure the agency key with id {recipient}" in refused.json()["error"]


def test_a_store_configured_with_an_agency_key_file_plays_back(
    cfg: EvidenceConfig, video_clip: SealedClip, agency_key: X25519PrivateKey, tmp_path: Path
) -> None:
    key = tmp_path / "agency.key.pem"
    write_atomic(key, private_pem(agency_key), mode=0o600)
    app, service = build_app(cfg.model_copy(update={"agency_key": key}))
    try:
        with serving(app) as url:
            headers = add_officers(cfg)
            evidence_id = ingest(url, headers["dock"], video_clip).json()["evidence_id"]
            played = requests.get(
                f"{url}/v1/evidence/{evidence_id}/playback.mp4",
                headers=headers["records"],
                timeout=TIMEOUT,
            )
    finally:
        service.metadata.close()
    assert played.status_code == 200, played.text
    assert len(packets(played.content)) == SEGMENTS * FRAMES_PER_SEGMENT


def test_an_unreachable_key_service_is_a_one_line_error_and_nothing_is_streamed(
    cfg: EvidenceConfig, service: IngestService, video_clip: SealedClip, tmp_path: Path
) -> None:
    token = tmp_path / "kms.token"
    write_atomic(token, KMS_TOKEN.encode(), mode=0o600)
    with socket.socket() as free:  # a port nothing listens on once this closes
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}/decrypt"
    provider = HttpAgencyKey(KmsSettings(url=url, token_file=token, timeout_s=2))
    playback = PlaybackService.beside(service, provider)
    app = create_app(
        service, load_tokens(cfg), max_body_bytes=cfg.max_body_bytes, playback=playback
    )
    with serving(app) as base:
        headers = add_officers(cfg)
        evidence_id = ingest(base, headers["dock"], video_clip).json()["evidence_id"]
        refused = requests.get(
            f"{base}/v1/evidence/{evidence_id}/playback.mp4",
            headers=headers["records"],
            timeout=TIMEOUT,
        )
    assert refused.status_code == 503
    assert refused.json()["error"].startswith(f"the agency key service {url} is unreachable")
    assert "\n" not in refused.json()["error"]
