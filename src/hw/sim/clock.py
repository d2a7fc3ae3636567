"""SimClock: wall and monotonic time that can run virtually, drift, and be set by the dock."""

from __future__ import annotations

import threading
import time


class SimClock:
    """A clock for simulation.

    In virtual mode time stands still until ``sleep`` or ``advance`` moves it, so tests run as fast
    as the CPU allows and are deterministic. In real-time mode it follows the host's monotonic
    clock. The wall clock drifts by ``drift_ppm`` relative to monotonic time, like a cheap crystal.
    """

    def __init__(
        self,
        *,
        virtual: bool = False,
        drift_ppm: float = 0.0,
        start_wall_ns: int | None = None,
    ) -> None:
        self._virtual = virtual
        self._drift = drift_ppm / 1e6
        self._lock = threading.Lock()
        self._virtual_ns = 0
        self._host_start_ns = time.monotonic_ns()
        self._wall_base_ns = time.time_ns() if start_wall_ns is None else start_wall_ns
        self._wall_base_mono_ns = 0

    @property
    def virtual(self) -> bool:
        return self._virtual

    def monotonic_ns(self) -> int:
        if self._virtual:
            with self._lock:
                return self._virtual_ns
        return time.monotonic_ns() - self._host_start_ns

    def wall_ns(self) -> int:
        mono = self.monotonic_ns()
        with self._lock:
            elapsed = mono - self._wall_base_mono_ns
            return self._wall_base_ns + elapsed + int(elapsed * self._drift)

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._virtual:
            self.advance(seconds)
        else:
            time.sleep(seconds)

    def advance(self, seconds: float) -> None:
        """Test control: move virtual time forward (no effect on a real-time clock)."""
        if not self._virtual:
            raise ValueError("advance() needs a virtual SimClock; a real-time one follows the host")
        with self._lock:
            self._virtual_ns += round(seconds * 1e9)

    def set_wall(self, wall_ns: int) -> None:
        mono = self.monotonic_ns()
        with self._lock:
            self._wall_base_ns = wall_ns
            self._wall_base_mono_ns = mono
