"""Ingest, retention and legal holds over S3 blobs: the store's rules become Object Lock.

The services run exactly as ``bwc evidence serve`` opens them, with the configuration naming a
fresh SeaweedFS bucket with Object Lock; the bucket's own answers are the evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import SealedClip
from custody.receipt import verify_receipt
from custody.verify import verify_clip
from evidence.config import NS_PER_DAY, EvidenceConfig, S3Settings
from evidence.errors import BlobLocked
from evidence.ingest import BlobSegments, IngestService
from evidence.retention import RetentionService
from evidence.s3_blobs import INDEFINITE_NS, LockingS3BlobStore
from evidence.store import open_service
from tests.evidence.s3_server import SeaweedS3

DOCK = "dock:bay-1"
RECORDS = "records:j.smith"


def store_clip(service: IngestService, clip: SealedClip) -> str:
    upload_id = service.create_upload(clip.manifest, DOCK).upload.id
    for index, data in sorted(clip.segments.items()):
        service.put_segment(upload_id, index, data, DOCK)
    return service.complete(upload_id, DOCK).evidence_id


def manifest_sha(clip: SealedClip) -> str:
    return hashlib.sha256(clip.manifest).hexdigest()


def ceil_s(ns: int) -> int:
    return -(-ns // 10**9)


class Bucket:
    """What the bucket itself says about a clip's blobs."""

    def __init__(self, seaweedfs: SeaweedS3, service: IngestService) -> None:
        assert isinstance(service.blobs, LockingS3BlobStore)
        self.blobs, self._client = service.blobs, seaweedfs.client()

    def retained_until_s(self, manifest_sha256: str) -> dict[str, int]:
        return {
            key: int(
                self._client.get_object_retention(Bucket=self.blobs.bucket, Key=key)["Retention"][
                    "RetainUntilDate"
                ].timestamp()
            )
            for key in self.blobs.keys(manifest_sha256)
        }

    def legal_holds(self, manifest_sha256: str) -> dict[str, str]:
        return {
            key: self._client.get_object_legal_hold(Bucket=self.blobs.bucket, Key=key)["LegalHold"][
                "Status"
            ]
            for key in self.blobs.keys(manifest_sha256)
        }


OpenS3Service = Callable[..., IngestService]


@pytest.fixture
def open_s3_service(cfg: EvidenceConfig, s3_settings: S3Settings) -> Iterator[OpenS3Service]:
    """Opens the store over the test's bucket (closing it at the end), like the CLI does."""
    opened: list[IngestService] = []

    def open_(**settings: object) -> IngestService:
        s3 = s3_settings.model_copy(update=settings)
        service = open_service(cfg.model_copy(update={"s3": s3}))
        opened.append(service)
        return service

    yield open_
    for service in opened:
        service.metadata.close()


@pytest.fixture
def service(open_s3_service: OpenS3Service) -> IngestService:
    return open_s3_service()


@pytest.fixture
def bucket(seaweedfs: SeaweedS3, service: IngestService) -> Bucket:
    return Bucket(seaweedfs, service)


@pytest.fixture
def retention(service: IngestService) -> RetentionService:
    return RetentionService.beside(service)


