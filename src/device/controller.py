"""The camera's state machine: one input in, the actions it calls for out.

States (``device.events.State``):

- ``off``: only power on (switch or both buttons held) or docking wakes the camera.
- ``buffering``: the pre-event ring runs; a RECORD double press or any trigger starts a clip.
- ``recording``: a clip is open. A RECORD single press adds a marker; a RECORD hold stops (after
  the post-event time). A trigger can start a recording but never stop one: while recording it is
  only noted in the clip.
- ``docked``: charging and offloading; recording is disabled until the camera is undocked.
- ``fault``: the camera cannot record safely. A storage-full fault clears when storage reports
  ``ok`` again; a writer fault (failed fsync, I/O error) clears only at a dock or by a power cycle,
  because the storage itself can no longer be trusted (a writer fault during a storage fault, e.g.
  a seal that failed on a full disk, turns it into a writer fault).

Leaving ``recording`` for any reason but the officer's hold closes the clip at once
(``StopClip(immediate=True)``): dock, power, battery and faults do not wait for post-event footage.

Modifiers, toggled in ``buffering`` and ``recording`` only:

- ``muted`` (FUNCTION double press): no audio in clips. It persists across states until power off.
- ``stealth`` (FUNCTION hold): no LEDs, tones or vibration. It persists until power off.

A critical battery shuts the camera down from every powered state, sealing an open clip first.

Both modifiers reset to off when the camera powers off, so a camera always boots unmuted and
visible: an officer must never find a camera silently muted from yesterday's shift.

Every state change emits ``Audit("state", {"from", "to", "cause"})`` and ``Feedback("state:<to>")``;
every modifier change an ``Audit("muted" | "stealth", ...)``. Entering ``off`` always ends with
``Shutdown``. An input that has no effect in the current state returns no action and is counted
in ``ignored[(state, input_kind)]``; ``handle`` never raises.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal

from device.events import (
    Action,
    AddMarker,
    Audit,
    BatteryInput,
    DockInput,
    Feedback,
    Gesture,
    GestureInput,
    Input,
    NoteEvent,
    PowerInput,
    SetMuted,
    SetStealth,
    Shutdown,
    StartClip,
    State,
    StopClip,
    StorageInput,
    TriggerInput,
    WriterFaultInput,
)

FaultReason = Literal["storage", "writer"]

_INITIAL_STATES = (State.OFF, State.BUFFERING, State.DOCKED)


def input_kind(event: Input) -> str:
    """A short stable name for an input, used in audit causes and the ``ignored`` counter."""
    match event:
        case GestureInput():
            return event.gesture.value
        case TriggerInput():
            return "trigger"
        case DockInput():
            return "dock" if event.docked else "undock"
        case BatteryInput():
            return f"battery_{event.level}"
        case StorageInput():
            return f"storage_{event.level}"
        case WriterFaultInput():
            return "writer_fault"
        case PowerInput():
            return "power_on" if event.on else "power_off"


def trigger_reason(trigger: TriggerInput) -> str:
    """Why a trigger started a clip: ``peer:<camera id>`` or ``trigger:<kind>``."""
    if trigger.kind == "peer":
        return f"peer:{trigger.source_id}"
    return f"trigger:{trigger.kind}"


def _is_power_off(event: Input) -> bool:
    match event:
        case PowerInput(on=False) | GestureInput(gesture=Gesture.POWER_HOLD):
            return True
    return False


class Controller:
    """Pure state machine of the camera; the firmware performs the actions it returns."""

    def __init__(self, initial: State = State.OFF) -> None:
        if initial not in _INITIAL_STATES:
            # recording needs an open clip and a fault needs a reason: neither can be assumed
            raise ValueError(
                f"a controller cannot start in {initial.value!r}: start it off, buffering or docked"
            )
        self._state = initial
        self._muted = False
        self._stealth = False
        self._fault: FaultReason | None = None
        #: inputs that had no effect, by (state, input kind)
        self.ignored: Counter[tuple[str, str]] = Counter()

    @property
    def state(self) -> State:
        return self._state

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def stealth(self) -> bool:
        return self._stealth

    @property
    def fault(self) -> FaultReason | None:
        """Why the camera is in ``fault``; None in every other state."""
        return self._fault

    @property
    def clip_open(self) -> bool:
        return self._state is State.RECORDING

    def handle(self, event: Input) -> list[Action]:
        """Apply one input; returns the actions to perform, in order (empty when ignored)."""
        match self._state:
            case State.OFF:
                actions = self._off(event)
            case State.BUFFERING | State.RECORDING:
                actions = self._active(event)
            case State.DOCKED:
                actions = self._docked(event)
            case State.FAULT:
                actions = self._faulted(event)
        if not actions:
            self.ignored[(self._state.value, input_kind(event))] += 1
        return actions

    # ---- per state ----------------------------------------------------------------------

    def _off(self, event: Input) -> list[Action]:
        match event:
            case PowerInput(on=True) | GestureInput(gesture=Gesture.POWER_HOLD):
                return self._go(State.BUFFERING, input_kind(event), event.at_ns)
            case DockInput(docked=True):
                # a camera powered in the dock is docked
                return self._go(State.DOCKED, "dock", event.at_ns)
        return []

    def _active(self, event: Input) -> list[Action]:
        """Buffering and recording: everything that can start, stop, or interrupt a clip."""
        at = event.at_ns
        recording = self._state is State.RECORDING
        match event:
            case GestureInput(gesture=Gesture.RECORD_DOUBLE_PRESS) if not recording:
                start = StartClip("button", None, at)
                return self._go(State.RECORDING, input_kind(event), at, before=[start])
            case TriggerInput() if not recording:
                reason = trigger_reason(event)
                return self._go(State.RECORDING, reason, at, before=[StartClip(reason, event, at)])
            case TriggerInput():
                detail = {**event.detail, "source_id": event.source_id, "trigger": event.kind}
                return [NoteEvent("trigger", detail, at)]
            case GestureInput(gesture=Gesture.RECORD_SINGLE_PRESS) if recording:
                return [AddMarker(at), Feedback("marker")]
            case GestureInput(gesture=Gesture.RECORD_HOLD) if recording:
                stop = StopClip("button", immediate=False, at_ns=at)
                return self._go(State.BUFFERING, input_kind(event), at, before=[stop])
            case DockInput(docked=True):
                return self._go(State.DOCKED, "dock", at, before=self._stop("dock", at))
            case StorageInput(level="full"):
                return self._enter_fault("storage", event)
            case WriterFaultInput():
                return self._enter_fault("writer", event)
            case BatteryInput(level="low"):
                return [Feedback("battery_low")]
            case StorageInput(level="low"):
                return [Feedback("storage_low")]
        return self._modifier(event) or self._power_down(event)

    def _docked(self, event: Input) -> list[Action]:
        match event:
            case DockInput(docked=False):
                return self._go(State.BUFFERING, "undock", event.at_ns)
        return self._power_down(event)

    def _faulted(self, event: Input) -> list[Action]:
        at = event.at_ns
        match event:
            case StorageInput(level="ok") if self._fault == "storage":
                return self._go(State.BUFFERING, "storage_ok", at)
            case WriterFaultInput() if self._fault == "storage":
                # sealing after a full disk failed too: only a dock or power cycle may clear it now
                self._fault = "writer"
                detail = {"from": "storage", "to": "writer", "reason": event.reason}
                return [Audit("fault", detail, at), Feedback("state:fault")]
            case DockInput(docked=True):
                return self._go(State.DOCKED, "dock", at)
        return self._power_down(event)

    # ---- shared pieces ------------------------------------------------------------------

    def _power_down(self, event: Input) -> list[Action]:
        """Power off or critical battery, from any powered state: seal first, then shut down."""
        match event:
            case BatteryInput(level="critical"):
                reason = "battery"
            case _ if _is_power_off(event):
                reason = "power"
            case _:
                return []
        before = self._stop(reason, event.at_ns)
        return self._go(State.OFF, input_kind(event), event.at_ns, before=before, shutdown=reason)

    def _enter_fault(
        self, reason: FaultReason, event: StorageInput | WriterFaultInput
    ) -> list[Action]:
        before = self._stop(reason, event.at_ns)
        self._fault = reason
        # the writer's own words belong in the audit log next to the transition
        note = {"reason": event.reason} if isinstance(event, WriterFaultInput) else {}
        return self._go(State.FAULT, input_kind(event), event.at_ns, before=before, note=note)

    def _stop(self, reason: str, at_ns: int) -> list[Action]:
        """An immediate stop of the open clip, if there is one."""
        if self._state is not State.RECORDING:
            return []
        return [StopClip(reason, immediate=True, at_ns=at_ns)]

    def _modifier(self, event: Input) -> list[Action]:
        match event:
            case GestureInput(gesture=Gesture.FUNCTION_DOUBLE_PRESS):
                muted = not self._muted
                pattern = "muted" if muted else "unmuted"
                return [*self._set_muted(muted, input_kind(event), event.at_ns), Feedback(pattern)]
            case GestureInput(gesture=Gesture.FUNCTION_HOLD):
                stealth = not self._stealth
                pattern = "stealth_on" if stealth else "stealth_off"
                actions = self._set_stealth(stealth, input_kind(event), event.at_ns)
                return [*actions, Feedback(pattern)]
        return []

    def _set_muted(self, muted: bool, cause: str, at_ns: int) -> list[Action]:
        self._muted = muted
        detail = {"muted": _flag(muted), "state": self._state.value, "cause": cause}
        return [SetMuted(muted), Audit("muted", detail, at_ns)]

    def _set_stealth(self, stealth: bool, cause: str, at_ns: int) -> list[Action]:
        self._stealth = stealth
        detail = {"stealth": _flag(stealth), "state": self._state.value, "cause": cause}
        return [SetStealth(stealth), Audit("stealth", detail, at_ns)]

    def _go(
        self,
        to: State,
        cause: str,
        at_ns: int,
        *,
        before: Sequence[Action] = (),
        shutdown: str = "power",
        note: Mapping[str, str] | None = None,
    ) -> list[Action]:
        """Change state: audit it, tell the officer, and finish a power-off with ``Shutdown``."""
        detail = {**(note or {}), "from": self._state.value, "to": to.value, "cause": cause}
        self._state = to
        if to is not State.FAULT:
            self._fault = None
        actions: list[Action] = [
            *before,
            Audit("state", detail, at_ns),
            Feedback(f"state:{to.value}"),
        ]
        if to is State.OFF:
            # after the off feedback, so a camera in stealth stays dark while it shuts down
            if self._muted:
                actions += self._set_muted(False, "power_off", at_ns)
            if self._stealth:
                actions += self._set_stealth(False, "power_off", at_ns)
            actions.append(Shutdown(shutdown, at_ns))
        return actions


def _flag(value: bool) -> str:
    return "true" if value else "false"
