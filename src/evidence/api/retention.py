"""Routes for retention categories, legal holds, purge and the tombstones purge leaves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from evidence.api.auth import AdminCaller, CustodianCaller, OverseerCaller
from evidence.api.models import (
    ERROR_RESPONSES,
    CategoryIn,
    EvidenceId,
    HoldId,
    HoldIn,
    HoldOut,
    ReleaseIn,
    RetentionOut,
    RetentionStatusOut,
    TombstoneOut,
)
from evidence.api.state import Retentions

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


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
