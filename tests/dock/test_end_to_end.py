"""The running dock end to end over real HTTP on loopback: three real sim cameras docked at once.

Everything is real but the USB bus (hw SimUsbBus, pyusb over a virtual backend): the evidence
store (FastAPI + uvicorn, SQLite and a folder), each camera's firmware and offload server, the
DockAgent with its bay monitor, one worker thread per bay, and the dock's HTTP clients.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from dock.agent import Dock
from dock.bay_worker import BayReport, Outcome
from dock.config import DockConfig
from dock.ledger import ClipRow, ClipState
from dock.links import StaticLinkResolver
from dock.runner import DockAgent
from hw.ports.usb import SimUsbCamera, UsbConfig
from hw.sim.clock import SimClock
from hw.sim.usb import SimUsbBus
from tests.dock.conftest import Server, Store
from tests.dock.fleet import (
    FleetCamera,
    check_stored_once,
    dock_config,
    docked_fleet,
    install_dock,
)

CAMERAS = 3
CLIPS = 4
WAIT_S = 30.0


@pytest.fixture
def fleet(
    tmp_path: Path, agency_key: X25519PrivateKey, dock_key: Ed25519PrivateKey, store: Store
) -> Iterator[list[FleetCamera]]:
    with docked_fleet(
        tmp_path, CAMERAS, clips=CLIPS, agency_key=agency_key, dock_key=dock_key,
        store_public=store.public,
    ) as cameras:  # fmt: skip
        yield cameras


@pytest.fixture
def cfg(
    tmp_path: Path,
    live_store: Server,
    store: Store,
    fleet: list[FleetCamera],
    dock_key: Ed25519PrivateKey,
) -> DockConfig:
    cfg = dock_config(tmp_path / "dock", live_store.url, fleet)
    install_dock(cfg, dock_key, store, fleet)
    return cfg


def docked_bus(fleet: list[FleetCamera]) -> SimUsbBus:
    """All cameras in their bays before the dock starts, as after a shift."""
    cameras = tuple(SimUsbCamera(serial=c.serial, port_path=(n,)) for n, c in enumerate(fleet, 1))
    return SimUsbBus(UsbConfig(cameras=cameras))


def reports_of(inbox: queue.Queue[BayReport], count: int) -> list[BayReport]:
    found = []
    for _ in range(count):
        try:
            found.append(inbox.get(timeout=WAIT_S))
        except queue.Empty:
            raise AssertionError(f"{count} bays finished within {WAIT_S} s each") from None
    return found


def test_three_cameras_docked_at_once_end_up_stored_receipted_and_empty(
    cfg: DockConfig,
    live_store: Server,
    store: Store,
    fleet: list[FleetCamera],
    dock_key: Ed25519PrivateKey,
) -> None:
    clock = SimClock()
    changes: list[ClipRow] = []
    dock = Dock(cfg, clock, on_change=changes.append)
    inbox: queue.Queue[BayReport] = queue.Queue()
    agent = DockAgent(dock, docked_bus(fleet), StaticLinkResolver(cfg.links), clock,
                      on_bay_done=inbox.put)  # fmt: skip
    agent.start()
    try:
        reports = reports_of(inbox, CAMERAS)
    finally:
        agent.stop()
    try:
        assert {(r.device_id, r.outcome) for r in reports} == {
            (c.device_id, Outcome.DONE) for c in fleet
        }
        assert len({r.bay for r in reports}) == CAMERAS  # one worker per bay
        check_stored_once(live_store.url, store, fleet)
        for camera in fleet:
            assert camera.listed(dock_key) == []
            assert camera.clips_on_card() == []
        rows = dock.ledger.rows()
        assert len(rows) == CAMERAS * CLIPS
        assert {row.state for row in rows} == {ClipState.DONE}
        assert [p for p in cfg.spool_path.rglob("*") if p.is_file()] == []
        # the bays worked at the same time: each camera's first step before any other's last
        order = [row.device_id for row in changes]
        for one in fleet:
            for other in fleet:
                first = order.index(one.device_id)
                last = len(order) - 1 - order[::-1].index(other.device_id)
                assert first < last, f"{one.device_id} started after {other.device_id} finished"
        # every clip went through every state, once each, in order
        for camera in fleet:
            for clip_id in camera.manifests:
                seen = [r.state for r in changes if r.clip_id == clip_id]
                assert seen == list(ClipState)[1:7], clip_id
    finally:
        dock.close()
