"""The simulated air: range, RSSI, loss, address rotation, threads, and the test controls."""

from __future__ import annotations

import asyncio
import statistics
import threading

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from hypothesis import given
from hypothesis import strategies as st

from hw.errors import ConfigError, DeviceError
from hw.ports.ble import Advertisement, SimRadioConfig
from hw.sim.ble import SimBleAdvertiser, SimBleScanner, SimRadio
from tests.hw.ble_helpers import TEST_COMPANY_ID, Heard, run_async

PAYLOAD = bytes.fromhex("01a1b2c3d40207")
BEACON = Advertisement(manufacturer_data={TEST_COMPANY_ID: PAYLOAD}, interval_ms=20)
#: Slow enough that the periodic broadcast stays out of the way of ``transmit_now`` counts.
QUIET = Advertisement(manufacturer_data={TEST_COMPANY_ID: PAYLOAD}, interval_ms=10_000)


@pytest.fixture
def radio() -> SimRadio:
    return SimRadio(SimRadioConfig(seed=1))


@run_async
async def test_scanner_in_range_hears_bleak_types_with_the_exact_manufacturer_data(
    radio: SimRadio,
) -> None:
    scanner, heard = SimBleScanner(radio, x_m=3), Heard()
    advertiser = SimBleAdvertiser(radio)
    await scanner.start(heard)
    await advertiser.start(BEACON)
    assert await scanner.wait_heard(1)
    await advertiser.stop()
    device, data = heard.items[0]
    assert isinstance(device, BLEDevice)
    assert isinstance(data, AdvertisementData)
    assert device.address == advertiser.address
    assert data.manufacturer_data == {TEST_COMPANY_ID: PAYLOAD}
    assert isinstance(data.rssi, int)


@run_async
async def test_advertiser_repeats_every_interval_without_help(radio: SimRadio) -> None:
    scanner = SimBleScanner(radio, x_m=1)
    advertiser = SimBleAdvertiser(radio)
    await scanner.start(Heard())
    await advertiser.start(BEACON)
    assert await scanner.wait_heard(5)
    await advertiser.stop()
    assert advertiser.sent >= 5


@run_async
async def test_rssi_falls_with_distance_as_the_path_loss_model_says(radio: SimRadio) -> None:
    near, far = SimBleScanner(radio, x_m=1), SimBleScanner(radio, x_m=20)
    near_heard, far_heard = Heard(), Heard()
    await near.start(near_heard)
    await far.start(far_heard)
    advertiser = SimBleAdvertiser(radio)
    await advertiser.start(QUIET)
    for _ in range(30):
        advertiser.transmit_now()
    assert await near.wait_heard(30) and await far.wait_heard(30)
    near_rssi = statistics.mean(a.rssi for _, a in near_heard.items)
    far_rssi = statistics.mean(a.rssi for _, a in far_heard.items)
    assert near_rssi > far_rssi + 20
    assert near_rssi == pytest.approx(radio.rssi_at(1), abs=1)
    assert far_rssi == pytest.approx(radio.rssi_at(20), abs=1)


@run_async
async def test_scanner_beyond_range_hears_nothing(radio: SimRadio) -> None:
    inside, outside = SimBleScanner(radio, x_m=29), SimBleScanner(radio, x_m=31)
    await inside.start(Heard())
    await outside.start(Heard())
    advertiser = SimBleAdvertiser(radio)
    await advertiser.start(QUIET)
    assert [advertiser.transmit_now() for _ in range(10)] == [1] * 10
    assert await inside.wait_heard(10)
    assert outside.heard == 0


@run_async
async def test_scanner_that_moves_out_of_range_stops_hearing(radio: SimRadio) -> None:
    scanner = SimBleScanner(radio, x_m=5)
    await scanner.start(Heard())
    advertiser = SimBleAdvertiser(radio)
    await advertiser.start(QUIET)
    assert advertiser.transmit_now() == 1
    scanner.move(40, 0)
    assert advertiser.transmit_now() == 0
    advertiser.move(35, 0)
    assert advertiser.transmit_now() == 1


