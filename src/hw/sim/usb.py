"""SimUsbBus: virtual cameras on a virtual USB bus, seen through pyusb's own API.

``SimUsbBackend`` implements pyusb's ``IBackend`` and answers the way libusb-1.0 does on Linux:
cached descriptors stay readable after a device leaves, while opening it, claiming an interface or
any transfer fails with ``USBError`` errno ENODEV. Each virtual camera presents the descriptors of
the camera's USB network gadget (CDC-NCM behind an interface association) and serves its string
descriptors through GET_DESCRIPTOR control transfers, so ``usb.util.get_string`` runs its real code.
The descriptors themselves, bytes and parsed, are in :mod:`hw.sim.usb_descriptors`. Bulk data is
not modelled: in simulation the offload link is loopback networking, not NCM frames.
"""

from __future__ import annotations

import errno
import threading
from array import array
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TypedDict, Unpack

import usb.backend
import usb.core
from usb.backend import libusb1

from hw.errors import ConfigError
from hw.ports.usb import CAMERA_PRODUCT_ID, CAMERA_VENDOR_ID, UsbConfig
from hw.real.usb import PyusbUsbBus
from hw.sim.usb_descriptors import (
    CONFIG_DESCRIPTOR,
    DT_CONFIG,
    DT_DEVICE,
    DT_STRING,
    LANGID_EN_US,
    LANGUAGES_DESCRIPTOR,
    NCM_CONFIG,
    device_descriptor,
    device_strings,
    parse,
    string_descriptor,
)

_ERRORS = {  # libusb error code -> (libusb's message, errno), as pyusb's libusb1 backend raises
    libusb1.LIBUSB_ERROR_INVALID_PARAM: ("Invalid parameter", errno.EINVAL),
    libusb1.LIBUSB_ERROR_ACCESS: ("Access denied (insufficient permissions)", errno.EACCES),
    libusb1.LIBUSB_ERROR_NO_DEVICE: (
        "No such device (it may have been disconnected)",
        errno.ENODEV,
    ),
    libusb1.LIBUSB_ERROR_NOT_FOUND: ("Entity not found", errno.ENOENT),
    libusb1.LIBUSB_ERROR_BUSY: ("Resource busy", errno.EBUSY),
    libusb1.LIBUSB_ERROR_PIPE: ("Pipe error", errno.EPIPE),
    libusb1.LIBUSB_ERROR_NOT_SUPPORTED: ("Operation not supported or unimplemented", errno.ENOSYS),
}


def _usb_error(code: int) -> usb.core.USBError:
    message, err = _ERRORS[code]
    return usb.core.USBError(message, code, err)


_GET_STATUS, _GET_DESCRIPTOR, _GET_CONFIGURATION, _SET_CONFIGURATION = 0x00, 0x06, 0x08, 0x09
_SPEED_HIGH = 3  # enum libusb_speed
_MAX_PORT_DEPTH = 7  # USB 3 allows at most 7 tiers below the root hub


@dataclass(eq=False)
class _SimDevice:
    """One enumeration of a virtual device; a replug makes a new one, as the kernel does."""

    raw: bytes  # the device descriptor as GET_DESCRIPTOR returns it
    descriptor: SimpleNamespace  # parsed, plus where the device sits on the bus
    strings: dict[int, str]
    accessible: bool  # False: the udev rule is missing, opening is denied
    attached: bool = True
    configuration: int = 1  # the host kernel configures a device as it enumerates it
    claimed: dict[int, _SimHandle] = field(default_factory=dict)
    alternate: dict[int, int] = field(default_factory=dict)
    kernel_driver: set[int] = field(default_factory=lambda: {0, 1})  # cdc_ncm binds both


@dataclass(eq=False)
class _SimHandle:
    device: _SimDevice


class PlugOptions(TypedDict, total=False):
    """What a test may say about a device it plugs in; ``SimUsbBackend.plug`` has the defaults."""

    port_path: tuple[int, ...] | None  # None: the first free root port
    vendor_id: int  # another vendor makes a device that is not our camera, e.g. a phone
    product_id: int
    manufacturer: str
    product: str
    accessible: bool  # False: the host has no udev rule for it and may not open it


