"""Storage and battery levels: readings of the ports turned into inputs for the controller.

The storage is read every frame and the battery gauge every :data:`BATTERY_EVERY_NS`; the
controller hears of a level (ok, low, full or critical) only when it changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from device.config import DeviceConfig
from device.events import BatteryInput, StorageInput
from hw.ports.battery import BatteryGauge, BatteryReading
from hw.ports.storage import Storage

SECOND = 1_000_000_000
BATTERY_EVERY_NS = 10 * SECOND


class LevelMonitor:
    """Reads the storage and the battery for the firmware, one frame at a time."""

    def __init__(self, config: DeviceConfig, storage: Storage, battery: BatteryGauge) -> None:
        self._config = config
        self._storage = storage
        self._battery = battery
        self._levels: dict[str, str] = {"battery": "ok", "storage": "ok"}
        self._next_battery_ns = 0
        self.battery_reading: BatteryReading | None = None  #: the latest, for the dock's status

    def poll(self, now: int) -> Iterator[StorageInput | BatteryInput]:
        """The inputs for the levels that changed since the last poll.

        Lazy: the caller handles the storage input before the battery is read.
        """
        free = self._storage.free_bytes()
        storage: Literal["ok", "low", "full"] = (
            "full" if free < self._config.storage_reserve_bytes
            else "low" if free < self._config.storage_low_bytes
            else "ok"
        )  # fmt: skip
        if self._changed("storage", storage):
            yield StorageInput(storage, free, now)
        if now >= self._next_battery_ns:
            self._next_battery_ns = now + BATTERY_EVERY_NS
            reading = self.battery_reading = self._battery.read()
            battery: Literal["ok", "low", "critical"] = (
                "critical" if reading.percent <= self._config.battery_critical_percent
                else "low" if reading.percent <= self._config.battery_low_percent
                else "ok"
            )  # fmt: skip
            if self._changed("battery", battery):
                yield BatteryInput(battery, reading.percent, now)

    def storage_full(self, now: int) -> StorageInput:
        """The input for a clip write that found the storage full, which the next poll keeps."""
        self._levels["storage"] = "full"
        return StorageInput("full", self._storage.free_bytes(), now)

    def _changed(self, what: str, level: str) -> bool:
        changed = self._levels[what] != level
        self._levels[what] = level
        return changed
