"""The two storage ports of the evidence store and the records they hold.

``MetadataStore`` keeps uploads, evidence records, receipts and the audit log; ``BlobStore`` keeps
segment and manifest bytes. Both are small and backend-neutral so that SQLite and a folder (the
embedded default) and PostgreSQL and S3 (a scaled deployment) implement the same methods.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from evidence.errors import BadRequest

#: blob keys: "<manifest sha256>/manifest.jsonl" or "<manifest sha256>/seg-NNNNNN.bwcs"
BLOB_KEY_RE = re.compile(r"[0-9a-f]{64}/(manifest\.jsonl|seg-\d{6,10}\.bwcs)")


def check_blob_key(key: str) -> str:
    if not BLOB_KEY_RE.fullmatch(key):
        raise BadRequest(f"blob key {key!r} is not a manifest or segment key")
    return key


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


class MetadataStore(Protocol):
    def add_upload(self, upload: Upload, segments: Sequence[ExpectedSegment]) -> None: ...

    def upload(self, upload_id: str) -> Upload | None: ...

    def upload_for_manifest(self, manifest_sha256: str) -> Upload | None: ...

    def expected_segments(self, upload_id: str) -> list[ExpectedSegment]: ...

    def expected_segment(self, upload_id: str, index: int) -> ExpectedSegment | None: ...

    def is_acknowledged(self, upload_id: str, index: int) -> bool: ...

    def acknowledge(self, upload_id: str, index: int) -> None: ...

    def acknowledged(self, upload_id: str) -> list[int]:
        """Indices of the segments stored for this upload, sorted."""
        ...

    def add_evidence(self, evidence: Evidence, receipt: bytes, upload_id: str) -> None:
        """Record the evidence and its receipt and close the upload, all or nothing.

        Raises ``Conflict`` when evidence for the same manifest is already stored.
        """
        ...

    def finish_upload(self, upload_id: str, evidence_id: str) -> None: ...

    def evidence(self, evidence_id: str) -> Evidence | None: ...

    def evidence_for_manifest(self, manifest_sha256: str) -> Evidence | None: ...

    def list_evidence(self, *, limit: int, offset: int) -> list[Evidence]: ...

    def receipt(self, evidence_id: str) -> bytes | None: ...

    def append_audit(self, line: bytes) -> None:
        """Append one audit line (with its LF); lines are never changed or removed."""
        ...

    def audit_log(self) -> bytes: ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, sha256: str) -> None:
        """Store ``data`` durably, refusing it unless its SHA-256 is ``sha256``."""
        ...

    def get(self, key: str) -> bytes | None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...
