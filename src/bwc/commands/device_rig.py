"""The parts ``bwc device run`` builds the firmware from, each from the configuration.

The configuration with every port simulated, the camera's keys, what docks provisioned (officer and
profile), the opened ports (:class:`Rig`), the firmware slot to boot with its audit log, and the
BLE link with its trigger registry. The demo and the tests build cameras from the same parts.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from rich.console import Console

from bwc.config import Config
from bwc.errors import CliError
from custody.keys import Role, load_agency_public_key, load_signing_key, write_key_pair
from custody.trigger_registry import TriggerRegistry, TriggerSource
from device.config import DeviceConfig
from device.recorder import DeviceKeys
from hw.config import HwConfig

if TYPE_CHECKING:
    from device.audit_log import DeviceAuditLog
    from device.firmware import DevicePorts, Firmware
    from device.updates import FirmwareSlots
    from hw.ports.storage import Storage
    from hw.sim.battery import SimBattery
    from hw.sim.ble import SimRadio
    from hw.sim.io import SimOfficerIo

REGISTRY_NAME = "triggers.json"
SIM_PORTS = ("camera", "microphone", "ble_scanner", "ble_advertiser", "usb", "io", "battery",
             "clock", "gnss", "storage")  # fmt: skip


def simulated(config: Config) -> Config:
    """The same configuration with every hardware port on its sim adapter."""
    hw = config.hw
    tables = {name: getattr(hw, name).model_copy(update={"adapter": "sim"}) for name in SIM_PORTS}
    return config.model_copy(update={"hw": HwConfig(**tables, sim_radio=hw.sim_radio)})


def load_keys(cfg: DeviceConfig, *, create: bool, console: Console) -> DeviceKeys:
    """The camera's identity and the agency's recording key from ``keys_dir``.

    A simulated camera makes a development set on first run (with the agency's private key beside
    it, so ``bwc verify --agency-key`` can decrypt its clips); a real one must be provisioned.
    """
    identity, agency = cfg.keys_dir / "device.key.pem", cfg.keys_dir / "agency.pub.pem"
    if not identity.exists() and create:
        write_key_pair(cfg.keys_dir, Role.DEVICE)
        if not agency.exists():
            write_key_pair(cfg.keys_dir, Role.AGENCY)
        console.print(f"made development keys in {cfg.keys_dir} (simulated camera)")
    if not identity.exists() or not agency.exists():
        missing = identity if not identity.exists() else agency
        raise CliError(f"{missing} is missing: provision the camera at a dock before recording")
    signing: Ed25519PrivateKey = load_signing_key(identity)
    recording: X25519PublicKey = load_agency_public_key(agency)
    return DeviceKeys(signing, recording)


@dataclass
class Rig:
    """The opened ports, and the sim parts the control socket may drive (None on hardware)."""

    ports: DevicePorts
    radio: SimRadio
    sim_io: SimOfficerIo | None = None
    sim_battery: SimBattery | None = None


def with_provisioned(config: Config, storage: Storage, console: Console) -> Config:
    """``config`` with what docks provisioned since it was written: the officer last assigned
    and the active configuration profile's settings (docs/formats/offload.md)."""
    from device.offload import load_officer
    from device.profile import camera_settings, device_settings, load_active_profile

    device = config.device
    officer = load_officer(storage)
    if officer:
        device = device.model_copy(update={"officer_id": officer})
    profile = load_active_profile(storage, device.keys_dir)
    if profile is None:
        return config.model_copy(update={"device": device})
    hw = config.hw.model_copy(update={"camera": camera_settings(config.hw.camera, profile)})
    console.print(f"profile {profile.name!r} version {profile.profile_version} applied")
    return config.model_copy(update={"device": device_settings(device, profile), "hw": hw})


