"""The running dock: bays -> links -> camera sessions -> the offload pipeline, one worker per bay.

:class:`DockAgent` subscribes to the :class:`~dock.bays.BayMonitor`. A camera that arrives in a
bay gets a :class:`~dock.bay_worker.BayWorker` thread; one that leaves has its worker stopped
(between steps, or at once if it is waiting to retry). Several bays work at the same time, each
on its own camera link; at most one worker works on a given camera (by serial, and by device id
across bays), because they would share its ledger rows.

Resuming: the first poll of the USB bus reports every camera already in a bay as arrived, and a
worker admits every unfinished ledger row of its camera (also rows the camera no longer lists
whose erase or clean-up is due), so a dock restarted after a crash or a power cut continues each
clip at the step it was in. Rows of cameras that are not docked wait, with their spooled files,
until their camera comes back; :meth:`DockAgent.unfinished` lists them at start.

Fair bandwidth: every bay uploads through the dock's one evidence-store client, whose request
bodies draw from one token bucket (dock/throttle.py, ``upload_bytes_per_s``). A bay takes credit
for each chunk it is about to send, under the bucket's lock and in arrival order, then sleeps off
its share of the debt; with n bays uploading, each gets one chunk in turn, so each gets about
1/n of the configured rate whatever its clip sizes. Downloads need no sharing: each camera has
its own USB link. With no cap configured, each bay's upload is its own HTTP connection and the
network shares the link.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from dock.agent import Dock
from dock.bay_worker import BayReport, BayWorker
from dock.bays import BayEvent, BayMonitor, BayState
from dock.ingest_folder import IngestFolder, sink_uploader
from dock.ingest_table import IngestTable
from dock.ledger import ClipRow
from dock.links import LinkResolver
from hw.ports.clock import Clock
from hw.ports.usb import UsbBus

_log = structlog.get_logger(__name__)

#: seconds a stopping dock waits for each bay to reach a ledger state
STOP_TIMEOUT_S = 30.0


class DockAgent:
    """Watches the bays and offloads every docked camera until :meth:`stop`."""

    def __init__(
        self,
        dock: Dock,
        bus: UsbBus,
        links: LinkResolver,
        clock: Clock,
        *,
        on_bay_done: Callable[[BayReport], None] | None = None,
    ) -> None:
        self.dock = dock
        self.monitor = BayMonitor(bus, clock, dock.cfg.cameras, interval_s=dock.cfg.poll_s)
        self._bus, self._links, self._clock = bus, links, clock
        self._on_bay_done = on_bay_done
        self._lock = threading.Lock()  # guards the tables below
        self._workers: dict[str, BayWorker] = {}  # by serial
        self._device_locks: dict[str, threading.Lock] = {}
        self._stopping = False
        self.reports: list[BayReport] = []  #: every finished worker's report, in order
        ingest_dir = dock.cfg.ingest_dir
        #: the ingest folder, watched from ``start`` when the config names one
        self.ingest = self._ingest_folder(ingest_dir) if ingest_dir is not None else None
        self._unsubscribe: Callable[[], None] | None = None

    def unfinished(self) -> list[ClipRow]:
        """Ledger rows not yet done or quarantined: what this start resumes as cameras dock."""
        return [row for row in self.dock.ledger.rows() if not row.state.terminal]

    def start(self) -> None:
        """Watch the bays (and the ingest folder, if configured) on background threads."""
        self._unsubscribe = self.monitor.subscribe(self._on_bay_event)
        if self.ingest is not None:
            self.ingest.start()
        self.monitor.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop polling, let every bay reach a ledger state, stop the ingest folder."""
        self.monitor.stop()
        with self._lock:
            self._stopping = True
            workers = list(self._workers.values())
        for worker in workers:
            worker.stop.set()
        for worker in workers:
            worker.join(timeout_s)
            if worker.is_alive():
                _log.warning("a bay did not stop in time", bay=worker.device.bay)
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest.table.close()

    def busy(self) -> bool:
        """Whether any bay is still working."""
        with self._lock:
            return any(w.is_alive() for w in self._workers.values())

    def _on_bay_event(self, event: BayEvent) -> None:
        # On the monitor's polling thread, under its lock: start or stop threads, never wait.
        bay = event.bay
        with self._lock:
            if self._stopping:
                return
            current = self._workers.get(bay.serial)
            if bay.state is BayState.ARRIVED:
                worker = BayWorker(
                    self.dock, self.monitor, self._links, self._clock, bay.device,
                    device_lock=self._device_lock, on_done=self._done, previous=current,
                )  # fmt: skip
                self._workers[bay.serial] = worker
                worker.start()
            elif (
                bay.state is BayState.LEFT and current is not None and current.device == bay.device
            ):
                current.stop.set()  # a left event of an older docking must not stop the new one

    def _device_lock(self, device_id: str) -> threading.Lock:
        with self._lock:
            return self._device_locks.setdefault(device_id, threading.Lock())

    def _done(self, report: BayReport) -> None:
        with self._lock:
            self.reports.append(report)
        _log.info("bay finished", bay=report.bay, serial=report.serial, outcome=report.outcome)
        if self._on_bay_done is not None:
            self._on_bay_done(report)

    def _ingest_folder(self, root: Path) -> IngestFolder:
        table = IngestTable(self.dock.cfg.ledger_path, wall_ns=self._clock.wall_ns)
        return IngestFolder(
            root,
            table,
            upload_clip=sink_uploader(self.dock.sink),
            device_key=self.dock.devices.key_for,
            store_key=self.dock.store_key,
            rescan_s=self.dock.cfg.ingest_rescan_s,
        )
