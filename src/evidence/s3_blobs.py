"""``S3BlobStore``: segments and manifests in an S3-compatible bucket (AWS, SeaweedFS, MinIO).

Every put carries the blob's SHA-256 (``ChecksumAlgorithm=SHA256`` and ``ChecksumSHA256``), so
the object store itself refuses a body that does not match (``BadDigest``); the store checks
the digest before sending too, like the folder store. Reads ask for the stored checksum back
(``ChecksumMode``), so botocore checks what arrives. Keys follow the folder layout,
``<manifest sha256>/<name>``, and listing walks ``/``-delimited prefixes page by page.

**Object Lock.** When the bucket has Object Lock enabled (asked once, at open) the store is a
:class:`LockingS3BlobStore`: every blob of a stored clip is retained until the clip's retention
expires, and legal holds become S3 legal holds, so the object store refuses to delete evidence
early, whoever asks with whatever credentials.

- *Mode.* GOVERNANCE by default: a records officer must be able to correct a wrong category
  (an 18-month one set by mistake on a routine clip), and in GOVERNANCE the store shortens a
  retention with ``BypassGovernanceRetention``, a right the agency grants to the store's
  credentials only. COMPLIANCE is for agencies that want no override at all: nobody can shorten
  or delete before the date, so a shorter category is refused with ``BlobLocked``.
- *Indefinite categories* are retained for 100 years from now, the longest default retention
  S3 allows, not by a legal hold: legal holds stay the court's, so releasing a clip's last case
  hold can never drop the protection of an indefinite clip, and the two show apart in the bucket.
- *An expiry already past* needs no lock. If the blob is locked for longer (a category shortened
  on an old clip) the lock is cut to a minute from now, the soonest date an object store takes
  whatever the skew of the clocks; a purge within that minute meets ``BlobLocked`` and the next
  one deletes the blob.
- *Versions.* A locked bucket is versioned, where a plain DELETE only adds a delete marker and
  keeps the data. ``delete`` removes every version of the key, data first, then its delete
  markers, so nothing of a deleted blob stays behind. A version under a lock is refused (S3
  answers AccessDenied) and that becomes ``BlobLocked``, naming the date or the hold; the
  versions still there stay readable. Retention and holds apply to the current version, the
  one ``get`` reads.
"""

from __future__ import annotations

import base64
import hashlib
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from evidence.config import NS_PER_DAY, LockMode, S3Settings
from evidence.errors import (
    BadRequest,
    BlobLocked,
    EvidenceError,
    PayloadTooLarge,
    StoreSetupError,
    VerificationFailed,
)
from evidence.s3_errors import DENIED, NO_LOCK, NOT_FOUND, Translated, error_code
from evidence.storage import BLOB_KEY_RE, check_blob_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectLockRetentionTypeDef

INDEFINITE_NS = 36_500 * NS_PER_DAY  # 100 years: what "kept indefinitely" locks for
MIN_LOCK_NS = 60 * 10**9  # the soonest retention date the store sets, from now
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MAX_SINGLE_PUT = 5 * 1024**3  # the largest object one S3 PutObject takes


def open_s3_blobs(
    settings: S3Settings, *, session: boto3.session.Session | None = None
) -> S3BlobStore:
    """The store over ``settings.bucket``; a :class:`LockingS3BlobStore` if it has Object Lock.

    Each store gets a boto3 session of its own unless one is given: a session is not
    thread-safe, and a new one spends ~0.3 s loading S3's service model, which tests share.
    """
    secret = settings.secret_access_key
    client = (session or boto3.session.Session()).client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=Config(
            # Path-style URLs: S3-compatible servers rarely have a DNS name per bucket.
            s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
        ),
    )
    where = f"S3 bucket {settings.bucket!r} at {settings.endpoint_url or settings.region}"
    plain = S3BlobStore(client, settings.bucket, where)
    if not plain.object_lock_enabled():
        return plain
    return LockingS3BlobStore(client, settings.bucket, where, mode=settings.lock_mode)


