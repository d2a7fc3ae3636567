"""The HTTP API of the evidence store (FastAPI), versioned under ``/v1/``.

Bodies are raw bytes (a manifest, a segment file), read with a size limit before anything is
parsed. Every error is ``{"error": "..."}`` with a 4xx status (5xx only for the store's own
faults), never a traceback. The blocking service runs in the worker thread pool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from evidence.errors import EvidenceError, Forbidden, PayloadTooLarge, Unauthenticated
from evidence.ingest import IngestService, UploadStatus
from evidence.retention import MAX_REASON, RetentionService, RetentionStatus
from evidence.storage import Evidence, Hold, Retention, Tombstone
from evidence.tokens import Principal, Role, TokenTable

ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
UploadId = Annotated[str, Path(pattern=ID_PATTERN, description="upload id (a UUID)")]
EvidenceId = Annotated[str, Path(pattern=ID_PATTERN, description="evidence id (a UUID)")]
SegmentIndex = Annotated[int, Path(ge=0, le=2**32 - 1, description="segment index")]
HoldId = Annotated[str, Path(pattern=ID_PATTERN, description="legal hold id (a UUID)")]
# A reason must say something: at least one non-blank character, as the service requires.
Reason = Annotated[
    str, Field(min_length=1, max_length=MAX_REASON, pattern=r"\S", description="why, for the log")
]

_RAW = {"requestBody": {"required": True, "content": {"application/octet-stream": {}}}}
_MANIFEST_BODY = {"requestBody": {"required": True, "content": {"application/x-ndjson": {}}}}


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


class ErrorOut(BaseModel):
    error: str  # one line: what failed and what to do


_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 422)
}


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


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes, more than the {limit} allowed")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is more than the {limit} bytes allowed")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    async def evidence_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EvidenceError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, str(exc), headers)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, f"{where}: {first.get('msg', 'invalid')}".strip(": "))

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _error(exc.status_code, str(exc.detail), exc.headers)

    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        return _error(500, "internal error in the evidence store: see its log")

    app.add_exception_handler(EvidenceError, evidence_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)


@dataclass(frozen=True)
class ApiState:
    service: IngestService
    retention: RetentionService
    tokens: TokenTable
    max_body_bytes: int


def _state(request: Request) -> ApiState:
    state = request.app.state.bwc
    assert isinstance(state, ApiState)  # create_app always sets it
    return state


_bearer = HTTPBearer(auto_error=False)


def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated("send 'Authorization: Bearer <token>' (tokens are in tokens.json)")
    return _state(request).tokens.authenticate(credentials.credentials)


def _role(*allowed: Role) -> Callable[[Principal], Principal]:
    def check(who: Annotated[Principal, Depends(_caller)]) -> Principal:
        if who.role not in allowed:
            needed = " or ".join(r.value for r in allowed)
            raise Forbidden(f"a {who.role.value} token may not do this: it needs {needed}")
        return who

    return check


DockCaller = Annotated[Principal, Depends(_role(Role.DOCK))]
RecordsCaller = Annotated[Principal, Depends(_role(Role.RECORDS))]
ReaderCaller = Annotated[Principal, Depends(_role(Role.DOCK, Role.RECORDS))]
CustodianCaller = Annotated[Principal, Depends(_role(Role.RECORDS, Role.SUPERVISOR))]
OverseerCaller = Annotated[
    Principal, Depends(_role(Role.RECORDS, Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN))
]
AdminCaller = Annotated[Principal, Depends(_role(Role.ADMIN))]


def _service(request: Request) -> IngestService:
    return _state(request).service


Service = Annotated[IngestService, Depends(_service)]


def _retention(request: Request) -> RetentionService:
    return _state(request).retention


Retentions = Annotated[RetentionService, Depends(_retention)]

router = APIRouter(prefix="/v1", responses=_ERRORS)


@router.post("/uploads", status_code=201, openapi_extra=_MANIFEST_BODY)
async def create_upload(request: Request, service: Service, who: DockCaller) -> UploadOut:
    """Open an upload for a sealed manifest (or return the one already open or stored)."""
    body = await read_body(request, _state(request).max_body_bytes)
    status = await run_in_threadpool(service.create_upload, body, who.actor)
    return UploadOut.of(status)


@router.put("/uploads/{upload_id}/segments/{index}", openapi_extra=_RAW)
async def put_segment(
    request: Request, upload_id: UploadId, index: SegmentIndex, service: Service, who: DockCaller
) -> SegmentAck:
    """Send one segment file; sending an acknowledged one again is harmless."""
    body = await read_body(request, _state(request).max_body_bytes)
    await run_in_threadpool(service.put_segment, upload_id, index, body, who.actor)
    return SegmentAck(upload_id=upload_id, index=index, acknowledged=True)


@router.get("/uploads/{upload_id}")
async def upload_status(upload_id: UploadId, service: Service, who: DockCaller) -> UploadOut:
    """Which segments are acknowledged and which are missing: resume from here."""
    return UploadOut.of(await run_in_threadpool(service.status, upload_id))


@router.post("/uploads/{upload_id}/complete")
async def complete(upload_id: UploadId, service: Service, who: DockCaller) -> JSONResponse:
    """Verify the whole clip and return the store's signed receipt (docs/formats/receipt.md)."""
    receipt = await run_in_threadpool(service.complete, upload_id, who.actor)
    return JSONResponse(receipt.to_json())


