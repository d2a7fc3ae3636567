"""The two storage ports of the evidence store and the records they hold.

``MetadataStore`` keeps uploads, evidence records, receipts and the audit log; ``BlobStore`` keeps
segment and manifest bytes. Both are small and backend-neutral so that SQLite and a folder (the
embedded default) and PostgreSQL and S3 (a scaled deployment) implement the same methods.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from evidence.errors import BadRequest

#: blob keys: "<manifest sha256>/manifest.jsonl" or "<manifest sha256>/seg-NNNNNN.bwcs"
BLOB_KEY_RE = re.compile(r"[0-9a-f]{64}/(manifest\.jsonl|seg-\d{6,10}\.bwcs)")
#: a foreign file's blob key: "files/<its sha256>" (its name is metadata, never part of a key)
FILE_KEY_RE = re.compile(r"files/[0-9a-f]{64}")
FILES_PREFIX = "files"


def check_blob_key(key: str) -> str:
    if not (BLOB_KEY_RE.fullmatch(key) or FILE_KEY_RE.fullmatch(key)):
        raise BadRequest(f"blob key {key!r} is not a manifest or segment key, nor files/<sha256>")
    return key


def file_key(sha256: str) -> str:
    return check_blob_key(f"{FILES_PREFIX}/{sha256}")


@dataclass(frozen=True)
class StoredFile:
    """A foreign file the store holds (an export of another maker's camera)."""

    evidence_id: str
    sha256: str
    size: int
    name: str  # the original name: metadata only, never a path
    submitted_by: str
    stored_at_ns: int


@dataclass(frozen=True)
class Upload:
    id: str
    manifest_sha256: str
    clip_id: str
    device_id: str
    segment_count: int
    created_by: str
    created_at_ns: int
    evidence_id: str | None = None  # set once the clip is stored


@dataclass(frozen=True)
class ExpectedSegment:
    """What the signed manifest says about one segment file."""

    index: int
    size: int
    cipher_sha256: str


@dataclass(frozen=True)
class Evidence:
    id: str
    manifest_sha256: str
    clip_id: str
    device_id: str
    officer_id: str
    segment_count: int
    byte_count: int
    stored_at_ns: int


@dataclass(frozen=True)
class Retention:
    """A stored clip's retention category and when it expires (None: kept indefinitely)."""

    evidence_id: str
    category: str
    expires_at_ns: int | None
    set_by: str
    set_at_ns: int


@dataclass(frozen=True)
class Hold:
    """A legal hold: while it is active (not released) the evidence is never purged."""

    id: str
    evidence_id: str
    case_number: str
    reason: str
    placed_by: str
    placed_at_ns: int
    released_by: str | None = None
    released_at_ns: int | None = None
    release_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at_ns is None


@dataclass(frozen=True)
class Tombstone:
    """What is left of purged evidence: what it was, when and under which rule it went."""

    evidence_id: str
    manifest_sha256: str
    clip_id: str
    device_id: str
    officer_id: str
    stored_at_ns: int
    category: str
    expires_at_ns: int
    rule: str
    purged_by: str
    purged_at_ns: int


@dataclass(frozen=True)
class AuditLine:
    """One audit record to append (with its LF), flagged when it is a signed checkpoint."""

    line: bytes
    checkpoint: bool = False


@dataclass(frozen=True)
class AuditTail:
    """The newest audit record, read under the store's write lock, and how much is unsigned."""

    seq: int
    line: bytes
    since_checkpoint: int  # records after the last checkpoint (every record when there is none)


#: Builds the next audit lines from the tail (None: the log is empty); may return none.
AuditBuild = Callable[[AuditTail | None], Sequence[AuditLine]]


class MetadataStore(Protocol):
    def add_upload(self, upload: Upload, segments: Sequence[ExpectedSegment]) -> Upload:
        """Open ``upload``, or return the upload another request opened first for its manifest.

        One upload per manifest, however many processes race. Raises ``Conflict`` when the
        manifest's evidence was purged (storing it again would undo the purge).
        """
        ...

    def upload(self, upload_id: str) -> Upload | None: ...

    def upload_for_manifest(self, manifest_sha256: str) -> Upload | None: ...

    def expected_segments(self, upload_id: str) -> list[ExpectedSegment]: ...

    def expected_segment(self, upload_id: str, index: int) -> ExpectedSegment | None: ...

    def is_acknowledged(self, upload_id: str, index: int) -> bool: ...

    def acknowledge(self, upload_id: str, index: int) -> None: ...

    def acknowledged(self, upload_id: str) -> list[int]:
        """Indices of the segments stored for this upload, sorted."""
        ...

    def add_evidence(
        self,
        evidence: Evidence,
        receipt: bytes,
        upload_id: str,
        retention: Retention | None = None,
    ) -> None:
        """Record the evidence, its receipt and retention and close the upload, all or nothing.

        Raises ``Conflict`` when evidence for the same manifest is already stored. Evidence
        without a retention record is never purged.
        """
        ...

    def finish_upload(self, upload_id: str, evidence_id: str) -> None: ...

    def evidence(self, evidence_id: str) -> Evidence | None: ...

    def evidence_for_manifest(self, manifest_sha256: str) -> Evidence | None: ...

    def list_evidence(self, *, limit: int, offset: int) -> list[Evidence]: ...

    def receipt(self, evidence_id: str) -> bytes | None: ...

    def retention(self, evidence_id: str) -> Retention | None: ...

    def set_retention(self, retention: Retention) -> bool:
        """Set the evidence's category and expiry; False when the evidence no longer exists."""
        ...

    def add_hold(self, hold: Hold) -> bool:
        """Record a hold; False (nothing recorded) when the evidence no longer exists."""
        ...

    def holds(self, evidence_id: str) -> list[Hold]:
        """Every hold ever placed on the evidence, active and released, oldest first."""
        ...

    def release_hold(self, hold_id: str, *, by: str, at_ns: int, reason: str) -> bool:
        """Release an active hold; False when it does not exist or is already released."""
        ...

    def expired(self, now_ns: int, *, limit: int) -> list[Evidence]:
        """Evidence whose retention expired at or before ``now_ns`` and that has no active hold."""
        ...

    def purge_evidence(self, tombstone: Tombstone) -> bool:
        """Replace the evidence (and its uploads) by its tombstone, all or nothing.

        Re-checks inside the transaction that the evidence is still expired and unheld, so a
        hold placed meanwhile wins; returns False (and changes nothing) when it is not.
        """
        ...

    def tombstones(self, *, limit: int, offset: int) -> list[Tombstone]: ...

    def tombstone_for_manifest(self, manifest_sha256: str) -> Tombstone | None: ...

    def counts(self) -> tuple[int, int]:
        """(evidence records held, tombstones): every clip ever stored is one or the other."""
        ...

    def append_audit(self, build: AuditBuild) -> None:
        """Append the lines ``build`` makes from the current tail, under the database's write lock.

        Appends from several processes are serialised, so each builds on the latest record and
        the hash chain never forks. Lines are never changed or removed.
        """
        ...

    def audit_log(self) -> bytes: ...

    def add_file(self, stored: StoredFile, receipt: bytes) -> StoredFile:
        """Record a foreign file and its receipt, or return the record of the same bytes.

        One record per SHA-256, however many requests race: the first one wins.
        """
        ...

    def file_for_sha256(self, sha256: str) -> StoredFile | None: ...

    def file_receipt(self, evidence_id: str) -> bytes | None: ...

    def list_files(self, *, limit: int, offset: int) -> list[StoredFile]:
        """Stored foreign files, oldest first."""
        ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, sha256: str) -> None:
        """Store ``data`` durably, refusing it unless its SHA-256 is ``sha256``."""
        ...

    def put_stream(self, key: str, chunks: Iterable[bytes], sha256: str) -> int:
        """Store the bytes of ``chunks`` durably without holding them in memory; their size.

        Refused with ``VerificationFailed`` unless their SHA-256 is ``sha256``: nothing is
        stored then, and whatever was at ``key`` stays as it was.
        """
        ...

    def get(self, key: str) -> bytes | None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def manifests(self) -> list[str]:
        """The manifest SHA-256 of every clip that has at least one blob stored, sorted."""
        ...

    def keys(self, manifest_sha256: str) -> list[str]:
        """Every blob key stored under one clip's manifest SHA-256, sorted."""
        ...


@runtime_checkable
class LockingBlobStore(BlobStore, Protocol):
    """A blob store that can lock blobs against deletion (S3 Object Lock), blob by blob.

    A delete that a lock refuses raises ``BlobLocked``. The metadata store stays the authority
    on retention and holds; these locks make the object store refuse early deletes as well.
    """

    def retain(self, key: str, until_ns: int | None) -> None:
        """Keep the blob from deletion until ``until_ns`` (None: indefinitely)."""
        ...

    def legal_hold(self, key: str, on: bool) -> None:
        """Place (``on``) or lift the blob's legal hold, which blocks deletion while it is on."""
        ...
