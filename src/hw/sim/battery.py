"""SimBattery: a Li-ion cell that drains on the clock and charges while docked."""

from __future__ import annotations

import bisect
import threading

from hw.errors import DeviceClosed
from hw.ports.battery import BatteryConfig, BatteryReading
from hw.ports.clock import Clock

#: open-circuit voltage of a typical Li-ion cell by state of charge (percent, volts)
OCV_CURVE: tuple[tuple[float, float], ...] = (
    (0.0, 3.00),
    (5.0, 3.45),
    (10.0, 3.60),
    (20.0, 3.69),
    (40.0, 3.77),
    (60.0, 3.87),
    (80.0, 4.02),
    (100.0, 4.20),
)

_NS_PER_HOUR = 3600 * 1_000_000_000


def ocv_volts(percent: float) -> float:
    """Linear interpolation on ``OCV_CURVE``; ``percent`` is clamped to 0..100."""
    percent = min(100.0, max(0.0, percent))
    points = [p for p, _ in OCV_CURVE]
    i = max(1, bisect.bisect_left(points, percent))
    (p0, v0), (p1, v1) = OCV_CURVE[i - 1], OCV_CURVE[i]
    return v0 + (v1 - v0) * (percent - p0) / (p1 - p0)


class SimBattery:
    """State of charge integrated over ``clock`` time: down at the drain rate, up while charging.

    ``set_charging`` is what the dock's charger does; ``set_percent`` lets a test start from a
    nearly flat battery.
    """

    def __init__(self, cfg: BatteryConfig, clock: Clock) -> None:
        self._clock = clock
        self._drain = cfg.drain_percent_per_hour
        self._charge = cfg.charge_percent_per_hour
        self._lock = threading.Lock()
        self._percent = cfg.start_percent
        self._charging = False
        self._since_ns = clock.monotonic_ns()
        self._closed = False

    def read(self) -> BatteryReading:
        with self._lock:
            self._settle()
            return BatteryReading(
                percent=self._percent, voltage=ocv_volts(self._percent), charging=self._charging
            )

    def set_charging(self, charging: bool) -> None:
        with self._lock:
            self._settle()  # what happened before the switch counts at the old rate
            self._charging = charging

    def set_percent(self, percent: float) -> None:
        """Test control: jump to a state of charge."""
        if not 0 <= percent <= 100:
            raise ValueError(f"battery percent must be within 0..100, got {percent}")
        with self._lock:
            self._settle()
            self._percent = percent

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _settle(self) -> None:
        if self._closed:
            raise DeviceClosed("the sim battery was read after close(): open it again")
        now = self._clock.monotonic_ns()
        hours = (now - self._since_ns) / _NS_PER_HOUR
        self._since_ns = now
        rate = self._charge if self._charging else -self._drain
        self._percent = min(100.0, max(0.0, self._percent + rate * hours))
