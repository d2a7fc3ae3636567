"""Inputs to the controller and the actions it asks for.

Inputs come from buttons (as gestures), BLE triggers, the dock, the battery gauge, the storage
monitor and the clip writer. The controller is pure: it turns one input into a list of actions and
never performs I/O itself, so it can be driven by hypothesis without threads or sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class State(StrEnum):
    OFF = "off"
    BUFFERING = "buffering"
    RECORDING = "recording"
    DOCKED = "docked"
    FAULT = "fault"


class Gesture(StrEnum):
    RECORD_DOUBLE_PRESS = "record_double_press"  #: start recording
    RECORD_SINGLE_PRESS = "record_single_press"  #: marker while recording
    RECORD_HOLD = "record_hold"  #: 3 s hold stops recording
    FUNCTION_DOUBLE_PRESS = "function_double_press"  #: toggle muted
    FUNCTION_HOLD = "function_hold"  #: 3 s hold toggles stealth
    POWER_HOLD = "power_hold"  #: both buttons held 3 s: power off (or on)


# ---- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GestureInput:
    gesture: Gesture
    at_ns: int


@dataclass(frozen=True)
class TriggerInput:
    """An authenticated trigger (holster, light bar, door, peer camera) accepted by the engine."""

    source_id: str
    kind: str  #: e.g. "holster", "lightbar", "door", "peer"
    at_ns: int
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DockInput:
    docked: bool  #: True on dock, False on undock
    at_ns: int


@dataclass(frozen=True)
class BatteryInput:
    level: Literal["ok", "low", "critical"]
    percent: float
    at_ns: int


@dataclass(frozen=True)
class StorageInput:
    level: Literal["ok", "low", "full"]
    free_bytes: int
    at_ns: int


@dataclass(frozen=True)
class WriterFaultInput:
    """The clip writer could not make a segment durable (failed fsync, I/O error)."""

    reason: str
    at_ns: int


@dataclass(frozen=True)
class PowerInput:
    on: bool
    at_ns: int


Input = (
    GestureInput
    | TriggerInput
    | DockInput
    | BatteryInput
    | StorageInput
    | WriterFaultInput
    | PowerInput
)


# ---- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartClip:
    """Open a clip that begins with the pre-event ring's footage."""

    reason: str  #: "button", "trigger:<kind>", "peer:<camera id>"
    trigger: TriggerInput | None
    at_ns: int


@dataclass(frozen=True)
class StopClip:
    """Stop recording (after the configured post-event time) and seal the clip."""

    reason: str  #: "button", "dock", "battery", "storage", "writer", "power"
    immediate: bool  #: seal now, no post-event recording (dock, power, faults)
    at_ns: int


@dataclass(frozen=True)
class AddMarker:
    at_ns: int


@dataclass(frozen=True)
class NoteEvent:
    """Note something in the open clip's manifest (e.g. a trigger that came while recording)."""

    kind: str
    detail: dict[str, str]
    at_ns: int


@dataclass(frozen=True)
class SetMuted:
    muted: bool


@dataclass(frozen=True)
class SetStealth:
    """Stealth on: LEDs, tones and vibration off (the feedback module honours it)."""

    stealth: bool


@dataclass(frozen=True)
class Feedback:
    """Tell the officer: ``pattern`` is a name the feedback module knows (e.g. "marker")."""

    pattern: str


@dataclass(frozen=True)
class Audit:
    """A state transition or modifier change, for the device's audit log."""

    event: str
    detail: dict[str, str]
    at_ns: int


@dataclass(frozen=True)
class Shutdown:
    reason: str
    at_ns: int


Action = (
    StartClip
    | StopClip
    | AddMarker
    | NoteEvent
    | SetMuted
    | SetStealth
    | Feedback
    | Audit
    | Shutdown
)
