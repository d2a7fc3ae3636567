"""The bay monitor: cameras on the sim USB bus (pyusb's own API) become rows and ordered events."""

from __future__ import annotations

import queue

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dock.bays import BayEvent, BayMonitor, BayState
from dock.errors import BayChanged, CameraRefused
from hw.ports.usb import UsbConfig, UsbDeviceInfo
from hw.sim.clock import SimClock
from hw.sim.usb import SimUsbBus
from tests.hw.polling import poll

ENROLLED = {"BWC-0001": "cam-0001", "BWC-0002": "cam-0002"}
PHONE_VENDOR_ID, PHONE_PRODUCT_ID = 0x18D1, 0x4EEB  # a phone tethering over NCM, not a camera
WAIT_S = 5.0


@pytest.fixture
def bus() -> SimUsbBus:
    return SimUsbBus(UsbConfig())


@pytest.fixture
def clock() -> SimClock:
    return SimClock(virtual=True, start_wall_ns=1_800_000_000 * 10**9)


@pytest.fixture
def monitor(bus: SimUsbBus, clock: SimClock) -> BayMonitor:
    return BayMonitor(bus, clock, ENROLLED)


def kinds(events: list[BayEvent]) -> list[tuple[str, str, str]]:
    return [(str(e.kind), e.bay.name, e.bay.serial) for e in events]


def next_event(inbox: queue.Queue[BayEvent]) -> BayEvent:
    try:
        return inbox.get(timeout=WAIT_S)
    except queue.Empty:
        raise AssertionError(f"no bay event within {WAIT_S} s") from None


def state_of(monitor: BayMonitor, name: str) -> BayState | None:
    row = monitor.bay(name)
    return None if row is None else row.state


def arrive(bus: SimUsbBus, monitor: BayMonitor, serial: str, port: int) -> UsbDeviceInfo:
    bus.plug(serial, port_path=(port,))
    (event,) = monitor.poll_once()
    return event.bay.device


def test_docked_cameras_arrive_in_their_bays(bus: SimUsbBus, monitor: BayMonitor) -> None:
    bus.plug("BWC-0002", port_path=(2,))
    bus.plug("BWC-0001", port_path=(1,))

    events = monitor.poll_once()

    assert kinds(events) == [("arrived", "1-1", "BWC-0001"), ("arrived", "1-2", "BWC-0002")]
    assert [(b.name, b.state, b.offloadable) for b in monitor.bays()] == [
        ("1-1", BayState.ARRIVED, False),
        ("1-2", BayState.ARRIVED, False),
    ]


def test_subscribers_get_plug_unplug_and_replug_in_order(
    bus: SimUsbBus, monitor: BayMonitor
) -> None:
    seen: list[BayEvent] = []
    monitor.subscribe(seen.append)
    inbox = monitor.events()

    arrive(bus, monitor, "BWC-0001", 1)
    bus.unplug("BWC-0001")
    monitor.poll_once()
    bus.plug("BWC-0001", port_path=(1,))
    monitor.poll_once()

    expected = [
        ("arrived", "1-1", "BWC-0001"),
        ("left", "1-1", "BWC-0001"),
        ("arrived", "1-1", "BWC-0001"),
    ]
    assert kinds(seen) == expected
    assert kinds([inbox.get_nowait() for _ in expected]) == expected
    assert inbox.empty()


def test_an_unsubscribed_callback_gets_nothing_more(bus: SimUsbBus, monitor: BayMonitor) -> None:
    seen: list[BayEvent] = []
    unsubscribe = monitor.subscribe(seen.append)
    arrive(bus, monitor, "BWC-0001", 1)

    unsubscribe()
    arrive(bus, monitor, "BWC-0002", 2)

    assert kinds(seen) == [("arrived", "1-1", "BWC-0001")]


