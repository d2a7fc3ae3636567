"""PyusbUsbBus: cameras on a USB bus through pyusb; LibusbUsbBus runs it over libusb-1.0.

The bus code only talks to pyusb's public API (``usb.core.find``, ``usb.util``), so the same class
runs over the real libusb backend and over the sim's virtual backend (:mod:`hw.sim.usb`).
"""

from __future__ import annotations

import errno
import threading

import usb.backend.libusb1
import usb.core
import usb.util

from hw.errors import AdapterUnavailable, DeviceClosed, DeviceError
from hw.ports.usb import UsbConfig, UsbDeviceInfo, UsbEvent

_UDEV_RULE = (
    'SUBSYSTEM=="usb", ATTR{{idVendor}}=="{vid:04x}", ATTR{{idProduct}}=="{pid:04x}", '
    'MODE="0660", GROUP="plugdev"'
)


def _bay_order(info: UsbDeviceInfo) -> tuple[int, tuple[int, ...], int]:
    return (info.bus, info.port_path, info.address)


class PyusbUsbBus:
    """Lists the devices matching the configured vendor/product id on one pyusb backend.

    ``poll`` diffs successive enumerations: the first poll reports every device already present
    as arrived (a dock agent that starts with cameras in its bays must offload them too).
    """

    def __init__(self, backend: object, cfg: UsbConfig) -> None:
        self._backend = backend
        self._vendor_id = cfg.vendor_id
        self._product_id = cfg.product_id
        self._known: frozenset[UsbDeviceInfo] = frozenset()
        # poll() reads and replaces _known; two pollers must not interleave
        self._poll_lock = threading.Lock()
        self._closed = False

    def devices(self) -> list[UsbDeviceInfo]:
        if self._closed:
            raise DeviceClosed("the USB bus was used after close(): open a new one with open_usb()")
        try:
            found = list(
                usb.core.find(
                    find_all=True,
                    idVendor=self._vendor_id,
                    idProduct=self._product_id,
                    backend=self._backend,
                )
            )
        except usb.core.USBError as exc:
            raise DeviceError(
                f"enumerating USB devices failed ({exc}): check that /dev/bus/usb is present"
            ) from exc
        infos = [info for dev in found if (info := self._describe(dev)) is not None]
        return sorted(infos, key=_bay_order)

    def poll(self) -> list[UsbEvent]:
        with self._poll_lock:
            current = self.devices()
            left = sorted(self._known.difference(current), key=_bay_order)
            arrived = [info for info in current if info not in self._known]
            self._known = frozenset(current)
        return [UsbEvent("left", info) for info in left] + [
            UsbEvent("arrived", info) for info in arrived
        ]

    def close(self) -> None:
        # the libusb backend is a process-wide singleton inside pyusb: it is not ours to finalize
        self._closed = True
        self._known = frozenset()

    def _describe(self, dev: usb.core.Device) -> UsbDeviceInfo | None:
        """The device's identity, or None when it left while the bus was being enumerated."""
        port_path = tuple(int(p) for p in (dev.port_numbers or ()))
        bus, address = int(dev.bus), int(dev.address)
        bay = f"{bus}-" + ".".join(str(p) for p in port_path)
        try:
            serial = _read_serial(dev)
        except usb.core.USBError as exc:
            if exc.errno == errno.ENODEV:
                return None  # unplugged mid-enumeration: the next poll reports it as left
            if exc.errno == errno.EACCES:
                rule = _UDEV_RULE.format(vid=self._vendor_id, pid=self._product_id)
                raise DeviceError(
                    f"no permission to read the USB device in bay {bay}: add the udev rule "
                    f"'{rule}' to /etc/udev/rules.d/70-bwc.rules, run 'udevadm trigger' and replug"
                ) from exc
            raise DeviceError(
                f"reading the serial number of the USB device in bay {bay} failed ({exc}): "
                "replug the camera"
            ) from exc
        finally:
            # close the handle now rather than when the garbage collector finds the Device
            usb.util.dispose_resources(dev)
        return UsbDeviceInfo(
            vendor_id=int(dev.idVendor),
            product_id=int(dev.idProduct),
            serial=serial,
            bus=bus,
            address=address,
            port_path=port_path,
        )


def _read_serial(dev: usb.core.Device) -> str:
    if not dev.iSerialNumber:
        return ""
    # usb.util.get_langids raises on failure, where dev.langids would swallow a permission error
    # and leave get_string to fail with a misleading "no langid" message
    langids = usb.util.get_langids(dev)
    if not langids:
        raise usb.core.USBError("the device lists a serial number but no string language", None)
    return str(usb.util.get_string(dev, dev.iSerialNumber, langids[0]))


class LibusbUsbBus(PyusbUsbBus):
    """The host's USB bus, through pyusb's libusb-1.0 backend."""

    def __init__(self, cfg: UsbConfig) -> None:
        backend = usb.backend.libusb1.get_backend()
        if backend is None:
            raise AdapterUnavailable("libusb-1.0 not found: apt-get install libusb-1.0-0")
        super().__init__(backend, cfg)
