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

The armorer's view: :attr:`DockAgent.status` (dock/status.py) follows every bay, fed by the
monitor and by each worker's hooks; when a camera's session opens, the agent reads its status
and sends it an officer assignment that was waiting for it (dock/officers.py). :meth:`wake`
and :meth:`send_officer` are what the dock's local API (dock/ui/app.py) asks of it.

Updates: :attr:`DockAgent.updates` holds what an armorer staged (dock/updates.py); once a bay's
worker has finished every clip of its camera, it offers them, reboots the camera and follows it
until the new firmware is confirmed or rolled back (dock/update_flow.py). What each camera was
offered is in :attr:`DockAgent.tracker`, shared by the bays and kept in the ledger file
(dock/offer_table.py), so a camera that comes back as a new docking after its reboot, or to a
restarted dock, is followed on, and nothing it refused or rolled back is offered to it again.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import structlog

from dock.agent import Dock
from dock.audit_log import DockAuditLog
from dock.bay_worker import BayHooks, BayReport, BayWorker
from dock.bays import Bay, BayEvent, BayMonitor, BayState
from dock.camera_client import CameraClient
from dock.errors import CameraRefused, CameraUnavailable, DockError
from dock.ingest_folder import IngestFolder, file_uploader, sink_uploader
from dock.ingest_table import IngestTable
from dock.ledger import ClipRow
from dock.links import LinkResolver
from dock.offer_table import OfferTable
from dock.officers import OfficerTable
from dock.status import DockStatus
from dock.update_flow import UpdateFlow
from dock.update_offer import UpdateTracker
from dock.updates import StagedFirmware, StagedProfile, StagedUpdates
from hw.ports.clock import Clock
from hw.ports.usb import UsbBus, UsbDeviceInfo

_log = structlog.get_logger(__name__)

