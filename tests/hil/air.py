"""The trigger source: a second BLE radio that plays the agency's sensors and peer cameras.

It advertises sealed trigger events (custody.trigger) and listens for the camera's own
"recording" beacon. Sim: a ``SimBleAdvertiser`` and ``SimBleScanner`` a metre from the camera on
the shared ``SimRadio``. Real: BlueZ and bleak on the rig's second HCI adapter.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Coroutine
from typing import Any

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from custody.errors import TriggerError
from custody.trigger import (
    COMPANY_ID,
    EventType,
    TriggerEvent,
    decrypt_trigger,
    seal_trigger,
    verify_trigger,
)
from custody.trigger_registry import TriggerRegistry
from custody.trigger_registry import TriggerSource as RegisteredSource
from hw.ports.ble import Advertisement, BleAdvertiser, BleScanner

CALL_TIMEOUT_S = 10.0
INTERVAL_MS = 50


class TriggerSource:
    """Advertises one event at a time; collects the verified beacons it hears from cameras."""

    def __init__(
        self, advertiser: BleAdvertiser, scanner: BleScanner, registry: TriggerRegistry
    ) -> None:
        self._advertiser = advertiser
        self._scanner = scanner
        self._registry = registry
        self._counters: dict[int, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hil-air", daemon=True)
        self._thread.start()
        self._lock = threading.Lock()
        self._advertising = False
        self.beacons: list[TriggerEvent] = []  #: verified events heard, oldest first
        self._call(self._scanner.start(self._heard))

    def send(
        self,
        source: RegisteredSource,
        event_type: EventType,
        *,
        incident: int = 0,
        forged: bool = False,
    ) -> float:
        """Advertise ``source``'s next event until :meth:`stop`; returns ``perf_counter`` at start.

        ``forged``: sealed with a key that is not the source's, as an attacker who copied the
        format but not the secret would.
        """
        counter = self._counters.get(source.source_id, 0) + 1
        self._counters[source.source_id] = counter
        event = TriggerEvent(source.source_id, event_type, counter, incident, 0)
        secret = os.urandom(32) if forged else source.secret
        payload = seal_trigger(
            event, source_secret=secret, agency_secret=self._registry.agency_secret
        )
        self.stop()
        started = time.perf_counter()
        self._call(
            self._advertiser.start(Advertisement({COMPANY_ID: payload}, interval_ms=INTERVAL_MS))
        )
        self._advertising = True
        return started

    def stop(self) -> None:
        if self._advertising:
            self._call(self._advertiser.stop())
            self._advertising = False

    def heard_beacons(self) -> list[TriggerEvent]:
        with self._lock:
            return list(self.beacons)

    def close(self) -> None:
        try:
            self.stop()
            self._call(self._scanner.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CALL_TIMEOUT_S)
            self._loop.close()

    def _heard(self, device: BLEDevice, adv: AdvertisementData) -> None:
        payload = adv.manufacturer_data.get(COMPANY_ID)
        if payload is None:
            return
        try:
            unverified = decrypt_trigger(payload, self._registry.encryption_key)
            if self._registry.get(unverified.source_id) is None:
                return
            event = verify_trigger(unverified, self._registry.mac_key(unverified.source_id))
        except TriggerError:
            return  # someone else's format, or our own forgery: not a camera's beacon
        if event.event_type is EventType.PEER_RECORDING:
            with self._lock:
                self.beacons.append(event)

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT_S)
