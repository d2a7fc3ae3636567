"""The ingest service: only a clip that verifies end to end is stored, and stored once."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.audit import verify_audit
from custody.clip import SealedClip
from custody.receipt import verify_receipt
from evidence.config import EvidenceConfig
from evidence.errors import (
    BadRequest,
    Conflict,
    NotFound,
    UnenrolledDevice,
    VerificationFailed,
)
from evidence.ingest import IngestService, segment_key
from evidence.store import open_service
from tests.evidence.conftest import seal

DOCK = "dock:bay-1"


def send(service: IngestService, clip: SealedClip, indices: list[int] | None = None) -> str:
    upload_id = service.create_upload(clip.manifest, DOCK).upload.id
    for index in indices if indices is not None else sorted(clip.segments):
        service.put_segment(upload_id, index, clip.segments[index], DOCK)
    return upload_id


def _sha(clip: SealedClip) -> str:
    return hashlib.sha256(clip.manifest).hexdigest()


def assert_nothing_stored(service: IngestService) -> None:
    assert service.metadata.list_evidence(limit=10, offset=0) == []


def test_a_complete_clip_gets_a_receipt_that_custody_verifies(
    service: IngestService, clip: SealedClip, store_public: Ed25519PublicKey
) -> None:
    receipt = service.complete(send(service, clip), DOCK)
    report = verify_receipt(receipt.to_bytes(), store_public, clip.manifest)
    assert report.ok, report.failures
    assert [e.id for e in service.metadata.list_evidence(limit=10, offset=0)] == [
        receipt.evidence_id
    ]


def test_a_segment_with_a_forged_hash_is_refused_and_not_stored(
    service: IngestService, clip: SealedClip
) -> None:
    upload_id = service.create_upload(clip.manifest, DOCK).upload.id
    forged = bytearray(clip.segments[1])
    forged[-1] ^= 0x01
    with pytest.raises(VerificationFailed, match="segment 1 does not match the sha256"):
        service.put_segment(upload_id, 1, bytes(forged), DOCK)
    assert service.status(upload_id).acknowledged == []
    sha = service.status(upload_id).upload.manifest_sha256
    assert not service.blobs.exists(segment_key(sha, 1))


def test_a_segment_of_the_wrong_size_is_refused(service: IngestService, clip: SealedClip) -> None:
    upload_id = service.create_upload(clip.manifest, DOCK).upload.id
    with pytest.raises(VerificationFailed, match="the signed manifest says"):
        service.put_segment(upload_id, 0, clip.segments[0] + b"x", DOCK)
    assert service.status(upload_id).acknowledged == []


def test_a_segment_for_an_unknown_upload_is_refused(
    service: IngestService, clip: SealedClip
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFound, match="does not exist"):
        service.put_segment(unknown, 0, clip.segments[0], DOCK)


def test_an_out_of_range_segment_index_is_refused(service: IngestService, clip: SealedClip) -> None:
    upload_id = service.create_upload(clip.manifest, DOCK).upload.id
    with pytest.raises(BadRequest, match=r"segment 3 is out of range.*segments 0\.\.2"):
        service.put_segment(upload_id, 3, clip.segments[0], DOCK)


def test_a_clip_from_an_unenrolled_device_is_refused_and_nothing_is_stored(
    service: IngestService, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> None:
    stranger = seal(device_key, agency_key, device_id="cam-9999")
    with pytest.raises(UnenrolledDevice, match="device cam-9999 is not enrolled"):
        service.create_upload(stranger.manifest, DOCK)
    assert service.metadata.upload_for_manifest(_sha(stranger)) is None
    assert_nothing_stored(service)


def test_a_clip_signed_by_another_key_than_the_enrolled_one_is_refused(
    service: IngestService, agency_key: X25519PrivateKey
) -> None:
    impostor = seal(Ed25519PrivateKey.generate(), agency_key)
    with pytest.raises(VerificationFailed, match="signed by an unknown key"):
        service.create_upload(impostor.manifest, DOCK)
    assert service.metadata.upload_for_manifest(_sha(impostor)) is None


def test_a_malformed_manifest_is_refused(service: IngestService) -> None:
    with pytest.raises(BadRequest, match="the manifest is malformed"):
        service.create_upload(b'{"type": "header"}\n', DOCK)


def test_a_clip_with_missing_segments_cannot_be_completed(
    service: IngestService, clip: SealedClip
) -> None:
    upload_id = send(service, clip, [0, 2])
    with pytest.raises(Conflict, match="missing segments 1"):
        service.complete(upload_id, DOCK)
    assert_nothing_stored(service)


def test_a_segment_altered_in_storage_is_caught_when_completing(
    service: IngestService, clip: SealedClip, cfg: EvidenceConfig
) -> None:
    upload_id = send(service, clip)
    stored = cfg.blobs_path / segment_key(_sha(clip), 2)
    altered = bytearray(stored.read_bytes())
    altered[30] ^= 0xFF
    stored.write_bytes(bytes(altered))
    with pytest.raises(VerificationFailed, match="segment 2: ciphertext sha256"):
        service.complete(upload_id, DOCK)
    assert_nothing_stored(service)


def test_uploading_a_stored_clip_again_returns_the_same_receipt_and_stores_it_once(
    service: IngestService, clip: SealedClip
) -> None:
    first = service.complete(send(service, clip), DOCK)
    again = service.create_upload(clip.manifest, "dock:bay-2")
    assert again.state == "stored"
    assert again.upload.evidence_id == first.evidence_id
    service.put_segment(again.upload.id, 0, clip.segments[0], "dock:bay-2")
    assert service.complete(again.upload.id, "dock:bay-2") == first
    assert len(service.metadata.list_evidence(limit=10, offset=0)) == 1


def test_repeating_an_acknowledged_segment_is_harmless(
    service: IngestService, clip: SealedClip
) -> None:
    upload_id = send(service, clip, [0, 0, 1, 1])
    assert service.status(upload_id).acknowledged == [0, 1]
    assert service.status(upload_id).missing == [2]


def test_an_upload_restarted_after_the_store_restarts_continues_where_it_stopped(
    cfg: EvidenceConfig, clip: SealedClip, store_public: Ed25519PublicKey
) -> None:
    before = open_service(cfg)
    upload_id = send(before, clip, [0, 1])
    before.metadata.close()
    after = open_service(cfg)
    resumed = after.create_upload(clip.manifest, DOCK)
    assert (resumed.upload.id, resumed.acknowledged, resumed.missing) == (upload_id, [0, 1], [2])
    after.put_segment(upload_id, 2, clip.segments[2], DOCK)
    receipt = after.complete(upload_id, DOCK)
    assert verify_receipt(receipt, store_public, clip.manifest).ok
    after.metadata.close()


def test_every_step_is_in_an_audit_log_signed_by_the_store_key(
    service: IngestService, clip: SealedClip, store_public: Ed25519PublicKey
) -> None:
    upload_id = send(service, clip)
    with pytest.raises(BadRequest):
        service.put_segment(upload_id, 7, b"", DOCK)
    service.complete(upload_id, DOCK)
    log = service.metadata.audit_log()
    report = verify_audit(log, [store_public])
    assert report.ok, report.failures
    events = [json.loads(line)["event"] for line in log.splitlines()]
    assert events == [
        "audit.start", "upload.created", "segment.received", "segment.received",
        "segment.received", "ingest.refused", "evidence.stored", "audit.checkpoint",
    ]  # fmt: skip


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_altered_byte_of_any_segment_is_refused(
    service: IngestService, clip: SealedClip, data: st.DataObject
) -> None:
    # Refused puts change nothing but the audit log, so one upload serves every example.
    upload_id = service.create_upload(clip.manifest, DOCK).upload.id
    index = data.draw(st.sampled_from(sorted(clip.segments)))
    blob = bytearray(clip.segments[index])
    position = data.draw(st.integers(0, len(blob) - 1))
    blob[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(VerificationFailed):
        service.put_segment(upload_id, index, bytes(blob), DOCK)
    assert service.status(upload_id).acknowledged == []
