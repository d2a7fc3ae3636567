"""SimRadio: the simulated air that sim BLE scanners and advertisers share.

Advertisers broadcast every ``interval_ms``; each running scanner in range hears the packet as
bleak's own ``BLEDevice`` and ``AdvertisementData``, with an RSSI from a log-distance path-loss
model plus a little noise. Packets beyond ``range_m`` are never heard and ``loss`` drops packets at
random. Every random draw comes from generators seeded by ``SimRadioConfig.seed`` (one per
advertiser), so a run is reproducible whatever the threads do.

Locking contract: one lock guards the radio's membership, counters and positions. A transmission
decides who hears what under the lock, then hands each delivery to its scanner's event loop with
``call_soon_threadsafe``, so scanners on different loops in different threads each get their
callback on their own loop and no callback ever runs under the lock.

What an advertisement may carry is checked by :mod:`hw.ports.ble_rules`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from hw.errors import DeviceError
from hw.ports.ble import Advertisement, DetectionCallback, SimRadioConfig

# ``name as name`` re-exports: these public names stay importable from hw.sim.ble, as before.
from hw.ports.ble_rules import LEGACY_ADV_MAX_BYTES as LEGACY_ADV_MAX_BYTES
from hw.ports.ble_rules import MAX_INTERVAL_MS as MAX_INTERVAL_MS
from hw.ports.ble_rules import MIN_INTERVAL_MS as MIN_INTERVAL_MS
from hw.ports.ble_rules import check_advertisement as check_advertisement
from hw.ports.ble_rules import legacy_payload_size as legacy_payload_size
from hw.ports.ble_rules import normalize_uuid

_NOISE_SIGMA_DB = 1.0
#: Closer than this the far-field model no longer holds; treat it as this distance.
_MIN_DISTANCE_M = 0.1


@dataclass(eq=False)
class _Listener:
    """One ``start``..``stop`` session of a scanner: where and how to deliver."""

    scanner: SimBleScanner
    loop: asyncio.AbstractEventLoop
    callback: DetectionCallback
    active: bool = True


@dataclass(eq=False)
class _Waiter:
    count: int
    future: asyncio.Future[None]


@dataclass(frozen=True)
class _Packet:
    address: str
    advertisement: Advertisement
    service_uuids: list[str] = field(default_factory=list)
    service_data: dict[str, bytes] = field(default_factory=dict)


class SimRadio:
    """The shared air. Thread-safe; test controls: ``inject`` and the counters."""

    def __init__(self, cfg: SimRadioConfig | None = None) -> None:
        self._cfg = cfg if cfg is not None else SimRadioConfig()
        self._lock = threading.Lock()
        self._heard_changed = threading.Condition(self._lock)
        self._listeners: list[_Listener] = []
        self._advertisers = 0
        self._sent = 0
        self._heard = 0
        self._dropped = 0

    @property
    def config(self) -> SimRadioConfig:
        return self._cfg

    @property
    def sent(self) -> int:
        """Packets transmitted by sim advertisers (injected ones not included)."""
        with self._lock:
            return self._sent

    @property
    def heard(self) -> int:
        """Packets delivered to a scanner's callback, injected ones included."""
        with self._lock:
            return self._heard

    @property
    def dropped(self) -> int:
        """Packets in range that ``loss`` dropped, counted once per scanner that missed one."""
        with self._lock:
            return self._dropped

    def inject(self, advertisement: Advertisement, address: str, rssi: int) -> int:
        """Test control: play a raw advertisement into every running scanner, as if received.

        Position, range and loss do not apply: this is what arrived, forged or not. Returns how
        many scanners it was handed to.
        """
        packet = _packet(address.upper(), advertisement)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            self._deliver(listener, packet, rssi, distance_m=None)
        return len(listeners)

    def rssi_at(self, distance_m: float, tx_power_dbm: int = 0) -> float:
        """Mean RSSI at a distance: the log-distance path-loss model, without noise."""
        d = max(distance_m, _MIN_DISTANCE_M)
        cfg = self._cfg
        return cfg.tx_power_at_1m_dbm + tx_power_dbm - 10 * cfg.path_loss_exponent * math.log10(d)

    # -- used by the sim adapters -------------------------------------------------------------

    def _new_advertiser_rngs(self) -> tuple[random.Random, random.Random]:
        """Per-advertiser generators for the channel and for addresses, reproducible by seed."""
        with self._lock:
            self._advertisers += 1
            serial = self._advertisers
        seed = self._cfg.seed
        return random.Random(f"{seed}/{serial}/air"), random.Random(f"{seed}/{serial}/address")

    def _join(self, listener: _Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def _leave(self, listener: _Listener) -> None:
        with self._lock:
            listener.active = False
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _transmit(self, origin: SimBleAdvertiser, packet: _Packet, rng: random.Random) -> int:
        """One advertising event: returns how many scanners it will be delivered to."""
        deliveries: list[tuple[_Listener, int, float]] = []
        with self._lock:
            self._sent += 1
            ox, oy = origin._xy
            for listener in self._listeners:
                lx, ly = listener.scanner._xy
                distance = math.hypot(lx - ox, ly - oy)
                if distance > self._cfg.range_m:
                    continue
                # Draw for loss and noise for every scanner in range, so that the sequence of
                # draws (and so the outcome) does not depend on which packets were lost.
                lost = rng.random() < self._cfg.loss
                noise = rng.gauss(0.0, _NOISE_SIGMA_DB)
                if lost:
                    self._dropped += 1
                    continue
                mean = self.rssi_at(distance, packet.advertisement.tx_power_dbm)
                rssi = max(-127, min(20, round(mean + noise)))
                deliveries.append((listener, rssi, distance))
        for listener, rssi, distance in deliveries:
            self._deliver(listener, packet, rssi, distance_m=distance)
        return len(deliveries)

    def _deliver(
        self, listener: _Listener, packet: _Packet, rssi: int, distance_m: float | None
    ) -> None:
        try:
            listener.loop.call_soon_threadsafe(self._hear, listener, packet, rssi, distance_m)
        except RuntimeError:
            # The scanner's loop closed without stop(): that scanner is gone from the air.
            self._leave(listener)

    def _hear(
        self, listener: _Listener, packet: _Packet, rssi: int, distance_m: float | None
    ) -> None:
        """Runs on the scanner's loop: hand bleak's types to the callback, then count."""
        if not listener.active:
            return  # stop() came between transmission and delivery
        adv = packet.advertisement
        details: dict[str, Any] = {"sim": True, "distance_m": distance_m}
        device = BLEDevice(packet.address, None, details)
        data = AdvertisementData(
            local_name=None,
            manufacturer_data=dict(adv.manufacturer_data),
            service_data=dict(packet.service_data),
            service_uuids=list(packet.service_uuids),
            tx_power=adv.tx_power_dbm,
            rssi=rssi,
            platform_data=("sim", details),
        )
        try:
            listener.callback(device, data)
        finally:
            with self._lock:
                self._heard += 1
                listener.scanner._heard += 1
                self._heard_changed.notify_all()
            listener.scanner._wake_waiters()


class SimBleScanner:
    """A scanner at a position on a ``SimRadio``; its callback runs on the loop that started it."""

    def __init__(self, radio: SimRadio, *, x_m: float = 0.0, y_m: float = 0.0) -> None:
        self._radio = radio
        self._xy = (float(x_m), float(y_m))
        self._listener: _Listener | None = None
        self._heard = 0
        self._waiters: list[_Waiter] = []

    @property
    def scanning(self) -> bool:
        return self._listener is not None

    @property
    def heard(self) -> int:
        """Test control: advertisements this scanner has handed to its callback."""
        with self._radio._lock:
            return self._heard

    def move(self, x_m: float, y_m: float) -> None:
        """Test control: move this scanner; the next packet sees the new distance."""
        with self._radio._lock:
            self._xy = (float(x_m), float(y_m))

    async def start(self, callback: DetectionCallback) -> None:
        if self._listener is not None:
            raise DeviceError("the BLE scanner is already scanning: call stop() first")
        self._listener = _Listener(self, asyncio.get_running_loop(), callback)
        self._radio._join(self._listener)

    async def stop(self) -> None:
        if self._listener is not None:
            self._radio._leave(self._listener)
            self._listener = None

    async def wait_heard(self, count: int, timeout: float = 2.0) -> bool:
        """Test control: wait until this scanner has heard ``count`` in all; False on timeout."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(count, loop.create_future())
        with self._radio._lock:
            if self._heard >= count:
                return True
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.future, timeout)
        except TimeoutError:
            return False
        finally:
            with self._radio._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return True

    def wait_heard_blocking(self, count: int, timeout: float = 2.0) -> bool:
        """Test control for threads with no event loop of their own: as ``wait_heard``."""
        with self._radio._heard_changed:
            return self._radio._heard_changed.wait_for(lambda: self._heard >= count, timeout)

    def _wake_waiters(self) -> None:
        with self._radio._lock:
            due = [w for w in self._waiters if self._heard >= w.count]
            for waiter in due:
                self._waiters.remove(waiter)
        for waiter in due:
            # RuntimeError: the waiter's loop has closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                waiter.future.get_loop().call_soon_threadsafe(_resolve, waiter.future)


class SimBleAdvertiser:
    """Broadcasts on a ``SimRadio`` from a position, with a new private address on every start."""

    def __init__(self, radio: SimRadio, *, x_m: float = 0.0, y_m: float = 0.0) -> None:
        self._radio = radio
        self._xy = (float(x_m), float(y_m))
        self._air_rng, self._address_rng = radio._new_advertiser_rngs()
        self._address = ""
        self._packet: _Packet | None = None
        self._task: asyncio.Task[None] | None = None
        self._sent = 0

    @property
    def address(self) -> str:
        """The current (or last) private address; "" before the first start."""
        return self._address

    @property
    def advertising(self) -> bool:
        return self._packet is not None

    @property
    def sent(self) -> int:
        """Test control: advertising events this advertiser has transmitted."""
        return self._sent

    def move(self, x_m: float, y_m: float) -> None:
        """Test control: move this advertiser; the next packet sees the new distance."""
        with self._radio._lock:
            self._xy = (float(x_m), float(y_m))

    async def start(self, advertisement: Advertisement) -> None:
        if self._packet is not None:
            raise DeviceError("the BLE advertiser is already advertising: call stop() first")
        check_advertisement(advertisement)
        self._address = self._new_address()
        self._packet = _packet(self._address, advertisement)
        self._task = asyncio.get_running_loop().create_task(self._broadcast_every_interval())

    async def stop(self) -> None:
        task, self._task, self._packet = self._task, None, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def transmit_now(self) -> int:
        """Test control: one advertising event now, between the periodic ones.

        Returns how many scanners it will be delivered to (in range and not lost).
        """
        if self._packet is None:
            raise DeviceError("the BLE advertiser is not advertising: call start() first")
        self._sent += 1
        return self._radio._transmit(self, self._packet, self._air_rng)

    async def _broadcast_every_interval(self) -> None:
        assert self._packet is not None
        interval_s = self._packet.advertisement.interval_ms / 1000
        while self._packet is not None:
            self.transmit_now()
            await asyncio.sleep(interval_s)

    def _new_address(self) -> str:
        """A non-resolvable private address, as BlueZ uses for non-connectable broadcasts.

        Core spec Vol 6, Part B, 1.3.2.2: the two top bits are 0b00 and the 46 random bits are
        neither all zeros nor all ones. A fresh one on every start makes the beacon untrackable
        from one recording to the next.
        """
        while True:
            bits = self._address_rng.getrandbits(46)
            address = _format_address(bits)
            if 0 < bits < (1 << 46) - 1 and address != self._address:
                return address


def _packet(address: str, advertisement: Advertisement) -> _Packet:
    # bleak on BlueZ reports every UUID in its 128-bit lower-case form; so does the sim.
    return _Packet(
        address=address,
        advertisement=advertisement,
        service_uuids=[normalize_uuid(u) for u in advertisement.service_uuids],
        service_data={normalize_uuid(u): bytes(d) for u, d in advertisement.extra.items()},
    )


def _format_address(bits: int) -> str:
    return ":".join(f"{(bits >> shift) & 0xFF:02X}" for shift in range(40, -8, -8))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
