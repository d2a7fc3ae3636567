"""Helpers for the S3 sink tests: settings for the test SeaweedFS, and what a sink sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from custody.clip import MANIFEST_NAME, SealedClip, segment_name
from dock.config import S3SinkSettings
from dock.s3_sink import RECEIPT_NAME, S3EvidenceSink, open_s3_sink
from dock.store_client import UploadState
from tests.dock.conftest import HookClock
from tests.evidence.s3_server import REGION, SeaweedS3

RETENTION_DAYS = 2


def settings_for(seaweedfs: SeaweedS3, bucket: str, **changes: Any) -> S3SinkSettings:
    return S3SinkSettings(
        endpoint_url=seaweedfs.endpoint_url,
        bucket=bucket,
        region=REGION,
        access_key_id=seaweedfs.admin.access_key_id,
        secret_access_key=SecretStr(seaweedfs.admin.secret_access_key),
        retention_days=RETENTION_DAYS,
        **changes,
    )


class Requests:
    """The S3 operations sent by clients of a session, seen through botocore's event hooks."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.session = boto3.session.Session()
        self.session.events.register("before-parameter-build.s3", self._note)

    def _note(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.sent.append((model.name, params))

    def named(self, *names: str) -> list[dict[str, Any]]:
        return [params for name, params in self.sent if name in names]


def open_sink(
    settings: S3SinkSettings,
    key: Ed25519PrivateKey,
    clock: HookClock,
    session: boto3.session.Session,
) -> S3EvidenceSink:
    return open_s3_sink(settings, key, wall_ns=clock.wall_ns, timeout_s=5, session=session)


def spooled(tmp_path: Path, clip: SealedClip) -> Path:
    folder = tmp_path / "spool" / clip.clip_id
    clip.write_to(folder)
    return folder


def upload_all(sink: S3EvidenceSink, folder: Path) -> UploadState:
    upload = sink.create_upload(folder / MANIFEST_NAME)
    for index in upload.missing:
        sink.put_segment(upload.upload_id, index, folder / segment_name(index))
    return upload


def keys_of(upload: UploadState) -> list[str]:
    segments = [segment_name(i) for i in range(upload.segment_count)]
    return [f"{upload.upload_id}/{name}" for name in (MANIFEST_NAME, *segments, RECEIPT_NAME)]


def held_key(upload: UploadState, index: int) -> str:
    return f"{upload.upload_id}/{segment_name(index)}"


def versions(seaweedfs: SeaweedS3, bucket: str) -> list[tuple[str, str]]:
    listed = seaweedfs.client().list_object_versions(Bucket=bucket)
    return sorted((v["Key"], v["VersionId"]) for v in listed.get("Versions", []))


class CorruptingSink:
    """The S3 sink over a bucket that loses bytes: each segment 0 is overwritten once put."""

    def __init__(self, sink: S3EvidenceSink, client: Any, bucket: str) -> None:
        self.sink, self._client, self._bucket = sink, client, bucket

    def create_upload(self, manifest: Path) -> UploadState:
        return self.sink.create_upload(manifest)

    def put_segment(self, upload_id: str, index: int, segment: Path) -> None:
        self.sink.put_segment(upload_id, index, segment)
        if index == 0:
            key = f"{upload_id}/{segment_name(0)}"
            self._client.put_object(Bucket=self._bucket, Key=key, Body=b"not the footage")

    def status(self, upload_id: str) -> UploadState:
        return self.sink.status(upload_id)

    def complete(self, upload_id: str) -> bytes:
        return self.sink.complete(upload_id)
