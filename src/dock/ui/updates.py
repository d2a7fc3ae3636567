"""Routes of the local API that stage updates (docs/dock-api.md "Updates").

``PUT /api/v1/updates/firmware`` streams the bundle to dock/updates.py on a worker thread, one
chunk in memory at a time, so a 2 GiB bundle costs the dock a megabyte; a declared
Content-Length over ``max_bundle_bytes`` is refused before a byte is read. Both PUTs need an
armorer's token (loopback too) and leave one audit record, staged or refused, with the reason.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.from_thread
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from custody.profile import MAX_PROFILE_BYTES
from dock.armorers import Armorer
from dock.errors import DockError, UpdateRefused, UpdateTooLarge
from dock.updates import CHUNK, StagedUpdates

Record = Callable[..., None]  # (armorer, event, **data): one record in the dock's audit log
RequireArmorer = Callable[[Request], Armorer]


def add_update_routes(
    app: FastAPI,
    updates: StagedUpdates,
    *,
    max_bundle_bytes: int,
    record: Record,
    require_armorer: RequireArmorer,
) -> None:
    @app.get("/api/v1/updates")
    def listing() -> dict[str, Any]:
        return updates.listing()

    @app.put("/api/v1/updates/firmware", response_model=None)
    async def stage_firmware(request: Request) -> dict[str, Any] | JSONResponse:
        who = require_armorer(request)
        declared = _declared_length(request)
        if declared is not None and declared > max_bundle_bytes:
            error = (
                f"firmware bundle refused: {declared} bytes is more than the dock's "
                f"max_bundle_bytes ({max_bundle_bytes}): raise it in the dock's config or check "
                "the file"
            )
            return await _refused(record, who, "firmware.stage", UpdateTooLarge(error))
        body = io.BufferedReader(_BodyStream(request.stream()), buffer_size=CHUNK)
        try:
            staged = await anyio.to_thread.run_sync(
                lambda: updates.stage_firmware(body, limit=max_bundle_bytes)
            )
        except (DockError, ClientDisconnect) as exc:
            return await _refused(record, who, "firmware.stage", exc)
        answer = staged.to_json()
        await anyio.to_thread.run_sync(
            lambda: record(who, "firmware.stage", outcome="staged", **answer)
        )
        return answer

    @app.put("/api/v1/updates/profile", response_model=None)
    async def stage_profile(request: Request) -> dict[str, Any] | JSONResponse:
        who = require_armorer(request)
        try:
            data = await _read_small(request, MAX_PROFILE_BYTES)
            staged = await anyio.to_thread.run_sync(lambda: updates.stage_profile(data))
        except (DockError, ClientDisconnect) as exc:
            return await _refused(record, who, "profile.stage", exc)
        answer = staged.to_json()
        await anyio.to_thread.run_sync(
            lambda: record(who, "profile.stage", outcome="staged", **answer)
        )
        return answer


async def _refused(record: Record, who: Armorer, event: str, exc: Exception) -> JSONResponse:
    """Audit the refusal, then answer it: 413 over the limit, 422 refused, 500 a dock fault."""
    if isinstance(exc, ClientDisconnect):
        error, status = "the upload was cut short: nothing was staged; send the file again", 400
    else:
        error = str(exc)
        status = 413 if isinstance(exc, UpdateTooLarge) else 422
        status = status if isinstance(exc, UpdateRefused) else 500
    await anyio.to_thread.run_sync(lambda: record(who, event, outcome="refused", error=error))
    return JSONResponse({"error": error}, status_code=status)


def _declared_length(request: Request) -> int | None:
    text = request.headers.get("content-length")
    return int(text) if text is not None and text.isdigit() else None


async def _read_small(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` (profiles are a few KiB)."""
    declared = _declared_length(request)
    data = bytearray()
    if declared is None or declared <= limit:
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                break
    if len(data) > limit or (declared is not None and declared > limit):
        raise UpdateTooLarge(f"profile refused: more than the {limit} bytes a profile may have")
    return bytes(data)


class _BodyStream(io.RawIOBase):
    """The request body as a blocking stream for a worker thread started by anyio.

    Each read takes the next chunk from the event loop (``anyio.from_thread``), so the body is
    never held in memory whole and the loop stays free for other requests meanwhile.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._left = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left and not self._ended:
            chunk = anyio.from_thread.run(self._next)
            self._ended = chunk is None
            self._left = chunk or b""
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size

    async def _next(self) -> bytes | None:
        return await anext(self._chunks, None)
