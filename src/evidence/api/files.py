"""Routes for foreign files: a dock stores one (``PUT /v1/files``), records lists them.

``PUT /v1/files`` takes the file's raw bytes as the body, streamed straight to the blob store
while the store hashes them (never held in memory), with three headers:

* ``X-Content-SHA256``: the SHA-256 the dock computed, 64 lowercase hex characters;
* ``X-File-Name``: the file's original name, UTF-8 and percent-encoded (RFC 3986), one path
  component (metadata only: the blob is keyed by its SHA-256);
* ``Content-Length``: the file's size; a chunked body is refused.

It answers 201 with the store's signed file receipt (docs/formats/file-receipt.md), 200 with the
same receipt when the bytes were stored before, 422 when the bytes do not match the declared
SHA-256 or size (nothing stored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import unquote

import anyio.from_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from evidence.api.auth import DockCaller, RecordsCaller
from evidence.api.models import ERROR_RESPONSES, FileOut
from evidence.api.state import Files
from evidence.errors import BadRequest

_RAW = {"requestBody": {"required": True, "content": {"application/octet-stream": {}}}}
_SHA256 = r"^[0-9a-f]{64}$"

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.put("/files", status_code=201, openapi_extra=_RAW)
async def put_file(
    request: Request,
    files: Files,
    who: DockCaller,
    x_content_sha256: Annotated[str, Header(pattern=_SHA256, description="the file's SHA-256")],
    x_file_name: Annotated[
        str, Header(min_length=1, max_length=1024, description="original name, percent-encoded")
    ],
) -> JSONResponse:
    """Store a foreign file (or find it stored) and return the store's signed file receipt."""
    name = _name(x_file_name)
    size = _size(request.headers.get("content-length"))
    receipt, created = await run_in_threadpool(
        lambda: files.store(
            _body(request), sha256=x_content_sha256, size=size, name=name, actor=who.actor
        )
    )
    return JSONResponse(receipt.to_json(), status_code=201 if created else 200)


@router.get("/files")
async def list_files(
    files: Files,
    who: RecordsCaller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,  # SQL BIGINT range
) -> list[FileOut]:
    """Stored foreign files, oldest first."""
    found = await run_in_threadpool(lambda: files.list_files(who.actor, limit=limit, offset=offset))
    return [FileOut.of(f) for f in found]


def _name(header: str) -> str:
    try:
        return unquote(header, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequest("X-File-Name: not percent-encoded UTF-8") from exc


def _size(header: str | None) -> int:
    if header is None or not header.isdigit():
        raise BadRequest("send the file with a Content-Length header (a chunked body is refused)")
    return int(header)


def _body(request: Request) -> Iterator[bytes]:
    """The request body for a worker thread, chunk by chunk, pulled from the event loop."""
    stream = request.stream()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while True:
        try:
            chunk = anyio.from_thread.run(next_chunk)
        except ClientDisconnect as exc:
            raise BadRequest("the client hung up before the file arrived") from exc
        if chunk is None:
            return
        if chunk:
            yield chunk
