"""A token bucket shared by every bay, so uploads together stay under the configured rate.

Each caller takes bytes before it sends them and sleeps (on the injected clock) when the bucket
is empty; the lock makes the share between threads fair in arrival order.
"""

from __future__ import annotations

import threading

from hw.ports.clock import Clock


class Throttle:
    def __init__(self, bytes_per_s: int, clock: Clock, *, burst_s: float = 0.25) -> None:
        """``bytes_per_s`` 0 means no cap; ``burst_s`` of credit may build up while idle."""
        self.rate = bytes_per_s
        self._clock = clock
        self._capacity = max(1.0, bytes_per_s * burst_s)
        self._tokens = self._capacity
        self._last_ns = clock.monotonic_ns()
        self._lock = threading.Lock()

    def take(self, count: int) -> None:
        """Wait until ``count`` bytes may be sent."""
        if self.rate <= 0 or count <= 0:
            return
        with self._lock:
            now = self._clock.monotonic_ns()
            elapsed = (now - self._last_ns) / 1e9
            self._last_ns = now
            self._tokens = min(self._capacity, self._tokens + elapsed * self.rate)
            self._tokens -= count
            debt = -self._tokens
        if debt > 0:
            self._clock.sleep(debt / self.rate)
