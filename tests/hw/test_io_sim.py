"""SimOfficerIo: gpiozero devices on a private MockFactory, with test controls on the pins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hw.errors import ConfigError, DeviceClosed
from hw.ports.io import IoConfig, IoPins
from hw.sim.clock import SimClock
from hw.sim.io import Part, SimOfficerIo, open_sim_io

Edge = tuple[bool, int]


@pytest.fixture
def clock() -> SimClock:
    return SimClock(virtual=True)


@pytest.fixture
def io(clock: SimClock) -> Iterator[SimOfficerIo]:
    io = open_sim_io(IoConfig(), clock)
    yield io
    io.close()


@pytest.fixture
def edges(io: SimOfficerIo) -> list[Edge]:
    """Every (pressed, monotonic_ns) the record button reports."""
    seen: list[Edge] = []
    io.record_button.on_change(lambda pressed, ns: seen.append((pressed, ns)))
    return seen


def durations(io: SimOfficerIo, part: Part, count: int) -> list[tuple[bool, float]]:
    """(state, seconds the pin spent in the state before it) for the first ``count`` states."""
    history = io.wait_for_states(part, count)
    return [(bool(s.state), s.timestamp) for s in history[:count]]


def test_pressing_the_record_button_reports_pressed_then_released(
    io: SimOfficerIo, edges: list[Edge]
) -> None:
    io.press(io.record_button)
    assert io.record_button.is_pressed
    io.release(io.record_button)
    assert [pressed for pressed, _ in edges] == [True, False]
    assert not io.record_button.is_pressed


def test_a_press_drives_the_pulled_up_pin_low(io: SimOfficerIo) -> None:
    pin = io.pin(io.record_button)
    assert pin.state  # pulled up at rest
    io.press(io.record_button)
    assert not pin.state


def test_edges_are_stamped_with_the_injected_clock(
    io: SimOfficerIo, clock: SimClock, edges: list[Edge]
) -> None:
    clock.advance(7)
    io.hold(io.record_button, 3.0)
    assert edges == [(True, 7_000_000_000), (False, 10_000_000_000)]


def test_a_hold_on_a_virtual_clock_returns_at_once(io: SimOfficerIo, clock: SimClock) -> None:
    io.hold(io.function_button, 3600.0, clock)
    assert clock.monotonic_ns() == 3600 * 10**9


def test_the_function_button_does_not_report_as_the_record_button(
    io: SimOfficerIo, edges: list[Edge]
) -> None:
    io.press(io.function_button)
    io.release(io.function_button)
    assert edges == []


def test_a_removed_handler_hears_nothing(io: SimOfficerIo, edges: list[Edge]) -> None:
    io.record_button.on_change(None)
    io.press(io.record_button)
    assert edges == []


def test_a_blinking_led_toggles_its_pin(io: SimOfficerIo) -> None:
    io.green_led.blink(0.02, 0.03, times=3)
    states = durations(io, io.green_led, 7)
    assert [state for state, _ in states] == [False, True, False, True, False, True, False]
    assert all(seconds >= 0.02 for state, seconds in states[2::2])  # each "on" lasted its 20 ms
    assert all(seconds >= 0.03 for state, seconds in states[3::2])  # each "off" its 30 ms


def test_a_haptic_pattern_plays_its_transitions_in_order(io: SimOfficerIo) -> None:
    io.haptic.pulse([0.05, 0.03, 0.08])
    states = durations(io, io.haptic, 5)
    assert [state for state, _ in states] == [False, True, False, True, False]
    # Event.wait never returns early, so each state lasted at least as long as asked
    on_1, off_1, on_2 = (seconds for _, seconds in states[2:5])
    assert on_1 >= 0.05 and off_1 >= 0.03 and on_2 >= 0.08
    assert not io.haptic.is_active


def test_a_beep_pattern_matches_gpiozeros_own_assertion(io: SimOfficerIo) -> None:
    io.buzzer.beep([0.2, 0.2, 0.2])
    io.wait_for_states(io.buzzer, 5)
    io.pin(io.buzzer).assert_states_and_times(
        [(0.0, False), (0.0, True), (0.2, False), (0.2, True), (0.2, False)]
    )


def test_a_new_pattern_replaces_the_one_playing(io: SimOfficerIo) -> None:
    io.haptic.pulse([30.0])
    io.wait_for_states(io.haptic, 2)
    io.haptic.pulse([0.01])
    states = durations(io, io.haptic, 5)
    assert [state for state, _ in states] == [False, True, False, True, False]


def test_an_empty_pattern_stops_the_output(io: SimOfficerIo) -> None:
    io.buzzer.beep([30.0])
    io.wait_for_states(io.buzzer, 2)
    io.buzzer.beep([])
    assert io.states(io.buzzer) == [False, True, False]


def test_two_sims_have_pins_of_their_own(clock: SimClock) -> None:
    first, second = open_sim_io(IoConfig(), clock), open_sim_io(IoConfig(), clock)
    try:
        first.red_led.on()
        assert first.red_led.is_lit and not second.red_led.is_lit
    finally:
        first.close()
        second.close()


def test_two_parts_on_one_pin_is_a_config_error_naming_the_pin() -> None:
    clash = IoConfig(pins=IoPins(red_led=5, green_led=5))
    with pytest.raises(ConfigError, match="GPIO 5 for the green LED"):
        open_sim_io(clash)


def test_a_failed_open_releases_the_pins_it_took() -> None:
    clash = IoConfig(pins=IoPins(buzzer=17))  # the record button's pin
    with pytest.raises(ConfigError, match="GPIO 17 for the buzzer"):
        open_sim_io(clash)


def test_pressing_after_close_raises_device_closed(io: SimOfficerIo) -> None:
    io.close()
    with pytest.raises(DeviceClosed):
        io.press(io.record_button)


def test_pin_history_is_only_kept_for_this_ios_parts(io: SimOfficerIo) -> None:
    other = open_sim_io(IoConfig())
    try:
        with pytest.raises(ValueError, match="not a part"):
            io.pin(other.red_led)
    finally:
        other.close()