def test_a_device_of_an_unknown_vendor_is_reported_and_never_offloadable(
    clock: SimClock,
) -> None:
    # a bus configured to list another model (a lab mistake) still cannot get it offloaded
    phone_bus = SimUsbBus(UsbConfig(vendor_id=PHONE_VENDOR_ID, product_id=PHONE_PRODUCT_ID))
    monitor = BayMonitor(phone_bus, clock, ENROLLED)
    phone_bus.plug("BWC-0001", port_path=(3,), vendor_id=PHONE_VENDOR_ID,
                   product_id=PHONE_PRODUCT_ID)  # fmt: skip

    (event,) = monitor.poll_once()

    assert event.kind is BayState.UNKNOWN
    assert event.bay.reason is not None
    assert "18d1:4eeb" in event.bay.reason and "not a camera" in event.bay.reason
    assert not event.bay.offloadable


def test_an_unenrolled_camera_is_reported_and_never_offloadable(
    bus: SimUsbBus, monitor: BayMonitor
) -> None:
    bus.plug("BWC-0666", port_path=(4,))

    (event,) = monitor.poll_once()

    assert (event.kind, event.bay.name) == (BayState.UNKNOWN, "1-4")
    assert event.bay.reason == (
        "camera BWC-0666 in bay 1-4 is not enrolled at this dock: enrol it before it can be "
        "offloaded"
    )
    with pytest.raises(CameraRefused, match="bay 1-4 is not offloaded: camera BWC-0666"):
        # nothing promotes it: identification is only for a camera that arrived
        monitor.identified(event.bay.device, "cam-0666")


def test_a_camera_that_proves_its_enrolled_id_becomes_offloadable(
    bus: SimUsbBus, monitor: BayMonitor, clock: SimClock
) -> None:
    inbox = monitor.events()
    device = arrive(bus, monitor, "BWC-0001", 1)
    next_event(inbox)
    clock.advance(2.0)

    row = monitor.identified(device, "cam-0001")

    assert (row.state, row.device_id, row.offloadable) == (BayState.IDENTIFIED, "cam-0001", True)
    assert row.since_ns == clock.wall_ns()
    assert next_event(inbox).bay == row == monitor.bay("1-1")


def test_a_camera_proving_another_device_id_than_its_serial_is_reported(
    bus: SimUsbBus, monitor: BayMonitor
) -> None:
    device = arrive(bus, monitor, "BWC-0001", 1)

    row = monitor.identified(device, "cam-0002")

    assert row.state is BayState.UNKNOWN and not row.offloadable
    assert row.reason is not None and "enrolled as device cam-0001" in row.reason


def test_a_camera_whose_session_failed_is_reported_with_the_reason(
    bus: SimUsbBus, monitor: BayMonitor
) -> None:
    device = arrive(bus, monitor, "BWC-0001", 1)

    row = monitor.refuse(device, "the camera's session signature does not verify")

    assert (row.state, row.reason) == (
        BayState.UNKNOWN,
        "the camera's session signature does not verify",
    )


def test_a_camera_unplugged_mid_offload_leaves_its_bay(bus: SimUsbBus, monitor: BayMonitor) -> None:
    device = arrive(bus, monitor, "BWC-0001", 1)
    monitor.identified(device, "cam-0001")

    bus.unplug("BWC-0001")
    (event,) = monitor.poll_once()

    assert (event.kind, event.bay.serial, event.bay.device_id) == (
        BayState.LEFT,
        "BWC-0001",
        "cam-0001",
    )
    assert monitor.bay("1-1") == event.bay and not event.bay.offloadable


def test_a_session_that_ends_after_the_camera_left_cannot_mark_the_bay(
    bus: SimUsbBus, monitor: BayMonitor
) -> None:
    device = arrive(bus, monitor, "BWC-0001", 1)
    bus.unplug("BWC-0001")
    monitor.poll_once()

    with pytest.raises(BayChanged, match="bay 1-1 no longer holds camera BWC-0001"):
        monitor.identified(device, "cam-0001")
    assert state_of(monitor, "1-1") is BayState.LEFT


def test_a_session_for_a_replugged_camera_cannot_mark_the_new_arrival(
    bus: SimUsbBus, monitor: BayMonitor
) -> None:
    before = arrive(bus, monitor, "BWC-0001", 1)
    bus.unplug("BWC-0001")
    bus.plug("BWC-0001", port_path=(1,))
    assert kinds(monitor.poll_once()) == [
        ("left", "1-1", "BWC-0001"),
        ("arrived", "1-1", "BWC-0001"),
    ]

    with pytest.raises(BayChanged):
        monitor.identified(before, "cam-0001")
    assert state_of(monitor, "1-1") is BayState.ARRIVED


