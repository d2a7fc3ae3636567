"""The dock agent's bays: a worker per docked camera, stopped when it leaves, resumed when back.

Real sim cameras (firmware and offload server), a live evidence store, the sim USB bus; the
agent runs on a real-time clock with short backoff.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from dock.agent import Dock
from dock.bay_worker import BayReport, Outcome
from dock.bays import BayEvent, BayState
from dock.config import DockConfig
from dock.ingest_table import ItemState
from dock.ledger import ClipRow, ClipState
from dock.links import StaticLinkResolver
from dock.runner import DockAgent
from hw.ports.usb import UsbConfig
from hw.sim.clock import SimClock
from hw.sim.usb import SimUsbBus
from tests.dock.conftest import FleetFactory, Server, Store, seal
from tests.dock.fleet import FleetCamera, check_stored_once, stored_clips

CLIPS = 3
WAIT_S = 30.0


@pytest.fixture
def fleet(make_fleet: FleetFactory) -> list[FleetCamera]:
    return make_fleet(1, clips=CLIPS)


@pytest.fixture
def camera(fleet: list[FleetCamera]) -> FleetCamera:
    return fleet[0]


@pytest.fixture
def bus() -> SimUsbBus:
    return SimUsbBus(UsbConfig())


class Running:
    """A started agent, what it reported, and every clip change it made."""

    def __init__(self, cfg: DockConfig, bus: SimUsbBus) -> None:
        clock = SimClock()
        self.hold_at: ClipState | None = None  #: the first change to this state waits for
        self.held, self.release = threading.Event(), threading.Event()  #: release, in the bay
        self.changes: queue.Queue[ClipRow] = queue.Queue()
        self.reports: queue.Queue[BayReport] = queue.Queue()
        self.bays: queue.Queue[BayEvent] = queue.Queue()
        self.dock = Dock(cfg, clock, on_change=self._changed)
        self.agent = DockAgent(self.dock, bus, StaticLinkResolver(cfg.links), clock,
                               on_bay_done=self.reports.put)  # fmt: skip
        self.agent.monitor.subscribe(self.bays.put)
        self.agent.start()

    def _changed(self, row: ClipRow) -> None:
        self.changes.put(row)
        if row.state is self.hold_at and not self.held.is_set():
            self.held.set()
            assert self.release.wait(WAIT_S), "the test releases the bay"

    def report(self) -> BayReport:
        try:
            return self.reports.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"no bay finished within {WAIT_S} s") from None

    def bay_event(self, state: BayState) -> BayEvent:
        while True:
            try:
                event = self.bays.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"no bay became {state} within {WAIT_S} s") from None
            if event.kind is state:
                return event

    def change(self, state: ClipState) -> ClipRow:
        while True:
            try:
                row = self.changes.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"no clip became {state} within {WAIT_S} s") from None
            if row.state is state:
                return row

    def stop(self) -> None:
        self.agent.stop()
        self.dock.close()


@pytest.fixture
def running(cfg: DockConfig, bus: SimUsbBus) -> Iterator[Running]:
    agent = Running(cfg, bus)
    yield agent
    agent.stop()


def test_a_camera_unplugged_during_its_offload_stops_its_bay_and_finishes_when_back(
    running: Running,
    bus: SimUsbBus,
    camera: FleetCamera,
    live_store: Server,
    store: Store,
    dock_key: Ed25519PrivateKey,
) -> None:
    running.hold_at = ClipState.MANIFEST_VERIFIED  # the bay waits there until released
    bus.plug(camera.serial, port_path=(1,))
    first = running.change(ClipState.MANIFEST_VERIFIED)
    assert running.held.wait(WAIT_S)
    camera.undock()
    bus.unplug(camera.serial)
    running.release.set()  # its next request finds no camera; then the bay sees it left

    left = running.report()

    assert left.outcome is Outcome.LEFT
    assert camera.clips_on_card() == sorted(camera.manifests)  # nothing erased
    row = running.dock.ledger.get(camera.device_id, first.clip_id)
    assert ClipState.MANIFEST_VERIFIED.rank <= row.state.rank < ClipState.ERASED.rank

    camera.dock()
    bus.plug(camera.serial, port_path=(2,))
    back = running.report()

    assert back.outcome is Outcome.DONE
    assert {r.state for r in back.rows} == {ClipState.DONE}
    check_stored_once(live_store.url, store, [camera])
    assert camera.listed(dock_key) == []


def test_an_unenrolled_camera_is_reported_in_its_bay_and_never_offloaded(
    running: Running, bus: SimUsbBus
) -> None:
    bus.plug("BWC1-999999", port_path=(3,))

    event = running.bay_event(BayState.UNKNOWN)

    assert "not enrolled" in (event.bay.reason or "")
    assert running.agent.reports == []
    assert running.dock.ledger.rows() == []


def test_a_clip_dropped_in_the_ingest_folder_is_stored_while_the_dock_runs(
    cfg: DockConfig,
    tmp_path: Path,
    bus: SimUsbBus,
    camera: FleetCamera,
    agency_key: X25519PrivateKey,
    live_store: Server,
    store: Store,
) -> None:
    ingest_dir = tmp_path / "ingest"
    clock = SimClock()
    # a folder moved in from outside the watched tree is a create event, not a move:
    # the rescan takes it up once it is unchanged over two scans
    settings = {"ingest_dir": ingest_dir, "ingest_rescan_s": 0.05}
    dock = Dock(cfg.model_copy(update=settings), clock)
    agent = DockAgent(dock, bus, StaticLinkResolver(cfg.links), clock)
    assert agent.ingest is not None
    items = agent.ingest.updates()
    agent.start()
    try:
        clip = seal(camera.device_key, agency_key, device_id=camera.device_id)
        clip.write_to(tmp_path / clip.clip_id)
        (tmp_path / clip.clip_id).rename(ingest_dir / clip.clip_id)  # dropped in one move
        while (item := items.get(timeout=WAIT_S)).state is not ItemState.DONE:
            assert item.state in (ItemState.WAITING, ItemState.UPLOADING, ItemState.STORED), item
    finally:
        agent.stop()
        dock.close()

    assert [s.clip_id for s in stored_clips(live_store.url, store)] == [clip.clip_id]
    assert (ingest_dir / "done" / clip.clip_id).is_dir()
