"""What the officer sees, feels and hears: one pattern per state and per event.

Patterns are data (``STATE_CUES``, ``EVENT_CUES``) so that an agency profile can change them
(``[device] feedback``: a cue listed there replaces the default for that cue, the rest stay) and
the officer-facing table in docs stays true. Stealth turns off the LEDs and the buzzer;
the haptic motor keeps working, because it is neither visible nor audible and an officer in
stealth still needs to know that the camera records. The recording reminder follows the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from device.config import FeedbackPattern
from device.events import State
from hw.ports.io import OfficerIo

#: alternating on/off seconds
Pattern = tuple[float, ...]


@dataclass(frozen=True)
class Look:
    """A state's steady display: each LED off, on, or blinking (on_s, off_s)."""

    red: bool | tuple[float, float]
    green: bool | tuple[float, float]


@dataclass(frozen=True)
class Cue:
    """A one-off signal: a vibration and a tone pattern."""

    haptic: Pattern = ()
    buzzer: Pattern = ()


STATE_LOOKS: dict[State, Look] = {
    State.OFF: Look(red=False, green=False),
    State.BUFFERING: Look(red=False, green=(0.1, 2.9)),  # a slow green wink: ready
    State.RECORDING: Look(red=(0.5, 0.5), green=False),  # blinking red: recording
    State.DOCKED: Look(red=False, green=True),
    State.FAULT: Look(red=(0.1, 0.1), green=False),  # fast red: needs attention
}

#: cues on entering a state
STATE_CUES: dict[State, Cue] = {
    State.RECORDING: Cue(haptic=(0.4,), buzzer=(0.1, 0.1, 0.1)),  # long buzz, two beeps
    State.BUFFERING: Cue(haptic=(0.15,), buzzer=(0.3,)),  # one beep: stopped
    State.FAULT: Cue(haptic=(0.2, 0.1, 0.2, 0.1, 0.2), buzzer=(1.0,)),
    State.DOCKED: Cue(),
    State.OFF: Cue(haptic=(0.6,)),
}

EVENT_CUES: dict[str, Cue] = {
    "marker": Cue(haptic=(0.1,), buzzer=(0.05,)),
    "muted": Cue(haptic=(0.1, 0.1, 0.1)),
    "unmuted": Cue(haptic=(0.1,)),
    "stealth_on": Cue(haptic=(0.3, 0.1, 0.3)),
    "stealth_off": Cue(haptic=(0.3,), buzzer=(0.05,)),
    "battery_low": Cue(haptic=(0.2, 0.2, 0.2), buzzer=(0.1, 0.1, 0.1, 0.1, 0.1)),
    "storage_low": Cue(haptic=(0.5, 0.3, 0.5), buzzer=(0.4, 0.2, 0.4)),
    "reminder": Cue(haptic=(0.2,), buzzer=(0.08, 0.12, 0.08)),
}


def cue_from(pattern: FeedbackPattern) -> Cue:
    """A configured pattern (milliseconds) as the cue the motor and buzzer play (seconds)."""
    return Cue(
        haptic=tuple(ms / 1000 for ms in pattern.haptic_ms),
        buzzer=tuple(ms / 1000 for ms in pattern.buzzer_ms),
    )


class OfficerFeedback:
    """Drives the LEDs, haptic motor and buzzer; ``tick`` sounds the recording reminder.

    ``cues``: patterns by cue name (a state's value or an event cue's name) that replace the
    defaults for those cues.
    """

    def __init__(
        self, io: OfficerIo, *, reminder_interval_s: float,
        cues: Mapping[str, FeedbackPattern] | None = None,
    ) -> None:  # fmt: skip
        overrides = {name: cue_from(pattern) for name, pattern in (cues or {}).items()}
        self._state_cues = {s: overrides.get(s.value, cue) for s, cue in STATE_CUES.items()}
        self._event_cues = {n: overrides.get(n, cue) for n, cue in EVENT_CUES.items()}
        self._io = io
        self._reminder_ns = round(reminder_interval_s * 1e9)
        self._state = State.OFF
        self._stealth = False
        self._next_reminder_ns: int | None = None
        self.shown: list[str] = []  #: every state and cue shown, newest last (for status and QA)

    @property
    def stealth(self) -> bool:
        return self._stealth

    def set_stealth(self, on: bool) -> None:
        """Hide or restore the LEDs and the buzzer; the controller's cue says it happened."""
        self._stealth = on
        self._show_look()

    def show_state(self, state: State, now_ns: int) -> None:
        self._state = state
        self._show_look()
        self._play(self._state_cues.get(state, Cue()))
        self.shown.append(f"state:{state.value}")
        recording = state is State.RECORDING and self._reminder_ns > 0
        self._next_reminder_ns = now_ns + self._reminder_ns if recording else None

    def cue(self, name: str) -> None:
        """Play a named event cue; an unknown name is a bug in the caller."""
        self._play(self._event_cues[name])
        self.shown.append(name)

    def tick(self, now_ns: int) -> None:
        if self._next_reminder_ns is not None and now_ns >= self._next_reminder_ns:
            self.cue("reminder")
            self._next_reminder_ns = now_ns + self._reminder_ns

    def _show_look(self) -> None:
        look = STATE_LOOKS[self._state]
        for led, setting in ((self._io.red_led, look.red), (self._io.green_led, look.green)):
            if self._stealth or setting is False:
                led.off()
            elif setting is True:
                led.on()
            else:
                led.blink(*setting)

    def _play(self, cue: Cue) -> None:
        if cue.haptic:
            self._io.haptic.pulse(cue.haptic)
        if cue.buzzer and not self._stealth:
            self._io.buzzer.beep(cue.buzzer)
