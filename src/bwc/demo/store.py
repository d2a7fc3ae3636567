"""The evidence store on the embedded default (SQLite and a blob folder), served in a thread.

The same app ``bwc evidence serve`` runs (evidence.app_factory.build_app), on a free loopback
port, with the demo's agency key so that records staff can play clips back.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import uvicorn

from bwc.demo.errors import ShiftError
from bwc.demo.site import Site, enrol
from evidence.app_factory import build_app
from evidence.config import EvidenceConfig
from evidence.ingest import IngestService
from evidence.store import bootstrap

START_TIMEOUT_S = 10.0


class StoreServer:
    """A running store: its URL and the development tokens of each role."""

    def __init__(self, site: Site) -> None:
        self.cfg = EvidenceConfig(
            data_dir=site.store_dir,
            port=0,
            receipt_key=site.store.private,
            agency_key=site.agency.private,
        )
        bootstrap(self.cfg)  # tokens.json and devices/: the receipt key is the demo's
        enrol(self.cfg.devices_path, site.cameras)
        app, self._service = build_app(self.cfg)
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = _Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="store", daemon=True
        )

    @property
    def service(self) -> IngestService:
        return self._service

    def token(self, role: str) -> str:
        """The development token ``bootstrap`` wrote for ``role`` (dock, records, ...)."""
        entries: list[dict[str, Any]] = json.loads(self.cfg.tokens_path.read_text())["tokens"]
        return str(next(e["token"] for e in entries if e["role"] == role))

    def start(self) -> None:
        self._thread.start()
        if not self._server.started_event.wait(START_TIMEOUT_S):
            self.close()
            raise ShiftError(
                f"the evidence store did not start within {START_TIMEOUT_S:g} s: run the demo "
                "again with -v to see why"
            )

    def close(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(START_TIMEOUT_S)
        self._sock.close()
        self._service.metadata.close()


class _Server(uvicorn.Server):
    """uvicorn's server, with an event set once it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.started_event = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self.started_event.set()