@run_async
async def test_half_the_packets_are_lost_at_loss_one_half() -> None:
    radio = SimRadio(SimRadioConfig(loss=0.5, seed=3))
    scanner = SimBleScanner(radio, x_m=1)
    await scanner.start(Heard())
    advertiser = SimBleAdvertiser(radio)
    await advertiser.start(QUIET)
    delivered = sum(advertiser.transmit_now() for _ in range(1000))
    assert 450 <= delivered <= 550
    assert await scanner.wait_heard(delivered)
    assert radio.dropped + delivered == 1000


def test_packet_loss_is_reproducible_for_a_seed() -> None:
    async def pattern(seed: int) -> list[int]:
        radio = SimRadio(SimRadioConfig(loss=0.5, seed=seed))
        await SimBleScanner(radio, x_m=1).start(Heard())
        advertiser = SimBleAdvertiser(radio)
        await advertiser.start(QUIET)
        outcome = [advertiser.transmit_now() for _ in range(200)]
        await advertiser.stop()
        return outcome

    assert asyncio.run(pattern(5)) == asyncio.run(pattern(5))
    assert asyncio.run(pattern(5)) != asyncio.run(pattern(6))


@run_async
async def test_address_is_a_new_non_resolvable_private_address_on_every_start(
    radio: SimRadio,
) -> None:
    advertiser = SimBleAdvertiser(radio)
    assert advertiser.address == ""
    addresses = []
    for _ in range(5):
        await advertiser.start(QUIET)
        addresses.append(advertiser.address)
        await advertiser.stop()
    assert len(set(addresses)) == 5
    for address in addresses:
        top_two_bits = int(address[:2], 16) >> 6
        assert top_two_bits == 0b00, address  # Core spec Vol 6, Part B, 1.3.2.2
        assert address not in ("00:00:00:00:00:00", "3F:FF:FF:FF:FF:FF")


