"""Configuration profiles: the agency's signed settings for its cameras.

A profile is one canonical JSON object and a LF (docs/formats/profile.md), signed by the agency
release key over "bwc-profile-v1" NUL followed by the canonical profile without ``signature``.
Settings are checked as a whole before anything uses them: an unknown key, a missing key or a
value out of range refuses the profile, naming the key, so a camera never applies half of one.
The limits are those of the camera's own configuration (``device.config``, ``hw.ports.camera``);
custody cannot import them, so tests/device/test_profile_limits.py checks that they agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.canonical import (
    INT_MAX,
    b64d,
    b64e,
    canonical_bytes,
    check_hex,
    parse_json,
    sha256_hex,
)
from custody.errors import FormatError, UnsupportedVersionError
from custody.keys import key_id
from custody.release import SIGNATURE_SIZE, check_release_signature
from custody.report import Report
from custody.schema import require_fields
from custody.trigger_registry import KINDS

FORMAT = "bwc-profile"
VERSION = 1
DOMAIN = b"bwc-profile-v1\x00"
MAX_PROFILE_BYTES = 64 * 1024

#: integer settings: (lowest, highest, multiple of)
INT_RANGES: dict[str, tuple[int, int, int]] = {
    "pre_event_ms": (0, 120_000, 1),  # DeviceConfig.pre_event_s, in milliseconds
    "video_width": (2, 7680, 2),  # CameraConfig.width
    "video_height": (2, 4320, 2),  # CameraConfig.height
    "video_fps": (1, 120, 1),  # CameraConfig.fps
    "storage_low_bytes": (0, INT_MAX, 1),  # DeviceConfig.storage_low_bytes
    "storage_reserve_bytes": (0, INT_MAX, 1),  # DeviceConfig.storage_reserve_bytes
}
#: the cues a camera plays (device.feedback STATE_CUES and EVENT_CUES), which a profile may change
FEEDBACK_CUES = frozenset({
    "recording", "buffering", "fault", "docked", "off", "marker", "muted", "unmuted",
    "stealth_on", "stealth_off", "battery_low", "storage_low", "reminder",
})  # fmt: skip
MAX_PATTERN_STEPS = 16
MAX_STEP_MS = 10_000
MAX_OFFICER_ID_CHARS = 64

_SETTINGS: dict[str, type] = {
    **dict.fromkeys(INT_RANGES, int), "pre_event_audio": bool, "trigger_kinds": list,
    "trigger_registry_sha256": str, "feedback": dict, "officer_id": str,
}  # fmt: skip
_SPEC: dict[str, type] = {
    "format": str, "version": int, "name": str, "profile_version": int, "created_at_ns": int,
    "settings": dict, "release_key_id": str, "signature": str,
}  # fmt: skip
_DRAFT_SPEC: dict[str, type] = {"name": str, "profile_version": int, "settings": dict}


def validate_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` if every key is known, present and in range; else FormatError naming it."""
    require_fields(settings, _SETTINGS, "profile settings")
    for name, (low, high, step) in INT_RANGES.items():
        value = settings[name]
        if not low <= value <= high or value % step:
            every = f", a multiple of {step}" if step > 1 else ""
            raise FormatError(
                f"profile settings: {name} = {value} is out of range ({low}..{high}{every})"
            )
    kinds = settings["trigger_kinds"]
    if kinds != sorted(set(kinds)) or not set(kinds) <= KINDS:
        raise FormatError(
            f"profile settings: trigger_kinds must be sorted, unique names from {sorted(KINDS)}"
        )
    if settings["trigger_registry_sha256"]:
        check_hex(settings["trigger_registry_sha256"], what="trigger_registry_sha256", chars=64)
    if len(settings["officer_id"]) > MAX_OFFICER_ID_CHARS:
        raise FormatError(f"profile settings: officer_id is longer than {MAX_OFFICER_ID_CHARS}")
    for cue, patterns in settings["feedback"].items():
        _check_cue(cue, patterns)
    return settings


def _check_cue(cue: str, patterns: Any) -> None:
    if cue not in FEEDBACK_CUES:
        raise FormatError(
            f"profile settings: feedback.{cue} is not a cue (known: {sorted(FEEDBACK_CUES)})"
        )
    what = f"profile settings: feedback.{cue}"
    if not isinstance(patterns, dict):
        raise FormatError(f"{what} must be an object")
    require_fields(patterns, {"haptic_ms": list, "buzzer_ms": list}, what)
    for name, steps in patterns.items():
        ok = len(steps) <= MAX_PATTERN_STEPS and all(
            isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_STEP_MS for s in steps
        )
        if not ok:
            raise FormatError(
                f"{what}.{name}: at most {MAX_PATTERN_STEPS} on/off steps of 1..{MAX_STEP_MS} ms"
            )


