"""Max17048Battery: register scaling from the datasheet, and what a user sees with no bus."""

from __future__ import annotations

from pathlib import Path

import pytest

from hw.errors import AdapterUnavailable
from hw.ports.battery import BatteryConfig
from hw.real.battery import (
    Max17048Battery,
    crate_percent_per_hour,
    is_max17048_version,
    register_value,
    soc_percent,
    vcell_volts,
)


def test_register_words_are_read_most_significant_byte_first() -> None:
    # the bus hands over the first byte on the wire (the MSB, 0xD0) as the word's low byte
    assert register_value(0x12D0) == 0xD012


@pytest.mark.parametrize(
    ("raw", "volts"), [(0x0000, 0.0), (0xC000, 3.84), (0xD000, 4.16), (0xFFFF, 5.1199)]
)
def test_vcell_counts_78_125_microvolts(raw: int, volts: float) -> None:
    assert vcell_volts(raw) == pytest.approx(volts, abs=1e-4)


@pytest.mark.parametrize(
    ("raw", "percent"), [(0x0000, 0.0), (0x3280, 50.5), (0x6400, 100.0), (0x0001, 1 / 256)]
)
def test_soc_counts_1_256th_of_a_percent(raw: int, percent: float) -> None:
    assert soc_percent(raw) == pytest.approx(percent)


def test_soc_just_after_a_full_charge_reads_as_full() -> None:
    assert soc_percent(0x6480) == 100.0  # the gauge says 100.5 %


@pytest.mark.parametrize(
    ("raw", "rate"), [(0x0000, 0.0), (0x0010, 3.328), (0xFFFF, -0.208), (0x8000, -6815.744)]
)
def test_crate_is_signed_at_0_208_percent_per_hour(raw: int, rate: float) -> None:
    assert crate_percent_per_hour(raw) == pytest.approx(rate)


@pytest.mark.parametrize(("raw", "ours"), [(0x0011, True), (0x0012, True), (0x0000, False)])
def test_only_a_max17048_version_is_accepted(raw: int, ours: bool) -> None:
    assert is_max17048_version(raw) is ours


@pytest.mark.real
def test_a_missing_i2c_bus_is_unavailable_and_says_to_enable_it() -> None:
    bus = next(n for n in range(256) if not Path(f"/dev/i2c-{n}").exists())
    with pytest.raises(AdapterUnavailable) as raised:
        Max17048Battery(BatteryConfig(adapter="max17048", i2c_bus=bus))
    assert str(raised.value) == f"no I2C bus /dev/i2c-{bus}: enable I2C with raspi-config"
