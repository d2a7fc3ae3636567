"""The dock's local API (docs/dock-api.md): the bays to read, actions for an armorer.

One FastAPI app serves the JSON API, the web page (dock/ui/page.py) and the dock's Prometheus
metrics (dock/metrics.py). Who may do what:

* viewing (every ``GET``, whatever is mounted) needs nothing on loopback and an armorer's bearer
  token from anywhere else: a middleware checks it before any route or mounted app runs;
* every action (``POST``, and the ``PUT`` that stage updates: dock/ui/updates.py) needs an
  armorer's token, from loopback too, and is one record in the dock's signed audit log
  (dock/audit_log.py), written after the action and before the answer.

Errors are ``{"error": "one line"}`` with a 4xx status.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from dock.armorers import Armorer, Armorers
from dock.audit_log import DockAuditLog
from dock.errors import DockError
from dock.ledger import ClipState
from dock.metrics import metrics_response
from dock.officers import OFFICER_RE
from dock.runner import DockAgent
from dock.ui.page import FILES as PAGE_FILES
from dock.ui.page import add_page
from dock.ui.updates import add_update_routes

_VIEWING = frozenset({"GET", "HEAD"})
_Next = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OfficerBody(_Body):
    officer_id: Annotated[str, Field(pattern=f"^{OFFICER_RE.pattern}$")]


class RetryBody(_Body):
    serial: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class ReleaseBody(_Body):
    reason: Annotated[str, Field(min_length=3, max_length=500)]


def create_ui_app(
    agent: DockAgent,
    *,
    armorers: Armorers,
    audit: DockAuditLog,
) -> FastAPI:
    """The app for ``agent``: its status, its ledger, its metrics (``agent.dock.metrics``)."""
    app = FastAPI(title="bwc dock", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.armorers = armorers
    _guard_viewing(app, armorers)
    _errors(app)
    actions = _Actions(agent, audit)

    @app.get("/api/v1/bays")
    def bays() -> dict[str, Any]:
        return agent.status.snapshot()

    @app.get("/api/v1/quarantine")
    def quarantine() -> list[dict[str, Any]]:
        return [
            {"id": row_id, "device_id": row.device_id, "clip_id": row.clip_id,
             "why": row.last_error, "at_ns": row.updated_ns}
            for row_id, row in agent.dock.ledger.quarantined()
        ]  # fmt: skip

    @app.post("/api/v1/cameras/{serial}/officer")
    def assign(serial: str, body: OfficerBody, who: Acting) -> dict[str, Any]:
        return actions.assign(serial, body.officer_id, who)

    @app.post("/api/v1/retry")
    def retry(body: RetryBody, who: Acting) -> dict[str, Any]:
        return actions.retry(body.serial, who)

    @app.post("/api/v1/quarantine/{row_id}/release")
    def release(row_id: int, body: ReleaseBody, who: Acting) -> dict[str, Any]:
        return actions.release(row_id, body.reason, who)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        body, content_type = metrics_response(agent.dock.metrics, request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    add_update_routes(
        app, agent.updates, max_bundle_bytes=agent.dock.cfg.max_bundle_bytes,
        record=actions.record, require_armorer=_require_armorer,
    )  # fmt: skip
    add_page(app)
    return app


def _require_armorer(request: Request) -> Armorer:
    found = _armorer(request, request.app.state.armorers)
    if found is None:
        raise ApiError(
            401,
            "this action needs an armorer's token: sign in with one from armorers.json in the "
            "dock's data folder",
        )
    return found


Acting = Annotated[Armorer, Depends(_require_armorer)]


class _Actions:
    """Each action: check, act, audit (who, what, which camera, why), answer."""

    def __init__(self, agent: DockAgent, audit: DockAuditLog) -> None:
        self._agent, self._audit = agent, audit
        self._cfg = agent.dock.cfg

    def assign(self, serial: str, officer_id: str, who: Armorer) -> dict[str, Any]:
        device_id = self._enrolled(serial)
        try:
            sent = self._agent.send_officer(serial, officer_id)
        except DockError as exc:
            self.record(who, "officer.assign", serial=serial, device_id=device_id,
                        officer_id=officer_id, outcome="refused", error=str(exc))  # fmt: skip
            raise ApiError(409, str(exc)) from exc
        officers = self._agent.officers
        if sent:
            officers.forget(serial)  # an older assignment still waiting must not follow it
        else:
            officers.keep(serial, officer_id, armorer=who.actor, at_ns=self._wall_ns())
        outcome = "sent" if sent else "kept"
        self.record(who, "officer.assign", serial=serial, device_id=device_id,
                    officer_id=officer_id, outcome=outcome)  # fmt: skip
        return {"serial": serial, "officer_id": officer_id, "outcome": outcome}

    def retry(self, serial: str | None, who: Armorer) -> dict[str, Any]:
        if serial is not None:
            self._enrolled(serial)
        bays = self._agent.wake(serial)
        self.record(who, "retry", serial=serial, bays=bays)
        return {"serial": serial, "bays": bays}

    def release(self, row_id: int, reason: str, who: Armorer) -> dict[str, Any]:
        ledger = self._agent.dock.ledger
        row = ledger.by_id(row_id)
        if row is None or row.state is not ClipState.QUARANTINED:
            raise ApiError(404, f"no quarantined clip has id {row_id}: see GET /api/v1/quarantine")
        released = ledger.release(row.device_id, row.clip_id, reason=reason)
        serial = next((s for s, d in self._cfg.cameras.items() if d == row.device_id), None)
        bays = self._agent.wake(serial) if serial is not None else []
        self.record(who, "quarantine.release", id=row_id, serial=serial,
                    device_id=row.device_id, clip_id=row.clip_id, reason=reason,
                    why=row.last_error, bays=bays)  # fmt: skip
        return {"id": row_id, "device_id": row.device_id, "clip_id": row.clip_id,
                "state": released.state.value, "bays": bays}  # fmt: skip

    def _enrolled(self, serial: str) -> str:
        device_id = self._cfg.cameras.get(serial)
        if device_id is None:
            raise ApiError(404, f"camera {serial[:128]} is not enrolled at this dock: check the "
                                "serial (bwc dock status lists them)")  # fmt: skip
        return device_id

    def record(self, who: Armorer, event: str, **data: Any) -> None:
        self._audit.append(event, data, actor=who.actor)

    def _wall_ns(self) -> int:
        return self._agent.status.now_ns()


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _armorer(request: Request, armorers: Armorers) -> Armorer | None:
    token = _bearer(request)
    return None if token is None else armorers.authenticate(token)


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client is not None else ""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name, or nothing: not provably this machine
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _local_name(request: Request) -> bool:
    """The browser asked for this machine by a loopback name, not some site's name.

    A hostile web page can rebind its own name to 127.0.0.1 (DNS rebinding): the request then
    comes from loopback but carries that site's name in Host, and must not read the dock freely.
    """
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.strip("[]").lower() in LOOPBACK_NAMES


def _guard_viewing(app: FastAPI, armorers: Armorers) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next: _Next) -> Response:
        viewing = request.method in _VIEWING
        # The page's own files hold no data: a tablet loads them, then signs in for the data.
        free = request.url.path in PAGE_FILES or (_loopback(request) and _local_name(request))
        if viewing and not free and _armorer(request, armorers) is None:
            return _unauthorized(
                "viewing the dock from another machine needs an armorer's token "
                "(Authorization: Bearer ...)"
            )
        return await call_next(request)


def _unauthorized(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        if exc.status == 401:
            return _unauthorized(str(exc))
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the request"
        return JSONResponse(
            {"error": f"{where}: {first.get('msg', 'invalid')}: see docs/dock-api.md"},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": f"{exc.detail}: see docs/dock-api.md for the paths"},
            status_code=exc.status_code,
        )

    @app.exception_handler(DockError)
    async def dock_error(request: Request, exc: DockError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=409)
