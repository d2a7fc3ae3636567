"""BLE ports: a scanner that reports advertisements, and this camera's own advertiser.

Both speak bleak's data types (``BLEDevice``, ``AdvertisementData``) so code above ``hw/`` sees
exactly what it would see from a real adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from pydantic import Field

from hw.ports.base import PortConfig

DetectionCallback = Callable[[BLEDevice, AdvertisementData], None]


@dataclass(frozen=True)
class Advertisement:
    """What an advertiser broadcasts: manufacturer-specific data keyed by company id."""

    manufacturer_data: Mapping[int, bytes]
    service_uuids: tuple[str, ...] = ()
    interval_ms: int = 100
    tx_power_dbm: int = 0
    extra: Mapping[str, bytes] = field(default_factory=dict)  #: service data by UUID


@runtime_checkable
class BleScanner(Protocol):
    """Passive scanning; ``callback`` runs on the event loop that called ``start``."""

    async def start(self, callback: DetectionCallback) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class BleAdvertiser(Protocol):
    """Non-connectable advertising with a random address that rotates on every ``start``."""

    @property
    def address(self) -> str: ...

    async def start(self, advertisement: Advertisement) -> None: ...

    async def stop(self) -> None: ...


class SimPosition(PortConfig):
    x_m: float = 0.0
    y_m: float = 0.0


class BleScannerConfig(PortConfig):
    adapter: Literal["sim", "bleak"] = "sim"
    #: bleak only: the HCI adapter, e.g. "hci0"; None lets BlueZ pick
    device: str | None = None
    #: sim only: where this radio sits in the simulated world
    position: SimPosition = SimPosition()


class BleAdvertiserConfig(PortConfig):
    adapter: Literal["sim", "bluez"] = "sim"
    device: str = "hci0"
    position: SimPosition = SimPosition()


class SimRadioConfig(PortConfig):
    """The simulated air: path loss and packet loss shared by every sim BLE adapter."""

    tx_power_at_1m_dbm: float = -59.0
    path_loss_exponent: float = Field(default=2.0, gt=0)
    range_m: float = Field(default=30.0, gt=0)
    loss: float = Field(default=0.0, ge=0, lt=1)
    seed: int = 0


if TYPE_CHECKING:
    from hw.sim.ble import SimRadio


def open_ble_scanner(cfg: BleScannerConfig, radio: SimRadio) -> BleScanner:
    """``radio`` is the simulated air the sim adapter joins; the bleak adapter ignores it."""
    if cfg.adapter == "sim":
        from hw.sim.ble import SimBleScanner

        return SimBleScanner(radio, x_m=cfg.position.x_m, y_m=cfg.position.y_m)
    from hw.real.ble_scanner import BleakBleScanner

    return BleakBleScanner(device=cfg.device)


def open_ble_advertiser(cfg: BleAdvertiserConfig, radio: SimRadio) -> BleAdvertiser:
    if cfg.adapter == "sim":
        from hw.sim.ble import SimBleAdvertiser

        return SimBleAdvertiser(radio, x_m=cfg.position.x_m, y_m=cfg.position.y_m)
    from hw.real.ble_advertiser import BluezBleAdvertiser

    return BluezBleAdvertiser(device=cfg.device)