def test_a_clip_ingested_over_s3_gets_a_receipt_and_reads_back_verified(
    service: IngestService,
    clip: SealedClip,
    store_public: Ed25519PublicKey,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    evidence_id = store_clip(service, clip)
    receipt = service.receipt(evidence_id, RECORDS)
    assert verify_receipt(receipt.to_bytes(), store_public, clip.manifest).ok
    segments = BlobSegments(service.blobs, manifest_sha(clip), sorted(clip.segments))
    report = verify_clip(segments, clip.manifest, device_key.public_key(), agency_key)
    assert report.ok, report.failures


def test_every_blob_of_a_stored_clip_is_retained_until_the_clip_expires(
    service: IngestService, bucket: Bucket, clip: SealedClip
) -> None:
    evidence_id = store_clip(service, clip)
    expires = service.metadata.retention(evidence_id)
    assert expires is not None and expires.expires_at_ns is not None
    retained = bucket.retained_until_s(manifest_sha(clip))
    assert len(retained) == 1 + len(clip.segments)  # the manifest and every segment
    assert set(retained.values()) == {ceil_s(expires.expires_at_ns)}


def test_a_stored_clip_cannot_be_deleted_from_the_bucket_before_it_expires(
    service: IngestService, clip: SealedClip
) -> None:
    store_clip(service, clip)
    for key in service.blobs.keys(manifest_sha(clip)):
        with pytest.raises(BlobLocked, match="retained"):
            service.blobs.delete(key)
    assert len(service.blobs.keys(manifest_sha(clip))) == 1 + len(clip.segments)


def test_a_longer_category_extends_the_lock_of_every_blob(
    service: IngestService, retention: RetentionService, bucket: Bucket, clip: SealedClip
) -> None:
    evidence_id = store_clip(service, clip)
    changed = retention.set_category(evidence_id, "investigation", "case opened", RECORDS)
    assert changed.expires_at_ns is not None
    assert set(bucket.retained_until_s(manifest_sha(clip)).values()) == {
        ceil_s(changed.expires_at_ns)
    }


def test_an_indefinite_category_locks_every_blob_for_a_century(
    service: IngestService, retention: RetentionService, bucket: Bucket, clip: SealedClip
) -> None:
    evidence_id = store_clip(service, clip)
    before_ns = service.wall_ns()
    retention.set_category(evidence_id, "homicide", "homicide case 24-118", RECORDS)
    retained = bucket.retained_until_s(manifest_sha(clip)).values()
    assert all(r >= (before_ns + INDEFINITE_NS) // 10**9 for r in retained)


def test_a_legal_hold_holds_every_blob_until_the_last_hold_is_released(
    service: IngestService, retention: RetentionService, bucket: Bucket, clip: SealedClip
) -> None:
    evidence_id = store_clip(service, clip)
    sha = manifest_sha(clip)
    first = retention.place_hold(evidence_id, "24-118", "subpoena", RECORDS)
    second = retention.place_hold(evidence_id, "24-207", "civil claim", RECORDS)
    assert set(bucket.legal_holds(sha).values()) == {"ON"}
    retention.release_hold(evidence_id, first.id, "case closed", RECORDS)
    assert set(bucket.legal_holds(sha).values()) == {"ON"}
    retention.release_hold(evidence_id, second.id, "claim settled", RECORDS)
    assert set(bucket.legal_holds(sha).values()) == {"OFF"}


def test_a_compliance_bucket_refuses_a_shorter_category_and_keeps_the_longer_one(
    open_s3_service: OpenS3Service, clip: SealedClip
) -> None:
    service = open_s3_service(lock_mode="COMPLIANCE")
    retention = RetentionService.beside(service)
    evidence_id = store_clip(service, clip)
    retention.set_category(evidence_id, "investigation", "case opened", RECORDS)
    with pytest.raises(BlobLocked, match="COMPLIANCE mode"):
        retention.set_category(evidence_id, "routine", "filed by mistake", RECORDS)
    kept = service.metadata.retention(evidence_id)
    assert kept is not None and kept.category == "investigation"


def test_a_purge_whose_clock_runs_ahead_cannot_delete_the_locked_blobs(
    service: IngestService, clip: SealedClip
) -> None:
    store_clip(service, clip)
    ahead = RetentionService(
        service.metadata, service.blobs, service.audit, service.policy,
        wall_ns=lambda: service.wall_ns() + 15 * NS_PER_DAY,
    )  # fmt: skip
    assert len(ahead.purge("store:retention-schedule")) == 1  # the metadata says expired
    assert len(service.blobs.keys(manifest_sha(clip))) == 1 + len(clip.segments)
