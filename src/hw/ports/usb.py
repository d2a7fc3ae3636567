"""USB bus port: which cameras sit in the dock's bays, and when they arrive or leave."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from hw.ports.base import PortConfig

#: USB ids of our camera (pid.codes test range until the project has its own allocation)
CAMERA_VENDOR_ID = 0x1209
CAMERA_PRODUCT_ID = 0xB0C1


@dataclass(frozen=True, slots=True)
class UsbDeviceInfo:
    vendor_id: int
    product_id: int
    serial: str
    bus: int
    address: int
    port_path: tuple[int, ...]  #: physical port chain from the root hub: the dock bay

    @property
    def bay(self) -> str:
        return f"{self.bus}-" + ".".join(str(p) for p in self.port_path)


@dataclass(frozen=True, slots=True)
class UsbEvent:
    kind: Literal["arrived", "left"]
    device: UsbDeviceInfo


@runtime_checkable
class UsbBus(Protocol):
    """Enumerates cameras through pyusb; ``poll`` reports arrivals and departures since the last."""

    def devices(self) -> list[UsbDeviceInfo]: ...

    def poll(self) -> list[UsbEvent]: ...

    def close(self) -> None: ...


class SimUsbCamera(PortConfig):
    serial: str
    port_path: tuple[int, ...] = (1,)


class UsbConfig(PortConfig):
    adapter: Literal["sim", "libusb"] = "sim"
    vendor_id: int = Field(default=CAMERA_VENDOR_ID, ge=0, le=0xFFFF)
    product_id: int = Field(default=CAMERA_PRODUCT_ID, ge=0, le=0xFFFF)
    #: sim only: cameras plugged in when the bus opens
    cameras: tuple[SimUsbCamera, ...] = ()


def open_usb(cfg: UsbConfig) -> UsbBus:
    if cfg.adapter == "sim":
        from hw.sim.usb import SimUsbBus

        return SimUsbBus(cfg)
    from hw.real.usb import LibusbUsbBus

    return LibusbUsbBus(cfg)
