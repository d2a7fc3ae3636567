"""Serving the offload API while docked: uvicorn in a thread of the firmware process.

The firmware thread only flips a flag (:meth:`OffloadServer.set_docked`), so ``Firmware.step``
never waits on the network. One supervisor thread owns uvicorn: when docked it binds the
configured host and port (port 0: a free one, kept for later docks so the dock's mapping holds),
serves until undocked, and shuts the server down; in-flight downloads stop at the next chunk.
FastAPI and uvicorn are imported there, at the first dock, so a camera that never docks (and
every restart after a power cut) boots without them.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from device.offload.session import SessionGate

if TYPE_CHECKING:
    from fastapi import FastAPI

log = structlog.get_logger(__name__)

#: seconds an in-flight request may take to finish after undock before it is cut
GRACE_S = 2


class OffloadServer:
    def __init__(self, app: Callable[[], FastAPI], gate: SessionGate, host: str, port: int) -> None:
        self._make_app = app
        self._app: FastAPI | None = None
        self._gate = gate
        self._host = host
        self._port = port
        self._lock = threading.Condition()
        self._docked = False
        self._closed = False
        self._server: Any = None  # the uvicorn.Server while one runs
        self._url: str | None = None
        self.error: str | None = None  #: why the last dock could not serve, if it could not
        self.failed = threading.Event()  #: set when the last dock could not serve
        self.serving = threading.Event()  #: set while accepting connections
        self.idle = threading.Event()  #: set while nothing is served (before, between, after)
        self.idle.set()
        self._thread = threading.Thread(target=self._supervise, name="offload-api", daemon=True)
        self._thread.start()

    @property
    def app(self) -> FastAPI:
        """The ASGI app, built on first use."""
        with self._lock:
            if self._app is None:
                self._app = self._make_app()
            return self._app

    @property
    def url(self) -> str | None:
        """``http://host:port`` while serving, else None."""
        return self._url if self.serving.is_set() else None

    @property
    def port(self) -> int:
        """The TCP port: the configured one, or after a dock the one port 0 picked."""
        return self._port

    def set_docked(self, docked: bool) -> None:
        """Serve from now on, or stop; returns at once (called from the firmware thread)."""
        self._gate.set_docked(docked)
        with self._lock:
            self._docked = docked
            if not docked and self._server is not None:
                self._server.should_exit = True
            self._lock.notify_all()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop serving and end the supervisor thread."""
        self.set_docked(False)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout_s)

    def describe(self) -> dict[str, object]:
        return {"serving": self.serving.is_set(), "url": self.url, "error": self.error}

    def _supervise(self) -> None:
        while True:
            with self._lock:
                while not (self._docked or self._closed):
                    self._lock.wait()
                if self._closed:
                    return
            try:
                self._serve_once()
            except Exception as exc:  # the firmware records on; the dock sees no API and says so
                self.error = f"the offload API failed: {exc}"
                log.exception("offload API failed")
                self.failed.set()
            with self._lock:  # served until undock, or could not serve: wait for the next dock
                while self._docked and not self._closed:
                    self._lock.wait()

    def _serve_once(self) -> None:
        import uvicorn

        app = self.app
        try:
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            sock = socket.create_server((self._host, self._port), family=family)
            # asyncio sets TCP_NODELAY only on sockets it creates itself; without it every answer
            # on a kept-alive connection waits ~40 ms for the dock's delayed ACK (bench/dock.py).
            # Accepted connections inherit the option from the listening socket on Linux.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            self.error = f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}"
            log.error("offload API not served", error=self.error)
            self.failed.set()
            return
        self._port = sock.getsockname()[1]
        self._url = f"http://{_url_host(self._host)}:{self._port}"
        self.error = None
        self.failed.clear()
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=GRACE_S
        )
        server = _announcing_server(uvicorn, config, self.serving)
        with self._lock:
            self._server = server
            server.should_exit = not self._docked  # undocked while binding
        self.idle.clear()
        try:
            server.run(sockets=[sock])  # closes sock when it stops
        finally:
            with self._lock:
                self._server = None
            self.serving.clear()
            self.idle.set()
            sock.close()
        log.info("offload API stopped", url=self._url)


def _announcing_server(uvicorn: Any, config: Any, started: threading.Event) -> Any:
    """A uvicorn server that sets ``started`` once it accepts connections."""

    class Server(uvicorn.Server):  # type: ignore[misc]
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                started.set()

    return Server(config)


def _url_host(host: str) -> str:
    """``host`` as a URL writes it: IPv6 in brackets, a zone's ``%`` escaped (RFC 6874)."""
    return f"[{host.replace('%', '%25')}]" if ":" in host else host
