"""The sim USB bus behaves like a real one when driven through pyusb's own API."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import Any

import pytest
import usb.core
import usb.util
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.errors import ConfigError, DeviceError
from hw.ports.usb import CAMERA_VENDOR_ID, SimUsbCamera, UsbConfig
from hw.sim.usb import SimUsbBus

PHONE_VENDOR_ID = 0x18D1  # a phone tethering over NCM: a USB network device, but not a camera
GET_DESCRIPTOR_IN = 0x80  # bmRequestType: standard, device to host, recipient device
GET_DESCRIPTOR = 0x06


def camera_serials(bus: SimUsbBus) -> set[str]:
    """The serial of every camera pyusb finds on the sim backend, read as a dock would."""
    found = usb.core.find(find_all=True, idVendor=CAMERA_VENDOR_ID, backend=bus.backend)
    return {usb.util.get_string(dev, dev.iSerialNumber) for dev in found}


def find_camera(bus: SimUsbBus, serial: str) -> Any:
    # get_string rather than dev.serial_number, which would cache the answer in the Device
    dev = usb.core.find(
        backend=bus.backend,
        custom_match=lambda d: usb.util.get_string(d, d.iSerialNumber) == serial,
    )
    assert dev is not None, f"{serial} is not on the bus"
    return dev


def get_descriptor(dev: Any, kind: int, index: int, langid: int = 0, length: int = 255) -> bytes:
    raw = dev.ctrl_transfer(GET_DESCRIPTOR_IN, GET_DESCRIPTOR, kind << 8 | index, langid, length)
    return bytes(raw)


@pytest.fixture
def bus() -> SimUsbBus:
    return SimUsbBus(UsbConfig(cameras=(SimUsbCamera(serial="BWC-0001", port_path=(1,)),)))


# Hot plug, as pyusb's find sees it


def test_find_lists_exactly_the_plugged_cameras_through_hot_plug_and_unplug() -> None:
    bus = SimUsbBus(
        UsbConfig(
            cameras=(
                SimUsbCamera(serial="BWC-0001", port_path=(1,)),
                SimUsbCamera(serial="BWC-0002", port_path=(2,)),
            )
        )
    )
    assert camera_serials(bus) == {"BWC-0001", "BWC-0002"}

    bus.plug("BWC-0003", port_path=(3,))
    assert camera_serials(bus) == {"BWC-0001", "BWC-0002", "BWC-0003"}

    bus.unplug("BWC-0001")
    assert camera_serials(bus) == {"BWC-0002", "BWC-0003"}


def test_device_of_another_vendor_is_found_by_pyusb_but_not_listed_by_the_bus(
    bus: SimUsbBus,
) -> None:
    bus.plug("PHONE-1", vendor_id=PHONE_VENDOR_ID, product_id=0x4EEB, product="Pixel")

    every_device = usb.core.find(find_all=True, backend=bus.backend)
    assert {dev.idVendor for dev in every_device} == {CAMERA_VENDOR_ID, PHONE_VENDOR_ID}
    assert camera_serials(bus) == {"BWC-0001"}
    assert [d.serial for d in bus.devices()] == ["BWC-0001"]


def test_poll_reports_an_arrival_then_a_departure(bus: SimUsbBus) -> None:
    bus.poll()

    bus.plug("BWC-0002", port_path=(2,))
    arrived = bus.poll()
    bus.unplug("BWC-0002")
    left = bus.poll()

    assert [(e.kind, e.device.serial, e.device.bay) for e in arrived] == [
        ("arrived", "BWC-0002", "1-2")
    ]
    assert [(e.kind, e.device) for e in left] == [("left", arrived[0].device)]


def test_a_camera_replugged_between_polls_leaves_and_arrives_with_a_new_address(
    bus: SimUsbBus,
) -> None:
    (before,) = [e.device for e in bus.poll()]

    bus.unplug("BWC-0001")
    bus.plug("BWC-0001", port_path=(1,))
    events = bus.poll()

    assert [(e.kind, e.device.serial) for e in events] == [
        ("left", "BWC-0001"),
        ("arrived", "BWC-0001"),
    ]
    assert events[1].device.address != before.address


def test_camera_reports_its_bay_through_bus_address_and_port_numbers(bus: SimUsbBus) -> None:
    bus.plug("BWC-0002", port_path=(1, 4))

    dev = find_camera(bus, "BWC-0002")
    (info,) = [d for d in bus.devices() if d.serial == "BWC-0002"]

    assert dev.port_numbers == (1, 4)
    assert (info.bus, info.address, info.bay) == (dev.bus, dev.address, "1-1.4")


def test_plugging_into_an_occupied_port_is_refused(bus: SimUsbBus) -> None:
    with pytest.raises(ValueError, match="already holds"):
        bus.plug("BWC-0002", port_path=(1,))


def test_a_port_path_deeper_than_usb_allows_is_refused(bus: SimUsbBus) -> None:
    with pytest.raises(ValueError, match="1 to 7 port numbers"):
        bus.plug("BWC-0002", port_path=(1, 2, 3, 4, 5, 6, 7, 1))


def test_configuring_two_cameras_on_one_port_is_a_config_error() -> None:
    cameras = (SimUsbCamera(serial="A"), SimUsbCamera(serial="B"))

    with pytest.raises(ConfigError, match="port_path"):
        SimUsbBus(UsbConfig(cameras=cameras))


def test_plugging_and_polling_from_several_threads_keeps_the_bus_consistent() -> None:
    bus = SimUsbBus(UsbConfig())
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def churn(prefix: str) -> None:
        try:
            start.wait()
            for i in range(25):
                bus.plug(f"{prefix}-{i}")
                if i % 2:
                    bus.unplug(f"{prefix}-{i}")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=churn, args=(p,)) for p in ("A", "B")]
    for worker in workers:
        worker.start()
    start.wait()
    while any(w.is_alive() for w in workers):
        bus.poll()
    for worker in workers:
        worker.join()

    expected = {f"{p}-{i}" for p in ("A", "B") for i in range(0, 25, 2)}
    assert errors == []
    assert {d.serial for d in bus.devices()} == expected
    assert len({d.address for d in bus.devices()}) == len(expected)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["plug", "unplug"]), st.sampled_from(["A", "B", "C", "D"])),
        max_size=25,
    )
)
def test_random_plug_and_unplug_sequences_match_a_set_model(
    steps: list[tuple[str, str]],
) -> None:
    bus = SimUsbBus(UsbConfig())
    model: set[str] = set()
    for action, serial in steps:
        before = set(model)
        valid = (serial not in model) if action == "plug" else (serial in model)
        control: Callable[[str], None] = bus.plug if action == "plug" else bus.unplug
        if not valid:
            with pytest.raises(ValueError):
                control(serial)
            continue
        control(serial)
        model.symmetric_difference_update({serial})

        events = bus.poll()
        assert camera_serials(bus) == model
        assert {e.device.serial for e in events if e.kind == "arrived"} == model - before
        assert {e.device.serial for e in events if e.kind == "left"} == before - model


# Descriptors and strings, as a real device serves them


def test_strings_are_read_through_pyusb_get_string(bus: SimUsbBus) -> None:
    dev = find_camera(bus, "BWC-0001")

    assert dev.langids == (0x0409,)
    assert usb.util.get_string(dev, dev.iSerialNumber) == "BWC-0001"
    assert usb.util.get_string(dev, dev.iManufacturer) == "Open BWC"
    assert usb.util.get_string(dev, dev.iProduct) == "BWC body-worn camera"


def test_string_zero_is_the_language_table(bus: SimUsbBus) -> None:
    dev = find_camera(bus, "BWC-0001")

    assert get_descriptor(dev, usb.util.DESC_TYPE_STRING, 0) == bytes([4, 3, 0x09, 0x04])


def test_a_string_descriptor_is_its_length_type_and_utf16le_text(bus: SimUsbBus) -> None:
    dev = find_camera(bus, "BWC-0001")

    raw = get_descriptor(dev, usb.util.DESC_TYPE_STRING, dev.iSerialNumber, langid=0x0409)

    assert raw == bytes([2 + 16, 3]) + "BWC-0001".encode("utf-16-le")


def test_a_short_read_truncates_the_descriptor(bus: SimUsbBus) -> None:
    dev = find_camera(bus, "BWC-0001")

    raw = get_descriptor(dev, usb.util.DESC_TYPE_DEVICE, 0, length=8)

    assert raw == bytes([18, 1, 0x00, 0x02, 0xEF, 0x02, 0x01, 64])


def test_an_unknown_string_index_stalls(bus: SimUsbBus) -> None:
    dev = find_camera(bus, "BWC-0001")

    with pytest.raises(usb.core.USBError) as caught:
        get_descriptor(dev, usb.util.DESC_TYPE_STRING, 42, langid=0x0409)
    assert caught.value.errno == errno.EPIPE


def test_device_descriptor_bytes_agree_with_pyusb_fields(bus: SimUsbBus) -> None:
    dev = find_camera(bus, "BWC-0001")

    raw = get_descriptor(dev, usb.util.DESC_TYPE_DEVICE, 0)

    assert len(raw) == dev.bLength == 18
    assert int.from_bytes(raw[2:4], "little") == dev.bcdUSB == 0x0200
    assert int.from_bytes(raw[8:10], "little") == dev.idVendor
    assert int.from_bytes(raw[10:12], "little") == dev.idProduct
    assert (raw[14], raw[15], raw[16], raw[17]) == (
        dev.iManufacturer,
        dev.iProduct,
        dev.iSerialNumber,
        dev.bNumConfigurations,
    )


def test_configuration_is_a_cdc_ncm_network_function(bus: SimUsbBus) -> None:
    dev = find_camera(bus, "BWC-0001")
    cfg = dev.get_active_configuration()

    control, data_active = cfg[(0, 0)], cfg[(1, 1)]
    endpoints = {
        usb.util.endpoint_direction(ep.bEndpointAddress): usb.util.endpoint_type(ep.bmAttributes)
        for ep in data_active
    }
    assert (control.bInterfaceClass, control.bInterfaceSubClass) == (0x02, 0x0D)
    assert [usb.util.endpoint_type(ep.bmAttributes) for ep in control] == [
        usb.util.ENDPOINT_TYPE_INTR
    ]
    assert data_active.bInterfaceClass == 0x0A
    assert endpoints == {
        usb.util.ENDPOINT_IN: usb.util.ENDPOINT_TYPE_BULK,
        usb.util.ENDPOINT_OUT: usb.util.ENDPOINT_TYPE_BULK,
    }
    assert len(get_descriptor(dev, usb.util.DESC_TYPE_CONFIG, 0)) == cfg.wTotalLength


def test_the_ncm_function_names_a_stable_mac_address_string(bus: SimUsbBus) -> None:
    dev = find_camera(bus, "BWC-0001")
    extra = bytes(dev.get_active_configuration()[(0, 0)].extra_descriptors)

    functional = []
    while extra:
        functional.append(extra[: extra[0]])
        extra = extra[extra[0] :]
    (ethernet,) = [d for d in functional if d[1:3] == bytes([0x24, 0x0F])]  # CDC ethernet

    mac = usb.util.get_string(dev, ethernet[3])
    bus.unplug("BWC-0001")
    bus.plug("BWC-0001")

    assert len(mac) == 12
    assert int(mac, 16) & 0x02 << 40  # locally administered
    assert usb.util.get_string(find_camera(bus, "BWC-0001"), ethernet[3]) == mac  # stable


# Errors, as libusb raises them


@pytest.mark.parametrize(
    "use",
    [
        pytest.param(lambda dev: dev.set_configuration(), id="set_configuration"),
        pytest.param(lambda dev: usb.util.claim_interface(dev, 0), id="claim_interface"),
        pytest.param(lambda dev: dev.serial_number, id="read_serial"),
    ],
)
def test_using_an_unplugged_device_raises_enodev(
    bus: SimUsbBus, use: Callable[[Any], object]
) -> None:
    dev = find_camera(bus, "BWC-0001")
    bus.unplug("BWC-0001")

    with pytest.raises(usb.core.USBError) as caught:
        use(dev)
    assert caught.value.errno == errno.ENODEV


def test_an_open_device_fails_with_enodev_once_unplugged(bus: SimUsbBus) -> None:
    dev = find_camera(bus, "BWC-0001")  # reading its serial opened it
    bus.unplug("BWC-0001")

    with pytest.raises(usb.core.USBError) as caught:
        get_descriptor(dev, usb.util.DESC_TYPE_DEVICE, 0)
    assert caught.value.errno == errno.ENODEV


def test_an_old_device_object_stays_gone_after_the_camera_is_replugged(bus: SimUsbBus) -> None:
    old = find_camera(bus, "BWC-0001")
    bus.unplug("BWC-0001")
    bus.plug("BWC-0001", port_path=(1,))

    with pytest.raises(usb.core.USBError) as caught:
        old.set_configuration()
    assert caught.value.errno == errno.ENODEV
    find_camera(bus, "BWC-0001").set_configuration()


def test_claiming_an_interface_needs_the_kernel_network_driver_detached(bus: SimUsbBus) -> None:
    dev = find_camera(bus, "BWC-0001")
    assert dev.is_kernel_driver_active(0)

    with pytest.raises(usb.core.USBError) as caught:
        usb.util.claim_interface(dev, 0)
    assert caught.value.errno == errno.EBUSY

    dev.detach_kernel_driver(0)
    usb.util.claim_interface(dev, 0)
    usb.util.release_interface(dev, 0)


def test_a_camera_the_host_may_not_open_is_a_device_error_naming_the_udev_rule(
    bus: SimUsbBus,
) -> None:
    bus.plug("BWC-0002", accessible=False)

    with pytest.raises(DeviceError, match=r"udev rule .*1209.*b0c1") as caught:
        bus.devices()
    assert isinstance(caught.value.__cause__, usb.core.USBError)
    assert caught.value.__cause__.errno == errno.EACCES


def test_bulk_transfers_are_refused_because_sim_offload_runs_over_loopback(
    bus: SimUsbBus,
) -> None:
    dev = find_camera(bus, "BWC-0001")
    dev.detach_kernel_driver(1)
    dev.set_interface_altsetting(interface=1, alternate_setting=1)

    with pytest.raises(usb.core.USBError) as caught:
        dev.read(0x82, 512)
    assert caught.value.errno == errno.ENOSYS
