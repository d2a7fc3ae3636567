"""The trigger benchmark's camera: whole firmware on sim hardware and the sim radio, in a thread.

The camera hears one registered holster and is enrolled as a peer (so every start also raises its
own recording beacon, as in use). Frames are small (160x120) so a frame costs about a millisecond.
Two stamps are taken with ``time.perf_counter_ns`` in the thread where each thing happens:

- ``queued``: an input entered the firmware's queue (the trigger engine's sink, or a press);
- ``opened``: the firmware told its BLE link that a clip started, which it does right after
  ``Recorder.start`` returned (the controller is recording, the clip holds the ring's snapshot).

Polling ``firmware.recorder`` from another thread would add that thread's wait for the GIL (up to
the 5 ms switch interval) to every figure; stamping where it happens does not.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.device import BenchError
from bench.stream import START_WALL_NS
from custody.trigger_registry import TriggerRegistry, TriggerSource
from device.ble_link import BleLink
from device.config import DeviceConfig
from device.events import Input, TriggerInput
from device.firmware import DevicePorts, Firmware
from device.recorder import DeviceKeys
from device.triggers import CounterStore, TriggerEngine
from hw.ports.battery import BatteryConfig
from hw.ports.camera import CameraConfig
from hw.ports.io import IoConfig
from hw.sim.battery import SimBattery
from hw.sim.ble import SimBleAdvertiser, SimBleScanner, SimRadio
from hw.sim.camera import SimCamera
from hw.sim.clock import SimClock
from hw.sim.io import open_sim_io
from hw.sim.storage import SimStorage

FPS = 30
PRE_EVENT_S = 1.0
#: the engine's debounce: far below the frames one start and stop take, so none is debounced
DEBOUNCE_S = 0.01
WAIT_S = 10.0


class StampingLink(BleLink):
    """The camera's own BLE link, noting when the firmware reports a clip started."""

    stamps: dict[str, int]

    def clip_started(self, trigger_input: TriggerInput | None) -> None:
        self.stamps["opened"] = time.perf_counter_ns()
        super().clip_started(trigger_input)


@dataclass
class BenchCamera:
    """The booted firmware and what the bench plays into it or reads from it."""

    firmware: Firmware
    clock: SimClock
    radio: SimRadio
    engine: TriggerEngine
    holster: TriggerSource
    agency_secret: bytes
    stamps: dict[str, int]
    submit: Callable[[Input], None]  #: the firmware's input queue, stamping ``queued``


def stamped_submit(firmware: Firmware, stamps: dict[str, int]) -> Callable[[Input], None]:
    """The firmware's input queue as the trigger engine and the buttons reach it, stamped."""

    def submit(event: Input) -> None:
        stamps["queued"] = time.perf_counter_ns()
        firmware.submit(event)

    return submit


def build_camera(card: Path, *, real_time: bool) -> tuple[BenchCamera, Callable[[], None]]:
    """The camera, not yet booted, and what closes it."""
    clock = SimClock(virtual=not real_time, start_wall_ns=START_WALL_NS)
    io = open_sim_io(IoConfig(), clock)
    battery = SimBattery(BatteryConfig(), clock)
    camera_cfg = CameraConfig(width=160, height=120, fps=FPS, keyframe_interval=FPS,
                              bitrate=200_000)  # fmt: skip
    storage = SimStorage(card)
    ports = DevicePorts(clock, SimCamera(camera_cfg, clock), io, battery, storage)
    keys = DeviceKeys(Ed25519PrivateKey.generate(), X25519PrivateKey.generate().public_key())
    config = DeviceConfig(device_id="bench-cam", serial="BWC-BENCH-0002",
                          pre_event_s=PRE_EVENT_S, trigger_debounce_s=DEBOUNCE_S)  # fmt: skip
    firmware = Firmware(config, ports, keys)
    holster = TriggerSource(0x0B000001, "holster-bench", "holster", os.urandom(32), -80)
    itself = TriggerSource(0x0C000001, "bench-cam", "peer", os.urandom(32), -90)
    agency_secret = os.urandom(32)
    registry = TriggerRegistry(agency_secret, [holster, itself], self_source_id=itself.source_id)
    counters = CounterStore(storage)
    radio = SimRadio()
    stamps: dict[str, int] = {}
    submit = stamped_submit(firmware, stamps)
    engine = TriggerEngine(registry, counters, clock, debounce_s=config.trigger_debounce_s,
                           sink=submit)  # fmt: skip
    link = StampingLink(SimBleScanner(radio), SimBleAdvertiser(radio), engine, registry,
                        counters, beacon_s=config.peer_beacon_s)  # fmt: skip
    link.stamps = stamps
    firmware.attach_ble(link)

    def close() -> None:
        firmware.close()
        io.close()
        battery.close()

    camera = BenchCamera(firmware, clock, radio, engine, holster, agency_secret, stamps, submit)
    return camera, close


class FirmwareLoop:
    """Steps the firmware in its own thread; :meth:`wait` returns when an armed probe first holds.

    The probe is checked after every frame, in the firmware's thread, and the end of that frame
    is stamped there.
    """

    def __init__(self, firmware: Firmware) -> None:
        self._firmware = firmware
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._probe: Callable[[Firmware], bool] | None = None
        self._hit = threading.Event()
        self._hit_ns = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="firmware", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT_S)

    def arm(self, probe: Callable[[Firmware], bool]) -> None:
        """Watch for ``probe`` from the end of the current frame on."""
        with self._lock:
            self._hit.clear()
            self._probe = probe

    def wait(self, what: str) -> int:
        """The ``perf_counter_ns`` at the end of the first frame after which the probe held."""
        if not self._hit.wait(WAIT_S):
            if self._error is not None:
                raise BenchError(f"the firmware loop died: {self._error!r}") from self._error
            status = self._firmware.status()
            raise BenchError(
                f"{what} did not happen within {WAIT_S:g} s (camera {status['state']}, "
                f"fault {status['fault']}, triggers {status['triggers']})"
            )
        return self._hit_ns

    def _run(self) -> None:
        firmware = self._firmware
        try:
            while firmware.running and not self._stop.is_set():
                firmware.step()
                with self._lock:
                    if self._probe is not None and self._probe(firmware):
                        self._hit_ns = time.perf_counter_ns()
                        self._probe = None
                        self._hit.set()
        except BaseException as exc:  # reported by wait(), which would otherwise time out blind
            self._error = exc
            raise


@contextmanager
def running_camera(card: Path, *, real_time: bool) -> Iterator[tuple[BenchCamera, FirmwareLoop]]:
    """A booted camera whose firmware steps in its own thread until the block ends."""
    camera, close = build_camera(card, real_time=real_time)
    loop = FirmwareLoop(camera.firmware)
    try:
        camera.firmware.boot()
        loop.start()
        yield camera, loop
    finally:
        loop.stop()
        close()
