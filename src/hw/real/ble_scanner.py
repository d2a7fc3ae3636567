"""BleakBleScanner: BLE advertisements from a real controller through bleak (BlueZ on Linux).

BlueZ scans passively only through its advertisement monitor API, which wants at least one
pattern to match and bluetoothd started with ``--experimental``. So this adapter scans passively
when the caller names the company ids it listens for and BlueZ accepts the monitor, and actively
otherwise. Passive scanning sends no scan requests, so the camera does not reveal itself while it
listens for triggers.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from hw.errors import AdapterUnavailable, DeviceError
from hw.ports.ble import DetectionCallback

ScanningMode = Literal["active", "passive"]

_NO_ADAPTER = "plug in a BLE dongle or enable {name}; is bluetoothd running?"


class BleakBleScanner:
    def __init__(self, device: str | None = None, *, company_ids: Collection[int] = ()) -> None:
        """``device`` is the HCI adapter ("hci0"), None for BlueZ's default one.

        ``company_ids``: manufacturer ids worth hearing; naming them allows passive scanning.
        """
        self._device = device
        self._company_ids = tuple(company_ids)
        self._scanner: BleakScanner | None = None
        self._mode: ScanningMode | None = None

    @property
    def scanning_mode(self) -> ScanningMode | None:
        """How the running scan works; None while stopped."""
        return self._mode

    async def start(self, callback: DetectionCallback) -> None:
        if self._scanner is not None:
            raise DeviceError("the BLE scanner is already scanning: call stop() first")
        if self._company_ids:
            try:
                await self._start(callback, "passive")
                return
            except DeviceError:
                pass  # this BlueZ cannot monitor advertisements: scan actively instead
        await self._start(callback, "active")

    async def stop(self) -> None:
        scanner, self._scanner, self._mode = self._scanner, None, None
        if scanner is None:
            return
        try:
            await scanner.stop()
        except (BleakError, OSError) as exc:
            raise self._translate(exc) from exc

    async def _start(self, callback: DetectionCallback, mode: ScanningMode) -> None:
        bluez: BlueZScannerArgs = {}
        if self._device is not None:
            bluez["adapter"] = self._device
        if mode == "passive":
            bluez["or_patterns"] = [_company_pattern(cid) for cid in self._company_ids]
        try:
            scanner = BleakScanner(detection_callback=callback, scanning_mode=mode, bluez=bluez)
            await scanner.start()
        except (BleakError, OSError) as exc:
            raise self._translate(exc) from exc
        self._scanner, self._mode = scanner, mode

    def _translate(self, exc: BleakError | OSError) -> AdapterUnavailable | DeviceError:
        name = self._device or "hci0"
        if isinstance(exc, OSError):
            return AdapterUnavailable(
                f"cannot reach the D-Bus system bus ({exc.strerror or exc}): "
                "start dbus and bluetoothd ('systemctl start bluetooth')"
            )
        if isinstance(exc, BleakBluetoothNotAvailableError):
            return AdapterUnavailable(_not_available(exc.reason, name))
        if isinstance(exc, BleakDBusError):
            return _translate_dbus(exc, name)
        if "not found" in str(exc):
            return AdapterUnavailable(
                f"no Bluetooth adapter {name}: {_NO_ADAPTER.format(name=name)}"
            )
        return DeviceError(f"BLE scanning on {name} failed ({exc}): check 'bluetoothctl show'")


def _company_pattern(company_id: int) -> OrPattern:
    """Match manufacturer data whose first two bytes are this company id (little-endian)."""
    return OrPattern(
        0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, company_id.to_bytes(2, "little")
    )


def _not_available(reason: BleakBluetoothNotAvailableReason, name: str) -> str:
    reasons = BleakBluetoothNotAvailableReason
    if reason is reasons.POWERED_OFF:
        return f"Bluetooth adapter {name} is powered off: run 'bluetoothctl power on'"
    if reason in (reasons.DENIED_BY_SYSTEM, reasons.DENIED_BY_USER, reasons.DENIED_BY_UNKNOWN):
        return (
            "BlueZ refused access to Bluetooth: run as root or add the user to the "
            "'bluetooth' group"
        )
    return f"no Bluetooth adapter: {_NO_ADAPTER.format(name=name)}"


def _translate_dbus(exc: BleakDBusError, name: str) -> AdapterUnavailable | DeviceError:
    error = exc.dbus_error
    if error in ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NoReply"):
        return AdapterUnavailable(
            "BlueZ is not running on the system bus: start bluetoothd ('systemctl start bluetooth')"
        )
    if error in (
        "org.freedesktop.DBus.Error.UnknownObject",
        "org.freedesktop.DBus.Error.UnknownMethod",
    ):
        return AdapterUnavailable(f"no Bluetooth adapter {name}: {_NO_ADAPTER.format(name=name)}")
    if error == "org.freedesktop.DBus.Error.AccessDenied":
        return AdapterUnavailable(
            "D-Bus denied access to BlueZ: run as root or add the user to the 'bluetooth' group"
        )
    if error == "org.bluez.Error.NotReady":
        return AdapterUnavailable(
            f"Bluetooth adapter {name} is not ready: run 'bluetoothctl power on'"
        )
    return DeviceError(f"BLE scanning on {name} failed ({error}): check 'bluetoothctl show'")
