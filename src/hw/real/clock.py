"""SystemClock: the host's clocks, and the battery-backed RTC the dock's time sync updates."""

from __future__ import annotations

import time
from pathlib import Path

from hw.errors import AdapterUnavailable, DeviceError


class SystemClock:
    def __init__(self, *, rtc: str = "/dev/rtc0") -> None:
        self._rtc = Path(rtc)

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def wall_ns(self) -> int:
        return time.time_ns()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def set_wall(self, wall_ns: int) -> None:
        try:
            time.clock_settime_ns(time.CLOCK_REALTIME, wall_ns)
        except PermissionError as exc:
            raise DeviceError(
                "setting the system clock needs CAP_SYS_TIME: run the firmware as root"
            ) from exc

    def rtc_wall_ns(self) -> int:
        """The RTC's time as the kernel reports it (whole seconds)."""
        since_epoch = Path("/sys/class/rtc") / self._rtc.name / "since_epoch"
        try:
            return int(since_epoch.read_text().strip()) * 1_000_000_000
        except FileNotFoundError as exc:
            raise AdapterUnavailable(
                f"no real-time clock at {self._rtc}: fit an RTC module or enable its overlay"
            ) from exc
        except (OSError, ValueError) as exc:
            raise DeviceError(f"cannot read the real-time clock {self._rtc}: {exc}") from exc
