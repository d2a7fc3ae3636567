"""How botocore failures become evidence errors: one line that says what to do.

:class:`Translated` wraps every call of :class:`evidence.s3_blobs.S3BlobStore` to the object
store, so a missing bucket, refused credentials, an unreachable endpoint or a body that does not
match its SHA-256 reaches the API as the store's own error (``raise ... from`` the botocore one).
The code sets name the S3 error codes the store answers differently: an absent key is ``None``,
a denied delete of a locked version is ``BlobLocked``.
"""

from __future__ import annotations

from types import TracebackType

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from evidence.errors import EvidenceError, StoreSetupError, VerificationFailed

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
DENIED = frozenset({"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"})
BAD_DIGEST = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"})
# What GetObjectRetention / GetObjectLegalHold answer for a version that has none.
NO_LOCK = frozenset(
    {
        "ObjectLockConfigurationNotFoundError",
        "NoSuchObjectLockConfiguration",
        "NoSuchObjectLegalHold",
        "InvalidRequest",
    }
)


def s3_error(exc: BotoCoreError | ClientError, where: str, action: str) -> EvidenceError:
    """The evidence error for a botocore failure, in one line that says what to do."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code == "NoSuchBucket":
            return StoreSetupError(
                f"{where} does not exist: create it (with Object Lock) or fix s3.bucket"
            )
        if code in DENIED:
            return StoreSetupError(
                f"{where} denied access to {action} ({code}): check the S3 credentials "
                "and the bucket policy"
            )
        if code in BAD_DIGEST:
            return VerificationFailed(
                f"{action}: the object store refused the data, it does not match its sha256; "
                "send it again"
            )
        message = str(exc.response.get("Error", {}).get("Message", "")).replace("\n", " ")
        return StoreSetupError(f"{where} failed to {action}: {code} {message}".rstrip())
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StoreSetupError(
            "no S3 credentials: set s3.access_key_id and s3.secret_access_key, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return StoreSetupError(
            f"cannot reach {where} to {action}: check s3.endpoint_url and that the object "
            "store is running"
        )
    if isinstance(exc, FlexibleChecksumError):
        return StoreSetupError(
            f"{where}: {action}: the data read back does not match its stored sha256"
        )
    return StoreSetupError(f"{where} failed to {action}: {exc}".replace("\n", " "))


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Translated:
    """Turns botocore failures inside the block into evidence errors (``raise ... from``)."""

    def __init__(self, where: str, action: str) -> None:
        self._where, self._action = where, action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, BotoCoreError | ClientError):
            raise s3_error(exc, self._where, self._action) from exc
