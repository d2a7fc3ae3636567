"""BluezBleAdvertiser: this camera's beacon, handed to BlueZ's LE advertising manager over D-Bus.

We export an ``org.bluez.LEAdvertisement1`` object on the system bus and register it with
``org.bluez.LEAdvertisingManager1`` on ``/org/bluez/<device>``; bluetoothd reads its properties
and programs the controller. See BlueZ's ``doc/org.bluez.LEAdvertisement.rst`` and
``doc/org.bluez.LEAdvertisingManager.rst``.

Address rotation on a real controller: bluetoothd does not choose the advertising address, the
kernel does, and D-Bus never reports it. For a non-connectable ("broadcast") advertisement the
kernel uses a resolvable private address when privacy is enabled (``Privacy = device`` in
``/etc/bluetooth/main.conf``), rotated every RPA timeout (15 minutes by default), and otherwise a
fresh non-resolvable private address when the adapter is not connectable, or its public address
when it is. Enable privacy on a camera to keep its beacon untrackable. Because the address is
unknown here, ``address`` is "".
"""

# No ``from __future__ import annotations``: dbus-fast reads the D-Bus signatures from the
# ``Annotated`` hints of the interface below, and real objects are the clearest input for it.

import contextlib
import itertools
import os
from collections.abc import Callable
from typing import Annotated, Any

from hw.errors import AdapterUnavailable, DeviceError
from hw.ports.ble import Advertisement
from hw.ports.ble_rules import check_limits, normalize_uuid

try:
    from dbus_fast import BusType, Message, MessageType, PropertyAccess, Variant
    from dbus_fast.aio import MessageBus
    from dbus_fast.annotations import DBusInt16, DBusSignature, DBusStr, DBusUInt32
    from dbus_fast.errors import AuthError, InvalidAddressError
    from dbus_fast.service import ServiceInterface, dbus_method, dbus_property
except ImportError as exc:  # dbus-fast is a Linux-only dependency
    raise AdapterUnavailable(
        "dbus-fast is not installed: run 'pip install dbus-fast' (BlueZ advertising needs Linux)"
    ) from exc

BLUEZ = "org.bluez"
ADVERTISEMENT_IFACE = "org.bluez.LEAdvertisement1"
MANAGER_IFACE = "org.bluez.LEAdvertisingManager1"
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"

DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]
DBusServiceData = Annotated[dict[str, Variant], DBusSignature("a{sv}")]

_NO_ADAPTER = "plug in a BLE dongle or enable {name}; is bluetoothd running?"
_paths = itertools.count(1)


class LEAdvertisement(ServiceInterface):
    """The ``org.bluez.LEAdvertisement1`` object that bluetoothd reads the beacon from."""

    def __init__(
        self, advertisement: Advertisement, includes: list[str], on_release: Callable[[], None]
    ) -> None:
        super().__init__(ADVERTISEMENT_IFACE)
        self._adv = advertisement
        self._includes = includes
        self._on_release = on_release

    @dbus_method()
    def Release(self) -> None:  # noqa: N802 - D-Bus member names are CamelCase
        """bluetoothd dropped the advertisement (adapter gone, daemon stopping)."""
        self._on_release()

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> DBusStr:  # noqa: N802
        return "broadcast"

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> DBusManufacturerData:  # noqa: N802
        return {cid: Variant("ay", bytes(d)) for cid, d in self._adv.manufacturer_data.items()}

    @dbus_property(access=PropertyAccess.READ)
    def ServiceUUIDs(self) -> DBusStrList:  # noqa: N802
        return [normalize_uuid(u) for u in self._adv.service_uuids]

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> DBusServiceData:  # noqa: N802
        return {normalize_uuid(u): Variant("ay", bytes(d)) for u, d in self._adv.extra.items()}

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> DBusStrList:  # noqa: N802
        return list(self._includes)

    # BlueZ 5.56 and later honour these three; older ones ignore properties they do not know.
    @dbus_property(access=PropertyAccess.READ)
    def MinInterval(self) -> DBusUInt32:  # noqa: N802
        return self._adv.interval_ms

    @dbus_property(access=PropertyAccess.READ)
    def MaxInterval(self) -> DBusUInt32:  # noqa: N802
        return self._adv.interval_ms

    @dbus_property(access=PropertyAccess.READ)
    def TxPower(self) -> DBusInt16:  # noqa: N802 - used only where the controller can set it
        return self._adv.tx_power_dbm


