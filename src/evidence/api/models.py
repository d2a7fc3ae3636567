"""Request and response bodies of the HTTP API, and the typed path parameters they share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field

from evidence.ingest import UploadStatus
from evidence.retention import MAX_REASON, RetentionStatus
from evidence.storage import Evidence, Hold, Retention, StoredFile, Tombstone

ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
UploadId = Annotated[str, Path(pattern=ID_PATTERN, description="upload id (a UUID)")]
EvidenceId = Annotated[str, Path(pattern=ID_PATTERN, description="evidence id (a UUID)")]
SegmentIndex = Annotated[int, Path(ge=0, le=2**32 - 1, description="segment index")]
HoldId = Annotated[str, Path(pattern=ID_PATTERN, description="legal hold id (a UUID)")]
# A reason must say something: at least one non-blank character, as the service requires.
Reason = Annotated[
    str, Field(min_length=1, max_length=MAX_REASON, pattern=r"\S", description="why, for the log")
]


class ErrorOut(BaseModel):
    error: str  # one line: what failed and what to do


# The error statuses every route may answer, documented once for the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 422)
}


class UploadOut(BaseModel):
    upload_id: str
    state: str  # "open" until the clip is stored, then "stored"
    clip_id: str
    device_id: str
    segment_count: int
    acknowledged: list[int]
    missing: list[int]
    evidence_id: str | None

    @classmethod
    def of(cls, status: UploadStatus) -> UploadOut:
        u = status.upload
        return cls(
            upload_id=u.id, state=status.state, clip_id=u.clip_id, device_id=u.device_id,
            segment_count=u.segment_count, acknowledged=status.acknowledged,
            missing=status.missing, evidence_id=u.evidence_id,
        )  # fmt: skip


class SegmentAck(BaseModel):
    upload_id: str
    index: int
    acknowledged: bool


class EvidenceOut(BaseModel):
    evidence_id: str
    clip_id: str
    device_id: str
    officer_id: str
    segment_count: int
    byte_count: int
    stored_at_ns: int
    manifest_sha256: str

    @classmethod
    def of(cls, e: Evidence) -> EvidenceOut:
        return cls(
            evidence_id=e.id, clip_id=e.clip_id, device_id=e.device_id, officer_id=e.officer_id,
            segment_count=e.segment_count, byte_count=e.byte_count, stored_at_ns=e.stored_at_ns,
            manifest_sha256=e.manifest_sha256,
        )  # fmt: skip


class CategoryIn(BaseModel):
    category: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Reason


class HoldIn(BaseModel):
    case_number: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]
    reason: Reason


class ReleaseIn(BaseModel):
    reason: Reason


class RetentionOut(BaseModel):
    evidence_id: str
    category: str
    expires_at_ns: int | None  # null: kept indefinitely
    set_by: str
    set_at_ns: int

    @classmethod
    def of(cls, r: Retention) -> RetentionOut:
        return cls.model_validate(r, from_attributes=True)


class HoldOut(BaseModel):
    hold_id: str
    evidence_id: str
    case_number: str
    reason: str
    placed_by: str
    placed_at_ns: int
    active: bool
    released_by: str | None
    released_at_ns: int | None
    release_reason: str | None

    @classmethod
    def of(cls, h: Hold) -> HoldOut:
        return cls(
            hold_id=h.id, evidence_id=h.evidence_id, case_number=h.case_number, reason=h.reason,
            placed_by=h.placed_by, placed_at_ns=h.placed_at_ns, active=h.active,
            released_by=h.released_by, released_at_ns=h.released_at_ns,
            release_reason=h.release_reason,
        )  # fmt: skip


class RetentionStatusOut(BaseModel):
    evidence_id: str
    retention: RetentionOut | None
    held: bool
    holds: list[HoldOut]

    @classmethod
    def of(cls, s: RetentionStatus) -> RetentionStatusOut:
        return cls(
            evidence_id=s.evidence_id, held=s.held, holds=[HoldOut.of(h) for h in s.holds],
            retention=RetentionOut.of(s.retention) if s.retention else None,
        )  # fmt: skip


class TombstoneOut(BaseModel):
    evidence_id: str
    manifest_sha256: str
    clip_id: str
    category: str
    expires_at_ns: int
    rule: str
    purged_by: str
    purged_at_ns: int

    @classmethod
    def of(cls, t: Tombstone) -> TombstoneOut:
        return cls.model_validate(t, from_attributes=True)


class FileOut(BaseModel):
    evidence_id: str
    sha256: str
    size: int
    name: str  # the original name, as metadata
    submitted_by: str
    stored_at_ns: int

    @classmethod
    def of(cls, f: StoredFile) -> FileOut:
        return cls(
            evidence_id=f.evidence_id, sha256=f.sha256, size=f.size, name=f.name,
            submitted_by=f.submitted_by, stored_at_ns=f.stored_at_ns,
        )  # fmt: skip
