"""Playback routes: a stored clip decrypted as one MP4, with byte ranges so players can seek.

Records and supervisors may play any clip, an officer only their own (see evidence.playback).
The MP4 is complete and verified before the first byte is sent, so a refused clip sends an error,
never half a video.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from evidence.api.auth import PlayerCaller
from evidence.api.models import ERROR_RESPONSES, ErrorOut, EvidenceId
from evidence.api.state import Playbacks
from evidence.playback import Mp4

CHUNK = 256 * 1024
_RANGE_RE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")
_MP4_BODY = {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range (first, last) asked for, or None to send everything.

    A header this does not understand (several ranges, bad syntax) is ignored, as RFC 9110
    allows; a range that starts past the end is refused with 416.
    """
    found = _RANGE_RE.fullmatch(header.strip()) if header else None
    if found is None or found.group(1) == found.group(2) == "":
        return None
    first_text, last_text = found.groups()
    if first_text == "":  # "bytes=-N": the last N bytes
        if int(last_text) == 0:
            raise _unsatisfiable(size)
        return max(0, size - int(last_text)), size - 1
    first = int(first_text)
    if first >= size:
        raise _unsatisfiable(size)
    last = size - 1 if last_text == "" else int(last_text)
    if last < first:
        return None  # not a range at all (RFC 9110): ignored
    return first, min(last, size - 1)


def _unsatisfiable(size: int) -> StarletteHTTPException:
    return StarletteHTTPException(
        416,
        f"the range starts past the end of the {size}-byte MP4: ask for bytes 0..{size - 1}",
        headers={"Content-Range": f"bytes */{size}"},
    )


async def _chunks(file: BinaryIO, first: int, length: int) -> AsyncIterator[bytes]:
    try:
        await run_in_threadpool(file.seek, first)
        remaining = length
        while remaining > 0:
            chunk = await run_in_threadpool(file.read, min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        file.close()  # the last handle on the decrypted file: closing it frees the disk


def ranged(mp4: Mp4, range_header: str | None) -> StreamingResponse:
    """Stream ``mp4`` (closing it when done or abandoned), whole or the byte range asked for."""
    try:
        span = byte_range(range_header, mp4.size)
    except StarletteHTTPException:
        mp4.file.close()
        raise
    first, last = span if span is not None else (0, mp4.size - 1)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(last - first + 1),
        "Content-Disposition": f'inline; filename="{mp4.clip_id}.mp4"',
        "Cache-Control": "no-store",  # decrypted evidence: no proxy or browser cache keeps it
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{mp4.size}"
    return StreamingResponse(
        _chunks(mp4.file, first, last - first + 1),
        status_code=206 if span is not None else 200,
        media_type="video/mp4",
        headers=headers,
    )


@router.get(
    "/evidence/{evidence_id}/playback.mp4",
    response_class=Response,
    responses={
        200: {"content": _MP4_BODY, "description": "the whole clip, decrypted"},
        206: {"content": _MP4_BODY, "description": "the byte range asked for (Range: bytes=)"},
        416: {"model": ErrorOut, "description": "the range starts past the end"},
        503: {"model": ErrorOut, "description": "the agency key cannot unwrap this clip"},
    },
)
async def playback_mp4(
    request: Request, evidence_id: EvidenceId, playback: Playbacks, who: PlayerCaller
) -> Response:
    """The clip decrypted as one standard MP4, after every stored segment is verified again."""
    range_header = request.headers.get("range")
    detail = f"range {range_header[:60]}" if range_header else ""
    mp4 = await run_in_threadpool(lambda: playback.mp4(evidence_id, who, detail=detail))
    return ranged(mp4, range_header)