def test_scanners_on_two_event_loops_in_two_threads_both_hear(radio: SimRadio) -> None:
    scanners = [SimBleScanner(radio, x_m=2), SimBleScanner(radio, x_m=-2)]
    heard = [Heard(), Heard()]
    listening = [threading.Event(), threading.Event()]

    def listen(i: int) -> None:
        async def scan() -> None:
            await scanners[i].start(heard[i])
            listening[i].set()
            await scanners[i].wait_heard(3, timeout=5)
            await scanners[i].stop()

        asyncio.run(scan())

    threads = [threading.Thread(target=listen, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    assert all(event.wait(5) for event in listening)

    async def advertise() -> list[bool]:
        advertiser = SimBleAdvertiser(radio)
        await advertiser.start(BEACON)
        # The sim's blocking wait: this loop keeps broadcasting while a worker thread waits.
        waits = [asyncio.to_thread(s.wait_heard_blocking, 3, 5) for s in scanners]
        results = await asyncio.gather(*waits)
        await advertiser.stop()
        return results

    assert asyncio.run(advertise()) == [True, True]
    for thread in threads:
        thread.join(timeout=5)
    own_threads = [h.threads for h in heard]
    assert len(own_threads[0]) == len(own_threads[1]) == 1
    assert own_threads[0] != own_threads[1]
    assert threading.get_ident() not in own_threads[0] | own_threads[1]


@run_async
async def test_stopped_scanner_hears_nothing_more(radio: SimRadio) -> None:
    stopped, control = SimBleScanner(radio, x_m=1), SimBleScanner(radio, x_m=1)
    await stopped.start(Heard())
    await control.start(Heard())
    advertiser = SimBleAdvertiser(radio)
    await advertiser.start(QUIET)
    assert await stopped.wait_heard(1)
    advertiser.transmit_now()  # in flight when the scanner stops: must not arrive
    await stopped.stop()
    for _ in range(5):
        advertiser.transmit_now()
    assert await control.wait_heard(7)
    assert stopped.heard == 1


@run_async
async def test_stopped_advertiser_is_heard_no_more(radio: SimRadio) -> None:
    scanner, heard = SimBleScanner(radio, x_m=1), Heard()
    await scanner.start(heard)
    silenced, control = SimBleAdvertiser(radio), SimBleAdvertiser(radio)
    await silenced.start(BEACON)
    assert await scanner.wait_heard(1)
    await silenced.stop()
    sent = silenced.sent
    before = len(heard.items)
    await control.start(BEACON)
    assert await scanner.wait_heard(before + 5)
    await control.stop()
    assert silenced.sent == sent
    assert {d.address for d, _ in heard.items[before:]} == {control.address}


@run_async
async def test_inject_plays_a_forged_advertisement_into_every_scanner(radio: SimRadio) -> None:
    near, far = SimBleScanner(radio), SimBleScanner(radio, x_m=500)
    near_heard, far_heard = Heard(), Heard()
    await near.start(near_heard)
    await far.start(far_heard)
    forged = Advertisement(manufacturer_data={TEST_COMPANY_ID: b"\x01forged"})
    assert radio.inject(forged, "c0:ff:ee:00:00:01", rssi=-40) == 2
    assert await near.wait_heard(1) and await far.wait_heard(1)
    for heard in (near_heard, far_heard):
        device, data = heard.items[0]
        assert device.address == "C0:FF:EE:00:00:01"
        assert data.manufacturer_data == {TEST_COMPANY_ID: b"\x01forged"}
        assert data.rssi == -40
    assert radio.sent == 0
    assert radio.heard == 2


@run_async
async def test_service_uuids_and_data_arrive_in_bleaks_128_bit_form(radio: SimRadio) -> None:
    scanner, heard = SimBleScanner(radio, x_m=1), Heard()
    await scanner.start(heard)
    advertiser = SimBleAdvertiser(radio)
    tagged = Advertisement(
        {TEST_COMPANY_ID: b"\x01"}, service_uuids=("180F",), extra={"fe2c": b"x"}
    )
    await advertiser.start(tagged)
    assert await scanner.wait_heard(1)
    await advertiser.stop()
    _, data = heard.items[0]
    assert data.service_uuids == ["0000180f-0000-1000-8000-00805f9b34fb"]
    assert data.service_data == {"0000fe2c-0000-1000-8000-00805f9b34fb": b"x"}


@given(data=st.binary(max_size=40))
def test_manufacturer_data_fits_a_legacy_pdu_up_to_24_bytes(data: bytes) -> None:
    # 31 bytes = TX power level (3) + manufacturer data header, length and company id (4) + 24.
    async def accepted() -> bool:
        try:
            await SimBleAdvertiser(SimRadio()).start(Advertisement({TEST_COMPANY_ID: data}))
        except DeviceError:
            return False
        return True

    assert asyncio.run(accepted()) == (len(data) <= 24)


@run_async
async def test_advertisement_longer_than_a_legacy_pdu_is_refused(radio: SimRadio) -> None:
    too_long = Advertisement(manufacturer_data={TEST_COMPANY_ID: bytes(25)})
    with pytest.raises(DeviceError, match="31"):
        await SimBleAdvertiser(radio).start(too_long)


@run_async
async def test_wait_heard_gives_up_at_its_timeout(radio: SimRadio) -> None:
    scanner = SimBleScanner(radio)
    await scanner.start(Heard())
    assert not await scanner.wait_heard(1, timeout=0.05)
    assert not scanner.wait_heard_blocking(1, timeout=0.05)


@run_async
async def test_a_malformed_service_uuid_is_a_config_error(radio: SimRadio) -> None:
    bad = Advertisement({TEST_COMPANY_ID: b"\x01"}, service_uuids=("not-a-uuid",))
    with pytest.raises(ConfigError, match="not-a-uuid"):
        await SimBleAdvertiser(radio).start(bad)
