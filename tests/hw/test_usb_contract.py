"""Contract of the USB bus port: every adapter that can run here passes the same assertions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hw.errors import AdapterUnavailable, DeviceClosed
from hw.ports.usb import (
    CAMERA_PRODUCT_ID,
    CAMERA_VENDOR_ID,
    SimUsbCamera,
    UsbBus,
    UsbConfig,
    open_usb,
)

SIM_CAMERAS = (
    SimUsbCamera(serial="BWC-0002", port_path=(2,)),
    SimUsbCamera(serial="BWC-0001", port_path=(1, 3)),
)


@pytest.fixture(params=["sim", pytest.param("libusb", marks=pytest.mark.real)])
def bus(request: pytest.FixtureRequest) -> Iterator[UsbBus]:
    if request.param == "sim":
        cfg = UsbConfig(adapter="sim", cameras=SIM_CAMERAS)
    else:
        cfg = UsbConfig(adapter="libusb")
    try:
        opened = open_usb(cfg)
    except AdapterUnavailable as exc:
        pytest.skip(f"no USB bus: {exc}")
    yield opened
    opened.close()


def test_adapter_is_a_usb_bus(bus: UsbBus) -> None:
    assert isinstance(bus, UsbBus)


def test_devices_returns_only_cameras(bus: UsbBus) -> None:
    devices = bus.devices()

    assert isinstance(devices, list)
    assert all(
        (d.vendor_id, d.product_id) == (CAMERA_VENDOR_ID, CAMERA_PRODUCT_ID) for d in devices
    )


def test_devices_are_listed_in_bay_order(bus: UsbBus) -> None:
    devices = bus.devices()

    assert devices == sorted(devices, key=lambda d: (d.bus, d.port_path, d.address))


def test_first_poll_reports_every_present_device_as_arrived(bus: UsbBus) -> None:
    present = bus.devices()

    events = bus.poll()

    assert [e.kind for e in events] == ["arrived"] * len(present)
    assert [e.device for e in events] == present


def test_poll_without_a_change_reports_nothing(bus: UsbBus) -> None:
    bus.poll()

    assert bus.poll() == []


def test_closed_bus_refuses_to_enumerate(bus: UsbBus) -> None:
    bus.close()

    with pytest.raises(DeviceClosed, match="open_usb"):
        bus.devices()
    with pytest.raises(DeviceClosed):
        bus.poll()


def test_closing_twice_is_harmless(bus: UsbBus) -> None:
    bus.close()
    bus.close()
