"""BLE scanner and advertiser ports: the same assertions against every pair of adapters.

Each pair is a scanner and an advertiser that share an air: the sim pair on a ``SimRadio``; the
real (bleak and BlueZ) adapters against a stand-in bluetoothd on a private D-Bus daemon; and the
real adapters on real controllers, which needs two of them (a controller does not hear its own
advertisements): ``hci0`` scans, ``hci1`` advertises.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from hw.errors import AdapterUnavailable, ConfigError, DeviceError
from hw.ports.ble import (
    Advertisement,
    BleAdvertiser,
    BleAdvertiserConfig,
    BleScanner,
    BleScannerConfig,
    SimPosition,
    SimRadioConfig,
    open_ble_advertiser,
    open_ble_scanner,
)
from hw.real.ble_advertiser import BluezBleAdvertiser
from hw.sim.ble import SimRadio
from tests.hw.ble_helpers import TEST_COMPANY_ID, Heard, private_bus_or_skip, run_async
from tests.hw.fake_bluez import FakeBluez

_payloads = itertools.count(1)


@dataclass
class BlePair:
    scanner: BleScanner
    advertiser: BleAdvertiser
    hear_within_s: float


def beacon(interval_ms: int = 100) -> Advertisement:
    """A beacon with a payload no other test (or device on real air) sends."""
    payload = b"\x01bwc" + next(_payloads).to_bytes(4, "big")
    return Advertisement(manufacturer_data={TEST_COMPANY_ID: payload}, interval_ms=interval_ms)


def payload_of(advertisement: Advertisement) -> bytes:
    return advertisement.manufacturer_data[TEST_COMPANY_ID]


@pytest.fixture(scope="module")
def bus_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from private_bus_or_skip(tmp_path_factory.mktemp("dbus"))


def real_pair() -> BlePair:
    scanner = open_ble_scanner(BleScannerConfig(adapter="bleak", device="hci0"), SimRadio())
    advertiser = open_ble_advertiser(
        BleAdvertiserConfig(adapter="bluez", device="hci1"), SimRadio()
    )
    return BlePair(scanner, advertiser, hear_within_s=10)


@functools.cache
def real_adapters_missing() -> str | None:
    """Why the real pair cannot run here, or None; asked once, by starting both adapters."""
    probe = real_pair()

    async def start_and_stop() -> None:
        await probe.scanner.start(lambda _d, _a: None)
        await probe.scanner.stop()
        await probe.advertiser.start(beacon())
        await probe.advertiser.stop()

    try:
        asyncio.run(start_and_stop())
    except AdapterUnavailable as exc:
        return f"needs two BLE adapters (hci0 scans, hci1 advertises): {exc}"
    return None


@pytest.fixture(
    params=["sim", "bluez-fake", pytest.param("bluez", marks=pytest.mark.real)],
)
def pair(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlePair]:
    if request.param == "sim":
        radio = SimRadio(SimRadioConfig(seed=11))
        scanner = open_ble_scanner(BleScannerConfig(), radio)
        at_2m = BleAdvertiserConfig(position=SimPosition(x_m=2))
        yield BlePair(scanner, open_ble_advertiser(at_2m, radio), hear_within_s=2)
    elif request.param == "bluez-fake":
        address = request.getfixturevalue("bus_address")
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)  # where bleak finds BlueZ
        with FakeBluez(address):
            scanner = open_ble_scanner(BleScannerConfig(adapter="bleak", device="hci0"), SimRadio())
            advertiser = BluezBleAdvertiser("hci1", bus_address=address)
            yield BlePair(scanner, advertiser, hear_within_s=5)
    else:
        if (reason := real_adapters_missing()) is not None:
            pytest.skip(reason)
        yield real_pair()


def test_adapters_satisfy_the_ports(pair: BlePair) -> None:
    assert isinstance(pair.scanner, BleScanner)
    assert isinstance(pair.advertiser, BleAdvertiser)


@run_async
async def test_scanner_hears_the_advertisers_exact_manufacturer_data(pair: BlePair) -> None:
    heard, sent = Heard(), beacon()
    await pair.scanner.start(heard)
    await pair.advertiser.start(sent)
    device, data = await heard.first_carrying(payload_of(sent), pair.hear_within_s)
    await pair.advertiser.stop()
    await pair.scanner.stop()
    assert isinstance(device, BLEDevice)
    assert isinstance(data, AdvertisementData)
    assert data.manufacturer_data[TEST_COMPANY_ID] == payload_of(sent)
    assert -127 <= data.rssi <= 20
    if pair.advertiser.address:
        assert device.address == pair.advertiser.address


@run_async
async def test_callback_runs_on_the_loop_that_started_the_scanner(pair: BlePair) -> None:
    heard, sent = Heard(), beacon()
    await pair.scanner.start(heard)
    await pair.advertiser.start(sent)
    await heard.first_carrying(payload_of(sent), pair.hear_within_s)
    await pair.advertiser.stop()
    await pair.scanner.stop()
    assert heard.loops == {asyncio.get_running_loop()}


@run_async
async def test_scanner_hears_again_after_a_restart(pair: BlePair) -> None:
    first, second, sent = Heard(), Heard(), beacon()
    await pair.advertiser.start(sent)
    await pair.scanner.start(first)
    await first.first_carrying(payload_of(sent), pair.hear_within_s)
    await pair.scanner.stop()
    await pair.scanner.start(second)
    await second.first_carrying(payload_of(sent), pair.hear_within_s)
    await pair.scanner.stop()
    await pair.advertiser.stop()


@run_async
async def test_advertiser_is_heard_with_new_data_after_a_restart(pair: BlePair) -> None:
    heard, before, after = Heard(), beacon(), beacon()
    await pair.scanner.start(heard)
    await pair.advertiser.start(before)
    await heard.first_carrying(payload_of(before), pair.hear_within_s)
    await pair.advertiser.stop()
    await pair.advertiser.start(after)
    await heard.first_carrying(payload_of(after), pair.hear_within_s)
    await pair.advertiser.stop()
    await pair.scanner.stop()


@run_async
async def test_address_is_unknown_or_a_private_random_address(pair: BlePair) -> None:
    await pair.advertiser.start(beacon())
    address = pair.advertiser.address
    await pair.advertiser.stop()
    if address:  # BlueZ cannot tell which address the kernel advertises with
        assert int(address[:2], 16) >> 6 in (0b00, 0b01), address  # NRPA or RPA


@run_async
async def test_starting_a_running_scanner_is_refused(pair: BlePair) -> None:
    await pair.scanner.start(Heard())
    with pytest.raises(DeviceError, match="already scanning"):
        await pair.scanner.start(Heard())
    await pair.scanner.stop()


@run_async
async def test_starting_a_running_advertiser_is_refused(pair: BlePair) -> None:
    await pair.advertiser.start(beacon())
    with pytest.raises(DeviceError, match="already advertising"):
        await pair.advertiser.start(beacon())
    await pair.advertiser.stop()


@run_async
async def test_stop_without_start_is_harmless(pair: BlePair) -> None:
    await pair.scanner.stop()
    await pair.advertiser.stop()
    await pair.advertiser.stop()


@run_async
async def test_an_interval_faster_than_ble_allows_is_refused(pair: BlePair) -> None:
    with pytest.raises(ConfigError, match="20"):
        await pair.advertiser.start(beacon(interval_ms=10))
