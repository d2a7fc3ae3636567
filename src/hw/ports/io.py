"""Officer-facing I/O: buttons, LEDs, haptic motor and buzzer (all GPIO lines).

Gestures (double press, hold) are the firmware's business; this port only reports edges with the
time they happened on the device's monotonic clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from hw.ports.base import PortConfig
from hw.ports.clock import Clock

#: called with (pressed, monotonic_ns) on every edge
ButtonHandler = Callable[[bool, int], None]


@runtime_checkable
class Button(Protocol):
    @property
    def is_pressed(self) -> bool: ...

    def on_change(self, handler: ButtonHandler | None) -> None: ...


@runtime_checkable
class Led(Protocol):
    @property
    def is_lit(self) -> bool: ...

    def on(self) -> None: ...

    def off(self) -> None: ...

    def blink(self, on_s: float, off_s: float, times: int | None = None) -> None: ...


@runtime_checkable
class Haptic(Protocol):
    """A vibration motor; ``pulse`` plays alternating on/off durations in seconds."""

    @property
    def is_active(self) -> bool: ...

    def pulse(self, pattern: Sequence[float]) -> None: ...


@runtime_checkable
class Buzzer(Protocol):
    @property
    def is_active(self) -> bool: ...

    def beep(self, pattern: Sequence[float]) -> None: ...


@dataclass(frozen=True)
class OfficerIo:
    """Everything the officer presses, sees, feels or hears on the camera body."""

    record_button: Button
    function_button: Button
    red_led: Led
    green_led: Led
    haptic: Haptic
    buzzer: Buzzer
    close: Callable[[], None]


Pin = int


class IoPins(PortConfig):
    """BCM GPIO numbers."""

    record_button: Pin = Field(default=17, ge=0, le=53)
    function_button: Pin = Field(default=27, ge=0, le=53)
    red_led: Pin = Field(default=22, ge=0, le=53)
    green_led: Pin = Field(default=23, ge=0, le=53)
    haptic: Pin = Field(default=24, ge=0, le=53)
    buzzer: Pin = Field(default=25, ge=0, le=53)


class IoConfig(PortConfig):
    adapter: Literal["sim", "gpiozero"] = "sim"
    pins: IoPins = IoPins()
    #: seconds a contact must be stable before an edge counts
    bounce_s: float = Field(default=0.01, ge=0, le=1)


def open_io(cfg: IoConfig, clock: Clock | None = None) -> OfficerIo:
    """``clock`` stamps button edges, so gestures line up with frame times; host time if None."""
    if cfg.adapter == "sim":
        from hw.sim.io import open_sim_io

        return open_sim_io(cfg, clock)
    from hw.real.io import open_gpiozero_io

    return open_gpiozero_io(cfg, clock)
