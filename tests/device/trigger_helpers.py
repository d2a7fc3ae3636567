"""A small agency for the trigger tests: its registry, its sources, and advertisements from them."""

from __future__ import annotations

from dataclasses import dataclass

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from custody.trigger import COMPANY_ID, EventType, TriggerEvent, seal_trigger
from custody.trigger_registry import TriggerRegistry, TriggerSource

AGENCY_SECRET = bytes(range(32))
OTHER_AGENCY_SECRET = bytes(range(1, 33))

HOLSTER = TriggerSource(0x1A2B3C4D, "holster-1187", "holster", bytes([1]) * 32, rssi_min_dbm=-80)
LIGHTBAR = TriggerSource(0x0000CAFE, "car-12-lightbar", "lightbar", bytes([2]) * 32, -75)
DOOR = TriggerSource(0x0000D00A, "car-12-door", "door", bytes([3]) * 32, -75, enabled=False)
THIS_CAMERA = TriggerSource(0x00C0FFEE, "cam-0042", "peer", bytes([4]) * 32, -85)
PEER_CAMERA = TriggerSource(0x00C0FFEF, "cam-0043", "peer", bytes([5]) * 32, -85)
UNREGISTERED = TriggerSource(0x0BADBEEF, "someone-else", "holster", bytes([6]) * 32, -80)
SOURCES = (HOLSTER, LIGHTBAR, DOOR, THIS_CAMERA, PEER_CAMERA)


def agency_registry() -> TriggerRegistry:
    return TriggerRegistry(AGENCY_SECRET, SOURCES, self_source_id=THIS_CAMERA.source_id)


def payload(
    source: TriggerSource,
    counter: int,
    event_type: EventType = EventType.HOLSTER,
    *,
    incident: int = 0,
    hop: int = 0,
    agency_secret: bytes = AGENCY_SECRET,
    source_secret: bytes | None = None,
) -> bytes:
    """What ``source`` advertises for its event number ``counter``."""
    event = TriggerEvent(source.source_id, event_type, counter, incident, hop)
    secret = source.secret if source_secret is None else source_secret
    return seal_trigger(event, source_secret=secret, agency_secret=agency_secret)


@dataclass(frozen=True)
class Heard:
    """One advertisement as bleak hands it to a scanner callback."""

    device: BLEDevice
    data: AdvertisementData


def heard(
    manufacturer_payload: bytes,
    *,
    rssi: int = -60,
    company_id: int = COMPANY_ID,
    address: str = "C4:11:22:33:44:55",
) -> Heard:
    """Bleak's own types, built as the sim radio and bleak's BlueZ backend build them."""
    details = {"test": True}
    return Heard(
        BLEDevice(address, None, details),
        AdvertisementData(
            local_name=None,
            manufacturer_data={company_id: manufacturer_payload},
            service_data={},
            service_uuids=[],
            tx_power=0,
            rssi=rssi,
            platform_data=("test", details),
        ),
    )
