"""NmeaSerialGnss reading a pseudo-terminal: pyserial opens it as it would a receiver's UART."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hw.errors import AdapterUnavailable, DeviceError
from hw.ports.gnss import GnssConfig, GnssFix
from hw.real.gnss import NmeaSerialGnss
from hw.sim.clock import SimClock
from tests.hw.gnss_feeds import NmeaPty, nmea
from tests.hw.polling import poll

pytestmark = pytest.mark.real

# 48°07.038' N 11°31.000' E, 545.4 m, 8 satellites, HDOP 0.9, 22.4 kn, 1994-03-23 12:35:19 UTC
RMC = nmea("GPRMC,123519.00,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W")
GGA = nmea("GPGGA,123519.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")
# the same GGA with the position changed in transit and the checksum left as it was
CORRUPT = GGA.replace("4807.038", "4907.038")
NO_FIX_GGA = nmea("GPGGA,123520.00,,,,,0,00,99.99,,,,,,")
NO_FIX_RMC = nmea("GPRMC,123520.00,V,,,,,,,230394,,,N")
SATELLITES_IN_VIEW = nmea("GPGSV,1,1,02,10,63,137,17,07,61,098,15")


@pytest.fixture
def receiver() -> Iterator[NmeaPty]:
    with NmeaPty([RMC, CORRUPT, GGA, SATELLITES_IN_VIEW]) as receiver:
        yield receiver


@pytest.fixture
def gnss(receiver: NmeaPty) -> Iterator[NmeaSerialGnss]:
    gnss = NmeaSerialGnss(GnssConfig(adapter="nmea", device=Path(receiver.path)), SimClock())
    gnss.open()
    yield gnss
    gnss.close()


def complete_fix(gnss: NmeaSerialGnss) -> GnssFix:
    """Once both an RMC and a GGA have been read, every fix carries speed and quality."""

    def complete() -> GnssFix | None:
        fix = gnss.fix()
        if fix is None or fix.satellites is None or fix.speed_mps is None:
            return None
        return fix

    return poll(complete, "fix from RMC and GGA")


def test_gga_and_rmc_make_one_fix(gnss: NmeaSerialGnss) -> None:
    fix = complete_fix(gnss)
    assert fix.latitude == pytest.approx(48.1173)
    assert fix.longitude == pytest.approx(11.516667)
    assert fix.altitude_m == 545.4
    assert fix.speed_mps == pytest.approx(22.4 * 1852 / 3600)
    assert (fix.hdop, fix.satellites) == (0.9, 8)
    assert fix.wall_ns == 764_426_119 * 10**9  # 1994-03-23T12:35:19Z


def test_sentences_with_a_bad_checksum_are_counted_and_skipped(gnss: NmeaSerialGnss) -> None:
    poll(lambda: gnss.checksum_errors >= 3, "checksum errors")
    assert complete_fix(gnss).latitude == pytest.approx(48.1173)  # never the corrupt 49.1173


def test_sentences_without_a_checksum_are_counted_and_skipped(
    receiver: NmeaPty, gnss: NmeaSerialGnss
) -> None:
    complete_fix(gnss)
    receiver.stream([GGA.split("*")[0]])
    errors = gnss.checksum_errors
    poll(lambda: gnss.checksum_errors > errors + 2, "checksum errors")


def test_a_receiver_without_a_fix_reads_as_no_fix(receiver: NmeaPty, gnss: NmeaSerialGnss) -> None:
    complete_fix(gnss)
    receiver.stream([NO_FIX_RMC, NO_FIX_GGA])
    poll(lambda: gnss.fix() is None, "loss of fix")


def test_a_gga_before_any_rmc_is_stamped_by_the_clock() -> None:
    clock = SimClock(virtual=True, start_wall_ns=1_700_000_000 * 10**9)
    with NmeaPty([GGA]) as receiver:
        gnss = NmeaSerialGnss(GnssConfig(device=Path(receiver.path)), clock)
        gnss.open()
        try:
            assert poll(gnss.fix, "fix").wall_ns == 1_700_000_000 * 10**9
        finally:
            gnss.close()


def test_unplugging_the_receiver_is_a_device_error(receiver: NmeaPty, gnss: NmeaSerialGnss) -> None:
    complete_fix(gnss)
    receiver.unplug()

    def failed() -> bool:
        try:
            gnss.fix()
        except DeviceError as exc:
            return receiver.path in str(exc)
        return False

    poll(failed, "device error")


def test_a_receiver_already_in_use_is_unavailable_and_says_by_whom(
    receiver: NmeaPty, gnss: NmeaSerialGnss
) -> None:
    second = NmeaSerialGnss(GnssConfig(adapter="nmea", device=Path(receiver.path)), SimClock())
    with pytest.raises(AdapterUnavailable, match="in use by another program"):
        second.open()


def test_a_missing_device_is_unavailable_and_names_the_path(tmp_path: Path) -> None:
    device = tmp_path / "ttyACM0"
    gnss = NmeaSerialGnss(GnssConfig(adapter="nmea", device=device), SimClock())
    with pytest.raises(AdapterUnavailable, match=f"no GNSS receiver at {device}: plug it in"):
        gnss.open()
