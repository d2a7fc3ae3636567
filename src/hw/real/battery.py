"""Max17048Battery: the MAX17048 ModelGauge fuel gauge on the Pi's I2C bus, through smbus2."""

from __future__ import annotations

import errno
import threading

from smbus2 import SMBus

from hw.errors import AdapterUnavailable, DeviceClosed, DeviceError
from hw.ports.battery import BatteryConfig, BatteryReading

# 16-bit registers, most significant byte first (MAX17048 datasheet, table 2)
VCELL = 0x02
SOC = 0x04
VERSION = 0x08
CRATE = 0x16

VOLTS_PER_VCELL_LSB = 78.125e-6
PERCENT_PER_SOC_LSB = 1 / 256
PERCENT_PER_HOUR_PER_CRATE_LSB = 0.208


def register_value(smbus_word: int) -> int:
    """SMBus words arrive least significant byte first; the MAX17048 sends its MSB first."""
    return ((smbus_word & 0xFF) << 8) | (smbus_word >> 8)


def vcell_volts(raw: int) -> float:
    return raw * VOLTS_PER_VCELL_LSB


def soc_percent(raw: int) -> float:
    """The gauge can report a little over 100 % just after a full charge; readings are clamped."""
    return min(100.0, raw * PERCENT_PER_SOC_LSB)


def crate_percent_per_hour(raw: int) -> float:
    signed = raw - 0x10000 if raw & 0x8000 else raw
    return signed * PERCENT_PER_HOUR_PER_CRATE_LSB


def is_max17048_version(raw: int) -> bool:
    # the datasheet gives 0x001_ with a production-dependent low nibble
    return raw & 0xFFF0 == 0x0010


class Max17048Battery:
    """The gauge knows charge, not chargers: a rising state of charge (CRATE > 0) means charging."""

    def __init__(self, cfg: BatteryConfig) -> None:
        self._bus_number = cfg.i2c_bus
        self._address = cfg.i2c_address
        self._where = f"0x{self._address:02x} on I2C bus {self._bus_number}"
        self._lock = threading.Lock()
        self._bus: SMBus | None = _open_bus(self._bus_number)
        try:
            version = self._probe()
        except BaseException:
            self._bus.close()
            raise
        if not is_max17048_version(version):
            self._bus.close()
            raise AdapterUnavailable(
                f"the device at {self._where} is not a MAX17048 (version 0x{version:04x}): "
                "check i2c_address in [battery]"
            )

    def read(self) -> BatteryReading:
        with self._lock:
            try:
                volts = vcell_volts(self._register(VCELL))
                percent = soc_percent(self._register(SOC))
                crate = crate_percent_per_hour(self._register(CRATE))
            except OSError as exc:
                raise DeviceError(
                    f"lost the fuel gauge at {self._where}: {exc.strerror or exc}; check the wiring"
                ) from exc
        return BatteryReading(percent=percent, voltage=volts, charging=crate > 0)

    def close(self) -> None:
        with self._lock:
            if self._bus is not None:
                self._bus.close()
                self._bus = None

    def _probe(self) -> int:
        try:
            return self._register(VERSION)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise AdapterUnavailable(
                    f"the fuel gauge at {self._where} is claimed by a kernel driver: "
                    "remove its dtoverlay from /boot/firmware/config.txt"
                ) from exc
            raise AdapterUnavailable(
                f"no fuel gauge at 0x{self._address:02x} on I2C bus {self._bus_number}: "
                "check the wiring"
            ) from exc

    def _register(self, register: int) -> int:
        if self._bus is None:
            raise DeviceClosed("the fuel gauge was read after close(): open it again")
        return register_value(self._bus.read_word_data(self._address, register))


def _open_bus(number: int) -> SMBus:
    path = f"/dev/i2c-{number}"
    try:
        return SMBus(number)
    except FileNotFoundError as exc:
        raise AdapterUnavailable(f"no I2C bus {path}: enable I2C with raspi-config") from exc
    except PermissionError as exc:
        raise AdapterUnavailable(
            f"no permission to open {path}: add this user to the i2c group"
        ) from exc
    except OSError as exc:
        raise AdapterUnavailable(f"cannot open I2C bus {path}: {exc.strerror or exc}") from exc
