"""The camera's active configuration profile (docs/formats/profile.md): kept, read, overlaid.

A dock sends a profile signed by the agency release key; the camera keeps the one it last
accepted on its card (``config/profile.json``) and applies it at the next boot, like the trigger
registry: a clip never changes its settings half way. At boot the composition root reads it
again, checks it again against the release keys in ``keys_dir`` (``release*.pub.pem``) and lays
its settings over the configuration; the merged tables go back through the pydantic models, so a
profile can never produce a configuration the camera would refuse from its own file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import CustodyError
from custody.keys import load_verify_key
from custody.profile import Profile, parse_profile, verify_profile
from custody.report import Report
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
    """``device`` with the profile's settings and id; validated like the ``[device]`` table."""
    s = profile.settings
    update: dict[str, Any] = {
        "pre_event_s": s["pre_event_ms"] / 1000,
        "pre_event_audio": s["pre_event_audio"],
        "storage_low_bytes": s["storage_low_bytes"],
        "storage_reserve_bytes": s["storage_reserve_bytes"],
        "profile_id": profile.profile_id,
    }
    if s["officer_id"]:  # "" is a pool camera: the dock's assignment stands
        update["officer_id"] = s["officer_id"]
    return DeviceConfig.model_validate({**device.model_dump(), **update})


def camera_settings(camera: CameraConfig, profile: Profile) -> CameraConfig:
    """``camera`` with the profile's resolution and frame rate; validated like ``[camera]``."""
    s = profile.settings
    update = {"width": s["video_width"], "height": s["video_height"], "fps": s["video_fps"]}
    return CameraConfig.model_validate({**camera.model_dump(), **update})
