"""The offload API over HTTP (docs/formats/offload.md): FastAPI routes onto :class:`OffloadService`.

Every route first checks that the camera is docked (409), every route but ``hello`` and
``session`` then checks the bearer token (401). Errors are ``{"error": "..."}`` with the status
the contract names; the camera's own faults (a failing card, an audit log that will not write)
are 5xx. Storage work runs in the thread pool, never on the event loop.
"""

from __future__ import annotations

import errno
import re
from collections.abc import AsyncIterator
from typing import Any, BinaryIO

import structlog
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from custody.canonical import parse_json
from custody.errors import CustodyError, FormatError
from custody.profile import MAX_PROFILE_BYTES
from device.errors import (
    FirmwareError,
    OffloadBadRequest,
    OffloadConflict,
    OffloadError,
    OffloadRangeError,
    OffloadUnauthorized,
)
from device.offload.clips import CHUNK, check_path_index
from device.offload.service import OffloadService
from device.offload.updates import CameraUpdates

PREFIX = "/offload/v1"
MAX_JSON_BYTES = 64 * 1024
MAX_RECEIPT_BYTES = 16 * 1024
MAX_REGISTRY_BYTES = 4 * 1024**2 + 1024
_RANGE_RE = re.compile(r"bytes=(\d{1,19})-(\d{0,19})")
log = structlog.get_logger(__name__)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive for a single ``bytes=START-[END]`` range; None for no Range."""
    if header is None:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None:
        raise OffloadBadRequest(
            f"Range {header[:60]!r} is not supported: send one range, bytes=START- or "
            "bytes=START-END"
        )
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    if start >= size or end < start:
        raise OffloadRangeError(f"range {start}-{match.group(2)} is outside the {size} bytes", size)
    return start, min(end, size - 1)


def create_app(service: OffloadService) -> FastAPI:
    gate = service.gate

    def docked() -> None:
        gate.require_docked()

    def authorised(authorization: str | None = Header(default=None)) -> str:
        return gate.check_token(authorization)

    app = FastAPI(
        title="bwc camera offload API",
        version="1",
        dependencies=[Depends(docked)],
        docs_url=None,
        redoc_url=None,
    )
    _install_error_handlers(app)
    auth = [Depends(authorised)]

    @app.get(f"{PREFIX}/hello")
    def hello() -> dict[str, Any]:
        return gate.hello()

    @app.post(f"{PREFIX}/session")
    async def session(request: Request) -> dict[str, str]:
        body = await _json(request)
        return await run_in_threadpool(gate.open, body)

    @app.get(f"{PREFIX}/status", dependencies=auth)
    def status() -> dict[str, Any]:
        return service.status()

    @app.get(f"{PREFIX}/clips", dependencies=auth)
    def clips() -> list[dict[str, object]]:
        return service.listing()

    @app.get(f"{PREFIX}/clips/{{clip_id}}/manifest", dependencies=auth)
    def manifest(
        clip_id: str, range_: str | None = Header(default=None, alias="range")
    ) -> Response:
        service.require_listed(clip_id)
        clip = service.clips.get(clip_id)
        path = service.clips.manifest_path(clip.clip_id)
        return _download(service, path, range_, "application/x-ndjson")

    @app.get(f"{PREFIX}/clips/{{clip_id}}/segments/{{index}}", dependencies=auth)
    def segment(
        clip_id: str, index: str, range_: str | None = Header(default=None, alias="range")
    ) -> Response:
        service.require_listed(clip_id)
        clip = service.clips.get(clip_id)
        path = service.clips.segment_path(clip, check_path_index(index))
        return _download(service, path, range_, "application/octet-stream")

    @app.post(f"{PREFIX}/time", dependencies=auth)
    async def time_sync(request: Request) -> dict[str, int]:
        body = await _json(request)
        return await run_in_threadpool(service.sync_time, body)

    @app.put(f"{PREFIX}/officer", dependencies=auth)
    async def officer(request: Request) -> dict[str, str]:
        body = await _json(request)
        return await run_in_threadpool(service.provision.officer, body)

    @app.put(f"{PREFIX}/triggers", dependencies=auth)
    async def triggers(request: Request) -> dict[str, Any]:
        body = await _body(request, MAX_REGISTRY_BYTES)
        return await run_in_threadpool(service.provision.triggers, body)

    @app.put(f"{PREFIX}/profile", dependencies=auth)
    async def profile(request: Request) -> dict[str, Any]:
        body = await _body(request, MAX_PROFILE_BYTES)
        return await run_in_threadpool(service.provision.profile, body)

    @app.put(f"{PREFIX}/keys/{{name}}", dependencies=auth)
    async def keys(name: str, request: Request) -> dict[str, str]:
        body = await _body(request, MAX_JSON_BYTES)
        return await run_in_threadpool(service.provision.key, name, body)

    @app.put(f"{PREFIX}/firmware", dependencies=auth)
    async def firmware(request: Request) -> dict[str, str]:
        return await _updates(service).receive(request)

    @app.post(f"{PREFIX}/reboot", dependencies=auth)
    async def reboot(request: Request) -> JSONResponse:
        await _body(request, MAX_JSON_BYTES)  # "{}": nothing in it is read
        then = await run_in_threadpool(_updates(service).reboot_handler)
        return JSONResponse({"rebooting": True}, status_code=202, background=BackgroundTask(then))

    @app.post(f"{PREFIX}/clips/{{clip_id}}/erase", dependencies=auth)
    async def erase(clip_id: str, request: Request) -> dict[str, Any]:
        body = await _body(request, MAX_RECEIPT_BYTES)
        return await run_in_threadpool(service.erase, clip_id, body)

    return app


def _updates(service: OffloadService) -> CameraUpdates:
    if service.updates is None:
        raise OffloadConflict("this camera takes no updates over the offload API")
    return service.updates


def _download(service: OffloadService, path: str, range_: str | None, media: str) -> Response:
    stream, size = service.clips.open(path)
    try:
        span = parse_range(range_, size)
    except OffloadError:
        stream.close()
        raise
    start, end = span if span is not None else (0, size - 1)
    length = end - start + 1 if size else 0
    headers = {"Content-Length": str(length), "Accept-Ranges": "bytes"}
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        _chunks(service, stream, start, length),
        status_code=206 if span is not None else 200,
        media_type=media,
        headers=headers,
        background=BackgroundTask(stream.close),  # also when the dock hangs up mid-body
    )


async def _chunks(
    service: OffloadService, stream: BinaryIO, start: int, length: int
) -> AsyncIterator[bytes]:
    """The bytes asked for, a chunk at a time, read off the event loop; memory stays flat.

    A transfer stops when the camera leaves the dock: the short body tells the dock to resume.
    """
    try:
        await run_in_threadpool(stream.seek, start)
        left = length
        while left > 0 and service.gate.docked:
            chunk = await run_in_threadpool(stream.read, min(CHUNK, left))
            if not chunk:
                return  # the file shrank (erased meanwhile): the short body says so
            left -= len(chunk)
            yield chunk
    finally:
        stream.close()


async def _body(request: Request, limit: int) -> bytes:
    data = bytearray()
    try:
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise OffloadBadRequest(
                    f"request body over {limit} bytes: this is not what was asked"
                )
    except ClientDisconnect as exc:
        # A dock killed or unplugged mid-request: nothing was done and nobody waits for an
        # answer, so one line, not an "Exception in ASGI application" traceback.
        log.info("offload.dock_hung_up", path=request.url.path, received=len(data))
        raise OffloadBadRequest("the dock hung up before its request body arrived") from exc
    return bytes(data)


async def _json(request: Request) -> dict[str, Any]:
    try:
        return parse_json(await _body(request, MAX_JSON_BYTES), what="request", canonical=False)
    except FormatError as exc:
        raise OffloadBadRequest(str(exc)) from exc


def _install_error_handlers(app: FastAPI) -> None:
    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(OffloadError)
    async def refused(_: Request, exc: OffloadError) -> JSONResponse:
        headers = None
        if isinstance(exc, OffloadRangeError):
            headers = {"Content-Range": f"bytes */{exc.size}"}
        elif isinstance(exc, OffloadUnauthorized):
            headers = {"WWW-Authenticate": "Bearer"}
        return error(exc.status, str(exc), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, f"{exc.detail}: see docs/formats/offload.md for the paths")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, f"bad request: {exc.errors()[0].get('msg', 'invalid')}")

    @app.exception_handler(FirmwareError)
    async def firmware_fault(_: Request, exc: FirmwareError) -> JSONResponse:
        return error(500, str(exc))

    @app.exception_handler(CustodyError)
    async def custody_fault(_: Request, exc: CustodyError) -> JSONResponse:
        return error(500, f"camera fault: {exc}")

    @app.exception_handler(OSError)
    async def storage_fault(_: Request, exc: OSError) -> JSONResponse:
        if exc.errno == errno.ENOSPC:
            return error(507, "the camera's card is full: offload and erase clips first")
        return error(500, f"the camera's card failed ({exc.strerror or exc}): check the card")