class S3BlobStore:
    def __init__(self, client: S3Client, bucket: str, where: str) -> None:
        self._client, self.bucket, self.where = client, bucket, where

    def _s3(self, action: str) -> Translated:
        return Translated(self.where, action)

    def object_lock_enabled(self) -> bool:
        with self._s3("read its Object Lock configuration"):
            try:
                answer = self._client.get_object_lock_configuration(Bucket=self.bucket)
            except ClientError as exc:
                if error_code(exc) == "ObjectLockConfigurationNotFoundError":
                    return False
                raise
        return answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def put(self, key: str, data: bytes, sha256: str) -> None:
        check_blob_key(key)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise VerificationFailed(f"{key}: the data does not match its sha256; send it again")
        with self._s3(f"store {key}"):
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
            )

    def put_stream(self, key: str, chunks: Iterable[bytes], sha256: str) -> int:
        """Spooled to a local temporary file while hashing, then sent in one checksummed PUT.

        One PUT keeps S3's own SHA-256 check over the whole object (a multipart upload's
        checksum is per part); it limits a file to S3's 5 GiB for a single PUT.
        """
        check_blob_key(key)
        digest, size = hashlib.sha256(), 0
        with tempfile.TemporaryFile() as spool:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                spool.write(chunk)
            if digest.hexdigest() != sha256:
                raise VerificationFailed(
                    f"{key}: the data does not match its sha256; send it again"
                )
            if size > _MAX_SINGLE_PUT:
                raise PayloadTooLarge(
                    f"{key}: {size} bytes is more than the {_MAX_SINGLE_PUT} one S3 PUT takes"
                )
            spool.seek(0)
            with self._s3(f"store {key}"):
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=spool,
                    ContentLength=size,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                )
        return size

    def get(self, key: str) -> bytes | None:
        check_blob_key(key)
        with self._s3(f"read {key}"):
            try:
                answer = self._client.get_object(
                    Bucket=self.bucket, Key=key, ChecksumMode="ENABLED"
                )
            except ClientError as exc:
                if error_code(exc) in NOT_FOUND:
                    return None
                raise
            return answer["Body"].read()

    def exists(self, key: str) -> bool:
        check_blob_key(key)
        with self._s3(f"look up {key}"):
            try:
                self._client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in NOT_FOUND:
                    return False
                raise
        return True

    def delete(self, key: str) -> None:
        """Delete every version and delete marker of ``key``; ``BlobLocked`` if one is locked."""
        check_blob_key(key)
        with self._s3(f"delete {key}"):
            data, markers = self._versions(key)
            for version_id in [*data, *markers]:
                try:
                    self._client.delete_object(Bucket=self.bucket, Key=key, VersionId=version_id)
                except ClientError as exc:
                    if error_code(exc) not in DENIED:
                        raise
                    raise self._refusal(key, version_id) from exc

    def _versions(self, key: str) -> tuple[list[str], list[str]]:
        """The version ids of ``key``'s data and of its delete markers (``"null"`` unversioned)."""
        data: list[str] = []
        markers: list[str] = []
        pages = self._client.get_paginator("list_object_versions")
        for page in pages.paginate(Bucket=self.bucket, Prefix=key):
            data += [v["VersionId"] for v in page.get("Versions", []) if v.get("Key") == key]
            markers += [
                m["VersionId"] for m in page.get("DeleteMarkers", []) if m.get("Key") == key
            ]
        return data, markers

    def _refusal(self, key: str, version_id: str) -> EvidenceError:
        """Why a delete was denied: a lock (``BlobLocked``) or the credentials."""
        if self._legal_hold(key, version_id):
            return BlobLocked(
                f"{key} is under a legal hold in {self.where}: release the hold, then delete it"
            )
        retained = self._retention(key, version_id)
        if retained is not None and retained[1] > datetime.now(UTC):
            mode, until = retained
            return BlobLocked(
                f"{key} is retained ({mode}) until {until.isoformat()} in {self.where}: "
                "it can be deleted after that"
            )
        return StoreSetupError(
            f"{self.where} denied deleting {key}: give the S3 credentials "
            "s3:DeleteObjectVersion on the bucket"
        )

    def _legal_hold(self, key: str, version_id: str) -> bool:
        try:
            answer = self._client.get_object_legal_hold(
                Bucket=self.bucket, Key=key, VersionId=version_id
            )
        except ClientError as exc:
            if error_code(exc) in NO_LOCK:
                return False
            raise
        return answer.get("LegalHold", {}).get("Status") == "ON"

    def _retention(self, key: str, version_id: str | None = None) -> tuple[str, datetime] | None:
        get = self._client.get_object_retention
        try:
            if version_id is None:  # the current version
                answer = get(Bucket=self.bucket, Key=key)
            else:
                answer = get(Bucket=self.bucket, Key=key, VersionId=version_id)
        except ClientError as exc:
            if error_code(exc) in NO_LOCK:
                return None
            raise
        retention = answer.get("Retention", {})
        until = retention.get("RetainUntilDate")
        return None if until is None else (str(retention.get("Mode", "")), until)

    def manifests(self) -> list[str]:
        found: list[str] = []
        pages = self._client.get_paginator("list_objects_v2")
        with self._s3("list the bucket"):
            for page in pages.paginate(Bucket=self.bucket, Delimiter="/"):
                for entry in page.get("CommonPrefixes", []):
                    prefix = entry.get("Prefix", "")
                    name = prefix.removesuffix("/")
                    if _SHA256_RE.fullmatch(name) and self._any_object(prefix):
                        found.append(name)
        return sorted(found)

    def _any_object(self, prefix: str) -> bool:
        # SeaweedFS keeps listing a prefix whose objects were all deleted, so ask for one.
        answer = self._client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return bool(answer.get("Contents"))

    def keys(self, manifest_sha256: str) -> list[str]:
        if not _SHA256_RE.fullmatch(manifest_sha256):
            raise BadRequest(f"{manifest_sha256!r} is not a manifest sha256")
        found: list[str] = []
        pages = self._client.get_paginator("list_objects_v2")
        with self._s3(f"list the blobs of {manifest_sha256}"):
            for page in pages.paginate(
                Bucket=self.bucket, Prefix=f"{manifest_sha256}/", Delimiter="/"
            ):
                found += [o["Key"] for o in page.get("Contents", []) if "Key" in o]
        return sorted(k for k in found if BLOB_KEY_RE.fullmatch(k))


