"""Foreign files through the S3 sink (real SeaweedFS): checksummed, locked, signed by ingest key."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.file_receipt import parse_file_receipt, verify_file_receipt
from dock.config import S3SinkSettings
from dock.errors import StoreRefused
from dock.s3_objects import b64_sha256
from dock.s3_sink import FILE_RECEIPT_SUFFIX, S3EvidenceSink
from tests.dock.conftest import HookClock
from tests.dock.s3_rig import RETENTION_DAYS, Requests, open_sink, settings_for, versions
from tests.evidence.s3_server import SeaweedS3

DATA = b"\x00\x00\x00\x18ftypmp42 another maker's export" * 100
SHA = hashlib.sha256(DATA).hexdigest()


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
def export(tmp_path: Path) -> Path:
    path = tmp_path / "MOV_0001.MP4"
    path.write_bytes(DATA)
    return path


def test_a_file_gets_a_file_receipt_that_verifies_with_the_ingest_key(
    sink: S3EvidenceSink, export: Path, ingest_key: Ed25519PrivateKey
) -> None:
    receipt = sink.put_file(export, SHA, "MOV_0001.MP4")

    report = verify_file_receipt(receipt, ingest_key.public_key(), sha256=SHA, size=len(DATA))
    assert report.ok, report.failures
    assert parse_file_receipt(receipt).name == "MOV_0001.MP4"


def test_the_file_is_held_checksummed_and_locked(
    sink: S3EvidenceSink, export: Path, seaweedfs: SeaweedS3, s3_bucket: str
) -> None:
    sink.put_file(export, SHA, "MOV_0001.MP4")
    client = seaweedfs.client()
    soonest = datetime.now(UTC) + timedelta(days=RETENTION_DAYS, hours=-1)

    held = client.head_object(Bucket=s3_bucket, Key=f"files/{SHA}", ChecksumMode="ENABLED")
    assert held.get("ChecksumSHA256") == b64_sha256(SHA)
    for key in (f"files/{SHA}", f"files/{SHA}{FILE_RECEIPT_SUFFIX}"):
        retention = client.get_object_retention(Bucket=s3_bucket, Key=key)["Retention"]
        assert retention["RetainUntilDate"] >= soonest
        version = client.head_object(Bucket=s3_bucket, Key=key)["VersionId"]
        with pytest.raises(ClientError, match="AccessDenied"):
            client.delete_object(Bucket=s3_bucket, Key=key, VersionId=version)


def test_the_same_file_again_gets_the_same_receipt_and_writes_nothing(
    sink: S3EvidenceSink,
    export: Path,
    settings: S3SinkSettings,
    ingest_key: Ed25519PrivateKey,
    clock: HookClock,
    seaweedfs: SeaweedS3,
    s3_bucket: str,
) -> None:
    first = sink.put_file(export, SHA, "MOV_0001.MP4")
    before = versions(seaweedfs, s3_bucket)
    seen = Requests()
    again = open_sink(settings, ingest_key, clock, seen.session)

    assert again.put_file(export, SHA, "renamed.mp4") == first
    assert seen.named("PutObject", "UploadPart", "CreateMultipartUpload") == []
    assert versions(seaweedfs, s3_bucket) == before
    again.close()


def test_a_file_whose_bytes_differ_from_the_declared_sha256_gets_no_receipt(
    sink: S3EvidenceSink, export: Path, seaweedfs: SeaweedS3, s3_bucket: str
) -> None:
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    with pytest.raises(StoreRefused):
        sink.put_file(export, wrong, "MOV_0001.MP4")
    listed = seaweedfs.client().list_objects_v2(Bucket=s3_bucket, Prefix=f"files/{wrong}")
    assert [o.get("Key") for o in listed.get("Contents", [])] == []
