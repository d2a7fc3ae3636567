"""The simulated shift, end to end: store, two officers' cameras, two incidents, the dock.

1. Keys for the agency, the evidence store, the dock and both cameras; the store starts on the
   embedded default (SQLite and a folder) with both cameras enrolled.
2. Officer A's and officer B's cameras boot and buffer. B stands 20 m from A: too far for A's
   holster sensor (its RSSI floor), near enough for A's camera beacon.
3. Incident one: A draws the sidearm; the holster sensor's authenticated advertisement starts A's
   camera, whose "recording" beacon starts B's. A adds a marker (single press); both officers
   stop (3 s hold).
4. B leaves for another call, out of radio range. Incident two: A double-presses; only A records;
   A stops.
5. Both cameras go into the dock: the dock agent offloads, verifies, uploads, gets receipts and
   erases. Every stored clip is then measured (bwc.demo.measure).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bwc.demo.cameras import Patrol, ShiftCamera, Video, boot_camera
from bwc.demo.dock import dock_config, install_token, offload
from bwc.demo.errors import ShiftError
from bwc.demo.measure import StoreReader, measure_clips
from bwc.demo.report import ShiftSummary
from bwc.demo.sensor import TriggerSensor
from bwc.demo.site import Officer, make_site
from bwc.demo.store import StoreServer
from custody.trigger import EventType
from custody.trigger_registry import TriggerRegistry, TriggerSource
from device.events import State
from dock.bay_worker import BayReport
from dock.ledger import ClipRow
from hw.ports.ble import SimRadioConfig
from hw.sim.ble import SimRadio

OFFICERS = (
    Officer("officer-4127", "BWC1-000101", "cam-0101", x_m=0.0),
    Officer("officer-5310", "BWC1-000102", "cam-0102", x_m=20.0),
)
HOLSTER_X_M = 0.5  #: on officer A's belt
ELSEWHERE_X_M = 500.0  #: where officer B goes after incident one: beyond the radio's range
HOLD_S = 3.2  #: a little over the 3 s a stop needs


class Narrator(Protocol):
    """Told what the shift is doing, for the progress display."""

    def step(self, text: str) -> None: ...

    def note(self, text: str) -> None: ...


#: how many times the shift calls ``Narrator.step``, for a progress bar
STEPS = 9


def run_shift(out: Path, *, pre_event_s: float, video: Video, say: Narrator) -> ShiftSummary:
    started = time.monotonic()
    holster = TriggerSource(_id("holster-4127"), "holster-4127", "holster", os.urandom(32), -80)
    peers = {o.serial: TriggerSource(_id(o.device_id), o.device_id, "peer", os.urandom(32), -90)
             for o in OFFICERS}  # fmt: skip
    agency_secret = os.urandom(32)

    def registry_for(officer: Officer) -> TriggerRegistry:
        me = peers[officer.serial].source_id
        return TriggerRegistry(agency_secret, [holster, *peers.values()], self_source_id=me)

    say.step("generating keys for the agency, the store, the dock and two cameras")
    site = make_site(out, OFFICERS, registry_for)
    say.step("starting the evidence store (SQLite and a folder, on loopback)")
    store = StoreServer(site)
    store.start()
    say.note(f"evidence store at {store.url}, data in {site.store_dir}")
    radio = SimRadio(SimRadioConfig(range_m=30.0))
    cameras: list[ShiftCamera] = []
    try:
        say.step("booting two cameras assigned to two officers")
        for folder in site.cameras:
            cameras.append(boot_camera(folder, radio, pre_event_s=pre_event_s, video=video))
        a, b = cameras
        patrol = Patrol(cameras, video.fps)
        say.step(f"buffering (pre-event set to {pre_event_s:g} s)")
        patrol.run(pre_event_s + 3)
        _incident_one(
            patrol, a, b, TriggerSensor(holster, agency_secret, radio, x_m=HOLSTER_X_M), say
        )
        _incident_two(patrol, a, b, pre_event_s, say)
        say.step("docking both cameras")
        links = {camera.serial: camera.dock() for camera in cameras}
        cfg = dock_config(site, store.url, links)
        install_token(cfg, store.token("dock"))
        say.step("dock: offload, verify, upload, receipt, erase")
        offload(cfg, list(links), on_clip=_clip_line(say), on_bay=_bay_line(say))
        say.step("verifying the stored clips and exporting playable MP4s")
        reader = StoreReader(store.url, store.token("records"))
        try:
            clips = measure_clips(site, reader, cameras)
        finally:
            reader.close()
    finally:
        for camera in cameras:
            camera.close()
        store.close()
    return ShiftSummary(out, pre_event_s, clips, time.monotonic() - started, 1 / video.fps)


def _incident_one(
    patrol: Patrol, a: ShiftCamera, b: ShiftCamera, holster: TriggerSensor, say: Narrator
) -> None:
    say.step("incident one: officer A draws; the holster sensor triggers A, A's beacon starts B")
    try:
        holster.advertise(EventType.HOLSTER, 1)
        patrol.run_until(lambda: a.state is State.RECORDING, "officer A's camera starts")
        patrol.run_until(lambda: b.state is State.RECORDING, "officer B's camera starts")
    finally:
        holster.close()  # the sidearm is out: the sensor falls silent
    patrol.run(4)
    say.note("officer A marks a moment (single press)")
    a.press()
    patrol.run(4)
    say.note("both officers stop recording (3 s hold)")
    patrol.hold([a, b], HOLD_S)
    patrol.run(1)
    _expect(a, State.BUFFERING, "after the hold")
    _expect(b, State.BUFFERING, "after the hold")


def _incident_two(
    patrol: Patrol, a: ShiftCamera, b: ShiftCamera, pre_event_s: float, say: Narrator
) -> None:
    say.step("incident two: officer B has left; officer A double-presses")
    b.move(ELSEWHERE_X_M)
    patrol.run(pre_event_s + 2)
    a.press(2)
    patrol.run_until(lambda: a.state is State.RECORDING, "officer A's camera starts")
    patrol.run(5)
    patrol.hold([a], HOLD_S)
    patrol.run(1)
    _expect(a, State.BUFFERING, "after the second hold")
    _expect(b, State.BUFFERING, "out of range of incident two")


def _expect(camera: ShiftCamera, state: State, when: str) -> None:
    if camera.state is not state:
        raise ShiftError(
            f"camera {camera.serial} is {camera.state.value} {when}, not {state.value}"
        )


def _id(name: str) -> int:
    """A u32 source id derived from a name, as the development registry derives them."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def _clip_line(say: Narrator) -> Callable[[ClipRow], None]:
    def line(row: ClipRow) -> None:
        say.note(f"{row.device_id} clip {row.clip_id[:8]}: {row.state.value}")

    return line


def _bay_line(say: Narrator) -> Callable[[BayReport], None]:
    def line(report: BayReport) -> None:
        say.note(f"bay {report.bay}: {report.serial} {report.outcome.value}")

    return line
