"""``bwc hw check``: open every port with its configured adapter and make it do one real thing.

Each check returns a one-line detail on success and raises on failure; :func:`check_all` turns
every outcome into a row, so one broken port never hides the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import structlog

from hw.config import HwConfig
from hw.errors import DeviceError, HwError
from hw.ports.battery import open_battery
from hw.ports.ble import (
    Advertisement,
    BleAdvertiserConfig,
    BleScannerConfig,
    open_ble_advertiser,
    open_ble_scanner,
)
from hw.ports.camera import open_camera
from hw.ports.clock import Clock, open_clock
from hw.ports.gnss import open_gnss
from hw.ports.io import open_io
from hw.ports.microphone import open_microphone
from hw.ports.storage import open_storage, write_durable
from hw.ports.usb import open_usb
from hw.sim.ble import SimRadio

log = structlog.get_logger(__name__)

#: company id for the probe advertisement (0xFFFF is reserved for tests by the Bluetooth SIG)
PROBE_COMPANY_ID = 0xFFFF
PROBE_PAYLOAD = b"bwc-hw-check"
#: how many packets the camera may take to deliver its first key frame
MAX_PACKETS_TO_KEYFRAME = 300


@dataclass(frozen=True, slots=True)
class PortCheck:
    port: str
    adapter: str
    ok: bool
    detail: str


def check_all(cfg: HwConfig, *, ble_timeout_s: float = 3.0) -> list[PortCheck]:
    clock = open_clock(cfg.clock)
    radio = SimRadio(cfg.sim_radio)
    checks: list[tuple[str, str, Callable[[], str]]] = [
        ("clock", cfg.clock.adapter, lambda: check_clock(clock)),
        ("camera", cfg.camera.adapter, lambda: check_camera(cfg, clock)),
        ("microphone", cfg.microphone.adapter, lambda: check_microphone(cfg, clock)),
        ("ble_scanner", cfg.ble_scanner.adapter,
         lambda: check_ble_scanner(cfg.ble_scanner, radio, ble_timeout_s)),
        ("ble_advertiser", cfg.ble_advertiser.adapter,
         lambda: check_ble_advertiser(cfg.ble_advertiser, radio, ble_timeout_s)),
        ("usb", cfg.usb.adapter, lambda: check_usb(cfg)),
        ("io", cfg.io.adapter, lambda: check_io(cfg)),
        ("battery", cfg.battery.adapter, lambda: check_battery(cfg, clock)),
        ("gnss", cfg.gnss.adapter, lambda: check_gnss(cfg, clock)),
        ("storage", cfg.storage.adapter, lambda: check_storage(cfg)),
    ]  # fmt: skip
    return [_run(port, adapter, check) for port, adapter, check in checks]


def _run(port: str, adapter: str, check: Callable[[], str]) -> PortCheck:
    try:
        return PortCheck(port, adapter, True, check())
    except HwError as exc:
        return PortCheck(port, adapter, False, str(exc))
    except Exception as exc:  # a diagnostic reports every failure as a row, bugs included
        log.debug("port check crashed", port=port, exc_info=True)
        return PortCheck(port, adapter, False, f"{type(exc).__name__}: {exc}")


def check_clock(clock: Clock) -> str:
    before = clock.monotonic_ns()
    clock.sleep(0.001)
    if clock.monotonic_ns() <= before:
        raise DeviceError("monotonic clock did not advance")
    wall = dt.datetime.fromtimestamp(clock.wall_ns() / 1e9, tz=dt.UTC)
    return f"wall clock {wall.isoformat(timespec='seconds')}"


def check_camera(cfg: HwConfig, clock: Clock) -> str:
    camera = open_camera(cfg.camera, clock)
    with _opened(camera.open, camera.close):
        info = camera.info
        for count in range(1, MAX_PACKETS_TO_KEYFRAME + 1):
            packet = camera.read()
            if packet.keyframe:
                return (
                    f"{info.width}x{info.height}@{info.fps} {info.codec.upper()}: "
                    f"key frame of {len(packet.data)} bytes after {count} packet(s)"
                )
    raise DeviceError(f"camera gave no key frame in {MAX_PACKETS_TO_KEYFRAME} packets")


def check_microphone(cfg: HwConfig, clock: Clock) -> str:
    mic = open_microphone(cfg.microphone, clock)
    with _opened(mic.open, mic.close):
        chunk = mic.read()
    layout = "mono" if chunk.channels == 1 else f"{chunk.channels} channels"
    return f"{chunk.sample_rate} Hz {layout}: chunk of {chunk.samples} samples"


def check_ble_scanner(cfg: BleScannerConfig, radio: SimRadio, timeout_s: float) -> str:
    """In sim a probe advertiser on the same radio must be heard; on hardware scanning must run."""

    async def scan() -> str:
        heard = asyncio.Event()
        count = 0

        def on_advertisement(device: object, data: object) -> None:
            nonlocal count
            count += 1
            heard.set()

        scanner = open_ble_scanner(cfg, radio)
        probe = open_ble_advertiser(BleAdvertiserConfig(position=cfg.position), radio)
        await scanner.start(on_advertisement)
        try:
            if cfg.adapter == "sim":
                await probe.start(Advertisement({PROBE_COMPANY_ID: PROBE_PAYLOAD}))
                try:
                    await asyncio.wait_for(heard.wait(), timeout_s)
                except TimeoutError:
                    raise DeviceError(f"heard no advertisement in {timeout_s:g} s") from None
                finally:
                    await probe.stop()
                return "heard the probe advertisement"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.wait(), timeout_s)
            return f"scanning: {count} advertisement(s) in {timeout_s:g} s"
        finally:
            await scanner.stop()

    return asyncio.run(scan())


def check_ble_advertiser(cfg: BleAdvertiserConfig, radio: SimRadio, timeout_s: float) -> str:
    async def advertise() -> str:
        advertiser = open_ble_advertiser(cfg, radio)
        await advertiser.start(Advertisement({PROBE_COMPANY_ID: PROBE_PAYLOAD}))
        address = advertiser.address
        await advertiser.stop()
        return f"advertised as {address or 'a controller-chosen address'}"

    return asyncio.run(asyncio.wait_for(advertise(), timeout_s))


def check_usb(cfg: HwConfig) -> str:
    bus = open_usb(cfg.usb)
    with _opened(lambda: None, bus.close):
        devices = bus.devices()
    if not devices:
        return f"bus enumerated; no camera ({cfg.usb.vendor_id:04x}:{cfg.usb.product_id:04x})"
    listed = ", ".join(f"{d.serial} in bay {d.bay}" for d in devices)
    return f"{len(devices)} camera(s): {listed}"


def check_io(cfg: HwConfig) -> str:
    io = open_io(cfg.io)
    with _opened(lambda: None, io.close):
        io.red_led.off()
        io.green_led.on()
        lit = io.green_led.is_lit
        io.green_led.off()
        pressed = io.record_button.is_pressed
    if not lit:
        raise DeviceError("green LED did not light")
    return f"LEDs switch; record button {'pressed' if pressed else 'released'}"


def check_battery(cfg: HwConfig, clock: Clock) -> str:
    gauge = open_battery(cfg.battery, clock)
    with _opened(lambda: None, gauge.close):
        reading = gauge.read()
    state = "charging" if reading.charging else "discharging"
    return f"{reading.percent:.0f}% at {reading.voltage:.2f} V, {state}"


def check_gnss(cfg: HwConfig, clock: Clock) -> str:
    gnss = open_gnss(cfg.gnss, clock)
    with _opened(gnss.open, gnss.close):
        fix = gnss.fix()
    if fix is None:
        return "receiver answers; no fix yet"
    return f"fix {fix.latitude:.5f}, {fix.longitude:.5f}"


def check_storage(cfg: HwConfig) -> str:
    storage = open_storage(cfg.storage)
    probe = ".hw-check"
    write_durable(storage, probe, PROBE_PAYLOAD)
    try:
        if storage.read_bytes(probe) != PROBE_PAYLOAD:
            raise DeviceError(f"storage at {storage.root} read back different bytes")
    finally:
        storage.remove(probe)
        storage.fsync_dir("")
    free_gib = storage.free_bytes() / 1024**3
    return f"{storage.root}: durable write ok, {free_gib:.1f} GiB free"


@contextlib.contextmanager
def _opened(open_: Callable[[], None], close: Callable[[], None]) -> Iterator[None]:
    open_()
    try:
        yield
    finally:
        close()
