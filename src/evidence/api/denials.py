"""Refused access over HTTP: each 401 and 403 of the auth checks goes to the audit log.

:func:`denied` is called where a check refuses, since only there is it known who the caller is
(a 403 names the token's holder); it returns the error to raise. :func:`flushing` is the app's
lifespan: it writes the summary of an address's suppressed refusals once its window is over,
checking every :data:`FLUSH_EVERY_S` seconds, and writes every pending summary at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TypeVar

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from evidence.access_log import ANONYMOUS, Denial, DeniedAccessLog
from evidence.api.state import ApiState, api_state
from evidence.errors import Forbidden, Unauthenticated
from evidence.tokens import Principal

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0

E = TypeVar("E", Unauthenticated, Forbidden)


def denied(request: Request, error: E, reason: str, who: Principal | None = None) -> E:
    """Record that ``request`` was refused with ``error`` (rate-limited); return ``error``.

    ``who`` is the known caller of a 403; a 401 has none, so its actor is ``anonymous``. The
    reason is the caller's fault in a few words, never the token it sent.
    """
    client = request.client.host if request.client is not None else "unknown"
    actor = who.actor if who is not None else ANONYMOUS
    denial = Denial(error.status, actor, client, request.method, request.url.path, reason)
    api_state(request).denials.record(denial)
    return error


@contextlib.asynccontextmanager
async def flushing(app: FastAPI) -> AsyncIterator[None]:
    """The app's lifespan: summaries of suppressed refusals written while it serves and at exit."""
    state = app.state.bwc
    assert isinstance(state, ApiState)  # create_app sets it before serving
    task = asyncio.create_task(_flush_forever(state.denials))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await run_in_threadpool(state.denials.flush_all)


async def _flush_forever(denials: DeniedAccessLog) -> None:
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        try:
            await run_in_threadpool(denials.flush_due)
        except Exception:  # logged, not swallowed: the next round tries the others again
            log.exception("could not write a summary of suppressed refusals to the audit log")
