"""GpsdGnss against a gpsd-protocol server on loopback: the wire is the hardware edge."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from hw.errors import AdapterUnavailable, DeviceError
from hw.ports.gnss import GnssConfig, GnssFix
from hw.real.gnss import GpsdGnss
from hw.sim.clock import SimClock
from tests.hw.gnss_feeds import GpsdServer, Report
from tests.hw.polling import poll

pytestmark = pytest.mark.real

TPV = {
    "class": "TPV",
    "device": "/dev/ttyACM0",
    "mode": 3,
    "time": "2024-05-01T12:00:01.250Z",
    "lat": 61.2176,
    "lon": -149.8997,
    "altMSL": 31.5,
    "altHAE": 42.0,
    "speed": 1.4,
}
SKY = {"class": "SKY", "device": "/dev/ttyACM0", "hdop": 0.92, "uSat": 9, "nSat": 14}
NO_FIX = {"class": "TPV", "device": "/dev/ttyACM0", "mode": 1, "time": "2024-05-01T12:00:02Z"}


@pytest.fixture
def server() -> Iterator[GpsdServer]:
    with GpsdServer([SKY, TPV]) as server:
        yield server


@pytest.fixture
def gnss(server: GpsdServer) -> Iterator[GpsdGnss]:
    gnss = GpsdGnss(GnssConfig(adapter="gpsd", host=server.host, port=server.port), SimClock())
    gnss.open()
    yield gnss
    gnss.close()


def complete_fix(gnss: GpsdGnss) -> GnssFix:
    return poll(lambda: (f := gnss.fix()) is not None and f.hdop is not None and f, "fix")


def test_the_client_asks_gpsd_to_stream_json_reports(server: GpsdServer, gnss: GpsdGnss) -> None:
    complete_fix(gnss)
    command = server.commands[0]
    assert command.startswith("?WATCH=") and command.endswith(";")
    assert json.loads(command.removeprefix("?WATCH=").removesuffix(";")) == {
        "enable": True,
        "json": True,
    }


def test_a_tpv_report_becomes_the_fix_with_quality_from_sky(gnss: GpsdGnss) -> None:
    assert complete_fix(gnss) == GnssFix(
        latitude=61.2176,
        longitude=-149.8997,
        altitude_m=31.5,  # above mean sea level, as NMEA GGA reports it
        speed_mps=1.4,
        hdop=0.92,
        satellites=9,
        wall_ns=1_714_564_801_250_000_000,
    )


def test_satellites_used_are_counted_when_sky_has_no_usat() -> None:
    sky = {"class": "SKY", "hdop": 1.3, "satellites": [{"PRN": n, "used": n < 5} for n in range(9)]}
    with GpsdServer([sky, TPV]) as server:
        gnss = GpsdGnss(GnssConfig(host=server.host, port=server.port), SimClock())
        gnss.open()
        try:
            assert complete_fix(gnss).satellites == 5
        finally:
            gnss.close()


def test_a_tpv_without_time_is_stamped_by_the_clock() -> None:
    clock = SimClock(virtual=True, start_wall_ns=1_700_000_000 * 10**9)
    untimed = {key: value for key, value in TPV.items() if key != "time"}
    with GpsdServer([untimed]) as server:
        gnss = GpsdGnss(GnssConfig(host=server.host, port=server.port), clock)
        gnss.open()
        try:
            assert poll(gnss.fix, "fix").wall_ns == 1_700_000_000 * 10**9
        finally:
            gnss.close()


def test_losing_the_fix_reads_as_no_fix(server: GpsdServer, gnss: GpsdGnss) -> None:
    complete_fix(gnss)
    server.stream([NO_FIX])
    poll(lambda: gnss.fix() is None, "loss of fix")


def test_lines_that_are_not_json_objects_are_counted_and_skipped() -> None:
    reports: list[Report] = ["{not json", "[1, 2]", SKY, TPV]
    with GpsdServer(reports) as server:
        gnss = GpsdGnss(GnssConfig(host=server.host, port=server.port), SimClock())
        gnss.open()
        try:
            poll(lambda: gnss.bad_lines >= 2, "bad lines counted")
            assert complete_fix(gnss).latitude == 61.2176
        finally:
            gnss.close()


def test_gpsd_hanging_up_is_a_device_error(server: GpsdServer, gnss: GpsdGnss) -> None:
    complete_fix(gnss)
    server.hang_up()

    def failed() -> bool:
        try:
            gnss.fix()
        except DeviceError as exc:
            return "gpsd" in str(exc)
        return False

    poll(failed, "device error")


def test_no_gpsd_listening_is_unavailable_and_says_how_to_start_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        port = taken.getsockname()[1]
        gnss = GpsdGnss(GnssConfig(adapter="gpsd", host="127.0.0.1", port=port), SimClock())
        with pytest.raises(AdapterUnavailable) as raised:
            gnss.open()
    assert str(raised.value) == (
        f"gpsd is not running on 127.0.0.1:{port}: apt-get install gpsd and start it"
    )
