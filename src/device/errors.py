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
