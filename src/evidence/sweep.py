"""The orphan sweep: deletes blobs that only purged evidence pointed at.

A purge commits the tombstone first and deletes the blobs after, so a crash in between, or a
delete the blob store refuses (a full disk, an S3 object still under Object Lock), leaves bytes
that no record points at. The sweep finds every clip prefix in the blob store whose manifest is
tombstoned and deletes what is left under it. It never touches a prefix that an open upload or
stored evidence still uses, and a blob it cannot delete is reported and left for the next sweep:
nothing raises out of :func:`sweep_orphans`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from evidence.audit_log import StoreAudit
from evidence.errors import EvidenceError
from evidence.storage import BlobStore, MetadataStore

log = logging.getLogger(__name__)

SWEEP_ACTOR = "store:orphan-sweep"
_SHOWN_FAILURES = 10  # failed keys named in one audit record; the count says how many in all


@dataclass(frozen=True)
class SweepFailure:
    key: str  # a blob key, or a manifest sha256 when the clip's blobs could not be listed
    reason: str


@dataclass
class SweepResult:
    swept: list[str] = field(default_factory=list)  # blob keys deleted
    failed: list[SweepFailure] = field(default_factory=list)  # left for the next sweep

    @property
    def ok(self) -> bool:
        return not self.failed


def sweep_orphans(
    metadata: MetadataStore, blobs: BlobStore, audit: StoreAudit, actor: str = SWEEP_ACTOR
) -> SweepResult:
    """Delete the blobs of every tombstoned clip; one ``blobs.swept`` audit record per clip."""
    result = SweepResult()
    try:
        prefixes = blobs.manifests()
    except (OSError, EvidenceError) as exc:
        log.warning("orphan sweep: cannot list the blob store: %s", exc)
        result.failed.append(SweepFailure("*", f"cannot list the blob store: {exc}"))
        return result
    for manifest_sha256 in prefixes:
        _sweep_clip(metadata, blobs, audit, actor, manifest_sha256, result)
    return result


def _sweep_clip(
    metadata: MetadataStore,
    blobs: BlobStore,
    audit: StoreAudit,
    actor: str,
    manifest_sha256: str,
    result: SweepResult,
) -> None:
    tombstone = metadata.tombstone_for_manifest(manifest_sha256)
    if tombstone is None:
        return  # stored evidence, an open upload, or a create_upload between its put and insert
    if (
        metadata.evidence_for_manifest(manifest_sha256) is not None
        or metadata.upload_for_manifest(manifest_sha256) is not None
    ):
        # Ingest refuses tombstoned manifests, so this cannot happen; if it ever does, the
        # bytes are someone's evidence and a leftover is the lesser harm.
        log.error("orphan sweep: %s is tombstoned yet still referenced; left", manifest_sha256)
        return
    try:
        keys = blobs.keys(manifest_sha256)
    except (OSError, EvidenceError) as exc:
        result.failed.append(SweepFailure(manifest_sha256, f"cannot list its blobs: {exc}"))
        return
    deleted: list[str] = []
    failed: list[SweepFailure] = []
    for key in keys:
        reason = _delete(blobs, key)
        if reason is None:
            deleted.append(key)
        else:
            failed.append(SweepFailure(key, reason))
            log.warning("orphan sweep: cannot delete %s (left for the next sweep): %s", key, reason)
    if deleted or failed:
        audit.record(
            actor, "blobs.swept",
            {"evidence_id": tombstone.evidence_id, "manifest_sha256": manifest_sha256,
             "deleted": len(deleted), "failed": len(failed),
             "failed_keys": [f.key for f in failed[:_SHOWN_FAILURES]]},
        )  # fmt: skip
    result.swept.extend(deleted)
    result.failed.extend(failed)


def _delete(blobs: BlobStore, key: str) -> str | None:
    """Delete one blob; the reason it is still there, or None once it is gone."""
    try:
        blobs.delete(key)
    except (OSError, EvidenceError) as exc:  # EvidenceError covers BlobLocked (Object Lock)
        try:
            # Another sweep (or purge) in another process may have deleted it first.
            return None if not blobs.exists(key) else str(exc) or type(exc).__name__
        except (OSError, EvidenceError):
            return str(exc) or type(exc).__name__
    return None
