"""The BatteryGauge contract, run against the sim cell and a real MAX17048 when one is wired."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hw.errors import AdapterUnavailable, DeviceClosed
from hw.ports.battery import BatteryConfig, BatteryGauge, open_battery
from hw.sim.clock import SimClock


@pytest.fixture(params=["sim", pytest.param("max17048", marks=pytest.mark.real)])
def gauge(request: pytest.FixtureRequest) -> Iterator[BatteryGauge]:
    try:
        gauge = open_battery(BatteryConfig(adapter=request.param), SimClock(virtual=True))
    except AdapterUnavailable as exc:
        pytest.skip(str(exc))
    yield gauge
    gauge.close()


def test_adapter_is_a_battery_gauge(gauge: BatteryGauge) -> None:
    assert isinstance(gauge, BatteryGauge)


def test_a_reading_is_a_plausible_li_ion_cell(gauge: BatteryGauge) -> None:
    reading = gauge.read()
    assert 0.0 <= reading.percent <= 100.0
    assert 2.5 <= reading.voltage <= 4.35
    assert isinstance(reading.charging, bool)


def test_reading_after_close_raises_device_closed(gauge: BatteryGauge) -> None:
    gauge.close()
    with pytest.raises(DeviceClosed):
        gauge.read()


def test_closing_twice_is_harmless(gauge: BatteryGauge) -> None:
    gauge.close()
    gauge.close()
