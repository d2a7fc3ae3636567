"""The dock's S3 operations on one bucket: checksummed, locked puts and what the bucket holds.

Every put carries the object's SHA-256 (a single put the whole object's, a multipart upload each
part's), so the object store refuses bytes that do not match (``BadDigest``). Every put asks for
Object Lock retention, and a legal hold if configured. ``head`` reads back the object's stored
checksum (``ChecksumMode=ENABLED``), size, lock and metadata. botocore failures leave as dock
errors: unreachable or failing (5xx) is :class:`StoreUnavailable`, bad credentials or a missing
bucket :class:`DockSetupError`, any other refusal :class:`StoreRefused`.

Multipart uploads resume: an upload of the key left open by a dock that died is continued, and a
part already there is not sent again when its SHA-256 (as AWS lists it) or, where the server lists
none (SeaweedFS), its MD5 ETag matches the local part.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    NoCredentialsError,
    PartialCredentialsError,
)

from dock.errors import DockError, DockSetupError, StoreRefused, StoreUnavailable
from dock.spool import storage_error
from dock.throttle import Throttle

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectLockRetentionTypeDef

SHA256_META = "bwc-sha256"  # the whole object's SHA-256 (hex), on multipart objects
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_BAD_DIGEST = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}
_NO_LOCK_CONFIG = {"ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"}
_BUSY = {"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError", "Throttling"}


def b64_sha256(hex_digest: str) -> str:
    """A hex SHA-256 as S3 writes checksums: base64 of the 32 bytes."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


@dataclass(frozen=True)
class Held:
    """What the bucket says about the current version of an object."""

    size: int
    checksum: str | None  # base64 SHA-256; a multipart object's ends in "-<parts>"
    whole_sha256: str | None  # the metadata the dock wrote on a multipart object
    last_modified: datetime
    retain_until: datetime | None
    legal_hold: bool

    @property
    def composite(self) -> bool:
        return self.checksum is not None and "-" in self.checksum


@dataclass(frozen=True)
class Lock:
    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    retention_s: int
    legal_hold: bool

    def put_arguments(self, now: datetime) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "ObjectLockMode": self.mode,
            "ObjectLockRetainUntilDate": datetime.fromtimestamp(
                now.timestamp() + self.retention_s, UTC
            ),
        }
        if self.legal_hold:
            arguments["ObjectLockLegalHoldStatus"] = "ON"
        return arguments


