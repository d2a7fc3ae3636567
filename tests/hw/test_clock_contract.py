"""Clock port contract, run against every adapter, plus the sim clock's own controls."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hw.ports.clock import Clock, ClockConfig, open_clock
from hw.real.clock import SystemClock
from hw.sim.clock import SimClock


@pytest.fixture(params=["sim", "sim-virtual", "system"])
def clock(request: pytest.FixtureRequest) -> Iterator[Clock]:
    if request.param == "system":
        yield open_clock(ClockConfig(adapter="system"))
    else:
        yield open_clock(ClockConfig(adapter="sim", virtual=request.param == "sim-virtual"))


def test_clock_satisfies_the_port(clock: Clock) -> None:
    assert isinstance(clock, Clock)


def test_monotonic_time_advances_across_a_sleep(clock: Clock) -> None:
    before = clock.monotonic_ns()
    clock.sleep(0.002)
    assert clock.monotonic_ns() - before >= 2_000_000


def test_wall_time_is_near_the_host_clock_at_start(clock: Clock) -> None:
    assert abs(clock.wall_ns() - time.time_ns()) < 5 * 10**9


def test_virtual_sleep_returns_at_once_and_moves_time_exactly() -> None:
    clock = SimClock(virtual=True)
    host_before = time.monotonic()
    clock.sleep(3600)
    assert time.monotonic() - host_before < 1
    assert clock.monotonic_ns() == 3600 * 10**9


def test_set_wall_jumps_wall_time_but_not_monotonic_time() -> None:
    clock = SimClock(virtual=True, start_wall_ns=1_000 * 10**9)
    clock.advance(10)
    clock.set_wall(5_000 * 10**9)
    assert clock.wall_ns() == 5_000 * 10**9
    assert clock.monotonic_ns() == 10 * 10**9
    clock.advance(1)
    assert clock.wall_ns() == 5_001 * 10**9


def test_wall_clock_drifts_by_its_ppm() -> None:
    clock = SimClock(virtual=True, drift_ppm=50, start_wall_ns=0)
    clock.advance(1_000_000)  # about 11.6 days
    assert clock.wall_ns() - clock.monotonic_ns() == 50 * 10**9


def test_advance_is_refused_on_a_real_time_sim_clock() -> None:
    with pytest.raises(ValueError, match="virtual"):
        SimClock().advance(1)


@pytest.mark.real
def test_system_clock_reads_the_rtc_when_one_is_fitted() -> None:
    from hw.errors import AdapterUnavailable

    try:
        rtc = SystemClock().rtc_wall_ns()
    except AdapterUnavailable as exc:
        pytest.skip(f"no RTC on this machine: {exc}")
    assert abs(rtc - time.time_ns()) < 24 * 3600 * 10**9
