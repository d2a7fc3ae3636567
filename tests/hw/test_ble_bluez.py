"""The bleak scanner and BlueZ advertiser over real D-Bus, against a stand-in bluetoothd.

What BlueZ reads from our advertisement object, and the one-line errors a user sees when the
bus, BlueZ or the adapter is missing or BlueZ refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hw.errors import AdapterUnavailable, ConfigError, DeviceError
from hw.ports.ble import Advertisement
from hw.real.ble_advertiser import BluezBleAdvertiser
from hw.real.ble_scanner import BleakBleScanner
from tests.hw.ble_helpers import TEST_COMPANY_ID, Heard, private_bus_or_skip, run_async
from tests.hw.fake_bluez import FakeBluez

PAYLOAD = bytes.fromhex("01a1b2c3d40207")
BEACON = Advertisement(
    manufacturer_data={TEST_COMPANY_ID: PAYLOAD},
    service_uuids=("180f",),
    interval_ms=250,
    tx_power_dbm=-4,
)


@pytest.fixture(scope="module")
def bus_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from private_bus_or_skip(tmp_path_factory.mktemp("dbus"))


@pytest.fixture
def bluez(bus_address: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBluez]:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address)  # where bleak looks for BlueZ
    with FakeBluez(bus_address) as fake:
        yield fake


@pytest.fixture
def bus_without_bluez(bus_address: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address)
    return bus_address


@pytest.fixture
def no_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    address = f"unix:path={tmp_path / 'no-such-bus'}"
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
    return address


@run_async
async def test_bluez_reads_a_broadcast_advertisement_with_our_data(
    bluez: FakeBluez, bus_address: str
) -> None:
    advertiser = BluezBleAdvertiser("hci1", bus_address=bus_address)
    await advertiser.start(BEACON)
    [registration] = bluez.registrations.values()
    await advertiser.stop()
    assert registration.adapter == "hci1"
    assert registration.props["Type"] == "broadcast"
    assert registration.props["ManufacturerData"] == {TEST_COMPANY_ID: PAYLOAD}
    assert registration.props["ServiceUUIDs"] == ["0000180f-0000-1000-8000-00805f9b34fb"]
    assert registration.props["MinInterval"] == registration.props["MaxInterval"] == 250
    assert registration.props["TxPower"] == -4
    assert registration.props["Includes"] == ["tx-power"]


@run_async
async def test_stop_unregisters_the_advertisement(bluez: FakeBluez, bus_address: str) -> None:
    advertiser = BluezBleAdvertiser("hci1", bus_address=bus_address)
    await advertiser.start(BEACON)
    while_on = advertiser.advertising
    await advertiser.stop()
    assert (while_on, advertiser.advertising) == (True, False)
    assert bluez.registrations == {}


@run_async
async def test_address_is_unknown_because_bluez_does_not_report_it(
    bluez: FakeBluez, bus_address: str
) -> None:
    advertiser = BluezBleAdvertiser("hci1", bus_address=bus_address)
    await advertiser.start(BEACON)
    assert advertiser.address == ""
    await advertiser.stop()


@run_async
async def test_advertisement_released_by_bluez_stops_without_error(
    bluez: FakeBluez, bus_address: str
) -> None:
    advertiser = BluezBleAdvertiser("hci1", bus_address=bus_address)
    await advertiser.start(BEACON)
    bluez.release_all()
    await advertiser.stop()  # BlueZ already forgot it: unregistering again must not fail
    assert not advertiser.advertising


@run_async
async def test_bluez_out_of_advertising_slots_is_a_device_error(
    bluez: FakeBluez, bus_address: str
) -> None:
    bluez.max_advertisements = 0
    advertiser = BluezBleAdvertiser("hci1", bus_address=bus_address)
    with pytest.raises(DeviceError, match="no free advertising slot"):
        await advertiser.start(BEACON)
    assert not advertiser.advertising


@run_async
async def test_advertiser_on_a_missing_adapter_says_what_to_plug_in(
    bluez: FakeBluez, bus_address: str
) -> None:
    with pytest.raises(AdapterUnavailable, match=r"no Bluetooth adapter hci7.*BLE dongle"):
        await BluezBleAdvertiser("hci7", bus_address=bus_address).start(BEACON)


@run_async
async def test_advertiser_without_bluez_says_to_start_bluetoothd(bus_without_bluez: str) -> None:
    with pytest.raises(AdapterUnavailable, match="start bluetoothd"):
        await BluezBleAdvertiser("hci0", bus_address=bus_without_bluez).start(BEACON)


@run_async
async def test_advertiser_without_a_system_bus_says_to_start_dbus(no_bus: str) -> None:
    with pytest.raises(AdapterUnavailable, match="D-Bus system bus"):
        await BluezBleAdvertiser("hci0", bus_address=no_bus).start(BEACON)


@run_async
async def test_advertiser_refuses_a_malformed_uuid_before_touching_the_bus(no_bus: str) -> None:
    bad = Advertisement({TEST_COMPANY_ID: PAYLOAD}, service_uuids=("battery",))
    with pytest.raises(ConfigError, match="battery"):
        await BluezBleAdvertiser("hci0", bus_address=no_bus).start(bad)


@run_async
async def test_scanner_falls_back_to_active_scanning_when_bluez_cannot_monitor(
    bluez: FakeBluez, bus_address: str
) -> None:
    # The stand-in, like bluetoothd without --experimental, has no advertisement monitor.
    scanner, heard = BleakBleScanner("hci0", company_ids=[TEST_COMPANY_ID]), Heard()
    await scanner.start(heard)
    mode = scanner.scanning_mode
    advertiser = BluezBleAdvertiser("hci1", bus_address=bus_address)
    await advertiser.start(BEACON)
    _, data = await heard.first_carrying(PAYLOAD, timeout=5)
    await advertiser.stop()
    await scanner.stop()
    assert (mode, scanner.scanning_mode) == ("active", None)
    assert data.tx_power == -4
    assert data.service_uuids == ["0000180f-0000-1000-8000-00805f9b34fb"]


@run_async
async def test_scanner_listens_passively_when_bluez_can_monitor(
    bluez: FakeBluez, bus_address: str
) -> None:
    bluez.can_monitor = True
    scanner, heard = BleakBleScanner("hci0", company_ids=[TEST_COMPANY_ID]), Heard()
    await scanner.start(heard)
    assert scanner.scanning_mode == "passive"
    advertiser = BluezBleAdvertiser("hci1", bus_address=bus_address)
    await advertiser.start(BEACON)
    await heard.first_carrying(PAYLOAD, timeout=5)
    await advertiser.stop()
    assert bluez.discovering == set()  # never asked for an active scan
    await scanner.stop()
    assert bluez.monitoring == set()


@run_async
async def test_scanner_without_company_ids_scans_actively(bluez: FakeBluez) -> None:
    bluez.can_monitor = True
    scanner = BleakBleScanner("hci0")
    await scanner.start(Heard())
    assert scanner.scanning_mode == "active"
    await scanner.stop()


@run_async
async def test_scanner_with_no_adapter_at_all_says_to_plug_one_in(bus_without_bluez: str) -> None:
    no_adapters = FakeBluez(bus_without_bluez, adapters=())
    expected = "no Bluetooth adapter: plug in a BLE dongle"
    with no_adapters, pytest.raises(AdapterUnavailable, match=expected):
        await BleakBleScanner().start(Heard())


@run_async
async def test_scanner_on_a_missing_adapter_says_what_to_plug_in(bluez: FakeBluez) -> None:
    with pytest.raises(AdapterUnavailable, match=r"no Bluetooth adapter hci7.*BLE dongle"):
        await BleakBleScanner("hci7").start(Heard())


@run_async
async def test_scanner_without_bluez_says_to_start_bluetoothd(bus_without_bluez: str) -> None:
    with pytest.raises(AdapterUnavailable, match="start bluetoothd"):
        await BleakBleScanner("hci0").start(Heard())


@run_async
async def test_scanner_without_a_system_bus_says_to_start_dbus(no_bus: str) -> None:
    with pytest.raises(AdapterUnavailable, match="D-Bus system bus"):
        await BleakBleScanner().start(Heard())
