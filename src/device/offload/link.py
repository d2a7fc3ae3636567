"""Wiring the offload API to a booted firmware: what it reads from it and what it tells it.

``attach_offload`` builds the whole API for a booted :class:`Firmware` and registers its server
as the firmware's dock listener, so docking serves and undocking stops it. The firmware's own
thread only ever flips the server's flag; the API reaches back through :class:`FirmwareHost`,
whose writes are single reference assignments the firmware reads at its next clip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.errors import FirmwareError
from device.events import State
from device.firmware import CLIPS_ROOT, Firmware
from device.offload.clips import ClipStore
from device.offload.server import OffloadServer
from device.offload.service import OffloadService
from device.offload.session import Identity, SessionGate
from device.offload.updates import CameraUpdates
from device.profile import load_active_profile
from device.updates import FirmwareSlots
from hw.ports.battery import BatteryReading
from hw.ports.storage import Storage

if TYPE_CHECKING:
    from fastapi import FastAPI


class FirmwareHost:
    """The firmware as the offload API sees it."""

    def __init__(self, firmware: Firmware) -> None:
        self._firmware = firmware

    def officer_id(self) -> str:
        return self._firmware.config.officer_id

    def assign_officer(self, officer_id: str) -> None:
        fw = self._firmware
        fw.config = fw.config.model_copy(update={"officer_id": officer_id})

    def battery(self) -> BatteryReading | None:
        return self._firmware.battery_reading

    def time_synced(self, device_minus_dock_ns: int) -> None:
        self._firmware.time_sync_offset_ns = device_minus_dock_ns


def attach_offload(
    firmware: Firmware, device_key: Ed25519PrivateKey, *, keys_dir: Path | None = None,
    slots: FirmwareSlots | None = None, reboot: Callable[[], None] | None = None,
) -> OffloadServer:  # fmt: skip
    """Serve the offload API whenever ``firmware`` (booted) is docked; close it after the firmware.

    ``keys_dir`` defaults to the firmware's ``[device] keys_dir``. ``slots``: the firmware slots
    the composition root chose from before boot; without them they are chosen now (a host that
    runs the factory image). ``reboot`` is called once ``POST /reboot`` is answered; without
    it the camera refuses to reboot on request.
    """
    audit = firmware.audit
    if audit is None:
        raise FirmwareError("the offload API needs a booted firmware: call boot() first")
    config = firmware.config
    folder = keys_dir if keys_dir is not None else config.keys_dir
    storage = firmware.ports.storage
    if slots is None:
        slots = FirmwareSlots(
            storage, folder, audit, target=config.hardware_target,
            factory_version=config.firmware_version, healthy_after_s=config.healthy_after_s,
        )  # fmt: skip
        slots.boot()
    identity = Identity(config.device_id or config.serial, config.serial, slots.choice.version)
    gate = SessionGate(identity, device_key, folder)
    clips = ClipStore(storage, CLIPS_ROOT)
    host = FirmwareHost(firmware)
    service = OffloadService(gate, clips, audit, host, firmware.ports.clock, folder)
    service.updates = CameraUpdates(
        storage, folder, audit, slots, reserve_bytes=lambda: firmware.config.storage_reserve_bytes,
        running_profile=_running_profile(storage, folder, config.profile_id), reboot=reboot,
    )  # fmt: skip
    server = OffloadServer(lambda: _app(service), gate, config.offload_host, config.offload_port)
    firmware.dock_listener = server
    if firmware.controller.state is State.DOCKED:  # booted in the dock
        server.set_docked(True)
    return server


def _running_profile(storage: Storage, keys_dir: Path, profile_id: str) -> tuple[str, int]:
    """The id and version of the profile this boot applied (``""``, 0: none)."""
    if not profile_id:
        return "", 0
    kept = load_active_profile(storage, keys_dir)
    # the kept file is the one applied at boot until a dock replaces it
    return (
        profile_id,
        kept.profile_version if kept is not None and kept.profile_id == profile_id else 0,
    )


def _app(service: OffloadService) -> FastAPI:
    from device.offload.api import create_app  # FastAPI loads at the first dock, not at boot

    return create_app(service)