class BluezBleAdvertiser:
    def __init__(self, device: str = "hci0", *, bus_address: str | None = None) -> None:
        """``bus_address``: a D-Bus address to use instead of the system bus (tests, containers)."""
        self._device = device
        self._adapter_path = f"/org/bluez/{device}"
        self._bus_address = bus_address
        self._bus: MessageBus | None = None
        self._path = ""
        self._released = False

    @property
    def address(self) -> str:
        """Always "": BlueZ does not report the address it advertises with (see module doc)."""
        return ""

    @property
    def advertising(self) -> bool:
        return self._bus is not None and not self._released

    async def start(self, advertisement: Advertisement) -> None:
        if self._bus is not None:
            raise DeviceError("the BLE advertiser is already advertising: call stop() first")
        check_limits(advertisement)
        bus = await self._connect()
        path = f"/org/bwc/advertisement/{os.getpid()}_{next(_paths)}"
        try:
            manager = await self._call(bus, PROPERTIES_IFACE, "GetAll", "s", [MANAGER_IFACE])
            supported = manager[0].get("SupportedIncludes", Variant("as", [])).value
            includes = ["tx-power"] if "tx-power" in supported else []
            self._released = False
            bus.export(path, LEAdvertisement(advertisement, includes, self._mark_released))
            await self._call(bus, MANAGER_IFACE, "RegisterAdvertisement", "oa{sv}", [path, {}])
        except BaseException:
            await _close(bus)
            raise
        self._bus, self._path = bus, path

    async def stop(self) -> None:
        bus, self._bus = self._bus, None
        if bus is None:
            return
        try:
            # If BlueZ or the adapter went away, the advertisement went with it.
            with contextlib.suppress(AdapterUnavailable, DeviceError):
                if not self._released:
                    await self._call(
                        bus, MANAGER_IFACE, "UnregisterAdvertisement", "o", [self._path]
                    )
        finally:
            bus.unexport(self._path)
            await _close(bus)

    def _mark_released(self) -> None:
        self._released = True

    async def _connect(self) -> MessageBus:
        if self._bus_address is not None:
            bus = MessageBus(bus_address=self._bus_address)
        else:
            bus = MessageBus(bus_type=BusType.SYSTEM)
        try:
            await bus.connect()
        except AuthError as exc:
            raise AdapterUnavailable(
                f"the D-Bus system bus refused this user ({exc}): run as root or add the user "
                "to the 'bluetooth' group"
            ) from exc
        except (OSError, InvalidAddressError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise AdapterUnavailable(
                f"cannot reach the D-Bus system bus ({reason}): start dbus and bluetoothd "
                "('systemctl start bluetooth')"
            ) from exc
        return bus

    async def _call(
        self, bus: MessageBus, interface: str, member: str, signature: str, body: list[Any]
    ) -> list[Any]:
        message = Message(
            destination=BLUEZ,
            path=self._adapter_path,
            interface=interface,
            member=member,
            signature=signature,
            body=body,
        )
        reply = await bus.call(message)
        if reply is None:
            raise DeviceError(f"BlueZ sent no reply to {member}: check 'journalctl -u bluetooth'")
        if reply.message_type == MessageType.ERROR:
            detail = reply.body[0] if reply.body else ""
            raise self._translate(reply.error_name or "", str(detail), member)
        return list(reply.body)

    def _translate(self, error: str, detail: str, member: str) -> AdapterUnavailable | DeviceError:
        name = self._device
        if error in (
            "org.freedesktop.DBus.Error.ServiceUnknown",
            "org.freedesktop.DBus.Error.NoReply",
        ):
            return AdapterUnavailable(
                "BlueZ is not running on the system bus: start bluetoothd "
                "('systemctl start bluetooth')"
            )
        if error in (
            "org.freedesktop.DBus.Error.UnknownObject",
            "org.freedesktop.DBus.Error.UnknownMethod",
            "org.freedesktop.DBus.Error.UnknownInterface",
            "org.freedesktop.DBus.Error.InvalidArgs",
        ):
            return AdapterUnavailable(
                f"no Bluetooth adapter {name} with LE advertising: {_NO_ADAPTER.format(name=name)}"
            )
        if error == "org.freedesktop.DBus.Error.AccessDenied":
            return AdapterUnavailable(
                "D-Bus denied access to BlueZ: run as root or add the user to the 'bluetooth' group"
            )
        if error == "org.bluez.Error.InvalidLength":
            return DeviceError(
                f"{name} cannot fit this advertisement ({detail}): shorten the manufacturer data"
            )
        if error == "org.bluez.Error.NotPermitted":
            return DeviceError(
                f"{name} has no free advertising slot ({detail}): stop other advertisers "
                "('bluetoothctl advertise off')"
            )
        return DeviceError(
            f"BlueZ refused {member} on {name} ({error}: {detail}): check 'journalctl -u bluetooth'"
        )


async def _close(bus: MessageBus) -> None:
    # disconnect() only shuts the socket down; waiting lets dbus-fast close it, so no file
    # descriptor outlives the event loop.
    bus.disconnect()
    with contextlib.suppress(OSError, EOFError):
        await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