def dock_error(exc: BotoCoreError | ClientError, where: str, action: str) -> DockError:
    """The dock error for a botocore failure, in one line that says what to do."""
    if isinstance(exc, ClientError):
        code = _code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = " ".join(str(exc.response.get("Error", {}).get("Message", "")).split())[:300]
        if code == "NoSuchBucket":
            return DockSetupError(
                f"{where} does not exist: create it with Object Lock, or fix dock.s3.bucket"
            )
        if code in _DENIED:
            return DockSetupError(
                f"{where} denied access to {action} ({code}): check the dock.s3 credentials "
                "and the bucket policy"
            )
        if code in _BAD_DIGEST:
            return StoreRefused(
                f"{where} refused {action}: the bytes do not match their signed sha256", 400
            )
        if status >= 500 or status == 429 or code in _BUSY:
            return StoreUnavailable(f"{where} failed to {action} ({code or status}): retry later")
        return StoreRefused(
            f"{where} refused to {action}: {code} {message}".rstrip(), status or 400
        )
    if isinstance(exc, FlexibleChecksumError):
        return StoreRefused(
            f"{where}: {action}: the bytes read back do not match their stored sha256", 409
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return DockSetupError(
            "no S3 credentials: set dock.s3.access_key_id and dock.s3.secret_access_key, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    return StoreUnavailable(
        f"{where} does not answer to {action} ({type(exc).__name__}): the dock retries; "
        "check dock.s3.endpoint_url, the object store and the network"
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def not_found(exc: ClientError) -> bool:
    return _code(exc) in _NOT_FOUND


class Bucket:
    """One bucket through one boto3 client; every method raises dock errors only.

    ``throttle`` paces segment uploads with the rest of the dock (a part, or a whole small
    object, is taken from it before it is sent).
    """

    def __init__(
        self,
        client: S3Client,
        name: str,
        where: str,
        part_bytes: int,
        throttle: Throttle | None = None,
    ) -> None:
        self._client, self.name, self.where = client, name, where
        self._part_bytes, self._throttle = part_bytes, throttle

    def _pace(self, count: int) -> None:
        if self._throttle is not None:
            self._throttle.take(count)

    @contextmanager
    def _s3(self, action: str) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise dock_error(exc, self.where, action) from exc

    def close(self) -> None:
        self._client.close()

    def object_lock_enabled(self) -> bool:
        with self._s3("read its Object Lock configuration"):
            try:
                answer = self._client.get_object_lock_configuration(Bucket=self.name)
            except ClientError as exc:
                if _code(exc) in _NO_LOCK_CONFIG:
                    return False
                raise
        return answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def head(self, key: str) -> Held | None:
        with self._s3(f"look up {key}"):
            try:
                a = self._client.head_object(Bucket=self.name, Key=key, ChecksumMode="ENABLED")
            except ClientError as exc:
                if not_found(exc):
                    return None
                raise
        return Held(
            size=a.get("ContentLength", -1),
            checksum=a.get("ChecksumSHA256"),
            whole_sha256=a.get("Metadata", {}).get(SHA256_META),
            last_modified=a["LastModified"],
            retain_until=a.get("ObjectLockRetainUntilDate"),
            legal_hold=a.get("ObjectLockLegalHoldStatus") == "ON",
        )

    def get(self, key: str, limit: int) -> bytes | None:
        """The object's bytes (checked by botocore against its stored checksum), or None."""
        with self._s3(f"read {key}"):
            try:
                a = self._client.get_object(Bucket=self.name, Key=key, ChecksumMode="ENABLED")
            except ClientError as exc:
                if not_found(exc):
                    return None
                raise
            data = a["Body"].read(limit + 1)
            a["Body"].close()
        if len(data) > limit:
            raise StoreRefused(f"{key} in {self.where} is over {limit} bytes", 409)
        return data

    def sha256_of(self, key: str) -> str:
        """The SHA-256 of the object's bytes, read back in chunks (memory stays flat)."""
        digest = hashlib.sha256()
        with self._s3(f"read back {key}"):
            body = self._client.get_object(Bucket=self.name, Key=key)["Body"]
            for chunk in body.iter_chunks(1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()

    def put_bytes(self, key: str, data: bytes, lock: Lock, *, if_absent: bool = False) -> bool:
        """Store ``data``; with ``if_absent``, False when the key already exists (nothing put)."""
        sha = hashlib.sha256(data).hexdigest()
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
        with self._s3(f"store {key}"):
            try:
                self._client.put_object(
                    Bucket=self.name, Key=key, Body=data, ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=b64_sha256(sha), **lock.put_arguments(_now()), **extra,
                )  # fmt: skip
            except ClientError as exc:
                if if_absent and _code(exc) in (
                    "PreconditionFailed", "412", "ConditionalRequestConflict",
                ):  # fmt: skip
                    return False
                raise
        return True

    def put_file(self, key: str, path: Path, sha256: str, lock: Lock) -> None:
        """Upload a file whose SHA-256 must be ``sha256``; in parts when it is big."""
        try:
            size = path.stat().st_size
            f = path.open("rb")
        except OSError as exc:
            raise storage_error(exc, str(path)) from exc
        with f, self._s3(f"store {key}"):
            if size <= self._part_bytes:
                self._pace(size)
                self._client.put_object(
                    Bucket=self.name, Key=key, Body=f, ContentLength=size,
                    ChecksumAlgorithm="SHA256", ChecksumSHA256=b64_sha256(sha256),
                    **lock.put_arguments(_now()),
                )  # fmt: skip
            else:
                self._put_parts(key, f, sha256, lock)

    def _put_parts(self, key: str, f: IO[bytes], sha256: str, lock: Lock) -> None:
        upload_id, present = self._open_multipart(key, sha256, lock)
        whole = hashlib.sha256()
        parts: list[CompletedPartTypeDef] = []
        number = 1
        while chunk := f.read(self._part_bytes):
            whole.update(chunk)
            digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
            etag = present.get(number, {}).get("ETag")
            if not _same_part(present.get(number), chunk, digest):
                self._pace(len(chunk))
                etag = self._client.upload_part(
                    Bucket=self.name, Key=key, UploadId=upload_id, PartNumber=number,
                    Body=chunk, ChecksumAlgorithm="SHA256", ChecksumSHA256=digest,
                )["ETag"]  # fmt: skip
            parts.append({"PartNumber": number, "ETag": str(etag), "ChecksumSHA256": digest})
            number += 1
        if whole.hexdigest() != sha256:
            self._client.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
            raise StoreRefused(
                f"{key}: the spooled file does not match its signed sha256; nothing was stored",
                400,
            )
        self._client.complete_multipart_upload(
            Bucket=self.name, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    def _open_multipart(
        self, key: str, sha256: str, lock: Lock
    ) -> tuple[str, dict[int, dict[str, Any]]]:
        """An open upload of ``key`` for these bytes and the parts it has, or a new one."""
        listed = self._client.list_multipart_uploads(Bucket=self.name, Prefix=key)
        for upload in listed.get("Uploads", []):
            if upload.get("Key") != key or "UploadId" not in upload:
                continue
            upload_id = upload["UploadId"]
            parts = self._client.list_parts(Bucket=self.name, Key=key, UploadId=upload_id)
            return upload_id, {p["PartNumber"]: dict(p) for p in parts.get("Parts", [])}
        created = self._client.create_multipart_upload(
            Bucket=self.name, Key=key, ChecksumAlgorithm="SHA256",
            Metadata={SHA256_META: sha256}, **lock.put_arguments(_now()),
        )  # fmt: skip
        return created["UploadId"], {}

    def retain(self, key: str, lock: Lock) -> None:
        """Lock the current version of ``key`` for the retention period from now."""
        retention: ObjectLockRetentionTypeDef = {
            "Mode": lock.mode,
            "RetainUntilDate": datetime.fromtimestamp(_now().timestamp() + lock.retention_s, UTC),
        }
        with self._s3(f"retain {key}"):
            self._client.put_object_retention(Bucket=self.name, Key=key, Retention=retention)
            if lock.legal_hold:
                self._client.put_object_legal_hold(
                    Bucket=self.name, Key=key, LegalHold={"Status": "ON"}
                )


def _same_part(listed: dict[str, Any] | None, chunk: bytes, digest: str) -> bool:
    """A part already uploaded holds these bytes (by SHA-256, else by its MD5 ETag)."""
    if listed is None or listed.get("Size") != len(chunk):
        return False
    if listed.get("ChecksumSHA256"):
        return bool(listed["ChecksumSHA256"] == digest)
    md5 = hashlib.md5(chunk, usedforsecurity=False).hexdigest()
    return str(listed.get("ETag", "")).strip('"') == md5


def _now() -> datetime:
    return datetime.now(UTC)
