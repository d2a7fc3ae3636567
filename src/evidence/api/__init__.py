"""The HTTP API of the evidence store (FastAPI), versioned under ``/v1/``.

Bodies are raw bytes (a manifest, a segment file), read with a size limit before anything is
parsed. Every error is ``{"error": "..."}`` with a 4xx status (5xx only for the store's own
faults), never a traceback. The blocking service runs in the worker thread pool.

One module per concern: :mod:`.models` (bodies), :mod:`.handlers` (errors), :mod:`.auth`
(bearer tokens and roles), :mod:`.denials` (refused access in the audit log), :mod:`.state`
(what routes reach), and one router per area:
:mod:`.uploads`, :mod:`.files` (foreign files), :mod:`.reads`, :mod:`.retention`,
:mod:`.playback`, :mod:`.hls`, and :mod:`.metrics` (``GET /metrics`` for Prometheus, outside
``/v1/`` and the OpenAPI schema).
"""

from __future__ import annotations

from fastapi import FastAPI

from evidence.access_log import DeniedAccessLog
from evidence.api import files as files_routes
from evidence.api import hls, reads, uploads
from evidence.api import metrics as metrics_routes
from evidence.api import playback as playback_routes
from evidence.api import retention as retention_routes
from evidence.api.denials import flushing
from evidence.api.handlers import install_error_handlers
from evidence.api.state import ApiState
from evidence.config import DEFAULT_DENIED_PER_MINUTE
from evidence.files import FileService
from evidence.ingest import IngestService
from evidence.metrics import StoreMetrics
from evidence.playback import PlaybackService
from evidence.retention import RetentionService
from evidence.tokens import TokenTable

__all__ = ["ApiState", "create_app"]


def create_app(
    service: IngestService,
    tokens: TokenTable,
    *,
    max_body_bytes: int,
    retention: RetentionService | None = None,
    playback: PlaybackService | None = None,
    metrics: StoreMetrics | None = None,
    denied_per_minute: int = DEFAULT_DENIED_PER_MINUTE,
) -> FastAPI:
    """The API over ``service``; without ``playback``, playback answers 503 (no agency key).

    ``metrics`` is a registry of this app's own unless given. Refused requests (401, 403) are
    audited, at most ``denied_per_minute`` per client address a minute (evidence.access_log).
    """
    app = FastAPI(
        title="bwc evidence store",
        version="1",
        description="Verified ingest of sealed body-worn camera clips, with signed receipts.",
        lifespan=flushing,
    )
    app.state.bwc = ApiState(
        service,
        retention or RetentionService.beside(service),
        tokens,
        max_body_bytes,
        playback or PlaybackService.beside(service, None),
        FileService.beside(service),
        DeniedAccessLog(service.audit, per_minute=denied_per_minute, wall_ns=service.wall_ns),
    )
    app.state.bwc_metrics = metrics = metrics or StoreMetrics(service.metadata)
    app.add_middleware(metrics_routes.CountAnswers, metrics=metrics)
    install_error_handlers(app)
    areas = (uploads, files_routes, reads, retention_routes, playback_routes, hls, metrics_routes)
    for area in areas:
        app.include_router(area.router)
    return app
