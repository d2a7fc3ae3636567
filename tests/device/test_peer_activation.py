"""Auto-activation on the sim radio: a holster trigger starts the officer's camera, whose beacon
starts a partner's camera in range, but not a third camera out of range."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.trigger import COMPANY_ID, EventType
from custody.trigger_registry import TriggerRegistry, TriggerSource
from device.ble_link import BleLink
from device.config import DeviceConfig
from device.events import State
from device.triggers import CounterStore, TriggerEngine
from hw.ports.ble import Advertisement, SimRadioConfig
from hw.sim.ble import SimBleAdvertiser, SimBleScanner, SimRadio
from tests.device.firmware_rig import Camera, build_camera
from tests.device.trigger_helpers import AGENCY_SECRET, HOLSTER, payload

# B stands 20 m from A: too far to trust A's holster (its RSSI floor is -80 dBm), near enough for
# A's beacon; C is beyond the radio's 30 m range.
CAMERAS = {  # name -> (source, x position in metres)
    "A": (TriggerSource(0x0C000001, "cam-A", "peer", bytes([11]) * 32, -95), 0.0),
    "B": (TriggerSource(0x0C000002, "cam-B", "peer", bytes([12]) * 32, -95), 20.0),
    "C": (TriggerSource(0x0C000003, "cam-C", "peer", bytes([13]) * 32, -95), 120.0),
}


def registry_for(name: str) -> TriggerRegistry:
    sources = [HOLSTER, *(source for source, _ in CAMERAS.values())]
    return TriggerRegistry(AGENCY_SECRET, sources, self_source_id=CAMERAS[name][0].source_id)


def run_until(
    cameras: list[Camera], done: Callable[[], bool], what: str, timeout_s: float = 20
) -> None:
    """Step every camera a frame at a time until ``done``; the radio delivers in real time."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout_s} s")
        for camera in cameras:
            camera.run(0.1)


@pytest.fixture
def radio() -> SimRadio:
    return SimRadio(SimRadioConfig(range_m=30.0))


@pytest.fixture
def cameras(
    tmp_path: Path, radio: SimRadio, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> Iterator[dict[str, Camera]]:
    built: dict[str, Camera] = {}
    for name, (source, x) in CAMERAS.items():
        config = DeviceConfig(device_id=source.name, serial=source.name, pre_event_s=2)
        camera = build_camera(tmp_path / name, device_key, agency_key, config, audio=False)
        registry = registry_for(name)
        counters = CounterStore(camera.storage)
        engine = TriggerEngine(registry, counters, camera.clock, sink=camera.firmware.submit)
        link = BleLink(
            SimBleScanner(radio, x_m=x), SimBleAdvertiser(radio, x_m=x), engine, registry,
            counters, beacon_s=30,
        )  # fmt: skip
        camera.firmware.attach_ble(link)
        camera.firmware.boot()
        built[name] = camera
    yield built
    for camera in built.values():
        camera.firmware.close()
        camera.io.close()


def holster_drawn(radio: SimRadio, x_m: float) -> SimBleAdvertiser:
    """The officer's holster sensor, on the officer's belt, announces a draw."""
    sensor = SimBleAdvertiser(radio, x_m=x_m)
    data = payload(HOLSTER, counter=1, event_type=EventType.HOLSTER)
    asyncio.run(sensor.start(Advertisement({COMPANY_ID: data}, interval_ms=50)))
    return sensor


def test_holster_starts_the_officer_and_the_partner_but_not_a_camera_out_of_range(
    cameras: dict[str, Camera], radio: SimRadio
) -> None:
    a, b, c = cameras["A"], cameras["B"], cameras["C"]
    all_three = [a, b, c]
    for camera in all_three:
        camera.run(3)
    sensor = holster_drawn(radio, x_m=0.5)
    try:
        run_until(all_three, lambda: b.firmware.controller.state is State.RECORDING,
                  "the partner's camera records")  # fmt: skip
        assert a.firmware.controller.state is State.RECORDING
        # C is far beyond the radio's range: give every beacon time to reach it, and it must not
        b_link = b.firmware.ble
        assert b_link is not None
        run_until(all_three, lambda: len(b_link.announced) == 1, "the partner relays the beacon")
        for camera in all_three:
            camera.run(2)
        assert c.firmware.controller.state is State.BUFFERING
    finally:
        asyncio.run(sensor.stop())
    a_clip = a.firmware.recorder
    b_clip = b.firmware.recorder
    assert a_clip is not None and b_clip is not None
    assert a_clip.writer.header.info.triggers[0]["kind"] == "holster"
    b_trigger = b_clip.writer.header.info.triggers[0]
    assert b_trigger["kind"] == "peer" and b_trigger["source_id"] == "cam-A"
    assert b_clip.pre_event_ns >= 2 * 10**9


def test_a_stopped_camera_is_not_restarted_by_its_partners_relay(
    cameras: dict[str, Camera], radio: SimRadio
) -> None:
    a, b = cameras["A"], cameras["B"]
    for camera in (a, b):
        camera.run(3)
    sensor = holster_drawn(radio, x_m=0.5)
    try:
        run_until([a, b], lambda: b.firmware.controller.state is State.RECORDING,
                  "the partner's camera records")  # fmt: skip
    finally:
        asyncio.run(sensor.stop())
    a.hold_record()  # the officer stops; B's relayed beacon for the same incident is still on
    for _ in range(20):
        a.run(0.5)
        b.run(0.5)
    assert a.firmware.controller.state is State.BUFFERING
    assert a.firmware.ble is not None
    assert a.firmware.ble.engine.rejected["same_incident"] >= 1
