"""Officer feedback: each state and event has its own look, feel and sound; stealth hides them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from device.events import State
from device.feedback import OfficerFeedback
from hw.ports.io import IoConfig
from hw.sim.io import SimOfficerIo, open_sim_io

SECOND = 10**9


@pytest.fixture
def io() -> Iterator[SimOfficerIo]:
    sim = open_sim_io(IoConfig())
    yield sim
    sim.close()


@pytest.fixture
def feedback(io: SimOfficerIo) -> OfficerFeedback:
    return OfficerFeedback(io, reminder_interval_s=120)


def test_recording_blinks_the_red_led(io: SimOfficerIo, feedback: OfficerFeedback) -> None:
    feedback.show_state(State.RECORDING, now_ns=0)
    states = [s.state for s in io.wait_for_states(io.red_led, 3)]
    assert states[:3] == [False, True, False]
    assert not io.green_led.is_lit


def test_docked_shows_steady_green(io: SimOfficerIo, feedback: OfficerFeedback) -> None:
    feedback.show_state(State.DOCKED, now_ns=0)
    assert io.green_led.is_lit
    assert not io.red_led.is_lit


def test_starting_to_record_vibrates_and_beeps(io: SimOfficerIo, feedback: OfficerFeedback) -> None:
    feedback.show_state(State.RECORDING, now_ns=0)
    assert [s.state for s in io.wait_for_states(io.haptic, 3)][:3] == [False, True, False]
    assert [s.state for s in io.wait_for_states(io.buzzer, 3)][:3] == [False, True, False]


def test_reminder_sounds_once_the_interval_has_passed(feedback: OfficerFeedback) -> None:
    feedback.show_state(State.RECORDING, now_ns=0)
    feedback.tick(119 * SECOND)
    assert "reminder" not in feedback.shown
    feedback.tick(120 * SECOND)
    feedback.tick(121 * SECOND)
    assert feedback.shown.count("reminder") == 1
    feedback.tick(240 * SECOND)
    assert feedback.shown.count("reminder") == 2


def test_no_reminder_once_recording_stopped(feedback: OfficerFeedback) -> None:
    feedback.show_state(State.RECORDING, now_ns=0)
    feedback.show_state(State.BUFFERING, now_ns=10 * SECOND)
    feedback.tick(600 * SECOND)
    assert "reminder" not in feedback.shown


def test_a_zero_interval_disables_the_reminder(io: SimOfficerIo) -> None:
    feedback = OfficerFeedback(io, reminder_interval_s=0)
    feedback.show_state(State.RECORDING, now_ns=0)
    feedback.tick(3600 * SECOND)
    assert "reminder" not in feedback.shown


def test_stealth_darkens_the_leds(io: SimOfficerIo, feedback: OfficerFeedback) -> None:
    feedback.show_state(State.DOCKED, now_ns=0)
    feedback.set_stealth(True)
    assert not io.green_led.is_lit
    assert not io.red_led.is_lit


def test_stealth_silences_the_buzzer_but_keeps_vibration(
    io: SimOfficerIo, feedback: OfficerFeedback
) -> None:
    feedback.set_stealth(True)
    io.clear_states(io.buzzer)
    io.clear_states(io.haptic)
    feedback.cue("marker")
    io.wait_for_states(io.haptic, 2)
    assert True not in io.states(io.buzzer)


def test_leaving_stealth_restores_the_state_look(
    io: SimOfficerIo, feedback: OfficerFeedback
) -> None:
    feedback.show_state(State.DOCKED, now_ns=0)
    feedback.set_stealth(True)
    feedback.set_stealth(False)
    assert io.green_led.is_lit


def test_every_event_the_controller_names_has_a_cue(feedback: OfficerFeedback) -> None:
    for name in ("marker", "muted", "unmuted", "battery_low", "storage_low", "reminder"):
        feedback.cue(name)
    assert feedback.shown[-1] == "reminder"
