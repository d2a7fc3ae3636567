"""The armorer's web page: three static files (dock/ui/static) served at ``/`` and ``/static/``.

The page is plain HTML, CSS and JavaScript with no build step and nothing fetched from elsewhere;
it reads ``GET /api/v1/bays`` and sends the actions of docs/dock-api.md. Only the files named in
:data:`FILES` are served (no directory listing, no path from the request touches the disk), and
every answer carries a Content-Security-Policy that allows nothing but this origin: the page holds
an armorer token in ``sessionStorage``, so no other script may run in it and no site may frame it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).with_name("static")

#: URL path -> (file in STATIC_DIR, media type)
FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # a dock upgrade must not leave an old app.js in the tablet
}


def _endpoint(name: str, media_type: str) -> Callable[[], FileResponse]:
    # a closure, not default arguments: FastAPI would read those from the query string
    def serve() -> FileResponse:
        return FileResponse(STATIC_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)

    return serve


def page_router() -> APIRouter:
    """The routes of the page; viewing rules (loopback or token) are the app's, as for the API."""
    router = APIRouter()
    for url, (name, media_type) in FILES.items():
        router.add_api_route(
            url, _endpoint(name, media_type), methods=["GET"], include_in_schema=False
        )
    return router


def add_page(app: FastAPI) -> None:
    """Serve the page from ``app`` (one line in ``create_ui_app``)."""
    app.include_router(page_router())