def test_an_event_reported_from_a_subscriber_follows_the_one_being_delivered(
    bus: SimUsbBus, monitor: BayMonitor
) -> None:
    def identify_on_arrival(event: BayEvent) -> None:
        if event.kind is BayState.ARRIVED:
            monitor.identified(event.bay.device, ENROLLED[event.bay.serial])

    monitor.subscribe(identify_on_arrival)
    later: list[BayEvent] = []
    monitor.subscribe(later.append)

    arrive(bus, monitor, "BWC-0001", 1)

    assert [str(e.kind) for e in later] == ["arrived", "identified"]


def test_a_failing_subscriber_does_not_keep_events_from_the_others(
    bus: SimUsbBus, monitor: BayMonitor
) -> None:
    def broken(event: BayEvent) -> None:
        raise RuntimeError("subscriber bug")

    monitor.subscribe(broken)
    seen: list[BayEvent] = []
    monitor.subscribe(seen.append)

    arrive(bus, monitor, "BWC-0001", 1)

    assert kinds(seen) == [("arrived", "1-1", "BWC-0001")]


def test_the_polling_thread_delivers_arrivals_and_departures(
    bus: SimUsbBus, monitor: BayMonitor
) -> None:
    fast = BayMonitor(bus, SimClock(), ENROLLED, interval_s=0.01)
    inbox = fast.events()
    fast.start()
    try:
        bus.plug("BWC-0002", port_path=(2,))
        arrived = next_event(inbox)
        bus.unplug("BWC-0002")
        left = next_event(inbox)
    finally:
        fast.stop()

    assert [(str(e.kind), e.bay.serial) for e in (arrived, left)] == [
        ("arrived", "BWC-0002"),
        ("left", "BWC-0002"),
    ]


def test_a_bus_error_is_reported_and_polling_goes_on(bus: SimUsbBus) -> None:
    fast = BayMonitor(bus, SimClock(), ENROLLED, interval_s=0.01)
    inbox = fast.events()
    bus.plug("BWC-0001", port_path=(1,), accessible=False)  # no udev rule: serial unreadable
    fast.start()
    try:
        error = poll(lambda: fast.last_error, "bus error")
        bus.unplug("BWC-0001")
        bus.plug("BWC-0002", port_path=(2,))
        arrived = next_event(inbox)
    finally:
        fast.stop()

    assert "no permission to read the USB device in bay 1-1" in error
    assert (arrived.kind, arrived.bay.serial) == (BayState.ARRIVED, "BWC-0002")
    assert inbox.empty()


def test_an_interval_that_is_not_positive_is_refused(bus: SimUsbBus, clock: SimClock) -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        BayMonitor(bus, clock, ENROLLED, interval_s=0)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["BWC-0001", "BWC-0002", "BWC-0666"]), st.integers(1, 3)),
        max_size=12,
    )
)
def test_the_table_always_shows_what_is_plugged_where(moves: list[tuple[str, int]]) -> None:
    """Any sequence of plugs and unplugs: after a poll, live rows are exactly the bus."""
    bus = SimUsbBus(UsbConfig())
    monitor = BayMonitor(bus, SimClock(virtual=True), ENROLLED)
    plugged: dict[str, int] = {}
    for serial, port in moves:
        if serial in plugged:
            bus.unplug(serial)
            del plugged[serial]
        elif port not in plugged.values():
            bus.plug(serial, port_path=(port,))
            plugged[serial] = port
        monitor.poll_once()
        live = {(b.serial, b.name) for b in monitor.bays() if b.state is not BayState.LEFT}
        assert live == {(s, f"1-{p}") for s, p in plugged.items()}
        assert all(
            (b.state is BayState.UNKNOWN) == (b.serial not in ENROLLED)
            for b in monitor.bays()
            if b.state is not BayState.LEFT
        )
