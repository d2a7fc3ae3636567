"""Officer I/O on gpiozero's MockFactory: the real gpiozero devices, with simulated pins.

Test controls live on ``SimOfficerIo`` only: press and release buttons (pull-up, active low, so
pressing drives the pin low), and read or wait for the state history of every output pin.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin, PinState

from hw.errors import DeviceClosed
from hw.ports.clock import Clock
from hw.ports.io import Button, Buzzer, Haptic, IoConfig, IoPins, Led, OfficerIo
from hw.real.gpio_devices import open_devices

Part = Button | Led | Haptic | Buzzer

_PARTS = ("record_button", "function_button", "red_led", "green_led", "haptic", "buzzer")


class NotifyingMockPin(MockPin):  # type: ignore[misc]  # gpiozero is untyped
    """A MockPin that wakes waiters on every state change, so tests wait instead of sleeping."""

    def __init__(self, factory: MockFactory, info: Any) -> None:
        self.changed = threading.Condition()
        super().__init__(factory, info)

    def _change_state(self, value: bool) -> bool:
        with self.changed:
            changed: bool = super()._change_state(value)
            self.changed.notify_all()
        return changed

    def history(self) -> list[PinState]:
        with self.changed:
            return list(self.states)


@dataclass(frozen=True)
class SimOfficerIo(OfficerIo):
    factory: MockFactory
    pins: IoPins
    _sleep: Callable[[float], None]
    _closed: threading.Event

    # -- buttons -----------------------------------------------------------------------------

    def press(self, button: Button) -> None:
        """Close the button's contact: the pin goes low and the handler sees pressed=True."""
        self._live_pin(button).drive_low()

    def release(self, button: Button) -> None:
        self._live_pin(button).drive_high()

    def hold(self, button: Button, seconds: float, clock: Clock | None = None) -> None:
        """Press, wait ``seconds`` on ``clock`` (the io's own clock by default), release.

        Pass the clock that stamps the edges (the one given to ``open_sim_io``) so that a virtual
        clock advances between the two edges and the hold returns at once.
        """
        self.press(button)
        (clock.sleep if clock is not None else self._sleep)(seconds)
        self.release(button)

    # -- output pin histories ------------------------------------------------------------------

    def pin(self, part: Part) -> NotifyingMockPin:
        """The MockPin behind a part, with gpiozero's own ``assert_states_and_times``."""
        for name in _PARTS:
            if getattr(self, name) is part:
                pin: NotifyingMockPin = self.factory.pin(getattr(self.pins, name))
                return pin
        raise ValueError(f"{part!r} is not a part of this SimOfficerIo")

    def states(self, part: Part) -> list[bool]:
        """Every state the part's pin has been in, oldest first, starting with its state at open."""
        return [bool(s.state) for s in self.pin(part).history()]

    def wait_for_states(self, part: Part, count: int, timeout: float = 5.0) -> list[PinState]:
        """Block until the pin's history holds ``count`` states; TimeoutError after ``timeout``."""
        pin = self.pin(part)
        with pin.changed:
            if not pin.changed.wait_for(lambda: len(pin.states) >= count, timeout):
                raise TimeoutError(
                    f"pin {pin.info.name} reached {len(pin.states)} states, not {count}, "
                    f"within {timeout} s: {[s.state for s in pin.states]}"
                )
            return list(pin.states)

    def clear_states(self, part: Part) -> None:
        pin = self.pin(part)
        with pin.changed:
            pin.clear_states()

    def _live_pin(self, button: Button) -> NotifyingMockPin:
        if self._closed.is_set():
            raise DeviceClosed("the sim I/O was used after close(): open it again")
        if button is not self.record_button and button is not self.function_button:
            raise ValueError(f"{button!r} is not a button of this SimOfficerIo")
        return self.pin(button)


def open_sim_io(cfg: IoConfig, clock: Clock | None = None) -> SimOfficerIo:
    """Open the officer I/O on a private MockFactory, so several sims never share pins.

    ``clock`` stamps button edges and paces ``hold``; without one, the host's monotonic clock.
    """
    factory = MockFactory(pin_class=NotifyingMockPin)
    monotonic_ns = clock.monotonic_ns if clock is not None else time.monotonic_ns
    devices = open_devices(cfg, pin_factory=factory, monotonic_ns=monotonic_ns)
    closed = threading.Event()

    def close() -> None:
        closed.set()
        devices.close()

    return SimOfficerIo(
        record_button=devices.record_button,
        function_button=devices.function_button,
        red_led=devices.red_led,
        green_led=devices.green_led,
        haptic=devices.haptic,
        buzzer=devices.buzzer,
        close=close,
        factory=factory,
        pins=cfg.pins,
        _sleep=clock.sleep if clock is not None else time.sleep,
        _closed=closed,
    )
