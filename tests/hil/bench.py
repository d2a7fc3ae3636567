"""The rig (what hardware a run uses) and the bench (one test's freshly opened parts).

``Rig`` lives for the session: the parsed rig file and what it offers. ``Bench`` opens the parts
for one test from the sim adapters or the real ones, with a card folder of the test's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.keys import public_pem
from device.config import DeviceConfig
from device.firmware import DevicePorts
from hw.errors import AdapterUnavailable
from hw.ports.battery import open_battery
from hw.ports.clock import Clock
from hw.ports.storage import Storage
from hw.ports.usb import SimUsbCamera, UsbBus, UsbConfig
from hw.sim.ble import SimBleAdvertiser, SimBleScanner, SimRadio
from hw.sim.camera import SimCamera
from hw.sim.clock import SimClock
from hw.sim.io import open_sim_io
from hw.sim.microphone import SimMicrophone
from hw.sim.storage import SimStorage
from tests.device.trigger_helpers import agency_registry
from tests.hil.air import TriggerSource
from tests.hil.camera_dut import CameraKeys, CameraRadio, CameraUnderTest, boot
from tests.hil.drivers import CommandPower, GpioPresser, Power, Presser, SimPower, SimPresser
from tests.hil.netns import NETNS, CameraNetwork
from tests.hil.rig_file import SIM_CARD_BYTES, TRIGGER_SOURCE_M, Rig

DEVICE_ID = "cam-0042"


class _NoPresser:
    """The rig has no button lines: a test that presses must be marked ``needs("buttons")``."""

    def down(self) -> None:
        raise AdapterUnavailable("the rig has no [buttons] lines: wire a presser to the button")

    up = down

    def close(self) -> None:
        """Nothing was opened."""


class Bench:
    """One test's parts; :meth:`close` releases everything it opened."""

    def __init__(self, rig: Rig, workdir: Path, run_id: str) -> None:
        self.rig = rig
        self.workdir = workdir
        self.registry = agency_registry()
        self.keys = CameraKeys(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
        self.keys_dir = workdir / "keys"
        (self.keys_dir / "docks").mkdir(parents=True)
        self._closers: list[Any] = []
        self.radio: SimRadio | None = None
        self.network: CameraNetwork | None = None
        if rig.network == NETNS:
            self.network = CameraNetwork.create()
            self._closers.append(self.network)
        self.storage: Storage
        self.clock: Clock
        if rig.kind == "sim":
            self.clock = SimClock(virtual=True)
            self.radio = SimRadio()
            self.storage = SimStorage(workdir / "card", capacity_bytes=SIM_CARD_BYTES)
        else:
            from hw.real.clock import SystemClock
            from hw.real.storage import FileStorage

            self.clock = SystemClock()
            root = rig.file.storage.root / "hil" / run_id / workdir.name
            root.mkdir(parents=True, exist_ok=True)
            self.storage = FileStorage(root)

    # -- the camera -----------------------------------------------------------------------------

    @property
    def serial(self) -> str:
        """The camera's serial number, as its USB device presents it to the dock."""
        dock = self.rig.file.dock
        return dock.serial if dock is not None else "BWC1-000042"

    def device_config(self, **settings: Any) -> DeviceConfig:
        dock = self.rig.file.dock
        base: dict[str, Any] = {
            "device_id": DEVICE_ID, "serial": self.serial, "officer_id": "officer-1187",
            "pre_event_s": 1.0, "storage_reserve_bytes": 4096, "storage_low_bytes": 0,
            "keys_dir": self.keys_dir, "offload_port": 0 if self.rig.kind == "sim" else 8080,
            "offload_host": dock.camera_host if dock is not None else "127.0.0.1",
        }  # fmt: skip
        if self.network is not None:
            base["offload_host"] = self.network.camera_ip
        if self.rig.kind != "sim" and dock is not None:
            base["offload_port"] = dock.camera_port
        return DeviceConfig(**{**base, **settings})

    def boot_camera(self, config: DeviceConfig) -> CameraUnderTest:
        ports, presser = self._open_ports()
        radio = self._camera_radio()
        f = self.rig.file
        press_s = f.buttons.press_s if f.buttons is not None else 0.05
        camera = boot(ports, config, self.keys, presser, press_s, radio, self.network)
        self._closers.append(camera)
        return camera

    def _open_ports(self) -> tuple[DevicePorts, Presser]:
        f, clock = self.rig.file, self.clock
        if self.rig.kind == "sim":
            io = open_sim_io(f.io, clock)
            mic = SimMicrophone(f.microphone, clock) if f.microphone is not None else None
            battery = open_battery(f.battery, clock)
            camera = SimCamera(f.camera, clock)
            ports = DevicePorts(clock, camera, io, battery, self.storage, microphone=mic)
            return ports, SimPresser(io)
        from hw.real.camera import Picamera2Camera
        from hw.real.io import open_gpiozero_io
        from hw.real.microphone import PyAudioMicrophone

        real_io = open_gpiozero_io(f.io, clock)
        real_mic = PyAudioMicrophone(f.microphone, clock) if f.microphone is not None else None
        real_camera = Picamera2Camera(f.camera, clock)
        ports = DevicePorts(clock, real_camera, real_io, open_battery(f.battery, clock),
                            self.storage, microphone=real_mic)  # fmt: skip
        presser: Presser = GpioPresser(f.buttons) if f.buttons is not None else _NoPresser()
        return ports, presser

    def _camera_radio(self) -> CameraRadio | None:
        ble = self.rig.file.ble
        if ble is None:
            return None
        if self.radio is not None:
            return CameraRadio(
                SimBleScanner(self.radio), SimBleAdvertiser(self.radio), self.registry
            )
        from hw.real.ble_advertiser import BluezBleAdvertiser
        from hw.real.ble_scanner import BleakBleScanner

        return CameraRadio(
            BleakBleScanner(ble.camera), BluezBleAdvertiser(ble.camera), self.registry
        )

    # -- the other parts ------------------------------------------------------------------------

    def trigger_source(self) -> TriggerSource:
        ble = self.rig.file.ble
        assert ble is not None, (
            "the rig has no trigger source: mark the test needs('trigger_source')"
        )
        if self.radio is not None:
            x = TRIGGER_SOURCE_M
            source = TriggerSource(SimBleAdvertiser(self.radio, x_m=x),
                                   SimBleScanner(self.radio, x_m=x), self.registry)  # fmt: skip
        else:
            from hw.real.ble_advertiser import BluezBleAdvertiser
            from hw.real.ble_scanner import BleakBleScanner

            source = TriggerSource(BluezBleAdvertiser(ble.trigger_source),
                                   BleakBleScanner(ble.trigger_source), self.registry)  # fmt: skip
        self._closers.append(source)
        return source

    def power(self) -> Power:
        cfg = self.rig.file.power
        assert cfg is not None, "the rig has no power switch: mark the test needs('power')"
        if isinstance(self.storage, SimStorage):
            return SimPower(self.storage)
        return CommandPower(cfg, self.storage.root, self.clock)

    def trust_dock(self, dock_key: Ed25519PrivateKey, store_public: Any) -> None:
        """Provision the camera with the dock's key and the store's receipt key."""
        (self.keys_dir / "docks" / "dock.pub.pem").write_bytes(public_pem(dock_key))
        (self.keys_dir / "store.pub.pem").write_bytes(public_pem(store_public))

    def usb_bus(self) -> UsbBus:
        """The dock's bus with the camera in its bay."""
        dock = self.rig.file.dock
        assert dock is not None, "the rig has no dock: mark the test needs('dock')"
        if self.rig.kind == "sim":
            from hw.sim.usb import SimUsbBus

            bay = tuple(int(p) for p in dock.bay.split("-", 1)[1].split("."))
            bus: UsbBus = SimUsbBus(
                UsbConfig(cameras=(SimUsbCamera(serial=self.serial, port_path=bay),))
            )
        else:
            from hw.real.usb import LibusbUsbBus

            bus = LibusbUsbBus(dock.usb)
        self._closers.append(bus)
        return bus

    def link_url(self, camera: CameraUnderTest) -> str:
        dock = self.rig.file.dock
        assert dock is not None and camera.offload is not None
        if self.rig.kind == "sim":
            url = camera.offload.url
            assert url is not None, "the camera's offload API is not serving"
            return url
        return dock.link

    def close(self) -> None:
        for part in reversed(self._closers):
            part.close()
        self._closers.clear()
