"""Routes the dock uses: open an upload, send segments, resume, complete for a receipt."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from evidence.api.auth import DockCaller
from evidence.api.metrics import store_metrics
from evidence.api.models import ERROR_RESPONSES, SegmentAck, SegmentIndex, UploadId, UploadOut
from evidence.api.state import Service, api_state, read_body

_RAW = {"requestBody": {"required": True, "content": {"application/octet-stream": {}}}}
_MANIFEST_BODY = {"requestBody": {"required": True, "content": {"application/x-ndjson": {}}}}

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.post("/uploads", status_code=201, openapi_extra=_MANIFEST_BODY)
async def create_upload(request: Request, service: Service, who: DockCaller) -> UploadOut:
    """Open an upload for a sealed manifest (or return the one already open or stored)."""
    body = await read_body(request, api_state(request).max_body_bytes)
    status = await run_in_threadpool(service.create_upload, body, who.actor)
    return UploadOut.of(status)


@router.put("/uploads/{upload_id}/segments/{index}", openapi_extra=_RAW)
async def put_segment(
    request: Request, upload_id: UploadId, index: SegmentIndex, service: Service, who: DockCaller
) -> SegmentAck:
    """Send one segment file; sending an acknowledged one again is harmless."""
    started = time.monotonic()
    body = await read_body(request, api_state(request).max_body_bytes)
    await run_in_threadpool(service.put_segment, upload_id, index, body, who.actor)
    store_metrics(request).segment_accepted(len(body), time.monotonic() - started)
    return SegmentAck(upload_id=upload_id, index=index, acknowledged=True)


@router.get("/uploads/{upload_id}")
async def upload_status(upload_id: UploadId, service: Service, who: DockCaller) -> UploadOut:
    """Which segments are acknowledged and which are missing: resume from here."""
    return UploadOut.of(await run_in_threadpool(service.status, upload_id))


@router.post("/uploads/{upload_id}/complete")
async def complete(
    request: Request, upload_id: UploadId, service: Service, who: DockCaller
) -> JSONResponse:
    """Verify the whole clip and return the store's signed receipt (docs/formats/receipt.md)."""
    started = time.monotonic()
    receipt = await run_in_threadpool(service.complete, upload_id, who.actor)
    store_metrics(request).clip_completed(time.monotonic() - started)
    return JSONResponse(receipt.to_json())
