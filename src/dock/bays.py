"""Bay monitor: which camera sits in which dock bay, and what the dock may do with it.

The monitor polls the hw USB port (pyusb has no hot-plug API: pyusb/pyusb#64 is still open, so a
poll every ``interval_s`` is the portable way) and keeps one row per bay:

``arrived``     one of our cameras (vendor/product id accepted, serial enrolled) is in the bay;
                the pipeline may resolve its link and open an offload session
``identified``  the session proved the camera's identity (docs/formats/offload.md): offload it
``unknown``     wrong ids, an unenrolled serial, or a failed session: reported to the armorer with
                the reason and never offloaded
``left``        the device was unplugged; the row stays so the armorer sees what left and when

Every change is a :class:`BayEvent`, delivered in order to each subscriber (a callback, or a queue
from :meth:`BayMonitor.events`) on the thread that polled.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

import structlog

from dock.errors import BayChanged, CameraRefused
from hw.errors import HwError
from hw.ports.clock import Clock
from hw.ports.usb import CAMERA_PRODUCT_ID, CAMERA_VENDOR_ID, UsbBus, UsbDeviceInfo, UsbEvent

_log = structlog.get_logger(__name__)

#: (vendor id, product id) of every camera model this dock offloads
CAMERA_MODELS = frozenset({(CAMERA_VENDOR_ID, CAMERA_PRODUCT_ID)})


class BayState(StrEnum):
    ARRIVED = "arrived"
    IDENTIFIED = "identified"
    UNKNOWN = "unknown"
    LEFT = "left"


@dataclass(frozen=True, slots=True)
class Bay:
    """One bay's row: the device in it (or the one that left it) and what the dock knows of it."""

    name: str  #: the bay, as the USB port chain names it ("1-2", "1-3.1")
    state: BayState
    device: UsbDeviceInfo
    since_ns: int  #: wall time of the last change
    device_id: str | None = None  #: set once the offload session proved who the camera is
    reason: str | None = None  #: why an ``unknown`` device is not offloaded

    @property
    def serial(self) -> str:
        return self.device.serial

    @property
    def offloadable(self) -> bool:
        return self.state is BayState.IDENTIFIED


@dataclass(frozen=True, slots=True)
class BayEvent:
    """A bay changed state; ``bay`` is the row as it became."""

    bay: Bay

    @property
    def kind(self) -> BayState:
        return self.bay.state


Subscriber = Callable[[BayEvent], None]


def _ids(device: UsbDeviceInfo) -> str:
    return f"{device.vendor_id:04x}:{device.product_id:04x}"


