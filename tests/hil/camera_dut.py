"""The camera under test: the real firmware on the rig's ports, stepped frame by frame by the test.

The same driver runs on both rigs. In sim the clock is virtual, so a "second" of footage costs
only the encoder's time; on the bench every ``step`` waits for the real sensor's next frame.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import MANIFEST_NAME
from custody.manifest import Manifest, parse_manifest
from custody.report import Report
from custody.trigger_registry import TriggerRegistry
from custody.verify import verify_clip_folder
from device.ble_link import BleLink
from device.config import DeviceConfig
from device.events import DockInput, State
from device.firmware import AUDIT_LOG, CLIPS_ROOT, DevicePorts, Firmware
from device.offload import OffloadServer, attach_offload
from device.recorder import DeviceKeys
from device.recovery import RecoveryReport
from device.triggers import CounterStore, TriggerEngine
from hw.ports.ble import BleAdvertiser, BleScanner
from tests.hil.drivers import Presser, press
from tests.hil.netns import CameraNetwork

WAIT_S = 20.0
HOLD_S = 3.2  # the stop gesture is a 3-second hold


@dataclass(frozen=True)
class CameraKeys:
    device: Ed25519PrivateKey
    agency: X25519PrivateKey


@dataclass(frozen=True)
class CameraRadio:
    """The camera's own BLE adapter, and the agency registry it was provisioned with."""

    scanner: BleScanner
    advertiser: BleAdvertiser
    registry: TriggerRegistry


@dataclass
class CameraUnderTest:
    firmware: Firmware
    keys: CameraKeys
    presser: Presser
    press_s: float
    link: BleLink | None = None
    offload: OffloadServer | None = None
    boot_report: RecoveryReport = field(default_factory=RecoveryReport)
    network: CameraNetwork | None = None  #: the camera's own namespace, if it has one
    released: bool = False

    @property
    def ports(self) -> DevicePorts:
        return self.firmware.ports

    @property
    def state(self) -> State:
        return self.firmware.controller.state

    @property
    def frame_s(self) -> float:
        return float(1 / self.ports.camera.info.fps)

    def run(self, seconds: float) -> None:
        """Record ``seconds`` of camera time."""
        for _ in range(max(1, round(seconds / self.frame_s))):
            self.firmware.step()

    def run_until(self, done: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> float:
        """Step frames until ``done``; returns the host seconds it took."""
        start = time.perf_counter()
        while not done():
            if time.perf_counter() - start > timeout_s:
                raise AssertionError(f"{what} within {timeout_s} s (camera is {self.state.value})")
            self.firmware.step()
        return time.perf_counter() - start

    # -- the officer ----------------------------------------------------------------------------

    def double_press(self) -> None:
        press(self.presser, self.ports.clock, 2, self.press_s)

    def hold_record(self) -> None:
        """Hold the record button while the camera keeps recording: the stop gesture."""
        self.presser.down()
        try:
            self.run(HOLD_S)
        finally:
            self.presser.up()

    # -- the dock -------------------------------------------------------------------------------

    def dock(self) -> OffloadServer:
        if self.offload is None:
            # the API's supervisor thread is born, and binds, in the camera's namespace
            with self.network.inside() if self.network is not None else nullcontext():
                self.offload = attach_offload(self.firmware, self.keys.device)
        self.firmware.submit(DockInput(docked=True, at_ns=self.ports.clock.monotonic_ns()))
        self.firmware.step()
        assert self.offload.serving.wait(WAIT_S), "the offload API serves once docked"
        return self.offload

    # -- what is on the card --------------------------------------------------------------------

    def clip_folder(self, clip_id: str) -> Path:
        return self.ports.storage.root / CLIPS_ROOT / clip_id

    def clips_on_card(self) -> list[str]:
        root = self.ports.storage.root / CLIPS_ROOT
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def manifest(self, clip_id: str) -> Manifest:
        return parse_manifest((self.clip_folder(clip_id) / MANIFEST_NAME).read_bytes())

    def verify(self, clip_id: str) -> Report:
        return verify_clip_folder(
            self.clip_folder(clip_id), self.keys.device.public_key(), self.keys.agency
        )

    def audit_events(self, event: str) -> list[dict[str, Any]]:
        lines = (self.ports.storage.root / AUDIT_LOG).read_text().splitlines()
        return [r for r in map(json.loads, lines) if r["event"] == event]

    # -- life cycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Seal what is open and release the hardware (the offload API first)."""
        if self.released:
            return
        self.released = True
        if self.offload is not None:
            self.offload.close()
        self.firmware.close()
        self.presser.close()
        self.ports.io.close()

    def lose_power(self) -> None:
        """The camera dies: hardware released, nothing sealed, nothing written."""
        self.released = True
        if self.offload is not None:
            self.offload.close()
        if self.link is not None:
            self.link.close()
        for part in (self.ports.camera, self.ports.microphone):
            if part is not None:
                part.close()
        self.presser.close()
        self.ports.io.close()
        self.firmware.running = False
        self.firmware.stopped.set()


def boot(
    ports: DevicePorts,
    config: DeviceConfig,
    keys: CameraKeys,
    presser: Presser,
    press_s: float,
    radio: CameraRadio | None,
    network: CameraNetwork | None = None,
) -> CameraUnderTest:
    """Boot the firmware (recovering what a power cut left) with its trigger engine and beacon."""
    firmware = Firmware(config, ports, DeviceKeys(keys.device, keys.agency.public_key()))
    link = None
    if radio is not None:
        counters = CounterStore(ports.storage)
        engine = TriggerEngine(
            radio.registry, counters, ports.clock,
            debounce_s=config.trigger_debounce_s, sink=firmware.submit,
        )  # fmt: skip
        link = BleLink(radio.scanner, radio.advertiser, engine, radio.registry, counters,
                       beacon_s=config.peer_beacon_s)  # fmt: skip
        firmware.attach_ble(link)
    report = firmware.boot()
    return CameraUnderTest(
        firmware, keys, presser, press_s, link, boot_report=report, network=network
    )
