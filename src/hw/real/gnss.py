"""GNSS receivers: through gpsd's JSON protocol, or NMEA 0183 straight off a serial port.

Both read on a background thread and keep the newest fix; ``fix()`` never blocks on the receiver.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

import pynmea2
import serial

from hw.errors import AdapterUnavailable, ConfigError, DeviceClosed, DeviceError
from hw.ports.clock import Clock
from hw.ports.gnss import GnssConfig, GnssFix

WATCH_COMMAND = b'?WATCH={"enable":true,"json":true};\n'
MAX_LINE_BYTES = 8192  # far above any gpsd report or NMEA sentence (82 characters)
KNOTS_TO_MPS = 1852 / 3600
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def utc_ns(when: dt.datetime) -> int:
    """Nanoseconds since the epoch, exact to the microsecond (``timestamp()`` rounds via float)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - _EPOCH) // dt.timedelta(microseconds=1) * 1000


class _LineFeed:
    """Reads newline-terminated lines from ``read`` on a daemon thread until stopped.

    ``read`` returns b"" when nothing arrived yet and raises when the source is gone; any error
    other than the one caused by ``stop`` is kept in ``failure`` for the caller to report.
    """

    def __init__(
        self,
        name: str,
        read: Callable[[], bytes],
        handle: Callable[[bytes], None],
        overflow: Callable[[], None],
    ) -> None:
        self._read = read
        self._handle = handle
        self._overflow = overflow
        self._stopping = threading.Event()
        self.failure: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wake: Callable[[], None]) -> None:
        self._stopping.set()
        wake()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        buffer = b""
        try:
            while not self._stopping.is_set():
                buffer += self._read()
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._handle(line.strip())
                if len(buffer) > MAX_LINE_BYTES:
                    buffer = b""
                    self._overflow()
        # a bug in a handler must surface through fix(), not die silently with the thread
        except Exception as exc:
            if not self._stopping.is_set():
                self.failure = exc


