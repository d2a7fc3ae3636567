"""Clock port: monotonic and wall time, sleeping, and the real-time clock the dock sets."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from hw.ports.base import PortConfig


@runtime_checkable
class Clock(Protocol):
    """Time as the firmware sees it.

    ``monotonic_ns`` never goes backwards and orders events; ``wall_ns`` is UTC nanoseconds since
    the epoch and may jump when the dock syncs it (``set_wall``).
    """

    def monotonic_ns(self) -> int: ...

    def wall_ns(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...

    def set_wall(self, wall_ns: int) -> None: ...


class ClockConfig(PortConfig):
    adapter: Literal["sim", "system"] = "sim"
    #: sim only: run in virtual time (sleep returns at once and advances the clock) or real time
    virtual: bool = False
    #: sim only: oscillator error of the wall clock, parts per million
    drift_ppm: float = Field(default=0.0, ge=-1000, le=1000)
    #: system only: the RTC device read by ``bwc hw check``
    rtc: str = "/dev/rtc0"


def open_clock(cfg: ClockConfig) -> Clock:
    if cfg.adapter == "sim":
        from hw.sim.clock import SimClock

        return SimClock(virtual=cfg.virtual, drift_ppm=cfg.drift_ppm)
    from hw.real.clock import SystemClock

    return SystemClock(rtc=cfg.rtc)
