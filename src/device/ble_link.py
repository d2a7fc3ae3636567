"""The camera's radio: triggers heard by the scanner, and its own "recording" beacon.

BLE ports are asynchronous, the firmware is not: the link runs both on one event loop in its own
thread. The scanner hands every advertisement to the trigger engine, whose accepted triggers reach
the firmware through its thread-safe input queue. The firmware tells the link when a clip starts,
and the link decides whether to announce it to peer cameras:

- a clip started by the officer or a sensor opens a new *incident* and is announced (hop 0);
- a clip started by a peer's beacon is announced once more for the same incident with the hop
  count raised, so cameras beyond the first one's range join too, up to ``max_hops``;
- both join the incident in the engine, so beacons for it never start this camera again: after
  the officer stops, a neighbour's beacon for the same incident does not restart the camera, and
  two cameras never keep each other recording.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Coroutine
from typing import Any

import structlog

from custody import trigger
from custody.trigger import EventType, TriggerEvent
from custody.trigger_registry import TriggerRegistry
from device.events import TriggerInput
from device.triggers import CounterStore, TriggerEngine
from hw.ports.ble import Advertisement, BleAdvertiser, BleScanner

log = structlog.get_logger(__name__)

#: a relayed beacon travels this many hops from the camera that started the incident
MAX_HOPS = 1
#: counters are reserved in blocks, so a reboot never reuses one and a beacon costs no write
COUNTER_BLOCK = 64


class BleLink:
    def __init__(
        self,
        scanner: BleScanner,
        advertiser: BleAdvertiser,
        engine: TriggerEngine,
        registry: TriggerRegistry,
        counters: CounterStore,
        *,
        beacon_s: float,
        max_hops: int = MAX_HOPS,
    ) -> None:
        self._scanner = scanner
        self._advertiser = advertiser
        self.engine = engine
        self._registry = registry
        self._counters = counters
        self._beacon_s = beacon_s
        self._max_hops = max_hops
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ble", daemon=True)
        self._beacon_task: asyncio.Task[None] | None = None
        self._next_counter = 0
        self._reserved_until = 0
        self.announced: list[tuple[int, int]] = []  #: (incident, hop) of every beacon sent

    # -- life cycle (firmware thread) -----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._call(self._scanner.start(self.engine.on_advertisement))

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def clip_started(self, trigger_input: TriggerInput | None) -> None:
        """A clip started for ``trigger_input`` (None: the officer's button)."""
        if self._registry.self_source_id is None or self._beacon_s <= 0:
            return  # not enrolled as a peer (or told not to announce): it still hears triggers
        incident, hop = secrets.randbelow(1 << 24), 0
        if trigger_input is not None and trigger_input.kind == "peer":
            incident = int(trigger_input.detail["incident"], 16)
            hop = int(trigger_input.detail["hop"]) + 1
        self.engine.join_incident(incident)
        if hop > self._max_hops:
            return
        asyncio.run_coroutine_threadsafe(self._announce(incident, hop), self._loop)

    # -- on the loop ----------------------------------------------------------------------------

    async def _announce(self, incident: int, hop: int) -> None:
        self_id = self._registry.self_source_id
        assert self_id is not None
        source = self._registry.get(self_id)
        assert source is not None
        event = TriggerEvent(self_id, EventType.PEER_RECORDING, self._counter(), incident, hop)
        payload = trigger.seal_trigger(
            event, source_secret=source.secret, agency_secret=self._registry.agency_secret
        )
        if self._beacon_task is not None:
            self._beacon_task.cancel()
        await self._advertiser.stop()
        await self._advertiser.start(Advertisement({trigger.COMPANY_ID: payload}))
        self.announced.append((incident, hop))
        log.info("peer beacon on", incident=f"{incident:06x}", hop=hop)
        self._beacon_task = asyncio.create_task(self._end_beacon())

    async def _end_beacon(self) -> None:
        await asyncio.sleep(self._beacon_s)
        await self._advertiser.stop()

    async def _shutdown(self) -> None:
        if self._beacon_task is not None:
            self._beacon_task.cancel()
        await self._advertiser.stop()
        await self._scanner.stop()

    def _counter(self) -> int:
        """The next beacon counter; a block is reserved durably before its first use."""
        self_id = self._registry.self_source_id
        assert self_id is not None
        if self._next_counter >= self._reserved_until:
            start = (self._counters.last(self_id) or 0) + 1
            self._reserved_until = start + COUNTER_BLOCK
            self._counters.advance(self_id, self._reserved_until - 1)
            self._counters.flush()
            self._next_counter = start
        counter = self._next_counter
        self._next_counter += 1
        return counter

    def _call(self, coro: Coroutine[Any, Any, None], timeout_s: float = 10.0) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)
