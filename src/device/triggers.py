"""The trigger engine: BLE advertisements in, authenticated start-recording inputs out.

Every advertisement the scanner hears goes through :meth:`TriggerEngine.on_advertisement`, the
scanner's callback (:meth:`TriggerEngine.handle` does the same and returns the decision). The
checks run cheapest first; each rejection is counted by reason and logged at most once a second
per reason, never audited one by one, so a flood of forged advertisements costs a little CPU and
no storage:

    not_ours        another company id, or not 24 bytes: other devices' traffic (counted as ignored)
    malformed       wrong type, or an authenticated payload with an event type this version lacks
    version         a payload format version this firmware does not read
    unknown_source  the payload names no registered source (or is another agency's)
    disabled        a registered source the dock disabled
    bad_mac         the MAC does not verify with the source's key: forged or altered
    self            this camera's own beacon, heard back
    kind_not_obeyed a registered source of a kind this camera does not obey (``[device]
                    trigger_kinds``, which an agency profile sets)
    rssi            weaker than the source's threshold: too far away to concern this officer
    duplicate       the counter last accepted: the same event re-advertised (BLE repeats them)
    replay          a counter below the last accepted, rollback included
    same_incident   a peer camera's beacon for an incident this camera already records or
                    started: what keeps peer activation from looping
    debounced       a new event within ``debounce_s`` of the source's last accepted one

An authenticated, fresh event moves the source's counter forward durably (debounced ones too, so
that they cannot be replayed later), and an accepted one becomes a :class:`TriggerInput` for the
sink (``Firmware.submit``).

Locking contract: one lock makes deciding and moving counters atomic, so the engine may be called
from several threads; the sink runs outside it, before the counter is written, so a slow card
never delays the start of a recording.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from custody import trigger
from custody.canonical import canonical_bytes, parse_json
from custody.errors import CustodyError, TriggerError
from custody.trigger import EventType, TriggerEvent
from custody.trigger_registry import TriggerRegistry, TriggerSource
from device.durable import ensure_durable_folder, parent_of
from device.errors import FirmwareError
from device.events import TriggerInput
from hw.errors import HwError
from hw.ports.clock import Clock
from hw.ports.storage import Storage, write_durable

log = structlog.get_logger(__name__)

COUNTERS_PATH = "triggers/counters.json"
COUNTERS_FORMAT = "bwc-trigger-counters"
ACCEPTED: Final = "accepted"
NOT_OURS: Final = "not_ours"
KIND_NOT_OBEYED: Final = "kind_not_obeyed"
#: incidents remembered for the loop check: far more than one shift has
MAX_INCIDENTS: Final = 4096
#: decisions kept for status
RECENT: Final = 64
_LOG_EVERY_NS = 1_000_000_000


class TriggerStateError(FirmwareError):
    """The trigger counter file cannot be read; replay protection cannot be restored from it."""


class CounterStore:
    """The last accepted counter per source, kept durable through the Storage port.

    Loaded at boot, so replay protection survives a reboot and a battery swap. Thread-safe.
    """

    def __init__(self, storage: Storage, path: str = COUNTERS_PATH) -> None:
        self._storage = storage
        self._path = path
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._counters = self._load()
        self._dirty = False

    def _load(self) -> dict[int, int]:
        ensure_durable_folder(self._storage, parent_of(self._path))
        if not self._storage.exists(self._path):
            return {}
        try:
            doc = parse_json(self._storage.read_bytes(self._path), what=self._path)
            if doc.get("format") != COUNTERS_FORMAT or doc.get("version") != 1:
                raise ValueError(f"not a version 1 {COUNTERS_FORMAT} file")
            return {int(k): _u32(v) for k, v in doc["counters"].items()}
        except (CustodyError, KeyError, AttributeError, ValueError) as exc:
            raise TriggerStateError(
                f"trigger counters in {self._path} are unreadable ({exc}): re-provision the "
                "camera's triggers at a dock"
            ) from exc

    def last(self, source_id: int) -> int | None:
        with self._lock:
            return self._counters.get(source_id)

    def snapshot(self) -> dict[int, int]:
        with self._lock:
            return dict(self._counters)

    def advance(self, source_id: int, counter: int) -> None:
        """Move a source's counter forward in memory; :meth:`flush` makes it durable."""
        with self._lock:
            if counter > self._counters.get(source_id, -1):
                self._counters[source_id] = counter
                self._dirty = True

    def flush(self) -> None:
        """Write the counters if they changed; raises the storage's error if that fails.

        The write runs outside the lock that ``last`` and ``advance`` take, so judging the next
        advertisement never waits for an fsync; writes are serialised, each of a newer snapshot.
        """
        with self._write_lock:
            with self._lock:
                if not self._dirty:
                    return
                counters = sorted(self._counters.items())
                self._dirty = False
            doc = {
                "format": COUNTERS_FORMAT,
                "version": 1,
                "counters": {str(k): v for k, v in counters},
            }
            try:
                write_durable(self._storage, self._path, canonical_bytes(doc))
            except BaseException:
                with self._lock:
                    self._dirty = True
                raise


