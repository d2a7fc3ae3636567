"""What every route reaches through the app: the services, the token table and limits,
and the log of refused access."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import ClientDisconnect

from evidence.access_log import DeniedAccessLog
from evidence.errors import BadRequest, PayloadTooLarge
from evidence.files import FileService
from evidence.ingest import IngestService
from evidence.playback import PlaybackService
from evidence.retention import RetentionService
from evidence.tokens import TokenTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiState:
    service: IngestService
    retention: RetentionService
    tokens: TokenTable
    max_body_bytes: int
    playback: PlaybackService
    files: FileService
    denials: DeniedAccessLog


def api_state(request: Request) -> ApiState:
    state = request.app.state.bwc
    assert isinstance(state, ApiState)  # create_app always sets it
    return state


def _service(request: Request) -> IngestService:
    return api_state(request).service


def _retention(request: Request) -> RetentionService:
    return api_state(request).retention


def _playback(request: Request) -> PlaybackService:
    return api_state(request).playback


def _files(request: Request) -> FileService:
    return api_state(request).files


Service = Annotated[IngestService, Depends(_service)]
Files = Annotated[FileService, Depends(_files)]
Retentions = Annotated[RetentionService, Depends(_retention)]
Playbacks = Annotated[PlaybackService, Depends(_playback)]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes, more than the {limit} allowed")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is more than the {limit} bytes allowed")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        # A dock that hung up mid-upload: nothing is stored and nobody waits for the answer,
        # so one log line rather than an "Exception in ASGI application" traceback.
        log.info("client hung up after %d body bytes of %s", size, request.url.path)
        raise BadRequest("the client hung up before its request body arrived") from exc
    return b"".join(chunks)
