"""The Gnss contract, run against every adapter: sim, gpsd (over TCP) and NMEA (over a tty)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hw.errors import DeviceClosed
from hw.ports.gnss import Gnss, GnssConfig, GnssFix, open_gnss
from hw.sim.clock import SimClock
from tests.hw.gnss_feeds import GpsdServer, NmeaPty, nmea
from tests.hw.polling import poll

TPV = {"class": "TPV", "mode": 3, "time": "2024-05-01T12:00:00.000Z", "lat": 61.2, "lon": -149.9}
SKY = {"class": "SKY", "hdop": 1.1, "uSat": 7}
SENTENCES = [
    nmea("GPRMC,120000.00,A,6112.000,N,14954.000,W,0.5,90.0,010524,,,A"),
    nmea("GPGGA,120000.00,6112.000,N,14954.000,W,1,07,1.1,30.0,M,10.0,M,,"),
]


@pytest.fixture(
    params=[
        "sim",
        pytest.param("gpsd", marks=pytest.mark.real),
        pytest.param("nmea", marks=pytest.mark.real),
    ]
)
def gnss(request: pytest.FixtureRequest) -> Iterator[Gnss]:
    """An adapter that is not open yet, with its receiver already talking."""
    clock = SimClock()
    if request.param == "sim":
        yield open_gnss(GnssConfig(adapter="sim"), clock)
    elif request.param == "gpsd":
        with GpsdServer([SKY, TPV]) as server:
            yield open_gnss(GnssConfig(adapter="gpsd", host=server.host, port=server.port), clock)
    else:
        with NmeaPty(SENTENCES) as receiver:
            yield open_gnss(GnssConfig(adapter="nmea", device=Path(receiver.path)), clock)


@pytest.fixture
def opened(gnss: Gnss) -> Iterator[Gnss]:
    gnss.open()
    yield gnss
    gnss.close()


def first_fix(gnss: Gnss) -> GnssFix:
    return poll(gnss.fix, "fix")


def test_adapter_is_a_gnss(gnss: Gnss) -> None:
    assert isinstance(gnss, Gnss)


def test_reading_before_open_raises_device_closed(gnss: Gnss) -> None:
    with pytest.raises(DeviceClosed, match="open"):
        gnss.fix()


def test_an_open_receiver_delivers_a_fix_on_earth(opened: Gnss) -> None:
    fix = first_fix(opened)
    assert -90 <= fix.latitude <= 90
    assert -180 <= fix.longitude <= 180
    assert fix.wall_ns > 1_600_000_000 * 10**9  # after 2020: a real date, not a time of day


def test_a_fix_reports_its_quality(opened: Gnss) -> None:
    fix = poll(
        lambda: (f := opened.fix()) is not None and f.satellites is not None and f, "quality"
    )
    assert fix.hdop is not None and 0 < fix.hdop < 50
    assert fix.satellites is not None and 3 <= fix.satellites <= 64


def test_reading_after_close_raises_device_closed(opened: Gnss) -> None:
    first_fix(opened)
    opened.close()
    with pytest.raises(DeviceClosed):
        opened.fix()


def test_closing_twice_is_harmless(opened: Gnss) -> None:
    opened.close()
    opened.close()


def test_a_closed_receiver_can_be_opened_again(opened: Gnss) -> None:
    first_fix(opened)
    opened.close()
    opened.open()
    assert first_fix(opened) is not None
