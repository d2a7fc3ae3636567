"""The gesture detector: button edges in, the officer's gestures out, on a virtual timeline."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.config import DeviceConfig
from device.events import Gesture, GestureInput
from device.gestures import BUTTONS, Button, GestureDetector

MS = 1_000_000
WINDOW_NS = 400 * MS
HOLD_NS = 3_000 * MS


@pytest.fixture
def detector() -> GestureDetector:
    return GestureDetector(double_press_window_s=0.4, hold_s=3.0)


def click(
    detector: GestureDetector, button: Button, down_ms: int, up_ms: int
) -> list[GestureInput]:
    return detector.edge(button, True, down_ms * MS) + detector.edge(button, False, up_ms * MS)


# ---- record button -------------------------------------------------------------------------


def test_double_press_is_reported_on_the_second_press_down(detector: GestureDetector) -> None:
    assert click(detector, "record", 0, 100) == []
    assert detector.edge("record", True, 300 * MS) == [
        GestureInput(Gesture.RECORD_DOUBLE_PRESS, 300 * MS)
    ]


def test_second_press_exactly_at_the_end_of_the_window_still_counts(
    detector: GestureDetector,
) -> None:
    click(detector, "record", 0, 100)
    assert detector.edge("record", True, 100 * MS + WINDOW_NS) == [
        GestureInput(Gesture.RECORD_DOUBLE_PRESS, 100 * MS + WINDOW_NS)
    ]


def test_single_press_waits_until_the_window_has_passed(detector: GestureDetector) -> None:
    click(detector, "record", 0, 100)
    assert detector.tick(500 * MS) == []
    assert detector.tick(501 * MS) == [GestureInput(Gesture.RECORD_SINGLE_PRESS, 0)]


def test_single_press_is_reported_once(detector: GestureDetector) -> None:
    click(detector, "record", 0, 100)
    detector.tick(600 * MS)
    assert detector.tick(5_000 * MS) == []


def test_single_press_carries_the_time_of_the_press(detector: GestureDetector) -> None:
    click(detector, "record", 1_000, 1_150)
    assert detector.tick(2_000 * MS) == [GestureInput(Gesture.RECORD_SINGLE_PRESS, 1_000 * MS)]


def test_a_late_press_reports_the_pending_single_press_before_anything_else(
    detector: GestureDetector,
) -> None:
    click(detector, "record", 0, 100)
    assert detector.edge("record", True, 900 * MS) == [GestureInput(Gesture.RECORD_SINGLE_PRESS, 0)]


def test_triple_press_is_a_double_press_then_a_single_press(detector: GestureDetector) -> None:
    out = click(detector, "record", 0, 100) + click(detector, "record", 200, 300)
    out += click(detector, "record", 400, 500) + detector.tick(2_000 * MS)
    assert [g.gesture for g in out] == [Gesture.RECORD_DOUBLE_PRESS, Gesture.RECORD_SINGLE_PRESS]


def test_hold_is_reported_while_the_button_is_still_down(detector: GestureDetector) -> None:
    detector.edge("record", True, 0)
    assert detector.tick(HOLD_NS - 1) == []
    assert detector.tick(HOLD_NS) == [GestureInput(Gesture.RECORD_HOLD, HOLD_NS)]


def test_hold_is_reported_once_per_press(detector: GestureDetector) -> None:
    detector.edge("record", True, 0)
    detector.tick(HOLD_NS)
    assert detector.tick(3 * HOLD_NS) == []
    assert detector.edge("record", False, 4 * HOLD_NS) == []


def test_release_after_the_hold_time_reports_the_hold_when_no_tick_came(
    detector: GestureDetector,
) -> None:
    detector.edge("record", True, 0)
    assert detector.edge("record", False, 4_000 * MS) == [
        GestureInput(Gesture.RECORD_HOLD, HOLD_NS)
    ]


def test_a_held_press_is_never_also_a_single_press(detector: GestureDetector) -> None:
    detector.edge("record", True, 0)
    out = detector.edge("record", False, HOLD_NS) + detector.tick(10 * HOLD_NS)
    assert [g.gesture for g in out] == [Gesture.RECORD_HOLD]


def test_the_second_press_of_a_double_press_never_becomes_a_hold(
    detector: GestureDetector,
) -> None:
    click(detector, "record", 0, 100)
    detector.edge("record", True, 200 * MS)
    out = detector.tick(200 * MS + 2 * HOLD_NS) + detector.edge("record", False, 3 * HOLD_NS)
    assert out + detector.tick(4 * HOLD_NS) == []


# ---- function button and both buttons ----------------------------------------------------


def test_function_single_press_yields_nothing(detector: GestureDetector) -> None:
    assert click(detector, "function", 0, 100) + detector.tick(5_000 * MS) == []


def test_function_double_press_is_reported_on_the_second_press(detector: GestureDetector) -> None:
    out = click(detector, "function", 0, 100) + click(detector, "function", 250, 300)
    assert out == [GestureInput(Gesture.FUNCTION_DOUBLE_PRESS, 250 * MS)]


def test_function_hold_is_reported_at_the_hold_time(detector: GestureDetector) -> None:
    detector.edge("function", True, 0)
    assert detector.tick(HOLD_NS) == [GestureInput(Gesture.FUNCTION_HOLD, HOLD_NS)]


def test_both_buttons_held_report_power_hold_and_no_individual_hold(
    detector: GestureDetector,
) -> None:
    detector.edge("record", True, 0)
    detector.edge("function", True, 50 * MS)
    out = detector.tick(10 * HOLD_NS)
    assert out == [GestureInput(Gesture.POWER_HOLD, 50 * MS + HOLD_NS)]


def test_power_hold_is_reported_once_per_chord(detector: GestureDetector) -> None:
    detector.edge("record", True, 0)
    detector.edge("function", True, 0)
    detector.tick(HOLD_NS)
    out = detector.tick(5 * HOLD_NS) + detector.edge("record", False, 6 * HOLD_NS)
    assert out + detector.edge("function", False, 6 * HOLD_NS) + detector.tick(9 * HOLD_NS) == []


def test_a_short_chord_yields_no_gesture_at_all(detector: GestureDetector) -> None:
    detector.edge("record", True, 0)
    detector.edge("function", True, 10 * MS)
    out = detector.edge("record", False, 100 * MS) + detector.edge("function", False, 120 * MS)
    assert out + detector.tick(10 * HOLD_NS) == []


def test_a_hold_reached_before_the_other_button_went_down_is_still_reported(
    detector: GestureDetector,
) -> None:
    detector.edge("record", True, 0)
    out = detector.edge("function", True, HOLD_NS + 1)
    assert out == [GestureInput(Gesture.RECORD_HOLD, HOLD_NS)]


# ---- robustness ----------------------------------------------------------------------------


def test_an_out_of_order_edge_is_ignored_and_counted(detector: GestureDetector) -> None:
    detector.edge("record", True, 1_000 * MS)
    assert detector.edge("record", False, 500 * MS) == []
    assert detector.ignored["out_of_order"] == 1
    assert detector.pressed("record")


def test_a_tick_from_the_past_is_ignored_and_counted(detector: GestureDetector) -> None:
    detector.tick(1_000 * MS)
    assert detector.tick(999 * MS) == []
    assert detector.ignored["out_of_order"] == 1


def test_a_repeated_edge_is_ignored_and_counted(detector: GestureDetector) -> None:
    detector.edge("record", True, 0)
    detector.edge("record", True, 10 * MS)
    assert detector.ignored["repeated_edge"] == 1
    assert detector.tick(HOLD_NS) == [GestureInput(Gesture.RECORD_HOLD, HOLD_NS)]


def test_next_due_tells_when_the_pending_single_press_is_settled(
    detector: GestureDetector,
) -> None:
    assert detector.next_due_ns() is None
    click(detector, "record", 0, 100)
    assert detector.next_due_ns() == 100 * MS + WINDOW_NS + 1


def test_timings_come_from_the_device_config() -> None:
    detector = GestureDetector.from_config(DeviceConfig(double_press_window_s=0.25, hold_s=2.0))
    detector.edge("record", True, 0)
    assert detector.tick(2_000 * MS) == [GestureInput(Gesture.RECORD_HOLD, 2_000 * MS)]


def test_non_positive_timings_are_refused() -> None:
    with pytest.raises(ValueError, match="hold_s=0"):
        GestureDetector(double_press_window_s=0.4, hold_s=0)


# ---- the detector against a timeline model -------------------------------------------------


@dataclass
class Press:
    button: Button
    down: int
    up: int | None  #: None: still down at the end of the timeline


Op = tuple[Button | None, int]  #: (button toggled, or None for a tick; at_ns)

GAPS = st.one_of(
    st.integers(1, 2 * WINDOW_NS),
    st.integers(1, 2 * HOLD_NS),
    st.sampled_from([WINDOW_NS - 1, WINDOW_NS, WINDOW_NS + 1, HOLD_NS - 1, HOLD_NS, HOLD_NS + 1]),
)


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[Op], int]:
    """Strictly increasing edges of both buttons, ticks in between, and the time of a last tick."""
    steps = draw(st.lists(st.tuples(st.sampled_from([*BUTTONS, None]), GAPS), max_size=24))
    ops: list[Op] = []
    now = 0
    for button, gap in steps:
        now += gap
        ops.append((button, now))
    return ops, now + draw(GAPS)


def presses_of(ops: list[Op]) -> list[Press]:
    presses: list[Press] = []
    open_press: dict[Button, Press] = {}
    for button, at in ops:
        if button is None:
            continue
        if button in open_press:
            open_press.pop(button).up = at
        else:
            open_press[button] = Press(button, at, None)
            presses.append(open_press[button])
    return presses


def expected_gestures(ops: list[Op], end: int) -> list[GestureInput]:
    """The documented rules, stated over whole press intervals rather than edge by edge."""
    presses = presses_of(ops)
    found: list[tuple[int, int, GestureInput]] = []  # (due, 0 timer / 1 edge, gesture)
    for button in BUTTONS:
        found += _one_button(button, presses, end)
    for rec in (p for p in presses if p.button == "record"):
        for fun in (p for p in presses if p.button == "function"):
            start = max(rec.down, fun.down)
            stop = min(end if rec.up is None else rec.up, end if fun.up is None else fun.up)
            if stop - start >= HOLD_NS:
                found.append(
                    (start + HOLD_NS, 0, GestureInput(Gesture.POWER_HOLD, start + HOLD_NS))
                )
    rank = list(Gesture)
    found.sort(key=lambda f: (f[0], f[1], rank.index(f[2].gesture)))
    return [gesture for *_, gesture in found]


def _one_button(
    button: Button, presses: list[Press], end: int
) -> list[tuple[int, int, GestureInput]]:
    mine = [p for p in presses if p.button == button]
    others = [p for p in presses if p.button != button]

    def other_down_during(p: Press, until: int) -> bool:
        return any(q.down < until and (q.up is None or q.up > p.down) for q in others)

    double = Gesture.RECORD_DOUBLE_PRESS if button == "record" else Gesture.FUNCTION_DOUBLE_PRESS
    hold = Gesture.RECORD_HOLD if button == "record" else Gesture.FUNCTION_HOLD
    found: list[tuple[int, int, GestureInput]] = []

    def single(p: Press) -> None:
        if button == "record" and p.up is not None:
            found.append(
                (p.up + WINDOW_NS + 1, 0, GestureInput(Gesture.RECORD_SINGLE_PRESS, p.down))
            )

    waiting: Press | None = None
    for p in mine:
        second = False
        if waiting is not None and waiting.up is not None and p.down - waiting.up <= WINDOW_NS:
            second = not other_down_during(p, p.down)
            if second:
                found.append((p.down, 1, GestureInput(double, p.down)))
        elif waiting is not None:
            single(waiting)
        until = end if p.up is None else p.up
        held = (
            not second and until - p.down >= HOLD_NS and not other_down_during(p, p.down + HOLD_NS)
        )
        if held:
            found.append((p.down + HOLD_NS, 0, GestureInput(hold, p.down + HOLD_NS)))
        spent = second or held or other_down_during(p, until)
        waiting = None if spent or p.up is None else p
    if waiting is not None and waiting.up is not None and end - waiting.up > WINDOW_NS:
        single(waiting)
    return found


@settings(max_examples=300, deadline=None)
@given(timelines())
def test_detector_reports_what_the_timeline_model_expects(timeline: tuple[list[Op], int]) -> None:
    ops, end = timeline
    detector = GestureDetector(double_press_window_s=0.4, hold_s=3.0)
    reported: list[GestureInput] = []
    for button, at in ops:
        if button is None:
            reported += detector.tick(at)
        else:
            reported += detector.edge(button, not detector.pressed(button), at)
    reported += detector.tick(end)
    assert reported == expected_gestures(ops, end)


@given(
    st.lists(
        st.tuples(st.sampled_from([*BUTTONS, None]), st.booleans(), st.integers(0, 10 * HOLD_NS)),
        max_size=40,
    )
)
def test_any_edges_in_any_order_are_taken_without_error_and_late_ones_counted(
    edges: list[tuple[Button | None, bool, int]],
) -> None:
    detector = GestureDetector(double_press_window_s=0.4, hold_s=3.0)
    newest = 0
    late = 0
    for button, pressed, at in edges:
        late += at < newest
        newest = max(newest, at)
        if button is None:
            detector.tick(at)
        else:
            detector.edge(button, pressed, at)
    assert detector.ignored["out_of_order"] == late
