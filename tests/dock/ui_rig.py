"""A running dock with its armorer's API on a loopback port, for the API and CLI tests.

Everything is what ``bwc dock run`` builds (dock/ui/server.py included) but the USB bus (hw
SimUsbBus): a DockAgent over real sim cameras (tests/dock/fleet.py), its signed audit log, the
armorer token file written on first run, and the app served by uvicorn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dock.agent import Dock
from dock.armorers import Armorers, ensure_armorers, first_token
from dock.audit_log import DockAuditLog
from dock.config import DockConfig
from dock.links import StaticLinkResolver
from dock.runner import DockAgent
from dock.ui.app import create_ui_app
from dock.ui.server import UiServer
from hw.ports.usb import SimUsbCamera, UsbConfig
from hw.sim.clock import SimClock
from hw.sim.usb import SimUsbBus
from tests.device.offload_rig import PREFIX, open_session
from tests.dock.fleet import FleetCamera

WAIT_S = 30.0


class Pluggable(Protocol):
    """A camera as the USB bus sees it (a FleetCamera, or a camera process of its own)."""

    @property
    def serial(self) -> str: ...


def bus_with(cameras: Sequence[Pluggable]) -> SimUsbBus:
    """Every camera in a bay of its own (bay "1-n"), before the dock starts."""
    plugged = tuple(SimUsbCamera(serial=c.serial, port_path=(n,)) for n, c in enumerate(cameras, 1))
    return SimUsbBus(UsbConfig(cameras=plugged))


@dataclass
class RunningDock:
    url: str
    cfg: DockConfig
    agent: DockAgent
    token: str  #: the development armorer token written on first run

    def get(self, path: str, *, token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(self.url + path, headers=headers, timeout=WAIT_S)

    def post(
        self, path: str, body: dict[str, Any], *, token: str | None = "armorer"
    ) -> requests.Response:
        token = self.token if token == "armorer" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(self.url + path, json=body, headers=headers, timeout=WAIT_S)

    def bay(self, serial: str) -> dict[str, Any] | None:
        answer = self.get("/api/v1/bays")
        assert answer.status_code == 200, answer.text
        return next((b for b in answer.json()["bays"] if b["serial"] == serial), None)

    def wait_bay(
        self, serial: str, until: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        """Poll ``GET /api/v1/bays`` until the camera's bay satisfies ``until`` (or fail)."""
        deadline = time.monotonic() + WAIT_S
        seen = None
        while time.monotonic() < deadline:
            seen = self.bay(serial)
            if seen is not None and until(seen):
                return seen
            time.sleep(0.05)  # polling with a deadline
        raise AssertionError(f"{what} within {WAIT_S} s; last seen: {seen}")


def wait_done(dock: RunningDock, serial: str) -> dict[str, Any]:
    return dock.wait_bay(serial, lambda b: b["state"] == "done", f"bay of {serial} done")


@contextmanager
def running_dock(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, bus: SimUsbBus
) -> Iterator[RunningDock]:
    clock = SimClock()
    dock = Dock(cfg, clock)
    audit = DockAuditLog(cfg.audit_path, dock_key, clock)
    agent = DockAgent(dock, bus, StaticLinkResolver(cfg.links), clock, audit=audit, name="dock-t")
    ensure_armorers(cfg.armorers_path)
    app = create_ui_app(agent, armorers=Armorers.load(cfg.armorers_path), audit=audit)
    server = UiServer(app, "127.0.0.1", 0)
    server.start()
    agent.start()
    try:
        yield RunningDock(server.url, cfg, agent, first_token(cfg.armorers_path))
    finally:
        server.stop()
        agent.stop()
        audit.close()
        dock.close()
        bus.close()


def camera_status(camera: FleetCamera, dock_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The camera's own ``GET /status``, over a session of the test's own."""
    token, _ = open_session(camera.url, dock_key)
    answer = requests.get(
        f"{camera.url}{PREFIX}/status", headers={"Authorization": f"Bearer {token}"}, timeout=WAIT_S
    )
    assert answer.status_code == 200, answer.text
    status: dict[str, Any] = answer.json()
    return status
