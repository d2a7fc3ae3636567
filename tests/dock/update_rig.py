"""A running DockAgent and a fake camera for the dock's update tests, shared by their modules.

The dock is the real DockAgent (bays, workers, ledger, signed audit log) on the sim USB bus; the
camera is the offload API's fake at the network edge (tests/dock/camera_server.py). A test module
takes the fixtures by name (``cfg = update_rig.cfg``), as tests/dock/test_update_flow.py does.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.keys import public_pem, write_atomic
from dock.agent import Dock
from dock.audit_log import DockAuditLog
from dock.bay_worker import BayReport
from dock.config import DockConfig
from dock.links import StaticLinkResolver
from dock.runner import DockAgent
from hw.ports.usb import UsbConfig
from hw.sim.clock import SimClock
from hw.sim.usb import SimUsbBus
from tests.device.slot_helpers import make_bundle
from tests.dock.camera_server import TestCamera
from tests.dock.fleet import FAST_RETRY

WAIT_S = 30.0
NEW = "0.2.0"


@pytest.fixture
def release_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def cfg(
    dock_cfg: DockConfig, camera: TestCamera, camera_url: str, release_key: Ed25519PrivateKey
) -> DockConfig:
    """The dock trusts the release key; the camera too, unless a test takes it away."""
    camera.release_keys = [release_key.public_key()]
    write_atomic(
        dock_cfg.release_keys_dir / "release-1.pub.pem", public_pem(release_key), mode=0o644
    )
    settings = {"cameras": {camera.serial: camera.device_id}, "links": {camera.serial: camera_url},
                "poll_s": 0.02, "retry": FAST_RETRY, "update_confirm_s": 10.0}  # fmt: skip
    return dock_cfg.model_copy(update=settings)


class RunningDock:
    """A started DockAgent with its audit log; what its bays reported, in order."""

    def __init__(self, cfg: DockConfig, dock_key: Ed25519PrivateKey, bus: SimUsbBus) -> None:
        clock = SimClock()
        self.cfg, self.bus = cfg, bus
        self.reports: queue.Queue[BayReport] = queue.Queue()
        self.dock = Dock(cfg, clock)
        self.audit = DockAuditLog(cfg.audit_path, dock_key, clock)
        self.agent = DockAgent(self.dock, bus, StaticLinkResolver(cfg.links), clock,
                               on_bay_done=self.reports.put, audit=self.audit)  # fmt: skip
        self.agent.start()

    def stage_firmware(self, bundle: Path) -> None:
        with bundle.open("rb") as stream:
            self.agent.updates.stage_firmware(stream, limit=self.cfg.max_bundle_bytes)

    def report(self) -> BayReport:
        try:
            return self.reports.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"no bay finished within {WAIT_S} s") from None

    def bay(self) -> dict[str, Any]:
        (bay,) = self.agent.status.snapshot()["bays"]
        return dict(bay)

    def wait_bay(self, until: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.agent.status.snapshot()["bays"] and until(bay := self.bay()):
                return bay
            time.sleep(0.02)  # polling with a deadline
        raise AssertionError(f"{what} within {WAIT_S} s")

    def events(self, *names: str) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in self.cfg.audit_path.read_bytes().splitlines()]
        return [r for r in records if r["event"] in names]

    def stop(self) -> None:
        self.agent.stop()
        self.audit.close()
        self.dock.close()


@pytest.fixture
def bus() -> Iterator[SimUsbBus]:
    made = SimUsbBus(UsbConfig())
    yield made
    made.close()


@pytest.fixture
def running(cfg: DockConfig, dock_key: Ed25519PrivateKey, bus: SimUsbBus) -> Iterator[RunningDock]:
    started = RunningDock(cfg, dock_key, bus)
    yield started
    started.stop()


@pytest.fixture
def bundle(tmp_path: Path, release_key: Ed25519PrivateKey) -> Path:
    return make_bundle(tmp_path, release_key, version=NEW, size=40_000)


def dock_camera(running: RunningDock, camera: TestCamera) -> BayReport:
    running.bus.plug(camera.serial, port_path=(1,))
    return running.report()
