"""Configured feedback patterns replace the defaults cue by cue; stealth still hides the buzzer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from custody.profile import Profile
from device.config import DeviceConfig, FeedbackPattern
from device.events import State
from device.feedback import OfficerFeedback
from device.profile import device_settings
from hw.ports.io import IoConfig
from hw.sim.io import SimOfficerIo, open_sim_io
from tests.device.profile_rig import SETTINGS

#: three short vibrations and two short beeps: unlike every default cue
THREE_AND_TWO = FeedbackPattern(haptic_ms=(20, 20, 20, 20, 20), buzzer_ms=(20, 20, 20))


@pytest.fixture
def io() -> Iterator[SimOfficerIo]:
    sim = open_sim_io(IoConfig())
    yield sim
    sim.close()


def pulses(io: SimOfficerIo, part: Any, count: int) -> int:
    """How many times ``part`` switched on, once its pin has been through ``count`` states."""
    return [s.state for s in io.wait_for_states(part, count)].count(True)


def test_a_configured_event_cue_replaces_the_default(io: SimOfficerIo) -> None:
    feedback = OfficerFeedback(io, reminder_interval_s=120, cues={"marker": THREE_AND_TWO})
    feedback.cue("marker")
    assert pulses(io, io.haptic, 7) == 3  # the default marker is one vibration
    assert pulses(io, io.buzzer, 5) == 2  # and one beep


def test_a_configured_state_cue_replaces_the_default(io: SimOfficerIo) -> None:
    feedback = OfficerFeedback(io, reminder_interval_s=120, cues={"buffering": THREE_AND_TWO})
    feedback.show_state(State.BUFFERING, now_ns=0)
    assert pulses(io, io.haptic, 7) == 3  # the default is one vibration


def test_a_cue_not_configured_keeps_its_default(io: SimOfficerIo) -> None:
    one = FeedbackPattern(haptic_ms=(20,), buzzer_ms=())
    feedback = OfficerFeedback(io, reminder_interval_s=120, cues={"marker": one})
    feedback.cue("muted")
    assert pulses(io, io.haptic, 5) == 2  # the default muted cue: two vibrations
    assert io.states(io.buzzer) == [False]  # and no beep


def test_stealth_silences_a_configured_buzzer_and_keeps_its_vibration(io: SimOfficerIo) -> None:
    feedback = OfficerFeedback(io, reminder_interval_s=120, cues={"marker": THREE_AND_TWO})
    feedback.set_stealth(True)
    feedback.cue("marker")
    assert pulses(io, io.haptic, 7) == 3
    assert True not in io.states(io.buzzer)


def test_a_configured_empty_buzzer_pattern_makes_the_cue_silent(io: SimOfficerIo) -> None:
    quiet = FeedbackPattern(haptic_ms=(20,), buzzer_ms=())
    feedback = OfficerFeedback(io, reminder_interval_s=120, cues={"reminder": quiet})
    feedback.cue("reminder")
    io.wait_for_states(io.haptic, 3)  # the default's beeps would have begun with it
    assert io.states(io.buzzer) == [False]


def test_a_profiles_cue_replaces_the_configured_one_and_the_others_stay() -> None:
    own = DeviceConfig(feedback={"marker": THREE_AND_TWO, "reminder": THREE_AND_TWO})
    profile = Profile(
        "patrol", 1, 0, {**SETTINGS, "feedback": {"marker": {"haptic_ms": [5], "buzzer_ms": []}}}
    )
    merged = device_settings(own, profile).feedback
    assert merged == {"marker": FeedbackPattern(haptic_ms=(5,), buzzer_ms=()),
                      "reminder": THREE_AND_TWO}  # fmt: skip


BAD_SETTINGS: dict[str, dict[str, Any]] = {
    "unknown cue": {"feedback": {"siren": {"haptic_ms": [], "buzzer_ms": []}}},
    "step too short": {"feedback": {"marker": {"haptic_ms": [0], "buzzer_ms": []}}},
    "step too long": {"feedback": {"marker": {"haptic_ms": [10_001], "buzzer_ms": []}}},
    "too many steps": {"feedback": {"marker": {"haptic_ms": [10] * 17, "buzzer_ms": []}}},
    "missing buzzer": {"feedback": {"marker": {"haptic_ms": [10]}}},
    "unknown trigger kind": {"trigger_kinds": ["holster", "telepathy"]},
    "registry hash not hex 64": {"trigger_registry_sha256": "ab" * 31},
}


@pytest.mark.parametrize("case", BAD_SETTINGS, ids=list(BAD_SETTINGS))
def test_the_device_table_refuses_what_a_profile_may_not_hold(case: str) -> None:
    with pytest.raises(ValidationError):
        DeviceConfig.model_validate(BAD_SETTINGS[case])


def test_configured_trigger_kinds_are_kept_sorted_and_unique() -> None:
    kinds = DeviceConfig.model_validate({"trigger_kinds": ["siren", "holster", "siren"]})
    assert kinds.trigger_kinds == ("holster", "siren")
