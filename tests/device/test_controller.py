"""The controller, one behaviour at a time: what each input does in each state."""

from __future__ import annotations

import pytest

from device.controller import Controller
from device.events import (
    Action,
    AddMarker,
    Audit,
    BatteryInput,
    DockInput,
    Feedback,
    Gesture,
    GestureInput,
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

AT = 7_000_000_000


def gesture(g: Gesture) -> GestureInput:
    return GestureInput(g, AT)


def holster() -> TriggerInput:
    return TriggerInput("HOLSTER-1", "holster", AT)


def state_audits(actions: list[Action]) -> list[Audit]:
    return [a for a in actions if isinstance(a, Audit) and a.event == "state"]


@pytest.fixture
def buffering() -> Controller:
    return Controller(initial=State.BUFFERING)


@pytest.fixture
def recording(buffering: Controller) -> Controller:
    buffering.handle(gesture(Gesture.RECORD_DOUBLE_PRESS))
    return buffering


@pytest.fixture
def docked() -> Controller:
    return Controller(initial=State.DOCKED)


# ---- off -------------------------------------------------------------------------------------


def test_a_new_controller_is_off_unmuted_and_visible() -> None:
    controller = Controller()
    assert (controller.state, controller.muted, controller.stealth) == (State.OFF, False, False)


def test_power_on_starts_buffering() -> None:
    controller = Controller()
    controller.handle(PowerInput(on=True, at_ns=AT))
    assert controller.state is State.BUFFERING


def test_holding_both_buttons_while_off_starts_buffering() -> None:
    controller = Controller()
    controller.handle(gesture(Gesture.POWER_HOLD))
    assert controller.state is State.BUFFERING


def test_docking_a_camera_that_is_off_makes_it_docked() -> None:
    controller = Controller()
    controller.handle(DockInput(docked=True, at_ns=AT))
    assert controller.state is State.DOCKED


def test_a_trigger_while_off_is_ignored_and_counted() -> None:
    controller = Controller()
    assert controller.handle(holster()) == []
    assert controller.ignored[("off", "trigger")] == 1


def test_a_controller_cannot_start_recording() -> None:
    with pytest.raises(ValueError, match="cannot start in 'recording'"):
        Controller(initial=State.RECORDING)


# ---- buffering -------------------------------------------------------------------------------


def test_a_double_press_starts_a_clip_for_the_button(buffering: Controller) -> None:
    actions = buffering.handle(gesture(Gesture.RECORD_DOUBLE_PRESS))
    assert actions[0] == StartClip("button", None, AT)
    assert buffering.state is State.RECORDING


def test_a_trigger_starts_a_clip_naming_its_kind(buffering: Controller) -> None:
    trigger = holster()
    assert buffering.handle(trigger)[0] == StartClip("trigger:holster", trigger, AT)


def test_a_peer_camera_starts_a_clip_naming_the_peer(buffering: Controller) -> None:
    peer = TriggerInput("CAM-0042", "peer", AT)
    assert buffering.handle(peer)[0] == StartClip("peer:CAM-0042", peer, AT)


def test_a_single_press_while_buffering_is_ignored(buffering: Controller) -> None:
    assert buffering.handle(gesture(Gesture.RECORD_SINGLE_PRESS)) == []
    assert buffering.ignored[("buffering", "record_single_press")] == 1


def test_low_storage_while_buffering_warns_the_officer(buffering: Controller) -> None:
    assert buffering.handle(StorageInput("low", 10, AT)) == [Feedback("storage_low")]


def test_full_storage_while_buffering_is_a_storage_fault(buffering: Controller) -> None:
    buffering.handle(StorageInput("full", 0, AT))
    assert (buffering.state, buffering.fault) == (State.FAULT, "storage")


def test_holding_both_buttons_while_buffering_shuts_down(buffering: Controller) -> None:
    actions = buffering.handle(gesture(Gesture.POWER_HOLD))
    assert actions[-1] == Shutdown("power", AT)
    assert buffering.state is State.OFF


# ---- recording -------------------------------------------------------------------------------


def test_a_single_press_while_recording_adds_a_marker(recording: Controller) -> None:
    actions = recording.handle(gesture(Gesture.RECORD_SINGLE_PRESS))
    assert actions == [AddMarker(AT), Feedback("marker")]


def test_a_hold_stops_with_post_event_and_returns_to_buffering(recording: Controller) -> None:
    actions = recording.handle(gesture(Gesture.RECORD_HOLD))
    assert actions[0] == StopClip("button", immediate=False, at_ns=AT)
    assert recording.state is State.BUFFERING


def test_a_trigger_while_recording_is_noted_and_never_stops(recording: Controller) -> None:
    actions = recording.handle(TriggerInput("DOOR-3", "door", AT, {"door": "driver"}))
    detail = {"door": "driver", "source_id": "DOOR-3", "trigger": "door"}
    assert actions == [NoteEvent("trigger", detail, AT)]
    assert recording.state is State.RECORDING


def test_a_double_press_while_recording_is_ignored(recording: Controller) -> None:
    assert recording.handle(gesture(Gesture.RECORD_DOUBLE_PRESS)) == []
    assert recording.ignored[("recording", "record_double_press")] == 1


def test_docking_while_recording_seals_at_once_and_docks(recording: Controller) -> None:
    actions = recording.handle(DockInput(docked=True, at_ns=AT))
    assert actions[0] == StopClip("dock", immediate=True, at_ns=AT)
    assert recording.state is State.DOCKED


def test_critical_battery_while_recording_seals_then_shuts_down(recording: Controller) -> None:
    actions = recording.handle(BatteryInput("critical", 2.0, AT))
    assert actions[0] == StopClip("battery", immediate=True, at_ns=AT)
    assert actions[-1] == Shutdown("battery", AT)


def test_full_storage_while_recording_seals_and_faults(recording: Controller) -> None:
    actions = recording.handle(StorageInput("full", 0, AT))
    assert actions[0] == StopClip("storage", immediate=True, at_ns=AT)
    assert (recording.state, recording.fault) == (State.FAULT, "storage")


def test_a_writer_fault_while_recording_seals_and_faults(recording: Controller) -> None:
    actions = recording.handle(WriterFaultInput("fsync failed: EIO", AT))
    assert actions[0] == StopClip("writer", immediate=True, at_ns=AT)
    assert state_audits(actions)[0].detail["reason"] == "fsync failed: EIO"
    assert (recording.state, recording.fault) == (State.FAULT, "writer")


def test_power_hold_while_recording_seals_then_shuts_down(recording: Controller) -> None:
    actions = recording.handle(gesture(Gesture.POWER_HOLD))
    assert actions[0] == StopClip("power", immediate=True, at_ns=AT)
    assert actions[-1] == Shutdown("power", AT)


def test_low_battery_while_recording_warns_and_keeps_recording(recording: Controller) -> None:
    assert recording.handle(BatteryInput("low", 12.0, AT)) == [Feedback("battery_low")]
    assert recording.state is State.RECORDING


# ---- docked and fault ------------------------------------------------------------------------


def test_undocking_returns_to_buffering(docked: Controller) -> None:
    docked.handle(DockInput(docked=False, at_ns=AT))
    assert docked.state is State.BUFFERING


@pytest.mark.parametrize(
    "event", [holster(), gesture(Gesture.RECORD_DOUBLE_PRESS), gesture(Gesture.FUNCTION_HOLD)]
)
def test_recording_inputs_and_modifiers_while_docked_are_ignored(
    docked: Controller, event: TriggerInput | GestureInput
) -> None:
    assert docked.handle(event) == []
    assert docked.state is State.DOCKED


def test_power_hold_while_docked_shuts_down(docked: Controller) -> None:
    assert docked.handle(gesture(Gesture.POWER_HOLD))[-1] == Shutdown("power", AT)


def test_a_storage_fault_clears_when_storage_is_ok_again(buffering: Controller) -> None:
    buffering.handle(StorageInput("full", 0, AT))
    buffering.handle(StorageInput("ok", 10**10, AT))
    assert (buffering.state, buffering.fault) == (State.BUFFERING, None)


def test_a_writer_fault_does_not_clear_when_storage_is_ok(buffering: Controller) -> None:
    buffering.handle(WriterFaultInput("fsync failed", AT))
    assert buffering.handle(StorageInput("ok", 10**10, AT)) == []
    assert buffering.state is State.FAULT


def test_a_writer_fault_during_a_storage_fault_makes_it_a_writer_fault(
    buffering: Controller,
) -> None:
    buffering.handle(StorageInput("full", 0, AT))
    buffering.handle(WriterFaultInput("seal failed", AT))
    buffering.handle(StorageInput("ok", 10**10, AT))
    assert (buffering.state, buffering.fault) == (State.FAULT, "writer")


def test_docking_clears_a_writer_fault(buffering: Controller) -> None:
    buffering.handle(WriterFaultInput("fsync failed", AT))
    buffering.handle(DockInput(docked=True, at_ns=AT))
    assert (buffering.state, buffering.fault) == (State.DOCKED, None)


def test_a_power_cycle_clears_a_writer_fault(buffering: Controller) -> None:
    buffering.handle(WriterFaultInput("fsync failed", AT))
    buffering.handle(gesture(Gesture.POWER_HOLD))
    buffering.handle(PowerInput(on=True, at_ns=AT))
    assert (buffering.state, buffering.fault) == (State.BUFFERING, None)


def test_a_trigger_during_a_fault_is_ignored(buffering: Controller) -> None:
    buffering.handle(StorageInput("full", 0, AT))
    assert buffering.handle(holster()) == []
    assert buffering.ignored[("fault", "trigger")] == 1


# ---- modifiers -------------------------------------------------------------------------------


def test_a_function_double_press_mutes(buffering: Controller) -> None:
    actions = buffering.handle(gesture(Gesture.FUNCTION_DOUBLE_PRESS))
    assert actions[0] == SetMuted(True)
    assert actions[-1] == Feedback("muted")


def test_a_second_function_double_press_unmutes(buffering: Controller) -> None:
    buffering.handle(gesture(Gesture.FUNCTION_DOUBLE_PRESS))
    actions = buffering.handle(gesture(Gesture.FUNCTION_DOUBLE_PRESS))
    assert (actions[0], actions[-1]) == (SetMuted(False), Feedback("unmuted"))


def test_a_function_hold_toggles_stealth(recording: Controller) -> None:
    actions = recording.handle(gesture(Gesture.FUNCTION_HOLD))
    assert (actions[0], actions[-1]) == (SetStealth(True), Feedback("stealth_on"))
    assert recording.stealth


def test_a_modifier_change_is_audited(buffering: Controller) -> None:
    actions = buffering.handle(gesture(Gesture.FUNCTION_HOLD))
    detail = {"stealth": "true", "state": "buffering", "cause": "function_hold"}
    assert Audit("stealth", detail, AT) in actions


def test_modifiers_persist_into_recording_and_docking(buffering: Controller) -> None:
    buffering.handle(gesture(Gesture.FUNCTION_DOUBLE_PRESS))
    buffering.handle(gesture(Gesture.FUNCTION_HOLD))
    buffering.handle(holster())
    buffering.handle(DockInput(docked=True, at_ns=AT))
    assert (buffering.muted, buffering.stealth) == (True, True)


def test_power_off_resets_both_modifiers_before_shutting_down(buffering: Controller) -> None:
    buffering.handle(gesture(Gesture.FUNCTION_DOUBLE_PRESS))
    buffering.handle(gesture(Gesture.FUNCTION_HOLD))
    actions = buffering.handle(PowerInput(on=False, at_ns=AT))
    assert actions[-5:] == [
        SetMuted(False),
        Audit("muted", {"muted": "false", "state": "off", "cause": "power_off"}, AT),
        SetStealth(False),
        Audit("stealth", {"stealth": "false", "state": "off", "cause": "power_off"}, AT),
        Shutdown("power", AT),
    ]


def test_a_camera_boots_unmuted_after_a_power_cycle(buffering: Controller) -> None:
    buffering.handle(gesture(Gesture.FUNCTION_DOUBLE_PRESS))
    buffering.handle(gesture(Gesture.POWER_HOLD))
    buffering.handle(gesture(Gesture.POWER_HOLD))
    assert (buffering.state, buffering.muted) == (State.BUFFERING, False)


# ---- audit and feedback ----------------------------------------------------------------------


def test_every_transition_is_audited_once_with_its_cause(buffering: Controller) -> None:
    actions = buffering.handle(holster())
    cause = {"from": "buffering", "to": "recording", "cause": "trigger:holster"}
    assert state_audits(actions) == [Audit("state", cause, AT)]


def test_every_transition_tells_the_officer_the_new_state(recording: Controller) -> None:
    assert Feedback("state:docked") in recording.handle(DockInput(docked=True, at_ns=AT))


def test_the_stealth_reset_comes_after_the_power_off_feedback(buffering: Controller) -> None:
    buffering.handle(gesture(Gesture.FUNCTION_HOLD))
    actions = buffering.handle(gesture(Gesture.POWER_HOLD))
    assert actions.index(Feedback("state:off")) < actions.index(SetStealth(False))