@dataclass(frozen=True)
class Profile:
    name: str
    profile_version: int
    created_at_ns: int
    settings: dict[str, Any]
    release_key_id: str = ""
    signature: bytes = b""

    def unsigned_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "profile_version": self.profile_version,
            "created_at_ns": self.created_at_ns,
            "settings": self.settings,
            "release_key_id": self.release_key_id,
        }

    @property
    def profile_id(self) -> str:
        """SHA-256 of the canonical profile without its signature: what manifests record."""
        return sha256_hex(canonical_bytes(self.unsigned_json(), what="profile"))

    def signed_message(self) -> bytes:
        return DOMAIN + canonical_bytes(self.unsigned_json(), what="profile")

    def to_bytes(self) -> bytes:
        signature = b64e(self.signature) if self.signature else ""
        return canonical_bytes({**self.unsigned_json(), "signature": signature}) + b"\n"


def _load(data: bytes, what: str, *, canonical: bool) -> dict[str, Any]:
    if len(data) > MAX_PROFILE_BYTES:
        raise FormatError(f"{what}: {len(data)} bytes is more than the {MAX_PROFILE_BYTES} allowed")
    if canonical and not data.endswith(b"\n"):
        raise FormatError(f"{what}: does not end with a LF: the file is cut short")
    return parse_json(data[:-1] if canonical else data.strip(), what=what, canonical=canonical)


def parse_envelope(data: bytes) -> Profile:
    """The signed profile's fields, settings not yet validated (``parse_profile`` does both)."""
    obj = _load(data, "profile", canonical=True)
    if obj.get("format") != FORMAT:
        raise FormatError(f"not a configuration profile (format {FORMAT!r})")
    if obj.get("version") != VERSION:
        raise UnsupportedVersionError(
            f"profile format version {obj.get('version')!r} is not supported "
            f"(this bwc reads version {VERSION}): upgrade bwc"
        )
    require_fields(obj, _SPEC, "profile")
    if obj["profile_version"] < 1 or obj["created_at_ns"] < 0:
        raise FormatError("profile: profile_version must be 1 or more, created_at_ns not negative")
    signed = bool(obj["signature"]) or bool(obj["release_key_id"])
    return Profile(
        name=obj["name"],
        profile_version=obj["profile_version"],
        created_at_ns=obj["created_at_ns"],
        settings=obj["settings"],
        release_key_id=check_hex(obj["release_key_id"], what="release_key_id", chars=16)
        if signed
        else "",
        signature=b64d(obj["signature"], what="signature", size=SIGNATURE_SIZE) if signed else b"",
    )


def parse_profile(data: bytes) -> Profile:
    profile = parse_envelope(data)
    validate_settings(profile.settings)
    return profile


def sign_profile(draft: bytes, key: Ed25519PrivateKey, *, created_at_ns: int) -> Profile:
    """Sign a draft: a JSON object with ``name``, ``profile_version`` and ``settings``."""
    obj = _load(draft, "profile draft", canonical=False)
    if obj.get("format") == FORMAT:  # re-signing a signed profile: keep its content
        obj = {name: obj.get(name) for name in _DRAFT_SPEC}
    require_fields(obj, _DRAFT_SPEC, "profile draft")
    unsigned = Profile(
        obj["name"], obj["profile_version"], created_at_ns, validate_settings(obj["settings"]),
        release_key_id=key_id(key),
    )  # fmt: skip
    if unsigned.profile_version < 1:
        raise FormatError("profile draft: profile_version must be 1 or more")
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.signed_message()))


def verify_profile(data: bytes, trusted: Iterable[Ed25519PublicKey]) -> Report:
    """Checks format, signer, signature and settings; the profile applies only if all hold."""
    report = Report("profile")
    try:
        profile = parse_envelope(data)
    except FormatError as exc:
        report.failed("format", str(exc))
        return report
    report.passed("format", f"profile {profile.name!r} version {profile.profile_version}")
    check_release_signature(
        report, what="profile", signer_key_id=profile.release_key_id,
        signature=profile.signature, message=profile.signed_message(), trusted=trusted,
    )  # fmt: skip
    try:
        validate_settings(profile.settings)
    except FormatError as exc:
        report.failed("settings", str(exc))
    else:
        report.passed(
            "settings", f"all {len(_SETTINGS)} settings in range; id {profile.profile_id}"
        )
    return report