class GpsdGnss:
    """A client of gpsd (``?WATCH`` in JSON mode): TPV reports give the fix, SKY the quality."""

    def __init__(self, cfg: GnssConfig, clock: Clock) -> None:
        self._host, self._port = cfg.host, cfg.port
        self._clock = clock
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._feed: _LineFeed | None = None
        self._fix: GnssFix | None = None
        self._hdop: float | None = None
        self._satellites: int | None = None
        #: lines that were not JSON objects; skipped
        self.bad_lines = 0

    def open(self) -> None:
        if self._sock is not None:
            return
        where = f"{self._host}:{self._port}"
        try:
            sock = socket.create_connection((self._host, self._port), timeout=5)
        except ConnectionRefusedError as exc:
            raise AdapterUnavailable(
                f"gpsd is not running on {where}: apt-get install gpsd and start it"
            ) from exc
        except OSError as exc:
            raise AdapterUnavailable(
                f"cannot reach gpsd on {where}: {exc.strerror or exc}; "
                "check host and port in [gnss]"
            ) from exc
        sock.settimeout(None)
        try:
            sock.sendall(WATCH_COMMAND)
        except OSError as exc:
            sock.close()
            raise AdapterUnavailable(f"gpsd on {where} hung up: {exc}; restart gpsd") from exc
        self._sock = sock
        self._fix, self._hdop, self._satellites = None, None, None
        self._feed = _LineFeed(f"gpsd {where}", self._recv, self._on_line, self._on_overflow)
        self._feed.start()

    def fix(self) -> GnssFix | None:
        if self._feed is None:
            raise DeviceClosed("the gpsd GNSS was read while closed: call open() first")
        if self._feed.failure is not None:
            raise DeviceError(
                f"lost gpsd on {self._host}:{self._port}: {self._feed.failure}; is gpsd running?"
            ) from self._feed.failure
        with self._lock:
            if self._fix is None:
                return None
            return dataclasses.replace(self._fix, hdop=self._hdop, satellites=self._satellites)

    def close(self) -> None:
        sock, feed = self._sock, self._feed
        self._sock, self._feed = None, None
        if sock is None or feed is None:
            return
        feed.stop(wake=lambda: _shutdown(sock))
        sock.close()

    def _recv(self) -> bytes:
        assert self._sock is not None
        data = self._sock.recv(4096)
        if not data:
            raise ConnectionResetError("gpsd closed the connection")
        return data

    def _on_overflow(self) -> None:
        self.bad_lines += 1

    def _on_line(self, line: bytes) -> None:
        if not line:
            return
        try:
            report = json.loads(line)
        except ValueError:
            self.bad_lines += 1
            return
        if not isinstance(report, dict):
            self.bad_lines += 1
        elif report.get("class") == "TPV":
            self._on_tpv(report)
        elif report.get("class") == "SKY":
            self._on_sky(report)

    def _on_tpv(self, tpv: dict[str, Any]) -> None:
        mode = tpv.get("mode")
        lat, lon = _as_float(tpv.get("lat")), _as_float(tpv.get("lon"))
        fix = None
        if isinstance(mode, int) and mode >= 2 and lat is not None and lon is not None:
            fix = GnssFix(
                latitude=lat,
                longitude=lon,
                altitude_m=_as_float(tpv.get("altMSL", tpv.get("alt"))),
                speed_mps=_as_float(tpv.get("speed")),
                hdop=None,
                satellites=None,
                wall_ns=self._tpv_wall_ns(tpv.get("time")),
            )
        with self._lock:
            # mode 0/1 means the receiver has lost its fix: say so rather than repeat a stale one
            self._fix = fix

    def _on_sky(self, sky: dict[str, Any]) -> None:
        hdop = _as_float(sky.get("hdop"))
        used = sky.get("uSat")
        if not isinstance(used, int) and isinstance(sky.get("satellites"), list):
            used = sum(1 for s in sky["satellites"] if isinstance(s, dict) and s.get("used"))
        with self._lock:
            if hdop is not None:
                self._hdop = hdop
            if isinstance(used, int):
                self._satellites = used

    def _tpv_wall_ns(self, stamp: object) -> int:
        if isinstance(stamp, str):
            try:
                return utc_ns(dt.datetime.fromisoformat(stamp))
            except ValueError:
                self.bad_lines += 1
        return self._clock.wall_ns()