class LockingS3BlobStore(S3BlobStore):
    """An :class:`S3BlobStore` over a bucket with Object Lock: also a ``LockingBlobStore``.

    ``now_ns`` should be the real clock: the object store enforces locks by its own.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        where: str,
        *,
        mode: LockMode = "GOVERNANCE",
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__(client, bucket, where)
        self.mode: LockMode = mode
        self._now_ns = now_ns

    def retain(self, key: str, until_ns: int | None) -> None:
        check_blob_key(key)
        now = self._now_ns()
        target = now + INDEFINITE_NS if until_ns is None else until_ns
        with self._s3(f"retain {key}"):
            if target < now + MIN_LOCK_NS:
                current = self._retention(key)
                if current is None or _ns(current[1]) <= now + MIN_LOCK_NS:
                    return  # expired already and not locked for longer: nothing to keep
                target = now + MIN_LOCK_NS
            self._put_retention(key, target)

    def _put_retention(self, key: str, until_ns: int) -> None:
        retention: ObjectLockRetentionTypeDef = {
            "Mode": self.mode,
            "RetainUntilDate": _datetime(until_ns),
        }
        try:
            self._client.put_object_retention(Bucket=self.bucket, Key=key, Retention=retention)
            return
        except ClientError as exc:
            # Denied: the new date is earlier than the lock in force (a shortened category).
            if error_code(exc) not in DENIED:
                raise
            if self.mode == "COMPLIANCE":
                current = self._retention(key)
                shown = current[1].isoformat() if current else "a later date"
                raise BlobLocked(
                    f"{key} is retained in COMPLIANCE mode until {shown}: no one can shorten "
                    "its retention, so the clip keeps its longer category"
                ) from exc
        # GOVERNANCE: the records officer's correction, with the right the agency granted.
        self._client.put_object_retention(
            Bucket=self.bucket, Key=key, Retention=retention, BypassGovernanceRetention=True
        )

    def legal_hold(self, key: str, on: bool) -> None:
        check_blob_key(key)
        with self._s3(f"{'place' if on else 'lift'} the legal hold of {key}"):
            self._client.put_object_legal_hold(
                Bucket=self.bucket, Key=key, LegalHold={"Status": "ON" if on else "OFF"}
            )


def _datetime(ns: int) -> datetime:
    # Rounded up to the second: a lock never ends before the time asked for.
    return datetime.fromtimestamp(-(-ns // 10**9), UTC)


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000
