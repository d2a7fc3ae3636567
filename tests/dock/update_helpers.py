"""Signed configuration profiles for the dock's update tests (docs/formats/profile.md)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.keys import key_id
from custody.profile import Profile, sign_profile

SETTINGS: dict[str, Any] = {
    "pre_event_ms": 2500, "pre_event_audio": False, "video_width": 1280, "video_height": 720,
    "video_fps": 25, "trigger_kinds": [], "trigger_registry_sha256": "", "feedback": {},
    "storage_low_bytes": 8 * 1024**2, "storage_reserve_bytes": 8192, "officer_id": "",
}  # fmt: skip


def signed_profile(key: Ed25519PrivateKey, version: int) -> Profile:
    draft = {"name": "patrol", "profile_version": version, "settings": SETTINGS}
    return sign_profile(json.dumps(draft).encode(), key, created_at_ns=0)


def signed_unchecked(key: Ed25519PrivateKey, version: int, **settings: Any) -> Profile:
    """Signed without the signing tool's checks of the settings, as a careless tool might."""
    unsigned = Profile("patrol", version, 0, {**SETTINGS, **settings}, release_key_id=key_id(key))
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.signed_message()))
