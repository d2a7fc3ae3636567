"""SimBattery: drains on the clock, charges on the dock, voltage from the Li-ion OCV curve."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hw.ports.battery import BatteryConfig
from hw.sim.battery import OCV_CURVE, SimBattery, ocv_volts
from hw.sim.clock import SimClock


@pytest.fixture
def clock() -> SimClock:
    return SimClock(virtual=True)


def battery(clock: SimClock, start: float = 100.0) -> SimBattery:
    cfg = BatteryConfig(start_percent=start, drain_percent_per_hour=8, charge_percent_per_hour=40)
    return SimBattery(cfg, clock)


def test_the_battery_drains_at_its_rate_over_clock_time(clock: SimClock) -> None:
    cell = battery(clock)
    clock.advance(2 * 3600)
    assert cell.read().percent == pytest.approx(84.0)
    assert not cell.read().charging


def test_the_battery_charges_while_charging(clock: SimClock) -> None:
    cell = battery(clock, start=20)
    cell.set_charging(True)
    clock.advance(30 * 60)
    reading = cell.read()
    assert reading.percent == pytest.approx(40.0)
    assert reading.charging


def test_time_before_the_charger_connects_still_drains(clock: SimClock) -> None:
    cell = battery(clock, start=50)
    clock.advance(3600)
    cell.set_charging(True)
    clock.advance(3600)
    assert cell.read().percent == pytest.approx(50 - 8 + 40)


def test_charging_stops_at_full(clock: SimClock) -> None:
    cell = battery(clock, start=90)
    cell.set_charging(True)
    clock.advance(10 * 3600)
    assert cell.read().percent == 100.0


def test_draining_stops_at_empty(clock: SimClock) -> None:
    cell = battery(clock, start=5)
    clock.advance(24 * 3600)
    assert cell.read().percent == 0.0
    assert cell.read().voltage == 3.0


def test_a_full_cell_reads_4_2_volts(clock: SimClock) -> None:
    assert battery(clock).read().voltage == pytest.approx(4.2)


def test_a_test_can_start_from_a_nearly_flat_cell(clock: SimClock) -> None:
    cell = battery(clock)
    cell.set_percent(3.0)
    clock.advance(15 * 60)
    assert cell.read().percent == pytest.approx(1.0)


@pytest.mark.parametrize("percent", [-0.1, 100.1])
def test_an_impossible_charge_level_is_refused(clock: SimClock, percent: float) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        battery(clock).set_percent(percent)


@given(
    start=st.floats(min_value=0, max_value=100),
    steps=st.lists(st.tuples(st.floats(min_value=0, max_value=48), st.booleans()), max_size=20),
)
def test_charge_stays_between_empty_and_full(start: float, steps: list[tuple[float, bool]]) -> None:
    clock = SimClock(virtual=True)
    cell = battery(clock, start=start)
    for hours, charging in steps:
        cell.set_charging(charging)
        clock.advance(hours * 3600)
        reading = cell.read()
        assert 0.0 <= reading.percent <= 100.0
        assert 3.0 <= reading.voltage <= 4.2


@given(st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_more_charge_never_reads_as_less_voltage(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert ocv_volts(low) <= ocv_volts(high)


def test_the_curve_passes_through_its_points() -> None:
    for percent, volts in OCV_CURVE:
        assert ocv_volts(percent) == pytest.approx(volts)
