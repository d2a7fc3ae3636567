"""The virtual camera's USB descriptors, byte for byte, and pyusb's view of them.

The camera's USB network function is Linux's f_ncm gadget: CDC-NCM behind an interface
association. The bytes here are what GET_DESCRIPTOR returns; pyusb's view (``SimpleNamespace``
objects with the field names its backends give) is parsed from them, as libusb does, so the two
can never disagree.
"""

from __future__ import annotations

import hashlib
import struct
from types import SimpleNamespace

DT_DEVICE, DT_CONFIG, DT_STRING, DT_INTERFACE, DT_ENDPOINT = 1, 2, 3, 4, 5
LANGID_EN_US = 0x0409
_STR_MANUFACTURER, _STR_PRODUCT, _STR_SERIAL, _STR_NCM, _STR_NCM_DATA, _STR_MAC = range(1, 7)

_NCM_FUNCTION = b"".join(
    [
        bytes([8, 0x0B, 0, 2, 0x02, 0x0D, 0x00, _STR_NCM]),  # interface association: NCM, 0-1
        bytes([9, DT_INTERFACE, 0, 0, 1, 0x02, 0x0D, 0x00, _STR_NCM]),  # control: CDC NCM
        bytes([5, 0x24, 0x00, 0x10, 0x01]),  # CDC header, version 1.10
        bytes([5, 0x24, 0x06, 0, 1]),  # CDC union: control interface 0, data interface 1
        struct.pack("<BBBBIHHB", 13, 0x24, 0x0F, _STR_MAC, 0, 1514, 0, 0),  # CDC ethernet
        struct.pack("<BBBHB", 6, 0x24, 0x1A, 0x0100, 0),  # CDC NCM, version 1.0
        struct.pack("<BBBBHB", 7, DT_ENDPOINT, 0x81, 0x03, 16, 9),  # notifications, interrupt
        bytes([9, DT_INTERFACE, 1, 0, 0, 0x0A, 0x00, 0x01, _STR_NCM_DATA]),  # data, idle
        bytes([9, DT_INTERFACE, 1, 1, 2, 0x0A, 0x00, 0x01, _STR_NCM_DATA]),  # data, running
        struct.pack("<BBBBHB", 7, DT_ENDPOINT, 0x82, 0x02, 512, 0),  # bulk IN
        struct.pack("<BBBBHB", 7, DT_ENDPOINT, 0x01, 0x02, 512, 0),  # bulk OUT
    ]
)
#: Configuration 1: two interfaces, self-powered (the camera has its own battery), draws 500 mA.
CONFIG_DESCRIPTOR = (
    struct.pack("<BBHBBBBB", 9, DT_CONFIG, 9 + len(_NCM_FUNCTION), 2, 1, 0, 0xC0, 250)
    + _NCM_FUNCTION
)
#: String descriptor 0: the languages the device's strings come in (US English only).
LANGUAGES_DESCRIPTOR = struct.pack("<BBH", 4, DT_STRING, LANGID_EN_US)

_LAYOUTS = {  # descriptor type -> (struct format, field names as pyusb reads them)
    DT_DEVICE: (
        "<BBHBBBBHHHBBBB",
        "bLength bDescriptorType bcdUSB bDeviceClass bDeviceSubClass bDeviceProtocol "
        "bMaxPacketSize0 idVendor idProduct bcdDevice iManufacturer iProduct iSerialNumber "
        "bNumConfigurations",
    ),
    DT_CONFIG: (
        "<BBHBBBBB",
        "bLength bDescriptorType wTotalLength bNumInterfaces bConfigurationValue "
        "iConfiguration bmAttributes bMaxPower",
    ),
    DT_INTERFACE: (
        "<BBBBBBBBB",
        "bLength bDescriptorType bInterfaceNumber bAlternateSetting bNumEndpoints "
        "bInterfaceClass bInterfaceSubClass bInterfaceProtocol iInterface",
    ),
    DT_ENDPOINT: (
        "<BBBBHB",
        "bLength bDescriptorType bEndpointAddress bmAttributes wMaxPacketSize bInterval",
    ),
}


def parse(raw: bytes, **more: object) -> SimpleNamespace:
    """One standard descriptor as pyusb's backends present it, plus the fields in ``more``."""
    fmt, names = _LAYOUTS[raw[1]]
    values = struct.unpack_from(fmt, raw)
    return SimpleNamespace(**dict(zip(names.split(), values, strict=True)), **more)


def parse_configuration(raw: bytes) -> SimpleNamespace:
    """Split a configuration descriptor as libusb does: ``interfaces[index][alternate]``, and each
    class-specific descriptor in the ``extra_descriptors`` of the standard one it follows."""
    config = parse(raw, interfaces=[], extra_descriptors=[])
    current = config
    offset = config.bLength
    while offset < len(raw):
        chunk = raw[offset : offset + raw[offset]]
        if chunk[1] == DT_INTERFACE:
            current = parse(chunk, endpoints=[], extra_descriptors=[])
            if current.bAlternateSetting == 0:
                config.interfaces.append([])
            config.interfaces[-1].append(current)
        elif chunk[1] == DT_ENDPOINT:
            current = parse(chunk, bRefresh=0, bSynchAddress=0, extra_descriptors=[])
            config.interfaces[-1][-1].endpoints.append(current)
        else:
            current.extra_descriptors.extend(chunk)
        offset += len(chunk)
    return config


#: pyusb's view of ``CONFIG_DESCRIPTOR``, shared by every virtual device.
NCM_CONFIG = parse_configuration(CONFIG_DESCRIPTOR)


def device_descriptor(vendor_id: int, product_id: int) -> bytes:
    """The device descriptor: USB 2.0, miscellaneous class with an interface association (the NCM
    function spans two interfaces), one configuration."""
    return struct.pack(
        "<BBHBBBBHHHBBBB", 18, DT_DEVICE, 0x0200, 0xEF, 0x02, 0x01, 64, vendor_id,
        product_id, 0x0100, _STR_MANUFACTURER, _STR_PRODUCT, _STR_SERIAL, 1,
    )  # fmt: skip


def device_strings(serial: str, manufacturer: str, product: str) -> dict[int, str]:
    """The device's strings by the index its descriptors give them."""
    return {
        _STR_MANUFACTURER: manufacturer,
        _STR_PRODUCT: product,
        _STR_SERIAL: serial,
        _STR_NCM: "CDC Network Control Model (NCM)",
        _STR_NCM_DATA: "CDC Network Data",
        _STR_MAC: _mac_address(serial),
    }


def string_descriptor(text: str) -> bytes:
    encoded = text.encode("utf-16-le")
    return bytes([2 + len(encoded), DT_STRING]) + encoded


def _mac_address(serial: str) -> str:
    """A stable, locally administered MAC for the gadget's host side, derived from the serial."""
    digest = hashlib.sha256(serial.encode()).digest()
    return f"{(digest[0] & 0xFC) | 0x02:02X}" + digest[1:6].hex().upper()
