"""Button gestures: what the officer meant, from the raw press and release edges of two buttons.

The camera has two buttons, RECORD and FUNCTION. These are the gestures an officer learns (times
are the defaults of ``[device] double_press_window_s`` and ``hold_s``):

=====================  ==========================================  ============================
Gesture                How                                         What it does
=====================  ==========================================  ============================
RECORD double press    press, release, press again within 0.4 s    start recording, at once
                                                                   (on the second press)
RECORD single press    one press, no second one within 0.4 s       add a marker (if recording)
RECORD hold            hold 3 s (felt while still holding)         stop recording
FUNCTION double press  press, release, press again within 0.4 s    mute / unmute audio
FUNCTION hold          hold 3 s                                    stealth on / off (no lights
                                                                   or tones; vibration only)
both buttons held      hold RECORD and FUNCTION together for 3 s   power on / power off
FUNCTION single press  press and release                           nothing (a brushed button
                                                                   must not change anything)
=====================  ==========================================  ============================

Rules that keep the gestures unambiguous:

- A hold is reported once per press, as soon as the time is reached; that press is never also a
  single press, however it ends.
- The second press of a double press is spent: holding it or releasing it does nothing more, so a
  double press that lingers never stops the recording it just started.
- A press during which the other button is also down belongs to a two-button chord and yields no
  gesture of its own; only the chord's POWER_HOLD (once per chord, when both have been down
  together for the hold time).
- Pressing a button again within the window always cancels that button's pending single press, so
  a press that began before a gesture was reported never produces a late single press.
- ``at_ns`` of a gesture is when the officer did it: the press for single and double presses (a
  marker marks the moment of the press, not the end of the window), the instant the hold time was
  reached for holds.

The detector is pure: it never reads a clock. ``edge`` first reports what fell due before the edge,
then the edge's own gesture; ``tick(now_ns)`` reports what fell due by ``now_ns``; gestures falling
due together come in the order of :class:`~device.events.Gesture`. An edge or tick older than the
newest seen is ignored and counted in ``ignored["out_of_order"]``; a press of a pressed button (or a
release of a released one) in ``ignored["repeated_edge"]``. It never raises for any input.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from device.events import Gesture, GestureInput

if TYPE_CHECKING:
    from device.config import DeviceConfig

Button = Literal["record", "function"]
BUTTONS: tuple[Button, ...] = ("record", "function")

_DOUBLE: dict[Button, Gesture] = {
    "record": Gesture.RECORD_DOUBLE_PRESS,
    "function": Gesture.FUNCTION_DOUBLE_PRESS,
}
_HOLD: dict[Button, Gesture] = {"record": Gesture.RECORD_HOLD, "function": Gesture.FUNCTION_HOLD}
_SINGLE: dict[Button, Gesture | None] = {"record": Gesture.RECORD_SINGLE_PRESS, "function": None}
_RANK = {gesture: rank for rank, gesture in enumerate(Gesture)}


@dataclass
class _ButtonState:
    #: when the current press began; None while the button is up
    down_at: int | None = None
    #: the current press can yield no gesture of its own any more (hold reported, chord, 2nd press)
    spent: bool = False
    #: a released press still waiting for a second one (the pending single press)
    first_down_at: int | None = None
    first_up_at: int | None = None


@dataclass(frozen=True)
class _Due:
    """Something a timer will settle: a pending single press, a hold or a chord's power hold."""

    due_ns: int
    what: Literal["single", "hold", "chord"]
    button: Button | None  #: None for the chord
    gesture: GestureInput | None  #: None for a function single press: it only closes its window

    def key(self) -> tuple[int, int]:
        return self.due_ns, _RANK[self.gesture.gesture] if self.gesture else len(_RANK)


