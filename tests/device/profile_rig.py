"""A docked camera that takes a signed profile and reboots through the composition root.

The reboot is what ``bwc device run`` does at power on, on the same card and keys: read the
camera's own configuration again, lay over it what docks provisioned (``with_provisioned``),
open the audit log, attach the radio (``attach_radio``: trigger kinds and registry check) and boot.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console

from bwc.commands.device_rig import Rig, attach_radio, with_provisioned
from bwc.config import Config
from custody.profile import Profile, sign_profile
from device.audit_log import DeviceAuditLog
from device.firmware import AUDIT_LOG, Firmware
from device.recorder import DeviceKeys
from hw.config import HwConfig
from hw.ports.ble import SimRadioConfig
from hw.ports.storage import StorageConfig
from hw.sim.ble import SimRadio
from hw.sim.clock import SimClock
from tests.device.firmware_rig import Camera, build_camera
from tests.device.offload_rig import DockedCamera

#: the officer the camera's own configuration file names (tests/device/offload_rig.py)
CONFIG_OFFICER = "officer-1187"
SETTINGS: dict[str, Any] = {
    "pre_event_ms": 1000, "pre_event_audio": False, "video_width": 160, "video_height": 120,
    "video_fps": 10, "trigger_kinds": [], "trigger_registry_sha256": "", "feedback": {},
    "storage_low_bytes": 8 * 1024**2, "storage_reserve_bytes": 4096, "officer_id": "",
}  # fmt: skip


def signed(key: Ed25519PrivateKey, version: int, **settings: Any) -> Profile:
    """A profile signed by ``key`` with ``settings`` over :data:`SETTINGS`."""
    draft = {"name": "patrol", "profile_version": version, "settings": {**SETTINGS, **settings}}
    return sign_profile(json.dumps(draft).encode(), key, created_at_ns=1_700_000_050 * 10**9)


def audit_events(storage_root: Any, event: str) -> list[dict[str, Any]]:
    records = map(json.loads, (storage_root / AUDIT_LOG).read_bytes().splitlines())
    return [r["data"] for r in records if r["event"] == event]


@dataclass
class Rebooted:
    camera: Camera
    config: Config  #: what the composition root booted with
    printed: io.StringIO  #: what it printed on the console

    def close(self) -> None:
        self.camera.firmware.close()
        self.camera.io.close()


def reboot(docked: DockedCamera) -> Rebooted:
    """Power the docked camera off, then boot it as ``bwc device run`` does."""
    old = docked.camera
    docked.server.close()
    old.firmware.close()
    old.io.close()
    card = old.storage.root
    # the configuration file as written, not the running one a dock changed since
    own = old.firmware.config.model_copy(update={"officer_id": CONFIG_OFFICER, "profile_id": ""})
    printed = io.StringIO()
    console = Console(file=printed, width=200)
    config = Config(hw=HwConfig(storage=StorageConfig(root=card)), device=own)
    config = with_provisioned(config, old.storage, console)
    clock = SimClock(virtual=True, start_wall_ns=old.clock.wall_ns())
    cam = build_camera(
        card, old.device_key, old.agency_key, config.device, audio=False, clock=clock
    )
    keys = DeviceKeys(old.device_key, old.agency_key.public_key())
    audit = DeviceAuditLog(cam.storage, AUDIT_LOG, old.device_key, clock)
    cam.firmware = Firmware(config.device, cam.firmware.ports, keys, audit=audit)
    rig = Rig(cam.firmware.ports, SimRadio(SimRadioConfig()))
    attach_radio(cam.firmware, config, rig, audit, create=False, console=console)
    cam.firmware.boot()
    return Rebooted(cam, config, printed)
