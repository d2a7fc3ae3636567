"""The officer I/O contract, run against gpiozero on MockFactory (sim) and on the real GPIO."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from hw.errors import AdapterUnavailable, DeviceClosed
from hw.ports.io import Button, Buzzer, Haptic, IoConfig, Led, OfficerIo, open_io
from tests.hw.polling import poll


@pytest.fixture(params=["sim", pytest.param("gpiozero", marks=pytest.mark.real)])
def io(request: pytest.FixtureRequest) -> Iterator[OfficerIo]:
    try:
        io = open_io(IoConfig(adapter=request.param))
    except AdapterUnavailable as exc:
        pytest.skip(str(exc))
    yield io
    io.close()


def seen(read: Callable[[], bool], value: bool, what: str) -> None:
    poll(lambda: read() is value, what, timeout=2.0)


def test_every_part_fits_its_port(io: OfficerIo) -> None:
    assert isinstance(io.record_button, Button) and isinstance(io.function_button, Button)
    assert isinstance(io.red_led, Led) and isinstance(io.green_led, Led)
    assert isinstance(io.haptic, Haptic) and isinstance(io.buzzer, Buzzer)


def test_buttons_read_released_when_nobody_presses_them(io: OfficerIo) -> None:
    assert not io.record_button.is_pressed
    assert not io.function_button.is_pressed


def test_outputs_start_off(io: OfficerIo) -> None:
    assert not io.red_led.is_lit and not io.green_led.is_lit
    assert not io.haptic.is_active and not io.buzzer.is_active


def test_an_led_lights_and_goes_dark(io: OfficerIo) -> None:
    io.green_led.on()
    assert io.green_led.is_lit
    io.green_led.off()
    assert not io.green_led.is_lit


def test_a_blinking_led_toggles(io: OfficerIo) -> None:
    io.red_led.blink(0.05, 0.05)
    seen(lambda: io.red_led.is_lit, True, "LED on")
    seen(lambda: io.red_led.is_lit, False, "LED off")
    seen(lambda: io.red_led.is_lit, True, "LED on again")


def test_a_haptic_pulse_runs_and_ends_off(io: OfficerIo) -> None:
    io.haptic.pulse([0.1, 0.05, 0.1])
    seen(lambda: io.haptic.is_active, True, "motor running")
    seen(lambda: io.haptic.is_active, False, "motor stopped")


def test_a_beep_sounds_and_ends_silent(io: OfficerIo) -> None:
    io.buzzer.beep([0.1])
    seen(lambda: io.buzzer.is_active, True, "buzzer sounding")
    seen(lambda: io.buzzer.is_active, False, "buzzer silent")


def test_a_long_pattern_never_blocks_the_caller(io: OfficerIo) -> None:
    started = time.monotonic()
    io.haptic.pulse([30.0])
    io.buzzer.beep([30.0])
    assert time.monotonic() - started < 1.0
    assert io.haptic.is_active and io.buzzer.is_active


def test_closing_stops_a_playing_pattern_at_once(io: OfficerIo) -> None:
    io.haptic.pulse([30.0])
    started = time.monotonic()
    io.close()
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("pattern", [[-0.1], [float("nan")], [0.1, float("inf")]])
def test_a_pattern_with_impossible_durations_is_refused(
    io: OfficerIo, pattern: list[float]
) -> None:
    with pytest.raises(ValueError, match="durations"):
        io.haptic.pulse(pattern)
    with pytest.raises(ValueError, match="durations"):
        io.buzzer.beep(pattern)


def test_parts_used_after_close_raise_device_closed(io: OfficerIo) -> None:
    io.close()
    with pytest.raises(DeviceClosed, match="red LED"):
        io.red_led.on()
    with pytest.raises(DeviceClosed, match="haptic"):
        io.haptic.pulse([0.1])
    with pytest.raises(DeviceClosed, match="record button"):
        io.record_button.on_change(lambda pressed, ns: None)
