"""A clip's retention and legal holds, mirrored onto its blobs as object locks.

Only a :class:`~evidence.storage.LockingBlobStore` (S3 with Object Lock) has locks; on any other
blob store these do nothing, since the metadata store alone enforces retention and holds there.
Every blob stored under the clip's manifest SHA-256 is locked, the manifest included.
"""

from __future__ import annotations

from evidence.storage import BlobStore, LockingBlobStore


def retain_clip(blobs: BlobStore, manifest_sha256: str, until_ns: int | None) -> None:
    """Keep every blob of the clip from deletion until ``until_ns`` (None: indefinitely)."""
    if isinstance(blobs, LockingBlobStore):
        for key in blobs.keys(manifest_sha256):
            blobs.retain(key, until_ns)


def hold_clip(blobs: BlobStore, manifest_sha256: str, on: bool) -> None:
    """Place (``on``) or lift the legal hold on every blob of the clip."""
    if isinstance(blobs, LockingBlobStore):
        for key in blobs.keys(manifest_sha256):
            blobs.legal_hold(key, on)
