"""A shift camera: the real firmware on sim ports, on a virtual clock, with its radio and dock link.

The ports come from the firmware's composition root (``bwc device run``): ``open_rig`` over a
configuration with every port simulated. The clock is virtual, so the camera records as fast as
the encoder runs; its BLE scanner and beacon join the one simulated radio both officers share.
The demo steps the firmware a frame at a time, and notes how much footage the pre-event ring
held just before each clip started (the snapshot the clip begins with).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bwc.commands.device_rig import open_rig
from bwc.demo.errors import ShiftError
from bwc.demo.site import REGISTRY_NAME, CameraFolder
from custody.keys import load_agency_public_key, load_signing_key
from custody.trigger_registry import TriggerRegistry
from device.ble_link import BleLink
from device.config import DeviceConfig
from device.events import DockInput, State
from device.firmware import CLIPS_ROOT, Firmware
from device.offload import OffloadServer, attach_offload
from device.recorder import DeviceKeys
from device.triggers import CounterStore, TriggerEngine
from hw.config import HwConfig
from hw.ports.camera import CameraConfig
from hw.ports.clock import ClockConfig
from hw.ports.storage import StorageConfig
from hw.sim.ble import SimBleAdvertiser, SimBleScanner, SimRadio
from hw.sim.clock import SimClock
from hw.sim.io import SimOfficerIo

DOCK_TIMEOUT_S = 10.0
TAP_S = 0.05  # how long a finger rests on the button in a press
BETWEEN_TAPS_S = 0.1


@dataclass(frozen=True)
class Video:
    """What the sim cameras record: a key frame (so a segment) a second, encoded in real time
    many times over, so a shift of about a minute of camera time runs in seconds."""

    width: int = 640
    height: int = 360
    fps: int = 15
    bitrate: int = 600_000


@dataclass
class ShiftCamera:
    folder: CameraFolder
    firmware: Firmware
    io: SimOfficerIo
    clock: SimClock
    scanner: SimBleScanner
    advertiser: SimBleAdvertiser
    offload: OffloadServer
    #: clip id -> seconds of footage the pre-event ring held at the start input
    buffered_s: dict[str, float] = field(default_factory=dict)

    @property
    def serial(self) -> str:
        return self.folder.officer.serial

    @property
    def state(self) -> State:
        return self.firmware.controller.state

    def step(self) -> None:
        """One camera frame; a clip that starts in it began with the ring as it is now."""
        held = self.firmware.ring.buffered_s
        self.firmware.step()
        recorder = self.firmware.recorder
        if recorder is not None and recorder.clip_id not in self.buffered_s:
            self.buffered_s[recorder.clip_id] = held

    def press(self, times: int = 1) -> None:
        """Press the record button ``times`` in quick succession (between two frames)."""
        button = self.io.record_button
        for n in range(times):
            self.io.press(button)
            self.clock.advance(TAP_S)
            self.io.release(button)
            if n + 1 < times:
                self.clock.advance(BETWEEN_TAPS_S)

    def move(self, x_m: float) -> None:
        """The officer walks to ``x_m``: the radio hears and reaches the camera from there."""
        self.scanner.move(x_m, 0.0)
        self.advertiser.move(x_m, 0.0)

    def dock(self) -> str:
        """Put the camera in its dock: the open clip is sealed and the offload API serves."""
        self.firmware.submit(DockInput(docked=True, at_ns=self.clock.monotonic_ns()))
        self.firmware.step()
        if not self.offload.serving.wait(DOCK_TIMEOUT_S):
            raise ShiftError(
                f"camera {self.serial}: its offload API did not start: {self.offload.error}"
            )
        url = self.offload.url
        assert url is not None  # serving
        return url

    def clips_on_card(self) -> list[str]:
        """Clip folders on the camera's card: what an erase must have removed."""
        root = self.folder.card / CLIPS_ROOT
        if not root.exists():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def close(self) -> None:
        self.offload.close()  # first: its requests append to the audit log the firmware closes
        self.firmware.close()
        self.io.close()


def boot_camera(
    folder: CameraFolder, radio: SimRadio, *, pre_event_s: float, video: Video
) -> ShiftCamera:
    """Boot the firmware of ``folder``'s camera, buffering, on the shared ``radio``."""
    officer = folder.officer
    hw = HwConfig(
        camera=CameraConfig(
            camera_id=officer.serial, width=video.width, height=video.height, fps=video.fps,
            keyframe_interval=video.fps, bitrate=video.bitrate,
        ),
        clock=ClockConfig(virtual=True),
        storage=StorageConfig(root=folder.card),
    )  # fmt: skip
    config = DeviceConfig(
        serial=officer.serial, device_id=officer.device_id, officer_id=officer.officer_id,
        pre_event_s=pre_event_s, keys_dir=folder.keys_dir, offload_port=0,
    )  # fmt: skip
    rig = open_rig(hw)
    clock, io = rig.ports.clock, rig.sim_io
    assert isinstance(clock, SimClock) and io is not None  # every port is simulated
    keys = DeviceKeys(
        load_signing_key(folder.keys_dir / "device.key.pem"),
        load_agency_public_key(folder.keys_dir / "agency.pub.pem"),
    )
    firmware = Firmware(config, rig.ports, keys)
    registry = TriggerRegistry.load(folder.keys_dir / REGISTRY_NAME)
    counters = CounterStore(rig.ports.storage)
    engine = TriggerEngine(
        registry, counters, clock, debounce_s=config.trigger_debounce_s, sink=firmware.submit
    )
    scanner = SimBleScanner(radio, x_m=officer.x_m)
    advertiser = SimBleAdvertiser(radio, x_m=officer.x_m)
    link = BleLink(scanner, advertiser, engine, registry, counters, beacon_s=config.peer_beacon_s)
    firmware.attach_ble(link)
    firmware.boot()
    offload = attach_offload(firmware, keys.identity)
    return ShiftCamera(folder, firmware, io, clock, scanner, advertiser, offload)


class Patrol:
    """Both cameras, stepped frame by frame in turn so their clocks keep together."""

    def __init__(self, cameras: list[ShiftCamera], fps: int) -> None:
        self.cameras = cameras
        self._fps = fps

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds * self._fps)):
            for camera in self.cameras:
                camera.step()

    def run_until(self, done: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
        """Step until ``done``: the radio delivers in real time, the cameras in virtual time."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise ShiftError(f"{what} within {timeout_s:g} s: it did not (run with -v)")
            self.run(1 / self._fps)

    def hold(self, cameras: list[ShiftCamera], seconds: float) -> None:
        """Officers hold their record buttons for ``seconds`` while every camera records on."""
        for camera in cameras:
            camera.io.press(camera.io.record_button)
        self.run(seconds)
        for camera in cameras:
            camera.io.release(camera.io.record_button)
