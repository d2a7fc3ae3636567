"""Routes that read stored evidence as it was received: list, receipt, manifest, segments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from evidence.api.auth import ReaderCaller, RecordsCaller
from evidence.api.models import ERROR_RESPONSES, EvidenceId, EvidenceOut, SegmentIndex
from evidence.api.state import Service

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


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