class GestureDetector:
    """Turns ``(button, pressed, at_ns)`` edges into :class:`GestureInput` for the controller."""

    def __init__(self, double_press_window_s: float, hold_s: float) -> None:
        if not double_press_window_s > 0 or not hold_s > 0:
            raise ValueError(
                f"gesture timings must be positive (double_press_window_s="
                f"{double_press_window_s}, hold_s={hold_s}): fix [device] in the config"
            )
        self._window_ns = round(double_press_window_s * 1e9)
        self._hold_ns = round(hold_s * 1e9)
        self._buttons: dict[Button, _ButtonState] = {b: _ButtonState() for b in BUTTONS}
        self._chord_since: int | None = None
        self._chord_spent = False
        self._last_ns: int | None = None
        #: edges and ticks that were ignored, by reason ("out_of_order", "repeated_edge", ...)
        self.ignored: Counter[str] = Counter()

    @classmethod
    def from_config(cls, cfg: DeviceConfig) -> GestureDetector:
        return cls(cfg.double_press_window_s, cfg.hold_s)

    def pressed(self, button: Button) -> bool:
        return self._buttons[button].down_at is not None

    def edge(self, button: Button, pressed: bool, at_ns: int) -> list[GestureInput]:
        """One button went down (``pressed``) or up at ``at_ns``; returns the gestures now known."""
        if button not in self._buttons:
            self.ignored["unknown_button"] += 1
            return []
        if not self._in_order(at_ns):
            return []
        out = self._fire_due(at_ns)
        state = self._buttons[button]
        if pressed == (state.down_at is not None):
            # a bounce or a lost edge: the button is already where this edge says
            self.ignored["repeated_edge"] += 1
        elif pressed:
            out.extend(self._press(button, at_ns))
        else:
            self._release(button, at_ns)
        return out

    def tick(self, now_ns: int) -> list[GestureInput]:
        """Report the gestures whose time came by ``now_ns`` (single presses, holds)."""
        if not self._in_order(now_ns):
            return []
        return self._fire_due(now_ns)

    def next_due_ns(self) -> int | None:
        """The earliest time at which ``tick`` may report something; None when nothing waits."""
        dues = [due.due_ns for due in self._pending()]
        return min(dues, default=None)

    # ---- internals ----------------------------------------------------------------------

    def _in_order(self, at_ns: int) -> bool:
        if self._last_ns is not None and at_ns < self._last_ns:
            self.ignored["out_of_order"] += 1
            return False
        self._last_ns = at_ns
        return True

    def _press(self, button: Button, at_ns: int) -> list[GestureInput]:
        state = self._buttons[button]
        other = self._buttons[_other(button)]
        # anything still pending is within the window: _fire_due has cleared the expired ones
        second_press = state.first_up_at is not None
        state.down_at, state.spent = at_ns, False
        state.first_down_at = state.first_up_at = None
        if other.down_at is not None:
            state.spent = other.spent = True
            self._chord_since, self._chord_spent = at_ns, False
            return []
        if second_press:
            state.spent = True
            return [GestureInput(_DOUBLE[button], at_ns)]
        return []

    def _release(self, button: Button, at_ns: int) -> None:
        state = self._buttons[button]
        if not state.spent:
            state.first_down_at, state.first_up_at = state.down_at, at_ns
        state.down_at, state.spent = None, False
        self._chord_since = None

    def _pending(self) -> list[_Due]:
        """Everything that will fall due if no edge comes first, with its due time."""
        pending: list[_Due] = []
        for button, state in self._buttons.items():
            if state.first_up_at is not None and state.first_down_at is not None:
                single = _SINGLE[button]
                gesture = GestureInput(single, state.first_down_at) if single else None
                due = state.first_up_at + self._window_ns + 1
                pending.append(_Due(due, "single", button, gesture))
            if state.down_at is not None and not state.spent:
                due = state.down_at + self._hold_ns
                pending.append(_Due(due, "hold", button, GestureInput(_HOLD[button], due)))
        if self._chord_since is not None and not self._chord_spent:
            due = self._chord_since + self._hold_ns
            pending.append(_Due(due, "chord", None, GestureInput(Gesture.POWER_HOLD, due)))
        return pending

    def _fire_due(self, now_ns: int) -> list[GestureInput]:
        fired = sorted((d for d in self._pending() if d.due_ns <= now_ns), key=_Due.key)
        for due in fired:
            if due.button is None:
                self._chord_spent = True
            elif due.what == "hold":
                self._buttons[due.button].spent = True
            else:
                state = self._buttons[due.button]
                state.first_down_at = state.first_up_at = None
        return [due.gesture for due in fired if due.gesture is not None]


def _other(button: Button) -> Button:
    return "function" if button == "record" else "record"
