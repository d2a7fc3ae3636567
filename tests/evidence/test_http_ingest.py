"""Over real HTTP: a sealed clip goes in, a verified receipt and a playable MP4 come out."""

from __future__ import annotations

from pathlib import Path

import av
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import MemorySegments, decrypt_segments
from custody.export import export_mp4
from custody.manifest import parse_manifest
from custody.receipt import verify_receipt
from custody.verify import verify_clip
from tests.evidence.conftest import Live, seal
from tests.media import FRAMES_PER_SEGMENT, fmp4_segment

SEGMENTS = 3
TIMEOUT = 10


def test_a_clip_ingested_over_http_comes_back_as_a_playable_mp4_matching_its_manifest(
    live: Live,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    store_public: Ed25519PublicKey,
    tmp_path: Path,
) -> None:
    clip = seal(
        device_key, agency_key, [fmp4_segment(i * FRAMES_PER_SEGMENT) for i in range(SEGMENTS)]
    )
    created = requests.post(
        f"{live.url}/v1/uploads", data=clip.manifest, headers=live.dock, timeout=TIMEOUT
    )
    assert created.status_code == 201, created.text
    upload = f"{live.url}/v1/uploads/{created.json()['upload_id']}"
    for index, blob in sorted(clip.segments.items()):
        put = requests.put(
            f"{upload}/segments/{index}", data=blob, headers=live.dock, timeout=TIMEOUT
        )
        assert put.status_code == 200, put.text
    completed = requests.post(f"{upload}/complete", headers=live.dock, timeout=TIMEOUT)
    assert completed.status_code == 200, completed.text
    report = verify_receipt(completed.content, store_public, clip.manifest)
    assert report.ok, report.failures

    listed = requests.get(f"{live.url}/v1/evidence", headers=live.records, timeout=TIMEOUT)
    assert [e["evidence_id"] for e in listed.json()] == [completed.json()["evidence_id"]]
    evidence = f"{live.url}/v1/evidence/{completed.json()['evidence_id']}"
    manifest = requests.get(f"{evidence}/manifest", headers=live.records, timeout=TIMEOUT).content
    segments = MemorySegments(
        {
            i: requests.get(
                f"{evidence}/segments/{i}", headers=live.records, timeout=TIMEOUT
            ).content
            for i in range(SEGMENTS)
        }
    )
    check = verify_clip(segments, manifest, device_key.public_key(), agency_key)
    assert check.ok, check.failures
    out = tmp_path / "clip.mp4"
    export_mp4(decrypt_segments(segments, parse_manifest(manifest), agency_key), out)
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == SEGMENTS * FRAMES_PER_SEGMENT
