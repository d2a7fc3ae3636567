"""What a legacy BLE advertisement may carry, as a controller and BlueZ enforce it.

Pure rules with no radio in them, shared by every advertiser adapter: the BlueZ adapter checks
them before talking to D-Bus, and the sim advertiser refuses what no real controller would send,
with the same errors. UUIDs are normalised as bleak on BlueZ reports them.
"""

from __future__ import annotations

from bleak.uuids import normalize_uuid_str

from hw.errors import ConfigError, DeviceError
from hw.ports.ble import Advertisement

#: The BLE advertising interval range in milliseconds (Core spec, Vol 4, Part E, 7.8.53).
MIN_INTERVAL_MS = 20
MAX_INTERVAL_MS = 10_485_759
#: What one legacy advertising PDU carries; every scanner, old or new, can receive these.
LEGACY_ADV_MAX_BYTES = 31

_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"


def check_limits(advertisement: Advertisement) -> None:
    """Refuse an interval, TX power or UUID outside what BLE and BlueZ accept."""
    if not MIN_INTERVAL_MS <= advertisement.interval_ms <= MAX_INTERVAL_MS:
        raise ConfigError(
            f"advertising interval {advertisement.interval_ms} ms is outside BLE's "
            f"{MIN_INTERVAL_MS}..{MAX_INTERVAL_MS} ms: choose an interval in that range"
        )
    if not -127 <= advertisement.tx_power_dbm <= 20:
        raise ConfigError(
            f"advertising TX power {advertisement.tx_power_dbm} dBm is outside BLE's -127..20 dBm"
        )
    for uuid in (*advertisement.service_uuids, *advertisement.extra):
        normalize_uuid(uuid)


def check_advertisement(advertisement: Advertisement) -> None:
    """:func:`check_limits`, and the size of one legacy advertising PDU, which the sim enforces.

    The BlueZ adapter leaves the size to the controller, which may support extended advertising.
    """
    check_limits(advertisement)
    size = legacy_payload_size(advertisement)
    if size > LEGACY_ADV_MAX_BYTES:
        raise DeviceError(
            f"advertisement needs {size} bytes but a legacy BLE advertisement carries "
            f"{LEGACY_ADV_MAX_BYTES}: shorten the manufacturer or service data"
        )


def legacy_payload_size(advertisement: Advertisement) -> int:
    """Bytes of advertising data as BlueZ lays it out: one length+type header per AD structure."""
    size = 3  # TX power level, which both adapters include
    for data in advertisement.manufacturer_data.values():
        size += 2 + 2 + len(data)
    by_width: dict[int, int] = {}
    for uuid in advertisement.service_uuids:
        width = _uuid_width(uuid)
        by_width[width] = by_width.get(width, 0) + width
    size += sum(2 + total for total in by_width.values())
    for uuid, data in advertisement.extra.items():
        size += 2 + _uuid_width(uuid) + len(data)
    return size


def normalize_uuid(uuid: str) -> str:
    """The 128-bit lower-case form of a 16/32/128-bit Bluetooth UUID; ConfigError if it is none."""
    try:
        return normalize_uuid_str(uuid)
    except ValueError as exc:
        raise ConfigError(f"{uuid!r} is not a Bluetooth UUID: use its 16/32/128-bit form") from exc


def _uuid_width(uuid: str) -> int:
    full = normalize_uuid(uuid)
    if full.endswith(_BASE_UUID_TAIL):
        return 2 if full.startswith("0000") else 4
    return 16
