"""The ``[device]`` table: how the camera records, warns and stores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from custody.profile import FEEDBACK_CUES, MAX_PATTERN_STEPS, MAX_STEP_MS
from custody.trigger_registry import KINDS

#: one on or off step of a feedback pattern, in milliseconds
StepMs = Annotated[int, Field(strict=True, ge=1, le=MAX_STEP_MS)]
Steps = Annotated[tuple[StepMs, ...], Field(max_length=MAX_PATTERN_STEPS)]


class FeedbackPattern(BaseModel):
    """One cue's vibration and tone: alternating on/off milliseconds (docs/formats/profile.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    haptic_ms: Steps
    buzzer_ms: Steps


class DeviceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: seconds of footage before the start input that every clip includes
    pre_event_s: float = Field(default=30.0, ge=0, le=120)
    #: hard cap on the ring's memory, whatever the bitrate
    pre_event_max_bytes: int = Field(default=64 * 1024**2, gt=0)
    #: keep audio in the pre-event window (off by default: many policies forbid it)
    pre_event_audio: bool = False
    #: seconds recorded after a stop gesture before the clip is sealed
    post_event_s: float = Field(default=0.0, ge=0, le=120)
    #: reminder tone and vibration while recording; 0 disables
    reminder_interval_s: float = Field(default=120.0, ge=0)
    #: warn the officer when free space falls below this
    storage_low_bytes: int = Field(default=1024**3, ge=0)
    #: refuse to start a segment with less free space than this; seal and fault instead
    storage_reserve_bytes: int = Field(default=16 * 1024**2, ge=0)
    battery_low_percent: float = Field(default=15.0, ge=0, le=100)
    battery_critical_percent: float = Field(default=3.0, ge=0, le=100)
    #: gesture timings
    double_press_window_s: float = Field(default=0.4, gt=0, le=2)
    hold_s: float = Field(default=3.0, gt=0, le=10)
    #: identity of this camera and who wears it (provisioned by the dock)
    serial: str = "BWC-SIM-0001"
    #: the camera's enrolled id (manifests and audit records name it); empty: the serial
    device_id: str = ""
    officer_id: str = ""
    #: the FACTORY image's version: what runs while no firmware slot was ever installed (a booted
    #: slot's version replaces it at boot; device.updates)
    firmware_version: str = "0.1.0"
    #: the hardware name firmware bundles must be built for (docs/formats/firmware-bundle.md)
    hardware_target: str = Field(default="sim", pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    #: camera seconds a newly tried firmware slot must run, frames flowing and audit log
    #: writing, before it reports healthy and becomes the active slot
    healthy_after_s: float = Field(default=3.0, gt=0, le=600)
    #: id of the configuration profile laid over this table at boot (device.profile); every
    #: clip's manifest records it; empty: the camera runs on its own configuration
    profile_id: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    #: kinds of registered trigger source this camera obeys (docs/formats/trigger.md); None:
    #: every kind in the registry; () obeys no BLE trigger (the buttons always work)
    trigger_kinds: tuple[str, ...] | None = None
    #: SHA-256 of the trigger registry this camera must hold; when its triggers.json differs, it
    #: obeys no BLE trigger until a dock provisions that registry; empty: any registry
    trigger_registry_sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    #: cue name -> pattern replacing the camera's default for that cue (device.feedback)
    feedback: dict[str, FeedbackPattern] = Field(default_factory=dict)
    #: the camera's key files: device.key.pem (its identity) and agency.pub.pem (recording key)
    keys_dir: Path = Path("var/bwc/keys")
    #: seconds the camera announces a recording to peer cameras; 0 never announces
    peer_beacon_s: float = Field(default=30.0, ge=0, le=600)
    #: one accepted trigger per source within this time; bursts are counted, not acted on
    trigger_debounce_s: float = Field(default=2.0, ge=0, le=60)
    #: where the offload API listens while docked: loopback in sim; on a real camera the USB
    #: link's "fe80::1%usb0" (docs/formats/offload.md)
    offload_host: str = "127.0.0.1"
    #: its TCP port; 0 picks a free one at the first dock and keeps it until the firmware stops
    offload_port: int = Field(default=8080, ge=0, le=65535)

    @field_validator("trigger_kinds")
    @classmethod
    def _known_kinds(cls, kinds: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if kinds is None:
            return None
        unknown = set(kinds) - KINDS
        if unknown:
            raise ValueError(f"unknown trigger kind(s) {sorted(unknown)}: use {sorted(KINDS)}")
        return tuple(sorted(set(kinds)))

    @field_validator("feedback")
    @classmethod
    def _known_cues(cls, feedback: dict[str, FeedbackPattern]) -> dict[str, FeedbackPattern]:
        unknown = set(feedback) - FEEDBACK_CUES
        if unknown:
            raise ValueError(f"unknown cue(s) {sorted(unknown)}: use {sorted(FEEDBACK_CUES)}")
        return feedback