#: seconds a stopping dock waits for each bay to reach a ledger state
STOP_TIMEOUT_S = 30.0
#: bay states in which the camera is there to work with
_WORKABLE = frozenset({BayState.ARRIVED, BayState.IDENTIFIED})


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
        audit: DockAuditLog | None = None,
        name: str | None = None,
    ) -> None:
        """``audit`` records what the dock does for an armorer (an assignment it sent later)."""
        self.dock = dock
        cfg = dock.cfg
        self.monitor = BayMonitor(bus, clock, cfg.cameras, interval_s=cfg.poll_s)
        store = f"s3://{cfg.s3.bucket}" if cfg.s3 is not None else cfg.store_url
        #: every bay at a glance, for the armorer (dock/status.py)
        self.status = DockStatus(
            dock.ledger, name=name or socket.gethostname(), store=store, enrolled=cfg.cameras,
            wall_ns=clock.wall_ns,
        )  # fmt: skip
        #: officer assignments waiting for their camera's next docking
        self.officers = OfficerTable(cfg.ledger_path)
        self.audit = audit
        #: firmware and the profile an armorer staged (dock/updates.py, the API's routes);
        #: each stage is offered at once to the docked cameras whose offload is complete
        self.updates: StagedUpdates = _OfferedAtOnce(
            cfg.updates_dir, cfg.release_keys_dir, clock.wall_ns,
            on_staged=lambda: self.wake(retry=False),
        )  # fmt: skip
        #: what each camera was offered and what became of it (kept across restarts), and
        #: where each update is (this run's view)
        self.offers = OfferTable(cfg.ledger_path, wall_ns=clock.wall_ns)
        self.tracker = UpdateTracker(on_view=self.status.update_changed, offers=self.offers)
        self._updating = UpdateFlow(
            self.updates, self.tracker, confirm_s=cfg.update_confirm_s,
            poll_s=min(cfg.retry.cap_s, max(cfg.poll_s, cfg.retry.base_s)), audit=audit,
            on_status=self.status.camera_reported,
        )  # fmt: skip
        self._hooks = BayHooks(
            session=self._on_session,
            error=lambda device, message: self.status.error(device.bay, message),
            change=self.status.clip_changed,
            progress=self.status.transfer,
            update=self._updating.run,
        )
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
        unsubscribe_status = self.monitor.subscribe(self.status.bay_changed)
        unsubscribe_workers = self.monitor.subscribe(self._on_bay_event)

        def unsubscribe() -> None:
            unsubscribe_workers()
            unsubscribe_status()

        self._unsubscribe = unsubscribe
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
            worker.halt()
        for worker in workers:
            worker.join(timeout_s)
            if worker.is_alive():
                _log.warning("a bay did not stop in time", bay=worker.device.bay)
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.ingest is not None:
            self.ingest.stop()
            self.ingest.table.close()
        self.officers.close()
        self.offers.close()

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
                self._start_worker(bay.device, current)
            elif (
                bay.state is BayState.LEFT and current is not None and current.device == bay.device
            ):
                current.halt()  # a left event of an older docking must not stop the new one

    def _start_worker(self, device: UsbDeviceInfo, previous: BayWorker | None) -> None:
        # under self._lock
        worker = BayWorker(
            self.dock, self.monitor, self._links, self._clock, device,
            device_lock=self._device_lock, on_done=self._done, previous=previous,
            hooks=self._hooks,
        )  # fmt: skip
        self._workers[device.serial] = worker
        worker.start()

    # what an armorer asks (dock/ui/app.py)

    def wake(self, serial: str | None = None, *, retry: bool = True) -> list[str]:
        """Clips waiting for a retry (of every docked camera, or of ``serial``) try again now.

        A bay waiting out a backoff tries at once; a docked camera whose worker has ended (it
        gave up, or finished before a quarantined clip was released) gets a new one. Returns the
        bays concerned. ``retry`` False (something was staged) leaves each bay's state as it is:
        its new worker looks at its clips again, then offers what is staged.
        """
        docked = [b for b in self.monitor.bays() if b.state in _WORKABLE]  # before self._lock
        touched = []
        with self._lock:
            if self._stopping:
                return []
            for bay in docked:
                if serial is not None and bay.serial != serial:
                    continue
                worker = self._workers.get(bay.serial)
                if worker is not None and worker.device == bay.device and worker.wake():
                    pass  # it was waiting or working: it takes another look
                else:
                    if retry:
                        self.status.retrying(bay.name)
                    self._start_worker(bay.device, worker)
                touched.append(bay.name)
        return touched

    def docked_bay(self, serial: str) -> Bay | None:
        """The bay the camera ``serial`` is in now (arrived or identified), if any."""
        return next((b for b in self.monitor.bays() if b.serial == serial
                     and b.state in _WORKABLE), None)  # fmt: skip

    def send_officer(self, serial: str, officer_id: str) -> bool:
        """Assign the docked camera ``serial`` now, over a session of its own; False if it is
        not docked or stopped answering (the caller keeps the assignment for its next docking).

        Raises CameraRefused when the camera is not who it is enrolled as, or refuses the id.
        """
        bay = self.docked_bay(serial)
        if bay is None:
            return False
        try:
            camera = self.dock.camera(self._links.resolve(bay.device))
        except CameraUnavailable:
            return False
        try:
            identity = camera.connect()
            enrolled = self.dock.cfg.cameras.get(serial)
            if identity.device_id != enrolled:
                raise CameraRefused(
                    f"the camera in bay {bay.name} proved it is {identity.device_id}, but serial "
                    f"{serial} is enrolled as {enrolled}: check the enrolment"
                )
            camera.assign_officer(officer_id)
        except CameraUnavailable:
            return False
        finally:
            self.dock.release(camera)
        self.status.officer_assigned(bay.name, officer_id)
        return True

    def _on_session(self, device: UsbDeviceInfo, camera: CameraClient) -> None:
        """A bay's session is open: read the camera's status, send a waiting assignment."""
        try:
            self.status.camera_reported(device.bay, camera.status())
        except CameraUnavailable:
            raise
        except DockError as exc:  # what the armorer sees only: it must not stop the offload
            self.status.error(device.bay, f"the camera's status cannot be read: {exc}")
        waiting = self.officers.pending(device.serial)
        if waiting is None:
            return
        try:
            camera.assign_officer(waiting.officer_id)
        except CameraUnavailable:
            raise
        except DockError as exc:
            self.status.error(device.bay, f"officer {waiting.officer_id} not assigned: {exc}")
            return
        self.officers.sent(waiting)
        self.status.officer_assigned(device.bay, waiting.officer_id)
        if self.audit is not None:
            self.audit.append("officer.sent", {
                "serial": device.serial, "device_id": camera.device_id,
                "officer_id": waiting.officer_id, "requested_by": waiting.armorer,
                "requested_ns": waiting.requested_ns,
            })  # fmt: skip

    def _device_lock(self, device_id: str) -> threading.Lock:
        with self._lock:
            return self._device_locks.setdefault(device_id, threading.Lock())

    def _done(self, report: BayReport) -> None:
        with self._lock:
            self.reports.append(report)
        self.status.bay_finished(report)
        _log.info("bay finished", bay=report.bay, serial=report.serial, outcome=report.outcome)
        if self._on_bay_done is not None:
            self._on_bay_done(report)

    def _ingest_folder(self, root: Path) -> IngestFolder:
        table = IngestTable(self.dock.cfg.ledger_path, wall_ns=self._clock.wall_ns)
        return IngestFolder(
            root,
            table,
            upload_clip=sink_uploader(self.dock.sink),
            upload_file=file_uploader(self.dock.sink),
            device_key=self.dock.devices.key_for,
            store_key=self.dock.store_key,
            rescan_s=self.dock.cfg.ingest_rescan_s,
        )


class _OfferedAtOnce(StagedUpdates):
    """Staged updates that call ``on_staged`` after each stage: a camera already done with its
    offload has no worker left to offer it at the end of a pass, so it gets a new one."""

    def __init__(
        self, folder: Path, release_keys_dir: Path, wall_ns: Callable[[], int], *,
        on_staged: Callable[[], object],
    ) -> None:  # fmt: skip
        super().__init__(folder, release_keys_dir, wall_ns)
        self._on_staged = on_staged

    def stage_firmware(self, stream: BinaryIO, *, limit: int) -> StagedFirmware:
        staged = super().stage_firmware(stream, limit=limit)
        self._on_staged()
        return staged

    def stage_profile(self, data: bytes) -> StagedProfile:
        staged = super().stage_profile(data)
        self._on_staged()
        return staged
