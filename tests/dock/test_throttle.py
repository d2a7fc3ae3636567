"""The shared upload cap: bays uploading at once through one Throttle each get a fair share.

Time is a :class:`LockstepClock`: virtual, and it moves only when every bay is asleep in the
throttle, straight to the earliest wake-up. So the run is the same on a fast or a loaded machine:
what each bay is granted depends on the throttle alone, never on how fast threads happen to run.
"""

from __future__ import annotations

import threading

import pytest

from dock.throttle import Throttle

WAIT_S = 10.0  # real seconds a bay may wait for the others to fall asleep; never reached
RATE = 30_000  # bytes per virtual second
CHUNK = 8192  # what http.client reads from a request body at a time
RUN_S = 120  # virtual seconds of uploading


class LockstepClock:
    """Virtual time shared by ``parties`` threads; it advances when all of them sleep."""

    def __init__(self, parties: int) -> None:
        self._cond = threading.Condition()
        self._now_ns = 0
        self._awake = parties
        self._wakes: list[int] = []

    def monotonic_ns(self) -> int:
        with self._cond:
            return self._now_ns

    def wall_ns(self) -> int:
        return self.monotonic_ns()

    def set_wall(self, wall_ns: int) -> None:
        raise NotImplementedError("the throttle never sets the wall clock")

    def sleep(self, seconds: float) -> None:
        with self._cond:
            wake = self._now_ns + int(seconds * 1e9)
            self._wakes.append(wake)
            self._awake -= 1
            self._advance()
            while self._now_ns < wake:
                assert self._cond.wait(WAIT_S), "the other bays never fell asleep"
            self._wakes.remove(wake)
            self._awake += 1

    def leave(self) -> None:
        """A bay that is done: time no longer waits for it."""
        with self._cond:
            self._awake -= 1
            self._advance()

    def _advance(self) -> None:
        if self._awake == 0 and self._wakes:
            self._now_ns = max(self._now_ns, min(self._wakes))
            self._cond.notify_all()


def upload_at_once(bays: int) -> list[int]:
    """Bytes the throttle granted each bay while all of them sent chunks for RUN_S seconds."""
    clock = LockstepClock(bays)
    throttle = Throttle(RATE, clock)
    granted = [0] * bays
    start = threading.Barrier(bays)

    def bay(index: int) -> None:
        start.wait(WAIT_S)
        try:
            while clock.monotonic_ns() < RUN_S * 10**9:
                throttle.take(CHUNK)
                granted[index] += CHUNK
        finally:
            clock.leave()

    threads = [threading.Thread(target=bay, args=(i,)) for i in range(bays)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S * 2)
        assert not thread.is_alive(), "a bay did not finish"
    return granted


def test_three_bays_uploading_at_once_each_get_a_fair_share_of_the_cap() -> None:
    granted = upload_at_once(3)

    assert max(granted) <= 1.2 * min(granted), granted
    # together they stay at the cap: its rate for the run, plus the burst and a chunk each
    assert sum(granted) == pytest.approx(RATE * RUN_S, abs=RATE * 0.25 + 3 * CHUNK)


def test_a_single_bay_gets_the_whole_cap() -> None:
    (granted,) = upload_at_once(1)

    assert granted == pytest.approx(RATE * RUN_S, abs=RATE * 0.25 + CHUNK)
