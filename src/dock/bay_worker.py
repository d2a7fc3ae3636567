"""One docked camera's offload, on its own thread: link, session, every clip, until done or gone.

A worker lives from the moment its camera arrives in a bay until the camera's clips are all
finished (and what is staged was offered to it, its reboot followed until settled:
dock/update_flow.py), the camera leaves, it is refused, or the dock stops. Everything it knows is
in the ledger, so a worker that stops anywhere loses nothing: the next docking (or the next start
of the dock) admits the same unfinished rows and repeats at most the step that was in flight.

Stopping is cooperative. ``stop`` is set (:meth:`BayWorker.halt`) when the camera leaves its
bay or the dock shuts down; the worker looks at it between steps, and every backoff wait of this
bay is a wait on it (:class:`BayClock`), so a bay whose camera left stops within one request, not
after its retries. :meth:`BayWorker.wake` (an armorer's retry) ends the current or next backoff
wait early instead: the step is tried again at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import structlog

from dock.agent import Dock
from dock.bays import BayMonitor, BayState
from dock.camera_client import CameraClient
from dock.errors import BayChanged, CameraRefused, DockError
from dock.ledger import ClipRow
from dock.links import LinkResolver
from dock.pipeline import Offloader
from dock.progress import Transfer
from dock.retry import Retrier
from hw.ports.clock import Clock
from hw.ports.usb import UsbDeviceInfo

_log = structlog.get_logger(__name__)


class BayClock:
    """The dock's clock for one bay: its sleeps end early, raising BayChanged, when ``stop`` is set.

    Waits are in real time (the dock agent runs on a real clock); the rest is the wrapped clock.
    :meth:`wake` ends the current sleep (or the next one, if none is under way) without raising.
    """

    def __init__(self, clock: Clock, stop: threading.Event, bay: str) -> None:
        self._clock, self._stop, self._bay = clock, stop, bay
        self._changed = threading.Condition()
        self._woken = False
        self._settled = False

    def wake(self) -> bool:
        """End the sleep under way (or the next one); False once the worker has settled."""
        with self._changed:
            if self._settled:
                return False
            self._woken = True
            self._changed.notify_all()
            return True

    def close(self) -> None:
        with self._changed:
            self._settled = True

    def settle(self) -> bool:
        """Agree to end the worker: False (and the wake is taken) if a wake came meanwhile.

        A clip released from quarantine while the last pass ran must get another pass; the
        decision to end and a wake are made under one lock, so neither can slip between.
        """
        with self._changed:
            if self._woken:
                self._woken = False
                return False
            self._settled = True
            return True

    def halt(self) -> None:
        """Set ``stop`` and end the sleep under way."""
        with self._changed:
            self._stop.set()
            self._changed.notify_all()

    def monotonic_ns(self) -> int:
        return self._clock.monotonic_ns()

    def wall_ns(self) -> int:
        return self._clock.wall_ns()

    def set_wall(self, wall_ns: int) -> None:
        self._clock.set_wall(wall_ns)

    def sleep(self, seconds: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._stop.is_set() or self._woken, max(0.0, seconds))
            self._woken = False
        if self._stop.is_set():
            raise BayChanged(
                f"bay {self._bay}: the camera left or the dock is stopping; its offload resumes "
                "from the ledger when it is docked again"
            )


class Outcome(StrEnum):
    DONE = "done"  #: every clip the camera had is finished (stored and erased, or quarantined)
    LEFT = "left"  #: the camera left, or the dock stopped: unfinished clips wait in the ledger
    REFUSED = "refused"  #: unknown, unenrolled or failed to prove who it is: nothing was done
    FAILED = "failed"  #: a failure that waiting did not cure; unfinished clips wait in the ledger


def _nothing(*_: object) -> None:
    return None


@dataclass(frozen=True)
class BayHooks:
    """What the running dock wants to hear from a bay (its status model, its officer table)."""

    #: the camera's session is open and proved (read its status, send a waiting assignment);
    #: raising CameraUnavailable ends the pass like any request to the camera
    session: Callable[[UsbDeviceInfo, CameraClient], None] = _nothing
    #: a pass failed and will be retried after a wait (message), or a pass went through (None)
    error: Callable[[UsbDeviceInfo, str | None], None] = _nothing
    change: Callable[[ClipRow], None] | None = None
    progress: Callable[[Transfer], None] | None = None
    #: every clip is finished: offer what is staged, reboot the camera and follow it until
    #: settled (dock/update_flow.py), on the bay's clock; the worker is DONE only after it
    update: Callable[[UsbDeviceInfo, CameraClient, Clock], None] = _nothing


@dataclass(frozen=True)
class BayReport:
    """What a worker did, when it ends."""

    bay: str
    serial: str
    device_id: str | None
    outcome: Outcome
    rows: tuple[ClipRow, ...]  #: the camera's ledger rows at the end
    error: str | None = None


class BayWorker:
    """Offloads the camera in one bay; ``previous`` (the same camera's last worker) ends first."""

    def __init__(
        self,
        dock: Dock,
        monitor: BayMonitor,
        links: LinkResolver,
        clock: Clock,
        device: UsbDeviceInfo,
        *,
        device_lock: Callable[[str], threading.Lock],
        on_done: Callable[[BayReport], None],
        previous: BayWorker | None = None,
        hooks: BayHooks | None = None,
    ) -> None:
        self.device = device
        self.stop = threading.Event()
        self._dock, self._monitor, self._links = dock, monitor, links
        self._clock = BayClock(clock, self.stop, device.bay)
        self._hooks = hooks or BayHooks()
        self._offloader: Offloader = dock.bay_offloader(
            self._clock, on_change=self._hooks.change, on_progress=self._hooks.progress
        )
        self._device_lock, self._on_done = device_lock, on_done
        self._previous = previous
        self._device_id: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"bay-{device.bay}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def halt(self) -> None:
        """Stop between steps, and at once if waiting to retry (the camera left, or shutdown)."""
        self._clock.halt()

    def wake(self) -> bool:
        """Try again now: the backoff wait under way (or the next one) ends early.

        False when this worker has already settled (ended or is ending): start a new one.
        """
        return self._clock.wake()

    def _run(self) -> None:
        if self._previous is not None:
            self._previous.halt()
            self._previous.join()  # one worker per camera at a time: the ledger rows are shared
            self._previous = None
        try:
            report = self._offload_until_settled()
        except Exception as exc:  # a bug must end this bay loudly, never the other bays
            _log.exception("bay worker failed", bay=self.device.bay)
            report = self._report(Outcome.FAILED, f"internal error: {exc!r}")
        finally:
            self._clock.close()  # from now on a wake starts a new worker instead
        self._on_done(report)

    def _offload_until_settled(self) -> BayReport:
        """Passes over the camera's clips until none is left, waiting (capped backoff) between.

        An outage (store down, camera not answering yet) is waited out for as long as the camera
        stays docked; passes that move no clip forward (a receipt the camera keeps refusing)
        end the worker after ``retry.attempts`` of them.
        """
        backoff = Retrier(self._dock.cfg.retry, self._clock)
        outages = stalled = 0
        last_error: str | None = None
        while not self.stop.is_set():
            before = self._states()
            try:
                if self._one_pass():
                    if not self._clock.settle():
                        continue  # asked to retry while this pass ran: look again
                    self._hooks.error(self.device, None)
                    return self._report(Outcome.DONE)
                stalled = 0 if self._states() != before else stalled + 1
                outages = 0
                last_error = "some clips could not be finished (see the ledger's last errors)"
                self._hooks.error(self.device, last_error)
            except CameraRefused as exc:
                self._refuse(str(exc))
                return self._report(Outcome.REFUSED, str(exc))
            except BayChanged as exc:
                return self._report(Outcome.LEFT, str(exc))
            except DockError as exc:
                if not exc.retryable:
                    _log.error("bay stopped", bay=self.device.bay, error=str(exc))
                    return self._report(Outcome.FAILED, str(exc))
                outages, last_error = outages + 1, str(exc)
                self._hooks.error(self.device, last_error)
            if stalled >= self._dock.cfg.retry.attempts:
                if self._clock.settle():
                    return self._report(Outcome.FAILED, last_error)
                stalled = 0  # an armorer asked for a retry: a fresh round of attempts
            try:
                self._clock.sleep(backoff.delay(max(outages, stalled)))
            except BayChanged:
                break
        return self._report(Outcome.LEFT, last_error)

    def _states(self) -> list[tuple[str, str]]:
        if self._device_id is None:
            return []
        return [(r.clip_id, r.state.value) for r in self._dock.ledger.rows(self._device_id)]

    def _one_pass(self) -> bool:
        """Connect, admit and work the camera's clips; True when none is left unfinished."""
        url = self._links.resolve(self.device)
        camera = self._dock.camera(url)
        try:
            identity = camera.connect()
            self._device_id = identity.device_id
            bay = self._monitor.identified(self.device, identity.device_id)
            if bay.state is not BayState.IDENTIFIED:
                raise CameraRefused(bay.reason or f"bay {bay.name} is not offloadable")
            lock = self._device_lock(identity.device_id)
            while not lock.acquire(timeout=0.2):  # the same camera's worker from another bay
                if self.stop.is_set():
                    raise BayChanged(f"bay {self.device.bay}: stopped while waiting")
            try:
                self._hooks.session(self.device, camera)
                if not self._work(camera):
                    return False  # nothing is offered while a clip of the camera is unfinished
                self._hooks.update(self.device, camera, self._clock)
                return True
            finally:
                lock.release()
        finally:
            self._dock.release(camera)

    def _work(self, camera: CameraClient) -> bool:
        unfinished = False
        for row in self._offloader.admit(camera):
            done = self._offloader.finish(camera, row.clip_id, stop=self.stop)
            if self.stop.is_set():
                raise BayChanged(f"bay {self.device.bay}: stopped between steps")
            unfinished |= not done.state.terminal
        return not unfinished

    def _refuse(self, reason: str) -> None:
        bay = self._monitor.bay(self.device.bay)
        if bay is not None and bay.state is BayState.UNKNOWN:
            return  # the monitor refused it itself (a device id not enrolled for its serial)
        with contextlib.suppress(BayChanged):  # it left meanwhile: nothing to report any more
            self._monitor.refuse(self.device, reason)

    def _report(self, outcome: Outcome, error: str | None = None) -> BayReport:
        rows = tuple(self._dock.ledger.rows(self._device_id)) if self._device_id else ()
        if outcome is Outcome.LEFT:
            _log.info("bay worker stopped", bay=self.device.bay, why=error)
        return BayReport(self.device.bay, self.device.serial, self._device_id, outcome, rows, error)
