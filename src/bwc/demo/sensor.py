"""A trigger sensor on the officer's belt: it advertises one authenticated event until stopped.

The payload is the public trigger format (custody.trigger), sealed with the sensor's registered
secret and the agency's, exactly what ``bwc trigger send`` plays. The sim advertiser broadcasts
every ``interval_ms`` from its own event loop, as a real sensor repeats its advertisement; the
camera accepts the first copy and counts the rest as duplicates.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from custody.trigger import COMPANY_ID, EventType, TriggerEvent, seal_trigger
from custody.trigger_registry import TriggerSource
from hw.ports.ble import Advertisement
from hw.sim.ble import SimBleAdvertiser, SimRadio

INTERVAL_MS = 50
TIMEOUT_S = 5.0


class TriggerSensor:
    def __init__(
        self, source: TriggerSource, agency_secret: bytes, radio: SimRadio, *, x_m: float
    ) -> None:
        self.source = source
        self._agency_secret = agency_secret
        self._advertiser = SimBleAdvertiser(radio, x_m=x_m)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sensor", daemon=True)
        self._thread.start()

    def advertise(self, event_type: EventType, counter: int) -> None:
        """Start advertising event number ``counter`` (stops the previous one first)."""
        event = TriggerEvent(self.source.source_id, event_type, counter, 0, 0)
        payload = seal_trigger(
            event, source_secret=self.source.secret, agency_secret=self._agency_secret
        )
        self._call(self._advertiser.stop())
        self._call(
            self._advertiser.start(Advertisement({COMPANY_ID: payload}, interval_ms=INTERVAL_MS))
        )

    def close(self) -> None:
        try:
            self._call(self._advertiser.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(TIMEOUT_S)
            self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(TIMEOUT_S)