def _as_float(value: object) -> float | None:
    """A JSON number as a float; anything else (absent, null, text, true) as None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _shutdown(sock: socket.socket) -> None:
    # already disconnected means the reader has nothing left to wake from
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class NmeaSerialGnss:
    """A receiver speaking NMEA 0183 on a UART: GGA gives position and quality, RMC date and speed.

    Sentences with a bad or missing checksum are counted in ``checksum_errors`` and skipped.
    """

    def __init__(self, cfg: GnssConfig, clock: Clock) -> None:
        self._device = cfg.device
        self._baud = cfg.baud
        self._clock = clock
        self._lock = threading.Lock()
        self._port: serial.Serial | None = None
        self._feed: _LineFeed | None = None
        self._fix: GnssFix | None = None
        self._last_rmc: dt.datetime | None = None
        self.checksum_errors = 0
        #: well-formed checksums around fields that do not parse; skipped
        self.parse_errors = 0

    def open(self) -> None:
        if self._port is not None:
            return
        self._port = self._open_port()
        self._fix, self._last_rmc = None, None
        self._feed = _LineFeed(
            f"nmea {self._device}", self._read, self._on_sentence, self._on_overflow
        )
        self._feed.start()

    def _open_port(self) -> serial.Serial:
        try:
            # exclusive: two readers of one UART (say, gpsd as well) would each get half the bytes
            return serial.Serial(str(self._device), self._baud, timeout=0.5, exclusive=True)
        except serial.SerialException as exc:
            if exc.errno == errno.ENOENT:
                raise AdapterUnavailable(
                    f"no GNSS receiver at {self._device}: plug it in or set device in [gnss]"
                ) from exc
            if exc.errno == errno.EACCES:
                raise AdapterUnavailable(
                    f"no permission to open {self._device}: add this user to the dialout group"
                ) from exc
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise AdapterUnavailable(
                    f"{self._device} is in use by another program (gpsd?): stop it, "
                    'or use adapter = "gpsd" in [gnss]'
                ) from exc
            raise AdapterUnavailable(f"cannot open GNSS receiver {self._device}: {exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"bad serial settings for {self._device}: {exc}") from exc

    def fix(self) -> GnssFix | None:
        if self._feed is None:
            raise DeviceClosed("the NMEA GNSS was read while closed: call open() first")
        if self._feed.failure is not None:
            raise DeviceError(
                f"lost the GNSS receiver at {self._device}: {self._feed.failure}; check its cable"
            ) from self._feed.failure
        with self._lock:
            return self._fix

    def close(self) -> None:
        port, feed = self._port, self._feed
        self._port, self._feed = None, None
        if port is None or feed is None:
            return
        feed.stop(wake=port.cancel_read)
        port.close()

    def _read(self) -> bytes:
        assert self._port is not None
        data: bytes = self._port.read(self._port.in_waiting or 1)
        return data

    def _on_overflow(self) -> None:
        self.parse_errors += 1

    def _on_sentence(self, line: bytes) -> None:
        if not line:
            return
        try:
            sentence = pynmea2.parse(line.decode("ascii"), check=True)
            if isinstance(sentence, pynmea2.GGA):
                self._on_gga(sentence)
            elif isinstance(sentence, pynmea2.RMC):
                self._on_rmc(sentence)
        except pynmea2.ChecksumError:
            self.checksum_errors += 1
        except pynmea2.SentenceTypeError:
            pass  # a sentence type pynmea2 does not know (proprietary): nothing for us in it
        except (ValueError, TypeError):  # ParseError and UnicodeDecodeError are ValueErrors
            self.parse_errors += 1

    def _on_gga(self, gga: Any) -> None:
        if not gga.gps_qual:
            self._set(None)
            return
        latitude, longitude = float(gga.latitude), float(gga.longitude)
        altitude = float(gga.altitude) if gga.altitude is not None else None
        hdop = float(gga.horizontal_dil) if gga.horizontal_dil else None
        satellites = int(gga.num_sats) if gga.num_sats else None
        wall_ns = self._gga_wall_ns(gga.timestamp)
        with self._lock:
            speed = self._fix.speed_mps if self._fix is not None else None
            self._fix = GnssFix(latitude, longitude, altitude, speed, hdop, satellites, wall_ns)

    def _on_rmc(self, rmc: Any) -> None:
        if rmc.status != "A":
            self._set(None)
            return
        latitude, longitude = float(rmc.latitude), float(rmc.longitude)
        speed = float(rmc.spd_over_grnd) * KNOTS_TO_MPS if rmc.spd_over_grnd is not None else None
        when: dt.datetime | None = None
        if rmc.datestamp is not None and rmc.timestamp is not None:
            when = rmc.datetime
            self._last_rmc = when
        wall_ns = utc_ns(when) if when is not None else self._clock.wall_ns()
        with self._lock:
            last = self._fix
            self._fix = GnssFix(
                latitude,
                longitude,
                last.altitude_m if last is not None else None,
                speed,
                last.hdop if last is not None else None,
                last.satellites if last is not None else None,
                wall_ns,
            )

    def _gga_wall_ns(self, utc_time: dt.time | None) -> int:
        """GGA carries only the time of day: the date comes from the last RMC."""
        if utc_time is None or self._last_rmc is None:
            return self._clock.wall_ns()
        when = dt.datetime.combine(self._last_rmc.date(), utc_time)
        if when - self._last_rmc < -dt.timedelta(hours=12):
            when += dt.timedelta(days=1)  # this GGA is past midnight; the last RMC was not
        return utc_ns(when)

    def _set(self, fix: GnssFix | None) -> None:
        with self._lock:
            self._fix = fix