class SimUsbBackend(usb.backend.IBackend):  # type: ignore[misc]  # pyusb has no type hints
    """A virtual USB bus for pyusb: pass it as ``backend=`` to ``usb.core.find``. Thread-safe."""

    def __init__(self, bus: int = 1) -> None:
        super().__init__()
        self._bus = bus
        self._lock = threading.RLock()
        self._devices: dict[str, _SimDevice] = {}  # by serial, in plug order
        self._last_address = 1  # address 1 is the root hub's

    def plug(
        self,
        serial: str,
        *,
        port_path: tuple[int, ...] | None = None,
        vendor_id: int = CAMERA_VENDOR_ID,
        product_id: int = CAMERA_PRODUCT_ID,
        manufacturer: str = "Open BWC",
        product: str = "BWC body-worn camera",
        accessible: bool = True,
    ) -> None:
        with self._lock:
            if serial in self._devices:
                raise ValueError(f"a device with serial {serial!r} is already plugged in")
            used = {dev.descriptor.port_numbers: s for s, dev in self._devices.items()}
            if port_path is None:
                port_path = next((p,) for p in range(1, 256) if (p,) not in used)
            if not 1 <= len(port_path) <= _MAX_PORT_DEPTH or not all(
                1 <= p <= 255 for p in port_path
            ):
                raise ValueError(f"port path {port_path} is not 1 to 7 port numbers of 1-255")
            if port_path in used:
                raise ValueError(f"port {port_path} already holds the device {used[port_path]!r}")
            raw = device_descriptor(vendor_id, product_id)
            descriptor = parse(
                raw, bus=self._bus, address=self._next_address(), port_numbers=port_path,
                port_number=port_path[-1], speed=_SPEED_HIGH,
            )  # fmt: skip
            strings = device_strings(serial, manufacturer, product)
            self._devices[serial] = _SimDevice(raw, descriptor, strings, accessible)

    def unplug(self, serial: str) -> None:
        with self._lock:
            device = self._devices.pop(serial, None)
            if device is None:
                raise ValueError(f"no device with serial {serial!r} is plugged in")
            device.attached = False

    def _next_address(self) -> int:
        """The next free address after the last one given, from 2 to 127, as Linux assigns."""
        taken = {dev.descriptor.address for dev in self._devices.values()}
        for step in range(1, 127):
            candidate = (self._last_address - 2 + step) % 126 + 2
            if candidate not in taken:
                self._last_address = candidate
                return candidate
        raise ValueError("the virtual bus already holds 126 devices, the most USB allows")

    # IBackend: descriptors, cached at enumeration and readable after the device left

    def enumerate_devices(self) -> list[_SimDevice]:
        with self._lock:
            return list(self._devices.values())

    def get_parent(self, dev: _SimDevice) -> None:
        return None  # hubs are not modelled; libusb also answers None when it does not know

    def get_device_descriptor(self, dev: _SimDevice) -> SimpleNamespace:
        return dev.descriptor

    def get_configuration_descriptor(self, dev: _SimDevice, config: int) -> SimpleNamespace:
        if config != 0:
            raise _usb_error(libusb1.LIBUSB_ERROR_NOT_FOUND)
        return NCM_CONFIG

    def get_interface_descriptor(
        self, dev: _SimDevice, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        interfaces: list[list[SimpleNamespace]] = self.get_configuration_descriptor(
            dev, config
        ).interfaces
        # IndexError is what pyusb's own backends raise, and what ends its iteration over alts
        if intf >= len(interfaces):
            raise IndexError(f"Invalid interface index {intf}")
        if alt >= len(interfaces[intf]):
            raise IndexError(f"Invalid alternate setting index {alt}")
        return interfaces[intf][alt]

    def get_endpoint_descriptor(
        self, dev: _SimDevice, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        endpoints: list[SimpleNamespace] = self.get_interface_descriptor(
            dev, intf, alt, config
        ).endpoints
        if ep >= len(endpoints):
            raise IndexError(f"Invalid endpoint index {ep}")
        return endpoints[ep]

    # IBackend: handles and interfaces

    def open_device(self, dev: _SimDevice) -> _SimHandle:
        with self._lock:
            self._check_attached(dev)
            if not dev.accessible:
                raise _usb_error(libusb1.LIBUSB_ERROR_ACCESS)
            return _SimHandle(dev)

    def close_device(self, dev_handle: _SimHandle) -> None:
        # never fails, like libusb_close; the kernel frees what the handle had claimed
        with self._lock:
            device = dev_handle.device
            for intf in [i for i, h in device.claimed.items() if h is dev_handle]:
                del device.claimed[intf]

    def set_configuration(self, dev_handle: _SimHandle, config_value: int) -> None:
        with self._lock:
            device = self._live(dev_handle)
            if config_value not in (0, NCM_CONFIG.bConfigurationValue):
                raise _usb_error(libusb1.LIBUSB_ERROR_NOT_FOUND)
            if device.claimed:
                raise _usb_error(libusb1.LIBUSB_ERROR_BUSY)
            device.configuration = config_value
            device.alternate.clear()

    def get_configuration(self, dev_handle: _SimHandle) -> int:
        return self._live(dev_handle).configuration

    def claim_interface(self, dev_handle: _SimHandle, intf: int) -> None:
        with self._lock:
            device = self._live(dev_handle)
            if not device.configuration or intf >= NCM_CONFIG.bNumInterfaces:
                raise _usb_error(libusb1.LIBUSB_ERROR_NOT_FOUND)
            holder = device.claimed.get(intf)
            if intf in device.kernel_driver or holder not in (None, dev_handle):
                raise _usb_error(libusb1.LIBUSB_ERROR_BUSY)
            device.claimed[intf] = dev_handle

    def release_interface(self, dev_handle: _SimHandle, intf: int) -> None:
        with self._lock:
            device = self._live(dev_handle)
            if device.claimed.get(intf) is not dev_handle:
                raise _usb_error(libusb1.LIBUSB_ERROR_NOT_FOUND)
            del device.claimed[intf]

    def set_interface_altsetting(self, dev_handle: _SimHandle, intf: int, altsetting: int) -> None:
        with self._lock:
            device = self._live(dev_handle)
            if device.claimed.get(intf) is not dev_handle:
                raise _usb_error(libusb1.LIBUSB_ERROR_NOT_FOUND)
            if altsetting >= len(NCM_CONFIG.interfaces[intf]):
                raise _usb_error(libusb1.LIBUSB_ERROR_NOT_FOUND)
            device.alternate[intf] = altsetting

    def is_kernel_driver_active(self, dev_handle: _SimHandle, intf: int) -> bool:
        return intf in self._live(dev_handle).kernel_driver

    def detach_kernel_driver(self, dev_handle: _SimHandle, intf: int) -> None:
        with self._lock:
            device = self._live(dev_handle)
            if intf not in device.kernel_driver:
                raise _usb_error(libusb1.LIBUSB_ERROR_NOT_FOUND)
            device.kernel_driver.discard(intf)

    def attach_kernel_driver(self, dev_handle: _SimHandle, intf: int) -> None:
        with self._lock:
            device = self._live(dev_handle)
            if intf in device.claimed:
                raise _usb_error(libusb1.LIBUSB_ERROR_BUSY)
            device.kernel_driver.add(intf)

    # IBackend: transfers

    def ctrl_transfer(
        self,
        dev_handle: _SimHandle,
        request_type: int,
        request: int,
        value: int,
        index: int,
        data: array[int],
        timeout: int,
    ) -> int:
        device = self._live(dev_handle)
        if request_type & 0x7F:  # only standard requests to the device itself are answered
            raise _usb_error(libusb1.LIBUSB_ERROR_PIPE)
        if not request_type & 0x80:
            if request != _SET_CONFIGURATION:
                raise _usb_error(libusb1.LIBUSB_ERROR_PIPE)
            self.set_configuration(dev_handle, value & 0xFF)
            return 0
        reply = self._answer(device, request, value, index)
        buffer = memoryview(data).cast("B")
        count = min(len(buffer), len(reply))  # a short wLength truncates, as on the wire
        buffer[:count] = reply[:count]
        return count

    def _answer(self, device: _SimDevice, request: int, value: int, index: int) -> bytes:
        with self._lock:
            if request == _GET_STATUS:
                return b"\x01\x00"  # self-powered, no remote wake-up
            if request == _GET_CONFIGURATION:
                return bytes([device.configuration])
            if request == _GET_DESCRIPTOR:
                kind, number = value >> 8, value & 0xFF
                if kind == DT_DEVICE and number == 0:
                    return device.raw
                if kind == DT_CONFIG and number == 0:
                    return CONFIG_DESCRIPTOR
                if kind == DT_STRING and number == 0:
                    return LANGUAGES_DESCRIPTOR
                if kind == DT_STRING and index == LANGID_EN_US and number in device.strings:
                    return string_descriptor(device.strings[number])
        raise _usb_error(libusb1.LIBUSB_ERROR_PIPE)  # a device stalls what it does not know

    def _no_data_path(self, dev_handle: _SimHandle, *_: object) -> int:
        self._live(dev_handle)
        raise _usb_error(libusb1.LIBUSB_ERROR_NOT_SUPPORTED)

    bulk_write = bulk_read = intr_write = intr_read = _no_data_path

    def clear_halt(self, dev_handle: _SimHandle, ep: int) -> None:
        self._live(dev_handle)

    def reset_device(self, dev_handle: _SimHandle) -> None:
        with self._lock:
            device = self._live(dev_handle)
            device.alternate.clear()

    def _live(self, dev_handle: _SimHandle) -> _SimDevice:
        with self._lock:
            self._check_attached(dev_handle.device)
            return dev_handle.device

    @staticmethod
    def _check_attached(dev: _SimDevice) -> None:
        if not dev.attached:
            raise _usb_error(libusb1.LIBUSB_ERROR_NO_DEVICE)


class SimUsbBus(PyusbUsbBus):
    """The shared pyusb bus over a virtual backend, with plug/unplug test controls."""

    def __init__(self, cfg: UsbConfig) -> None:
        self.backend = SimUsbBackend()
        for camera in cfg.cameras:
            try:
                self.backend.plug(camera.serial, port_path=camera.port_path)
            except ValueError as exc:
                raise ConfigError(
                    f"[usb] cameras: {exc}: give each camera its own serial and port_path"
                ) from exc
        super().__init__(self.backend, cfg)

    def plug(self, serial: str, **options: Unpack[PlugOptions]) -> None:
        """Test control: a device arrives; by default one of our cameras, on a free root port."""
        self.backend.plug(serial, **options)

    def unplug(self, serial: str) -> None:
        """Test control: the device with this serial leaves the bus."""
        self.backend.unplug(serial)
