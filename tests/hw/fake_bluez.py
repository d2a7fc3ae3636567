"""A private D-Bus daemon with a stand-in for bluetoothd, so the real BLE adapters run here.

The real adapters speak D-Bus to BlueZ; that conversation is what can go wrong (signatures,
paths, error names), so the tests keep it real: a real ``dbus-daemon`` and real dbus-fast on
both sides. Only bluetoothd and the radio are stood in for. ``FakeBluez`` owns ``org.bluez``
with two adapters sharing one air: an advertisement registered on one adapter is discovered,
as ``org.bluez.Device1`` objects, by every other adapter that is discovering, which is what two
controllers side by side would do. Like bluetoothd, it reads a registered advertisement's
properties back from its owner and refuses what it cannot use.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bleak.uuids import normalize_uuid_str
from dbus_fast import Message, MessageFlag, MessageType, Variant
from dbus_fast.aio import MessageBus

T = TypeVar("T")

ADAPTER = "org.bluez.Adapter1"
ADV_MANAGER = "org.bluez.LEAdvertisingManager1"
MONITOR_MANAGER = "org.bluez.AdvertisementMonitorManager1"
ADVERTISEMENT = "org.bluez.LEAdvertisement1"
DEVICE = "org.bluez.Device1"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
PROPERTIES = "org.freedesktop.DBus.Properties"
RSSI_DBM = -60

_DAEMON_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_type="method_call"/>
    <allow send_type="signal"/><allow send_type="method_return"/><allow send_type="error"/>
    <allow receive_type="method_call"/><allow receive_type="signal"/>
    <allow receive_type="method_return"/><allow receive_type="error"/>
  </policy>
</busconfig>
"""


