"""The running dock end to end over real HTTP on loopback: three real sim cameras docked at once.

Everything is real but the USB bus (hw SimUsbBus, pyusb over a virtual backend): the evidence
store (FastAPI + uvicorn, SQLite and a folder), each camera's firmware and offload server, the
DockAgent with its bay monitor, one worker thread per bay, and the dock's HTTP clients.
"""

from __future__ import annotations

import queue

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dock.agent import Dock
from dock.bay_worker import BayReport, Outcome
from dock.config import DockConfig
from dock.ledger import ClipRow, ClipState
from dock.links import StaticLinkResolver
from dock.runner import DockAgent
from hw.sim.clock import SimClock
from tests.dock.conftest import FleetFactory, Server, Store
from tests.dock.fleet import FleetCamera, check_stored_once
from tests.dock.ui_rig import bus_with

CAMERAS = 3
CLIPS = 4
WAIT_S = 30.0


@pytest.fixture
def fleet(make_fleet: FleetFactory) -> list[FleetCamera]:
    return make_fleet(CAMERAS, clips=CLIPS)


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
    agent = DockAgent(dock, bus_with(fleet), StaticLinkResolver(cfg.links), clock,
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
