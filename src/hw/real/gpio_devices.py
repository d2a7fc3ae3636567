"""gpiozero adapters for the officer I/O port, over whatever pin factory they are given.

The same classes drive real pins (lgpio on a Raspberry Pi) and gpiozero's ``MockFactory`` in the
sim, so the simulation exercises gpiozero's own device code rather than a look-alike.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

import gpiozero
import gpiozero.exc
from gpiozero.pins import Factory
from gpiozero.threads import GPIOThread

from hw.errors import ConfigError, DeviceClosed, DeviceError
from hw.ports.io import ButtonHandler, IoConfig, OfficerIo

#: where edge timestamps come from (``Clock.monotonic_ns`` or ``time.monotonic_ns``)
MonotonicNs = Callable[[], int]


@contextmanager
def _gpio_errors(name: str) -> Iterator[None]:
    """Translate gpiozero's exceptions for one named part into the hardware layer's."""
    try:
        yield
    except gpiozero.exc.DeviceClosed as exc:
        raise DeviceClosed(f"the {name} was used after close(): open the I/O port again") from exc
    except gpiozero.exc.GPIOZeroError as exc:
        raise DeviceError(f"the {name} failed: {exc}") from exc


@contextmanager
def _opening(name: str, pin: int) -> Iterator[None]:
    try:
        yield
    except gpiozero.exc.GPIOZeroError as exc:
        raise ConfigError(
            f"cannot use GPIO {pin} for the {name}: {exc}; pick another pin in [io.pins]"
        ) from exc


class GpiozeroButton:
    """A push button between its GPIO and ground: the internal pull-up makes "pressed" read low.

    It sits on ``gpiozero.DigitalInputDevice`` rather than ``gpiozero.Button``: holds are the
    firmware's gesture to time, and Button's hold thread would poll at 10 Hz for nothing and make
    ``close`` wait up to its hold time while the button is down.
    """

    def __init__(
        self,
        pin: int,
        *,
        pin_factory: Factory,
        name: str = "button",
        bounce_s: float = 0.0,
        monotonic_ns: MonotonicNs = time.monotonic_ns,
    ) -> None:
        self._name = name
        self._monotonic_ns = monotonic_ns
        with _opening(name, pin):
            self._device = gpiozero.DigitalInputDevice(
                pin, pull_up=True, bounce_time=bounce_s or None, pin_factory=pin_factory
            )

    @property
    def is_pressed(self) -> bool:
        with _gpio_errors(self._name):
            return bool(self._device.is_active)

    def on_change(self, handler: ButtonHandler | None) -> None:
        if self._device.closed:
            raise DeviceClosed(f"the {self._name} was used after close(): open the I/O port again")
        if handler is None:
            self._device.when_activated = None
            self._device.when_deactivated = None
            return
        stamp = self._monotonic_ns
        # gpiozero calls these on its edge thread (or inside MockPin.drive_low/high); the stamp
        # is taken there, on the caller's clock, so gestures can be timed in virtual time
        self._device.when_activated = lambda: handler(True, stamp())
        self._device.when_deactivated = lambda: handler(False, stamp())

    def close(self) -> None:
        self._device.close()


def _check_seconds(what: str, values: Sequence[float]) -> tuple[float, ...]:
    checked = tuple(float(v) for v in values)
    if any(not math.isfinite(v) or v < 0 for v in checked):
        raise ValueError(f"{what} durations must be finite seconds >= 0, got {list(values)}")
    return checked


class GpiozeroLed:
    def __init__(self, pin: int, *, pin_factory: Factory, name: str = "LED") -> None:
        self._name = name
        with _opening(name, pin):
            self._device = gpiozero.LED(pin, pin_factory=pin_factory)

    @property
    def is_lit(self) -> bool:
        with _gpio_errors(self._name):
            return bool(self._device.is_lit)

    def on(self) -> None:
        with _gpio_errors(self._name):
            self._device.on()

    def off(self) -> None:
        with _gpio_errors(self._name):
            self._device.off()

    def blink(self, on_s: float, off_s: float, times: int | None = None) -> None:
        _check_seconds(f"{self._name} blink", (on_s, off_s))
        if times is not None and times < 0:
            raise ValueError(f"{self._name} blink times must be >= 0 or None, got {times}")
        with _gpio_errors(self._name):
            # gpiozero toggles the pin on its own thread and returns at once
            self._device.blink(on_time=on_s, off_time=off_s, n=times, background=True)

    def close(self) -> None:
        self._device.close()


class _Switchable(Protocol):
    def on(self) -> None: ...

    def off(self) -> None: ...


class _PatternPlayer:
    """Plays alternating on/off durations on an output in a gpiozero background thread.

    A new pattern replaces the one playing; the output always ends off. ``play`` never blocks
    for the length of a pattern, only for as long as it takes the previous thread to stop.
    """

    def __init__(self, device: _Switchable, name: str) -> None:
        self._device = device
        self._name = name
        self._lock = threading.Lock()
        self._thread: GPIOThread | None = None

    def play(self, pattern: Sequence[float]) -> None:
        durations = _check_seconds(f"{self._name} pattern", pattern)
        with self._lock, _gpio_errors(self._name):
            self._stop()
            self._device.off()
            if not durations:
                return

            def run() -> None:
                self._run(durations, thread.stopping)

            thread = GPIOThread(run, name=f"{self._name} pattern")
            self._thread = thread
            thread.start()

    def _run(self, durations: tuple[float, ...], stopping: threading.Event) -> None:
        for index, seconds in enumerate(durations):
            if index % 2 == 0:
                self._device.on()
            else:
                self._device.off()
            if stopping.wait(seconds):
                return  # whoever stopped us decides the pin's state
        self._device.off()

    def _stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    def stop(self) -> None:
        with self._lock:
            self._stop()


class GpiozeroHaptic:
    """A vibration motor switched by a transistor on an active-high GPIO."""

    def __init__(self, pin: int, *, pin_factory: Factory, name: str = "haptic motor") -> None:
        self._name = name
        with _opening(name, pin):
            self._device = gpiozero.DigitalOutputDevice(pin, pin_factory=pin_factory)
        self._player = _PatternPlayer(self._device, name)

    @property
    def is_active(self) -> bool:
        with _gpio_errors(self._name):
            return bool(self._device.is_active)

    def pulse(self, pattern: Sequence[float]) -> None:
        self._player.play(pattern)

    def close(self) -> None:
        self._player.stop()
        self._device.close()


class GpiozeroBuzzer:
    """An active buzzer (it makes its own tone when powered) on an active-high GPIO."""

    def __init__(self, pin: int, *, pin_factory: Factory, name: str = "buzzer") -> None:
        self._name = name
        with _opening(name, pin):
            self._device = gpiozero.Buzzer(pin, pin_factory=pin_factory)
        self._player = _PatternPlayer(self._device, name)

    @property
    def is_active(self) -> bool:
        with _gpio_errors(self._name):
            return bool(self._device.is_active)

    def beep(self, pattern: Sequence[float]) -> None:
        self._player.play(pattern)

    def close(self) -> None:
        self._player.stop()
        self._device.close()


@dataclass(frozen=True)
class GpiozeroDevices:
    """The six parts of the officer I/O, opened on one pin factory."""

    record_button: GpiozeroButton
    function_button: GpiozeroButton
    red_led: GpiozeroLed
    green_led: GpiozeroLed
    haptic: GpiozeroHaptic
    buzzer: GpiozeroBuzzer

    def close(self) -> None:
        for part in (
            self.record_button,
            self.function_button,
            self.red_led,
            self.green_led,
            self.haptic,
            self.buzzer,
        ):
            part.close()

    def officer_io(self) -> OfficerIo:
        return OfficerIo(
            record_button=self.record_button,
            function_button=self.function_button,
            red_led=self.red_led,
            green_led=self.green_led,
            haptic=self.haptic,
            buzzer=self.buzzer,
            close=self.close,
        )


class _Closable(Protocol):
    def close(self) -> None: ...


_Part = TypeVar("_Part", bound=_Closable)


def open_devices(
    cfg: IoConfig, *, pin_factory: Factory, monotonic_ns: MonotonicNs = time.monotonic_ns
) -> GpiozeroDevices:
    """Open every part on ``pin_factory``; if one pin fails, the parts already open are closed."""
    pins = cfg.pins
    with ExitStack() as opened:

        def keep(part: _Part) -> _Part:
            opened.callback(part.close)
            return part

        def button(pin: int, name: str) -> GpiozeroButton:
            return GpiozeroButton(
                pin,
                pin_factory=pin_factory,
                name=name,
                bounce_s=cfg.bounce_s,
                monotonic_ns=monotonic_ns,
            )

        devices = GpiozeroDevices(
            record_button=keep(button(pins.record_button, "record button")),
            function_button=keep(button(pins.function_button, "function button")),
            red_led=keep(GpiozeroLed(pins.red_led, pin_factory=pin_factory, name="red LED")),
            green_led=keep(GpiozeroLed(pins.green_led, pin_factory=pin_factory, name="green LED")),
            haptic=keep(GpiozeroHaptic(pins.haptic, pin_factory=pin_factory)),
            buzzer=keep(GpiozeroBuzzer(pins.buzzer, pin_factory=pin_factory)),
        )
        opened.pop_all()
    return devices
