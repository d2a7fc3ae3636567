"""Exceptions of the dock agent; each message is one line that says what failed and what to do.

``retryable`` tells the pipeline whether waiting and trying again can help (a store that is down,
a camera that was unplugged, a spool that other bays are emptying) or not (a hostile camera, a
refused request).
"""

from __future__ import annotations


class DockError(Exception):
    """Root of every error the dock agent raises."""

    retryable = False


class DockSetupError(DockError):
    """The dock itself cannot work: a missing key, token file or folder."""


class CameraError(DockError):
    """Something about a docked camera."""


class CameraRefused(CameraError):
    """A camera that must not be offloaded: unknown, unenrolled, or failed to prove its identity.

    Reported to the armorer; nothing is downloaded from it and nothing is erased on it.
    """


class CameraUnavailable(CameraError):
    """The camera stopped answering (unplugged, restarted, timed out): resume when it is back."""

    retryable = True


class CameraMisbehaved(CameraError):
    """The camera sent something hostile or broken (bad id, oversized or altered data).

    The clip is quarantined with the reason and never erased.
    """


class EraseRefused(CameraError):
    """The camera refused to erase a clip (it did not accept the receipt): footage stays."""


class StoreError(DockError):
    """Something about the evidence store."""


class StoreUnavailable(StoreError):
    """The store could not be reached or failed on its side (5xx): try again later."""

    retryable = True


class StoreRefused(StoreError):
    """The store answered a 4xx: the request will not succeed as it is."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ReceiptRejected(StoreError):
    """The store's receipt does not verify or is for other data: the clip is not erased."""


class LedgerError(DockError):
    """The ledger cannot be read or written, or a transition would go backwards."""


class SpoolFull(DockError):
    """No space left in the spool folder: free space or move data_dir, then retry.

    Retryable: other bays finishing their clips clean the spool, so waiting can help; the clip
    stays unfinished in the ledger and on the camera meanwhile.
    """

    retryable = True


class BayChanged(CameraUnavailable):
    """The bay no longer holds the camera a step was for (it left, or another one arrived)."""


class LinkUnresolved(CameraUnavailable):
    """The camera's offload endpoint cannot be found yet (no network interface, no table entry)."""


class IngestRefused(DockError):
    """A file dropped in the ingest folder is refused (a link, a path escape, not a plain file)."""


class UpdateRefused(DockError):
    """A firmware bundle or profile the dock will not stage (it does not verify, or no release
    key is installed): the message names the check; nothing staged changes."""


class UpdateTooLarge(UpdateRefused):
    """A bundle or profile over the dock's limit (``max_bundle_bytes``; 64 KiB for a profile)."""


class UpdateDeclined(CameraError):
    """A camera refused a firmware bundle or a profile (a 4xx): its reason says why.

    It keeps running what it ran; the dock does not offer the same update to it again, even
    after a restart (dock/offer_table.py), until something newer is staged.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