def _u32(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**32 - 1:
        raise ValueError(f"counter {value!r} is not a u32")
    return value


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine made of one advertisement, and why."""

    reason: str  #: "accepted", "not_ours", or a rejection reason (module docstring)
    address: str
    rssi: int
    source: TriggerSource | None = None
    event: TriggerEvent | None = None

    @property
    def accepted(self) -> bool:
        return self.reason == ACCEPTED

    def to_json(self) -> dict[str, str | int | None]:
        event = self.event
        return {
            "address": self.address,
            "rssi": self.rssi,
            "outcome": self.outcome,
            "reason": self.reason,
            "source": self.source.name if self.source is not None else None,
            "event": event.event_type.name.lower() if event is not None else None,
            "counter": event.counter if event is not None else None,
        }

    @property
    def outcome(self) -> str:
        """ "accepted", "ignored" (other devices' traffic) or "rejected"."""
        if self.reason == ACCEPTED:
            return "accepted"
        return "ignored" if self.reason == NOT_OURS else "rejected"


class TriggerEngine:
    """Decides on advertisements; hands accepted triggers to ``sink``."""

    def __init__(
        self,
        registry: TriggerRegistry,
        counters: CounterStore,
        clock: Clock,
        *,
        debounce_s: float = 2.0,
        sink: Callable[[TriggerInput], None],
        obeyed_kinds: frozenset[str] | None = None,
    ) -> None:
        # ``obeyed_kinds``: the source kinds that start a recording; None: every kind
        self._registry = registry
        self._obeyed_kinds = obeyed_kinds
        self._counters = counters
        self._clock = clock
        self._debounce_ns = round(debounce_s * 1e9)
        self._sink = sink
        self._lock = threading.Lock()
        self._last_accepted_ns: dict[int, int] = {}
        self._incidents: dict[int, None] = {}  # joined incidents, oldest first (bounded)
        self._last_log_ns: dict[str, int] = {}
        self._unlogged: Counter[str] = Counter()
        self.accepted = 0
        self.ignored = 0
        self.rejected: Counter[str] = Counter()
        self.counter_write_errors = 0
        #: the latest decisions, newest last, for status and ``bwc trigger scan``
        self.recent: deque[Decision] = deque(maxlen=RECENT)

    def decide(self, device: BLEDevice, adv: AdvertisementData) -> Decision:
        """What :meth:`handle` would decide now, without counting or consuming it (trigger scan)."""
        with self._lock:
            return self._decide(device, adv, self._clock.monotonic_ns())

    def on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        """The scanner callback (a ``DetectionCallback`` returns nothing): :meth:`handle`."""
        self.handle(device, adv)

    def handle(self, device: BLEDevice, adv: AdvertisementData) -> Decision:
        """Decide, count, and for an accepted trigger call the sink; returns the decision."""
        now = self._clock.monotonic_ns()
        with self._lock:
            decision = self._decide(device, adv, now)
            fresh = decision.reason in (ACCEPTED, "debounced", "same_incident")
            if fresh:
                assert decision.event is not None
                self._counters.advance(decision.event.source_id, decision.event.counter)
            log_now, suppressed = self._count(decision, now)
            if decision.reason not in (NOT_OURS, "self"):
                self.recent.append(decision)
        if decision.accepted:
            self._deliver(decision, now)
        elif log_now:
            log.debug("trigger rejected", reason=decision.reason, address=decision.address,
                      rssi=decision.rssi, suppressed=suppressed)  # fmt: skip
        if fresh:
            self._persist()
        return decision

    def join_incident(self, incident: int) -> None:
        """This camera records ``incident`` (it started it, or a peer's beacon did): peer beacons
        for it are no longer triggers, so two cameras never restart each other in a loop."""
        with self._lock:
            self._incidents.pop(incident, None)
            self._incidents[incident] = None
            while len(self._incidents) > MAX_INCIDENTS:
                del self._incidents[next(iter(self._incidents))]

    def stats(self) -> dict[str, int | dict[str, int]]:
        with self._lock:
            return {
                "accepted": self.accepted,
                "ignored": self.ignored,
                "rejected_total": sum(self.rejected.values()),
                "rejected": dict(sorted(self.rejected.items())),
                "counter_write_errors": self.counter_write_errors,
                "sources": len(self._registry),
            }

    # ---- the checks, in order ---------------------------------------------------------------

    def _decide(self, device: BLEDevice, adv: AdvertisementData, now: int) -> Decision:
        address, rssi = device.address, adv.rssi
        payload = adv.manufacturer_data.get(trigger.COMPANY_ID)
        if payload is None or len(payload) != trigger.PAYLOAD_SIZE:
            return Decision(NOT_OURS, address, rssi)
        try:
            unverified = trigger.decrypt_trigger(payload, self._registry.encryption_key)
        except TriggerError as exc:
            return Decision(exc.reason, address, rssi)
        source = self._registry.get(unverified.source_id)
        if source is None:
            return Decision("unknown_source", address, rssi)
        if not source.enabled:
            return Decision("disabled", address, rssi, source)
        try:
            event = trigger.verify_trigger(unverified, self._registry.mac_key(source.source_id))
        except TriggerError as exc:
            return Decision(exc.reason, address, rssi, source)
        return self._check_fresh(Decision(ACCEPTED, address, rssi, source, event), now)

    def _check_fresh(self, accepted: Decision, now: int) -> Decision:
        source, event = accepted.source, accepted.event
        assert source is not None and event is not None
        reason = ACCEPTED
        last = self._counters.last(source.source_id)
        if source.source_id == self._registry.self_source_id:
            reason = "self"
        elif self._obeyed_kinds is not None and source.kind not in self._obeyed_kinds:
            reason = KIND_NOT_OBEYED
        elif accepted.rssi < source.rssi_min_dbm:
            reason = "rssi"
        elif last is not None and event.counter == last:
            reason = "duplicate"
        elif last is not None and event.counter < last:
            reason = "replay"
        elif event.event_type is EventType.PEER_RECORDING and event.incident in self._incidents:
            reason = "same_incident"
        else:
            previous = self._last_accepted_ns.get(source.source_id)
            if previous is not None and now - previous < self._debounce_ns:
                reason = "debounced"
        if reason == ACCEPTED:
            return accepted
        return Decision(reason, accepted.address, accepted.rssi, source, event)

    # ---- effects ----------------------------------------------------------------------------

    def _deliver(self, decision: Decision, now: int) -> None:
        source, event = decision.source, decision.event
        assert source is not None and event is not None
        detail = {
            "event": event.event_type.name.lower(),
            "counter": str(event.counter),
            "rssi": str(decision.rssi),
            "incident": f"{event.incident:06x}",
            "hop": str(event.hop),
        }
        log.info("trigger accepted", source=source.name, kind=source.kind, detail=detail)
        self._sink(TriggerInput(source_id=source.name, kind=source.kind, at_ns=now, detail=detail))

    def _persist(self) -> None:
        try:
            self._counters.flush()
        except (OSError, HwError) as exc:
            # The trigger stands (recording matters more); the counter is kept in memory and
            # written with the next one, so only a reboot before then reopens a replay window.
            with self._lock:
                self.counter_write_errors += 1
            log.warning("trigger counters not written", error=str(exc))

    def _count(self, decision: Decision, now: int) -> tuple[bool, int]:
        """Count the decision; for a rejection, whether to log it now and how many went unlogged.

        At most one log line a second per reason, so a flood cannot fill the log either.
        """
        if decision.accepted:
            assert decision.event is not None
            self._last_accepted_ns[decision.event.source_id] = now
            self.accepted += 1
            return False, 0
        if decision.reason == NOT_OURS:
            self.ignored += 1
            return False, 0
        reason = decision.reason
        self.rejected[reason] += 1
        last = self._last_log_ns.get(reason)
        if last is not None and now - last < _LOG_EVERY_NS:
            self._unlogged[reason] += 1
            return False, 0
        self._last_log_ns[reason] = now
        return True, self._unlogged.pop(reason, 0)
