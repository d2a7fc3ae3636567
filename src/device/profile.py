"""The camera's active configuration profile (docs/formats/profile.md): kept, read, overlaid.

A dock sends a profile signed by the agency release key; the camera keeps the one it last
accepted on its card (``config/profile.json``) and applies it at the next boot, like the trigger
registry: a clip never changes its settings half way. At boot the composition root reads it
again, checks it again against the release keys in ``keys_dir`` (``release*.pub.pem``) and lays
its settings over the configuration; the merged tables go back through the pydantic models, so a
profile can never produce a configuration the camera would refuse from its own file. The
profile's officer is not among them: it was assigned when the profile was accepted
(device.offload.provision), and at boot only the officer file counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import CustodyError
from custody.keys import load_verify_key
from custody.profile import Profile, parse_profile, verify_profile
from custody.report import Report
from custody.trigger_registry import TriggerRegistry
from device.config import DeviceConfig
from hw.ports.camera import CameraConfig
from hw.ports.storage import Storage

PROFILE_FILE = "config/profile.json"
RELEASE_KEYS = "release*.pub.pem"


def release_keys(keys_dir: Path) -> list[Ed25519PublicKey]:
    """The agency release keys the camera trusts; a file that does not load trusts nothing."""
    keys: list[Ed25519PublicKey] = []
    for path in sorted(keys_dir.glob(RELEASE_KEYS)):
        try:
            keys.append(load_verify_key(path))
        except CustodyError:
            continue  # written whole by provisioning; a damaged one is simply not trusted
    return keys


def check_profile(data: bytes, keys_dir: Path) -> tuple[Report, Profile | None]:
    """The verification report, and the profile if every check passed."""
    report = verify_profile(data, release_keys(keys_dir))
    if report.first_failure is not None or not report.ok:
        return report, None
    return report, parse_profile(data)


def load_active_profile(storage: Storage, keys_dir: Path) -> Profile | None:
    """The profile the camera runs under, checked again; None if there is none that verifies."""
    if not storage.exists(PROFILE_FILE):
        return None
    _, profile = check_profile(storage.read_bytes(PROFILE_FILE), keys_dir)
    return profile


def device_settings(device: DeviceConfig, profile: Profile) -> DeviceConfig:
    """``device`` with the profile's settings and id; validated like the ``[device]`` table.

    A feedback cue the profile lists replaces the configured one; the others stay.
    """
    s = profile.settings
    update: dict[str, Any] = {
        "pre_event_s": s["pre_event_ms"] / 1000,
        "pre_event_audio": s["pre_event_audio"],
        "storage_low_bytes": s["storage_low_bytes"],
        "storage_reserve_bytes": s["storage_reserve_bytes"],
        "trigger_kinds": s["trigger_kinds"],
        "trigger_registry_sha256": s["trigger_registry_sha256"],
        "profile_id": profile.profile_id,
    }
    mine = device.model_dump()
    update["feedback"] = {**mine["feedback"], **s["feedback"]}
    return DeviceConfig.model_validate({**mine, **update})


def camera_settings(camera: CameraConfig, profile: Profile) -> CameraConfig:
    """``camera`` with the profile's resolution and frame rate; validated like ``[camera]``."""
    s = profile.settings
    update = {"width": s["video_width"], "height": s["video_height"], "fps": s["video_fps"]}
    return CameraConfig.model_validate({**camera.model_dump(), **update})


@dataclass(frozen=True)
class RegistryMismatch:
    """The configuration names a trigger registry (by SHA-256) that this camera does not hold."""

    expected: str
    held: str  #: SHA-256 of the camera's triggers.json; "" when it has none

    def message(self) -> str:
        held = self.held[:8] if self.held else "none"
        return (
            f"BLE triggers off: the profile names trigger registry {self.expected[:8]}, this "
            f"camera holds {held}: dock it to receive the registry (the buttons still record)"
        )

    def audit_detail(self) -> dict[str, str | None]:
        return {"expected_sha256": self.expected, "held_sha256": self.held or None}


def registry_mismatch(device: DeviceConfig, registry: Path) -> RegistryMismatch | None:
    """Why the camera must obey no BLE trigger this boot, or None when its registry is the one
    ``trigger_registry_sha256`` names (or that names none)."""
    expected = device.trigger_registry_sha256
    if not expected:
        return None
    try:
        held = TriggerRegistry.load(registry).fleet_sha256() if registry.exists() else ""
    except CustodyError:
        held = ""  # a registry the camera cannot load is no registry (the boot says why)
    return None if held == expected else RegistryMismatch(expected, held)
