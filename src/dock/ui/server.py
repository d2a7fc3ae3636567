"""The local API served by uvicorn on a thread of the dock process, on ``ui_host``:``ui_port``.

The socket is bound before the server starts, so a port already taken is one clear error at
start-up, and port 0 gives a free port whose URL :attr:`UiServer.url` reports.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from dock.errors import DockSetupError

START_TIMEOUT_S = 10.0


class UiServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_STREAM)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
        except OSError as exc:
            raise DockSetupError(
                f"the dock's web page cannot listen on {host}:{port} ({exc.strerror or exc}): "
                "set [dock] ui_host and ui_port (0 picks a free port)"
            ) from exc
        bound = self._sock.getsockname()[1]
        self.url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
        # The client address is the TCP peer's, or X-Forwarded-For's when the peer is a proxy
        # on this machine (loopback): a remote client behind a local reverse proxy is then still
        # remote, and a remote client cannot claim to be local.
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False,
            proxy_headers=True, forwarded_allow_ips="127.0.0.1,::1",
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="dock-ui", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        pause = threading.Event()  # never set: a wait with a timeout, between two looks
        while not self._server.started:  # uvicorn has no start event: poll with a deadline
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise DockSetupError(
                    f"the dock's web page did not start at {self.url}: see the log above"
                )
            pause.wait(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(START_TIMEOUT_S)
        self._sock.close()
