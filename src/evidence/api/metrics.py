"""``GET /metrics`` (Prometheus text format) and the middleware that counts refused requests.

Who may read it: a caller with an ``admin`` or ``auditor`` token, or any caller on loopback
without a token; every other caller is refused and audited like any refusal (``access.denied``).
The metrics name no evidence, officer or camera, but they do reveal activity: when clips
arrive, how many, how large, how often requests are refused, when purges run. That is
operational intelligence about an agency's patrols, so it is not for anyone who can reach the
port; a Prometheus on the same host (the usual set-up) scrapes without a token, one elsewhere
sends a token. A reverse proxy on the same host makes every client look local: have it refuse
``/metrics`` (or forward it only to callers it has authenticated).

The route is left out of the OpenAPI schema: it is for Prometheus, not for API clients.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from evidence.api.auth import NO_TOKEN, authenticate
from evidence.api.denials import denied
from evidence.errors import Forbidden, Unauthenticated
from evidence.metrics import StoreMetrics
from evidence.tokens import Role

READERS = (Role.ADMIN, Role.AUDITOR)

_bearer = HTTPBearer(auto_error=False)

router = APIRouter()


def store_metrics(request: Request) -> StoreMetrics:
    metrics = request.app.state.bwc_metrics
    assert isinstance(metrics, StoreMetrics)  # create_app always sets it
    return metrics


def metrics_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Loopback without a token; from anywhere else an admin or auditor token."""
    if credentials is None:
        if _on_loopback(request):
            return
        raise denied(
            request,
            Unauthenticated(
                "metrics need 'Authorization: Bearer <token>' of an admin or auditor from here "
                "(only loopback may scrape without one)"
            ),
            NO_TOKEN,
        )
    who = authenticate(request, credentials.credentials)
    if who.role not in READERS:
        raise denied(
            request,
            Forbidden(f"a {who.role.value} token may not read metrics: it needs admin or auditor"),
            "needs admin or auditor",
            who,
        )


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_reader)])
async def metrics(request: Request) -> Response:
    """The store's metrics; clips stored and purged are counted in the metadata store."""
    body, content_type = await run_in_threadpool(
        store_metrics(request).exposition, request.headers.get("accept", "")
    )
    return Response(body, media_type=content_type)


class CountAnswers:
    """ASGI middleware: every response's status goes to :meth:`StoreMetrics.answered`."""

    def __init__(self, app: ASGIApp, metrics: StoreMetrics) -> None:
        self._app, self._metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._metrics.answered(int(message["status"]))
            await send(message)

        await self._app(scope, receive, counting)


def _on_loopback(request: Request) -> bool:
    if request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False  # not an address (a unix socket, a test client's name): not loopback
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