class BayMonitor:
    """The bay table, fed by ``poll_once`` (tests, or the thread started by ``start``).

    ``enrolled`` maps the USB serial of every enrolled camera to its device id; the session's
    device id must match it, so a camera cannot borrow another's serial. Thread-safe.
    """

    def __init__(
        self,
        bus: UsbBus,
        clock: Clock,
        enrolled: Mapping[str, str],
        *,
        models: Iterable[tuple[int, int]] = CAMERA_MODELS,
        interval_s: float = 1.0,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self._bus = bus
        self._clock = clock
        self._enrolled = dict(enrolled)
        self._models = frozenset(models)
        self._interval_s = interval_s
        self._lock = threading.RLock()  # guards the table and the subscriber list
        self._bays: dict[str, Bay] = {}
        self._subscribers: list[Subscriber] = []
        self._pending: deque[BayEvent] = deque()
        self._delivering = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None  #: the bus error of the last failed poll, for status

    # subscribers

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every later event; returns the function that unsubscribes."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def events(self) -> queue.Queue[BayEvent]:
        """A queue that receives every later event, for a consumer on another thread."""
        inbox: queue.Queue[BayEvent] = queue.Queue()
        self.subscribe(inbox.put)
        return inbox

    # the table

    def bays(self) -> list[Bay]:
        with self._lock:
            return sorted(self._bays.values(), key=lambda b: b.device.port_path)

    def bay(self, name: str) -> Bay | None:
        with self._lock:
            return self._bays.get(name)

    # polling

    def poll_once(self) -> list[BayEvent]:
        """Read the bus once, update the table and deliver (then return) the events, in order."""
        changes = self._bus.poll()
        with self._lock:
            events = [self._apply(change) for change in changes]
            self._deliver(events)
        return events

    def start(self) -> None:
        """Poll every ``interval_s`` on a daemon thread until ``stop``."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the bay monitor is already running")
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="bay-monitor", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
                self.last_error = None
            except HwError as exc:
                # a bus error (permissions, a hub resetting) is reported and retried: one bad
                # poll must not stop the dock from seeing the cameras in its other bays
                self.last_error = str(exc)
                _log.warning("bay poll failed", error=str(exc))
            self._stop.wait(self._interval_s)

    # what the pipeline reports back

    def identified(self, device: UsbDeviceInfo, device_id: str) -> Bay:
        """The offload session proved ``device`` is ``device_id``: mark its bay offloadable.

        Only an arrived camera can be identified (an unknown one stays unknown: CameraRefused);
        a device id other than the one enrolled for the serial marks the bay unknown instead.
        """
        with self._lock:
            current = self._current(device)
            if current.state is BayState.UNKNOWN:
                raise CameraRefused(f"bay {device.bay} is not offloaded: {current.reason}")
            expected = self._enrolled.get(device.serial)
            if expected != device_id:
                return self.refuse(
                    device,
                    f"serial {device.serial} is enrolled as device {expected}, but the camera "
                    f"proved it is {device_id}: check the enrolment of both cameras",
                )
            return self._update(current, BayState.IDENTIFIED, device_id=device_id)

    def refuse(self, device: UsbDeviceInfo, reason: str) -> Bay:
        """The camera must not be offloaded (e.g. its session failed): report it as unknown."""
        with self._lock:
            return self._update(self._current(device), BayState.UNKNOWN, reason=reason)

    def _current(self, device: UsbDeviceInfo) -> Bay:
        current = self._bays.get(device.bay)
        # a replugged camera gets a new address: the step was for the device that left
        if current is None or current.device != device or current.state is BayState.LEFT:
            raise BayChanged(
                f"bay {device.bay} no longer holds camera {device.serial or _ids(device)}: "
                "it was unplugged; its offload resumes when it is docked again"
            )
        return current

    def _update(
        self,
        current: Bay,
        state: BayState,
        *,
        device_id: str | None = None,
        reason: str | None = None,
    ) -> Bay:
        row = replace(
            current, state=state, since_ns=self._clock.wall_ns(), device_id=device_id, reason=reason
        )
        self._bays[row.name] = row
        self._deliver([BayEvent(row)])
        self._report(row)
        return row

    # internals

    def _apply(self, change: UsbEvent) -> BayEvent:
        device = change.device
        now = self._clock.wall_ns()
        with self._lock:
            if change.kind == "left":
                before = self._bays.get(device.bay)
                row = Bay(
                    device.bay,
                    BayState.LEFT,
                    device,
                    now,
                    device_id=before.device_id if before is not None else None,
                )
            else:
                reason = self._refusal(device)
                state = BayState.ARRIVED if reason is None else BayState.UNKNOWN
                row = Bay(device.bay, state, device, now, reason=reason)
            self._bays[device.bay] = row
        self._report(row)
        return BayEvent(row)

    def _refusal(self, device: UsbDeviceInfo) -> str | None:
        if (device.vendor_id, device.product_id) not in self._models:
            return (
                f"the device in bay {device.bay} ({_ids(device)}) is not a camera this dock "
                "knows: unplug it, or add its model to the dock's camera models"
            )
        if not device.serial:
            return f"the camera in bay {device.bay} has no serial number: service the camera"
        if device.serial not in self._enrolled:
            return (
                f"camera {device.serial} in bay {device.bay} is not enrolled at this dock: "
                "enrol it before it can be offloaded"
            )
        return None

    def _deliver(self, events: list[BayEvent]) -> None:
        # Under the lock, so every subscriber sees events in the table's order. A subscriber
        # that reports back (``identified`` from its callback) only queues its event: it goes
        # out after the current one has reached every subscriber.
        with self._lock:
            self._pending.extend(events)
            if self._delivering:
                return
            self._delivering = True
            try:
                while self._pending:
                    event = self._pending.popleft()
                    for subscriber in list(self._subscribers):
                        self._call(subscriber, event)
            finally:
                self._delivering = False

    @staticmethod
    def _call(subscriber: Subscriber, event: BayEvent) -> None:
        try:
            subscriber(event)
        except Exception:
            # one broken subscriber must not blind the others, nor stop the polling
            _log.exception("bay event subscriber failed", bay=event.bay.name, subscriber=subscriber)

    @staticmethod
    def _report(row: Bay) -> None:
        if row.state is BayState.UNKNOWN:
            _log.warning("camera not offloaded", bay=row.name, serial=row.serial, reason=row.reason)
        else:
            _log.info("bay changed", bay=row.name, serial=row.serial, state=str(row.state))
