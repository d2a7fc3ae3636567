"""Exceptions of the camera firmware; each message says what failed and what to do."""

from __future__ import annotations


class FirmwareError(Exception):
    """Root of every error the firmware raises."""


class ClipWriteError(FirmwareError):
    """A segment or manifest could not be made durable; the clip is sealed and the camera faults."""


class StorageFullError(ClipWriteError):
    """No space left for footage: offload the camera at a dock."""


class RecoveryError(FirmwareError):
    """A clip folder found at boot cannot be recovered (it is kept untouched and reported)."""


class ClipExistsError(FirmwareError):
    """A clip folder of that id already exists; footage is never overwritten."""


class AuditWriteError(FirmwareError):
    """The device audit log could not be made durable; the camera faults."""


class MediaError(FirmwareError):
    """Encoded audio or video could not be encoded, cut or muxed; the message says why."""


class OffloadError(FirmwareError):
    """A request the offload API refuses; ``status`` is its HTTP status (see offload.md)."""

    status = 400


class OffloadBadRequest(OffloadError):
    """A path id, header or body that does not follow the offload contract."""


class OffloadUnauthorized(OffloadError):
    """No bearer token, or one this camera did not issue in the current docking session."""

    status = 401


class OffloadForbidden(OffloadError):
    """A session request whose dock key, nonce or signature this camera does not accept."""

    status = 403


class OffloadNotFound(OffloadError):
    """No sealed clip, segment or record of that name on this camera."""

    status = 404


class OffloadConflict(OffloadError):
    """The camera cannot do this now: not docked, or no store key provisioned."""

    status = 409


class OffloadRangeError(OffloadError):
    """A Range outside the file; ``size`` goes into ``Content-Range: bytes */size``."""

    status = 416

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class OffloadLengthRequired(OffloadError):
    """An upload sent without ``Content-Length``: the camera must know its size before it reads."""

    status = 411


class OffloadInsufficientStorage(OffloadError):
    """An upload larger than the room left on the camera's card."""

    status = 507


class OffloadRejected(OffloadError):
    """A body that parsed but does not verify (receipt) or validate (registry, key)."""

    status = 422


class FirmwareUpdateError(FirmwareError):
    """A firmware bundle the camera refuses, or a slot area it cannot use; the message says why."""


class BundleRefused(FirmwareUpdateError):
    """A bundle that failed a check (``check``: format, signer, ..., on trial); nothing changed."""

    def __init__(self, message: str, check: str) -> None:
        super().__init__(message)
        self.check = check