@contextlib.contextmanager
def private_bus(folder: Path) -> Iterator[str]:
    """A dbus-daemon of our own; yields its address. Skips are the caller's business."""
    binary = shutil.which("dbus-daemon")
    if binary is None:
        raise FileNotFoundError("dbus-daemon")
    socket = folder / "bus.sock"
    config = folder / "bus.conf"
    config.write_text(_DAEMON_CONFIG.format(socket=socket))
    proc = subprocess.Popen(
        [binary, f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()  # printed once the socket listens
        if not address:
            raise RuntimeError("dbus-daemon exited before listening")
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass
class Registration:
    adapter: str
    owner: str
    path: str
    address: str
    props: dict[str, Any]  # unpacked LEAdvertisement1 properties as bluetoothd read them


class FakeBluez:
    """bluetoothd's D-Bus face on its own thread and event loop. Test controls are methods."""

    def __init__(self, bus_address: str, adapters: tuple[str, ...] = ("hci0", "hci1")) -> None:
        self._bus_address = bus_address
        self._adapters = adapters
        self.max_advertisements = 4
        self.registrations: dict[tuple[str, str], Registration] = {}
        self.discovering: set[str] = set()
        #: bluetoothd offers passive scanning (advertisement monitors) only with --experimental
        self.can_monitor = False
        self.monitoring: set[str] = set()
        self._rng = random.Random(7)
        self._loop = asyncio.new_event_loop()
        self._bus: MessageBus | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeBluez:
        self._thread.start()
        self._run(self._connect())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._disconnect())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def release_all(self) -> None:
        """Test control: drop every advertisement as bluetoothd does when an adapter goes."""
        self._run(self._release_all())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _connect(self) -> None:
        self._bus = await MessageBus(bus_address=self._bus_address).connect()
        self._bus.add_message_handler(self._handle)
        await self._bus.request_name("org.bluez")

    async def _disconnect(self) -> None:
        if self._bus is not None:
            self._bus.disconnect()
            with contextlib.suppress(Exception):
                await self._bus.wait_for_disconnect()  # type: ignore[no-untyped-call]

    async def _release_all(self) -> None:
        assert self._bus is not None
        for reg in list(self.registrations.values()):
            self._bus.send(
                Message(
                    destination=reg.owner,
                    path=reg.path,
                    interface=ADVERTISEMENT,
                    member="Release",
                    flags=MessageFlag.NO_REPLY_EXPECTED,
                )
            )
        self.registrations.clear()

    # -- D-Bus ----------------------------------------------------------------------------------

    def _handle(self, msg: Message) -> Message | bool | None:
        if msg.message_type != MessageType.METHOD_CALL or msg.destination is None:
            return None
        if msg.path == "/" and (msg.interface, msg.member) == (OBJECT_MANAGER, "GetManagedObjects"):
            return Message.new_method_return(msg, "a{oa{sa{sv}}}", [self._managed_objects()])
        adapter = (msg.path or "").removeprefix("/org/bluez/")
        if adapter not in self._adapters:
            return _error(msg, "org.freedesktop.DBus.Error.UnknownObject", f"no {msg.path}")
        call = (msg.interface, msg.member)
        if call == (PROPERTIES, "GetAll"):
            props = self._adapter_interfaces(adapter).get(msg.body[0])
            if props is None:
                return _error(msg, "org.freedesktop.DBus.Error.InvalidArgs", "No such interface")
            return Message.new_method_return(msg, "a{sv}", [props])
        if call == (ADAPTER, "SetDiscoveryFilter"):
            return Message.new_method_return(msg)
        if call == (ADAPTER, "StartDiscovery"):
            self.discovering.add(adapter)
            for reg in self.registrations.values():  # heard once discovery has begun
                self._loop.call_soon(self._emit_heard, reg, adapter)
            return Message.new_method_return(msg)
        if call == (ADAPTER, "StopDiscovery"):
            self.discovering.discard(adapter)
            return Message.new_method_return(msg)
        if self.can_monitor and call == (MONITOR_MANAGER, "RegisterMonitor"):
            self.monitoring.add(adapter)
            for reg in self.registrations.values():
                self._loop.call_soon(self._emit_heard, reg, adapter)
            return Message.new_method_return(msg)
        if self.can_monitor and call == (MONITOR_MANAGER, "UnregisterMonitor"):
            self.monitoring.discard(adapter)
            return Message.new_method_return(msg)
        if call == (ADV_MANAGER, "RegisterAdvertisement"):
            self._loop.create_task(self._register(msg, adapter))
            return True  # answered once the advertisement's properties are read
        if call == (ADV_MANAGER, "UnregisterAdvertisement"):
            if self.registrations.pop((msg.sender or "", msg.body[0]), None) is None:
                return _error(msg, "org.bluez.Error.DoesNotExist", "Does Not Exist")
            return Message.new_method_return(msg)
        return _error(msg, "org.freedesktop.DBus.Error.UnknownMethod", f"no {msg.member}")

    async def _register(self, msg: Message, adapter: str) -> None:
        assert self._bus is not None
        owner, path = msg.sender or "", msg.body[0]
        reply = await self._bus.call(
            Message(
                destination=owner,
                path=path,
                interface=PROPERTIES,
                member="GetAll",
                signature="s",
                body=[ADVERTISEMENT],
            )
        )
        if reply is None or reply.message_type == MessageType.ERROR or not reply.body[0]:
            self._bus.send(_error(msg, "org.bluez.Error.Failed", "Failed to parse advertisement"))
            return
        props = _unpack(reply.body[0])
        if props.get("Type") not in ("broadcast", "peripheral"):
            self._bus.send(_error(msg, "org.bluez.Error.InvalidArguments", "Invalid Type"))
            return
        if (
            sum(r.adapter == adapter for r in self.registrations.values())
            >= self.max_advertisements
        ):
            self._bus.send(
                _error(msg, "org.bluez.Error.NotPermitted", "Maximum advertisements reached")
            )
            return
        reg = Registration(adapter, owner, path, self._private_address(), props)
        self.registrations[(owner, path)] = reg
        self._bus.send(Message.new_method_return(msg))
        for listener in self.discovering | self.monitoring:
            self._emit_heard(reg, listener)

    def _emit_heard(self, reg: Registration, listener: str) -> None:
        if listener == reg.adapter or self._bus is None:
            return  # a controller does not receive its own advertisements
        device_path = f"/org/bluez/{listener}/dev_{reg.address.replace(':', '_')}"
        device = {
            "Address": Variant("s", reg.address),
            "AddressType": Variant("s", "random"),
            "Alias": Variant("s", reg.address.replace(":", "-")),
            "Adapter": Variant("o", f"/org/bluez/{listener}"),
            "Paired": Variant("b", False),
            "Connected": Variant("b", False),
            "Trusted": Variant("b", False),
            "Blocked": Variant("b", False),
            "LegacyPairing": Variant("b", False),
            "ServicesResolved": Variant("b", False),
            "RSSI": Variant("n", RSSI_DBM),
            "UUIDs": Variant(
                "as", [normalize_uuid_str(u) for u in reg.props.get("ServiceUUIDs", [])]
            ),
            "ManufacturerData": Variant(
                "a{qv}",
                {
                    k: Variant("ay", bytes(v))
                    for k, v in reg.props.get("ManufacturerData", {}).items()
                },
            ),
            "ServiceData": Variant(
                "a{sv}",
                {
                    normalize_uuid_str(k): Variant("ay", bytes(v))
                    for k, v in reg.props.get("ServiceData", {}).items()
                },
            ),
        }
        if "tx-power" in reg.props.get("Includes", []):
            device["TxPower"] = Variant("n", reg.props.get("TxPower", 0))
        self._bus.send(
            Message.new_signal(
                "/",
                OBJECT_MANAGER,
                "InterfacesAdded",
                "oa{sa{sv}}",
                [device_path, {DEVICE: device}],
            )
        )

    def _managed_objects(self) -> dict[str, dict[str, dict[str, Variant]]]:
        return {f"/org/bluez/{a}": self._adapter_interfaces(a) for a in self._adapters}

    def _adapter_interfaces(self, adapter: str) -> dict[str, dict[str, Variant]]:
        index = self._adapters.index(adapter)
        active = sum(r.adapter == adapter for r in self.registrations.values())
        monitor = {
            MONITOR_MANAGER: {
                "SupportedMonitorTypes": Variant("as", ["or_patterns"]),
                "SupportedFeatures": Variant("as", []),
            }
        }
        return {
            **(monitor if self.can_monitor else {}),
            ADAPTER: {
                "Address": Variant("s", f"00:1A:7D:DA:71:{index:02X}"),
                "AddressType": Variant("s", "public"),
                "Name": Variant("s", f"fake-{adapter}"),
                "Alias": Variant("s", f"fake-{adapter}"),
                "Powered": Variant("b", True),
                "Discovering": Variant("b", adapter in self.discovering),
                "Roles": Variant("as", ["central", "peripheral"]),
                "UUIDs": Variant("as", []),
            },
            ADV_MANAGER: {
                "ActiveInstances": Variant("y", active),
                "SupportedInstances": Variant("y", self.max_advertisements - active),
                "SupportedIncludes": Variant("as", ["tx-power", "appearance", "local-name"]),
            },
        }

    def _private_address(self) -> str:
        bits = self._rng.getrandbits(46)  # top two bits 0b00: a non-resolvable private address
        return ":".join(f"{(bits >> s) & 0xFF:02X}" for s in range(40, -8, -8))


def _error(msg: Message, name: str, text: str) -> Message:
    return Message.new_error(msg, name, text)


def _unpack(props: dict[str, Variant]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Variant):
            return plain(value.value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {name: plain(value) for name, value in props.items()}