@router.get("/evidence")
async def list_evidence(
    service: Service,
    who: RecordsCaller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,  # SQL BIGINT range
) -> list[EvidenceOut]:
    found = await run_in_threadpool(
        lambda: service.list_evidence(who.actor, limit=limit, offset=offset)
    )
    return [EvidenceOut.of(e) for e in found]


@router.get("/evidence/{evidence_id}/receipt")
async def evidence_receipt(
    evidence_id: EvidenceId, service: Service, who: ReaderCaller
) -> JSONResponse:
    receipt = await run_in_threadpool(service.receipt, evidence_id, who.actor)
    return JSONResponse(receipt.to_json())


@router.get("/evidence/{evidence_id}/manifest")
async def evidence_manifest(
    evidence_id: EvidenceId, service: Service, who: RecordsCaller
) -> Response:
    data = await run_in_threadpool(service.manifest, evidence_id, who.actor)
    return Response(data, media_type="application/x-ndjson")


@router.get("/evidence/{evidence_id}/segments/{index}")
async def evidence_segment(
    evidence_id: EvidenceId, index: SegmentIndex, service: Service, who: RecordsCaller
) -> Response:
    """One stored segment file, still encrypted to the agency key."""
    data = await run_in_threadpool(service.segment, evidence_id, index, who.actor)
    return Response(data, media_type="application/octet-stream")


@router.get("/evidence/{evidence_id}/retention")
async def evidence_retention(
    evidence_id: EvidenceId, retention: Retentions, who: OverseerCaller
) -> RetentionStatusOut:
    """The clip's retention category, when it expires, and every legal hold placed on it."""
    return RetentionStatusOut.of(await run_in_threadpool(retention.status, evidence_id, who.actor))


@router.put("/evidence/{evidence_id}/category")
async def set_category(
    evidence_id: EvidenceId, body: CategoryIn, retention: Retentions, who: CustodianCaller
) -> RetentionOut:
    """Move the clip to another retention category; its expiry is recomputed."""
    done = await run_in_threadpool(
        retention.set_category, evidence_id, body.category, body.reason, who.actor
    )
    return RetentionOut.of(done)


@router.post("/evidence/{evidence_id}/holds", status_code=201)
async def place_hold(
    evidence_id: EvidenceId, body: HoldIn, retention: Retentions, who: CustodianCaller
) -> HoldOut:
    """Place a legal hold: the clip is never purged while the hold is active."""
    hold = await run_in_threadpool(
        retention.place_hold, evidence_id, body.case_number, body.reason, who.actor
    )
    return HoldOut.of(hold)


@router.delete("/evidence/{evidence_id}/holds/{hold_id}")
async def release_hold(
    evidence_id: EvidenceId,
    hold_id: HoldId,
    body: ReleaseIn,
    retention: Retentions,
    who: CustodianCaller,
) -> HoldOut:
    """Release a legal hold, saying why; the clip is purged once expired and unheld."""
    hold = await run_in_threadpool(
        retention.release_hold, evidence_id, hold_id, body.reason, who.actor
    )
    return HoldOut.of(hold)


@router.post("/purge")
async def purge(retention: Retentions, who: AdminCaller) -> list[TombstoneOut]:
    """Delete every expired clip without an active legal hold; returns their tombstones."""
    return [TombstoneOut.of(t) for t in await run_in_threadpool(retention.purge, who.actor)]


@router.get("/tombstones")
async def list_tombstones(
    retention: Retentions,
    who: OverseerCaller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,  # SQL BIGINT range
) -> list[TombstoneOut]:
    """What was purged, when, from which category and by which rule; oldest first."""
    found = await run_in_threadpool(
        lambda: retention.tombstones(who.actor, limit=limit, offset=offset)
    )
    return [TombstoneOut.of(t) for t in found]


def create_app(
    service: IngestService,
    tokens: TokenTable,
    *,
    max_body_bytes: int,
    retention: RetentionService | None = None,
) -> FastAPI:
    app = FastAPI(
        title="bwc evidence store",
        version="1",
        description="Verified ingest of sealed body-worn camera clips, with signed receipts.",
    )
    retention = retention or RetentionService.beside(service)
    app.state.bwc = ApiState(service, retention, tokens, max_body_bytes)
    _install_error_handlers(app)
    app.include_router(router)
    return app