def open_rig(hw: HwConfig, storage: Storage | None = None) -> Rig:
    from device.firmware import DevicePorts
    from hw.ports.battery import open_battery
    from hw.ports.camera import open_camera
    from hw.ports.clock import open_clock
    from hw.ports.gnss import open_gnss
    from hw.ports.io import open_io
    from hw.ports.microphone import open_microphone
    from hw.ports.storage import open_storage
    from hw.sim.battery import SimBattery
    from hw.sim.ble import SimRadio
    from hw.sim.io import SimOfficerIo

    clock = open_clock(hw.clock)
    io = open_io(hw.io, clock)
    battery = open_battery(hw.battery, clock)
    if storage is None:
        hw.storage.root.mkdir(parents=True, exist_ok=True)
        storage = open_storage(hw.storage)
    ports = DevicePorts(
        clock=clock, camera=open_camera(hw.camera, clock), io=io, battery=battery,
        storage=storage, microphone=open_microphone(hw.microphone, clock),
        gnss=open_gnss(hw.gnss, clock),
    )  # fmt: skip
    return Rig(
        ports,
        SimRadio(hw.sim_radio),
        sim_io=io if isinstance(io, SimOfficerIo) else None,
        sim_battery=battery if isinstance(battery, SimBattery) else None,
    )


def choose_firmware(
    device: DeviceConfig, rig: Rig, keys: DeviceKeys
) -> tuple[FirmwareSlots, DeviceAuditLog]:
    """Open the audit log once and choose the firmware slot before the firmware boots."""
    from device.audit_log import DeviceAuditLog
    from device.errors import FirmwareUpdateError
    from device.firmware import AUDIT_LOG
    from device.updates import FirmwareSlots

    storage = rig.ports.storage
    audit = DeviceAuditLog(storage, AUDIT_LOG, keys.identity, rig.ports.clock)
    slots = FirmwareSlots(
        storage, device.keys_dir, audit, target=device.hardware_target,
        factory_version=device.firmware_version, healthy_after_s=device.healthy_after_s,
    )  # fmt: skip
    try:
        slots.boot()
    except FirmwareUpdateError as exc:
        audit.close()
        rig.ports.io.close()
        raise CliError(f"the camera cannot boot: {exc}") from exc
    return slots, audit


def attach_radio(
    firmware: Firmware, config: Config, rig: Rig, audit: DeviceAuditLog, *, create: bool,
    console: Console,
) -> None:  # fmt: skip
    """Give the firmware its trigger engine and peer beacon, if it holds the registry it should."""
    from device.ble_link import BleLink
    from device.profile import registry_mismatch
    from device.triggers import CounterStore, TriggerEngine
    from hw.ports.ble import open_ble_advertiser, open_ble_scanner

    path = config.device.keys_dir / REGISTRY_NAME
    mismatch = registry_mismatch(config.device, path)
    if mismatch is not None:
        console.print(mismatch.message(), soft_wrap=True)  # one line, whatever the width
        audit.append("triggers.refused", mismatch.audit_detail())
        return
    if not path.exists() and create:
        development_registry(config.device.serial).save(path)
        console.print(f"made a development trigger registry in {path} (simulated camera)")
    if not path.exists():
        console.print(f"no trigger registry at {path}: this camera hears no triggers until a "
                      "dock provisions one")  # fmt: skip
        return
    registry = TriggerRegistry.load(path)
    counters = CounterStore(rig.ports.storage)
    kinds = config.device.trigger_kinds
    engine = TriggerEngine(
        registry, counters, rig.ports.clock, debounce_s=config.device.trigger_debounce_s,
        sink=firmware.submit, obeyed_kinds=None if kinds is None else frozenset(kinds),
    )  # fmt: skip
    scanner = open_ble_scanner(config.hw.ble_scanner, rig.radio)
    advertiser = open_ble_advertiser(config.hw.ble_advertiser, rig.radio)
    firmware.attach_ble(
        BleLink(scanner, advertiser, engine, registry, counters,
                beacon_s=config.device.peer_beacon_s)
    )  # fmt: skip


def development_registry(serial: str) -> TriggerRegistry:
    """A registry for a simulated camera: itself as a peer, and one sensor of each kind.

    Source ids derive from the names, so every simulated camera of one machine agrees on them.
    """

    def source(name: str, kind: str, rssi_min_dbm: int) -> TriggerSource:
        source_id = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
        return TriggerSource(source_id, name, kind, os.urandom(32), rssi_min_dbm)

    me = source(serial, "peer", -90)
    sensors = [source(f"{kind}-1", kind, -80) for kind in ("holster", "lightbar", "siren", "door")]
    return TriggerRegistry(os.urandom(32), [me, *sensors], self_source_id=me.source_id)
