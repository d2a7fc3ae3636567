"""What the armorer sees of the dock: every bay at a glance, kept current by the running dock.

:class:`DockStatus` is fed by the :class:`~dock.runner.DockAgent`: bay events from the monitor,
the camera's own ``GET /status`` when a session opens and while an update is followed (officer,
battery, firmware and profile), each clip's ledger change and the bytes of the transfer in
flight (dock/progress.py), each camera's update (dock/update_offer.py, kept by device id so it
outlives a docking), and each bay worker's end.
Clip counts come from the ledger when a snapshot is taken. Every method is thread-safe: the
bays' threads write, the local API's threads read.

``state`` (docs/dock-api.md) is derived, not stored:

``left``             the camera was unplugged
``needs_attention``  unknown or unenrolled, refused, a quarantined clip, a worker that gave up,
                     or a clip failing again and again: ``last_error`` says what
``identifying``      in the bay, its session not yet proved who it is
``offloading``       clips still to finish (or the worker has not finished looking)
``done``             nothing left on the camera
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dock.bay_worker import BayReport, Outcome
from dock.bays import BayEvent, BayState
from dock.camera_answers import CameraStatus
from dock.ledger import ClipRow, ClipState, Ledger
from dock.progress import Transfer
from dock.update_offer import UNDER_WAY, UpdateView

#: failed attempts of one clip after which its bay needs the armorer's attention
ATTENTION_AFTER = 3


@dataclass(frozen=True)
class _Bay:
    name: str
    serial: str
    device_id: str | None
    docked: BayState
    reason: str | None = None  #: why the monitor refused it
    officer_id: str | None = None
    battery_percent: float | None = None
    charging: bool | None = None
    #: what the camera runs, from its last status (docs/formats/offload.md "Updates")
    firmware: str | None = None
    firmware_state: str | None = None
    target: str | None = None
    profile_id: str | None = None
    profile_version: int | None = None
    transfer: Transfer | None = None
    error: str | None = None  #: the worker's or the session's last error
    outcome: Outcome | None = None  #: set when its worker ended


class DockStatus:
    def __init__(
        self,
        ledger: Ledger,
        *,
        name: str,
        store: str,
        enrolled: Mapping[str, str],
        wall_ns: Callable[[], int],
    ) -> None:
        self._ledger, self._name, self._store = ledger, name, store
        self._enrolled = dict(enrolled)
        self._wall_ns = wall_ns
        self._lock = threading.Lock()
        self._bays: dict[str, _Bay] = {}
        # by device id, not bay: a camera that reboots into new firmware leaves its bay and
        # comes back as a new docking while its update is followed
        self._updates: dict[str, UpdateView] = {}
        self._updated_ns = wall_ns()

    # what the running dock reports

    def bay_changed(self, event: BayEvent) -> None:
        bay = event.bay
        with self._lock:
            current = self._bays.get(bay.name)
            if bay.state is BayState.ARRIVED or current is None or current.serial != bay.serial:
                current = _Bay(bay.name, bay.serial, None, bay.state)  # a new docking
            device_id = bay.device_id or current.device_id or self._enrolled.get(bay.serial)
            self._put(replace(current, docked=bay.state, device_id=device_id, reason=bay.reason))

    def camera_reported(self, bay: str, status: CameraStatus) -> None:
        self._change(
            bay, officer_id=status.officer_id, battery_percent=status.battery_percent,
            charging=status.charging, firmware=status.firmware,
            firmware_state=status.firmware_state, target=status.target,
            profile_id=status.profile_id, profile_version=status.profile_version,
        )  # fmt: skip

    def update_changed(self, device_id: str, view: UpdateView | None) -> None:
        """The camera's update moved on (dock/update_offer.py), or it has none (None)."""
        with self._lock:
            if view is None:
                self._updates.pop(device_id, None)
            else:
                self._updates[device_id] = view
            self._updated_ns = self._wall_ns()

    def officer_assigned(self, bay: str, officer_id: str) -> None:
        self._change(bay, officer_id=officer_id)

    def error(self, bay: str, message: str | None) -> None:
        self._change(bay, error=message)

    def clip_changed(self, row: ClipRow) -> None:
        with self._lock:
            for bay in self._bays_of(row.device_id):
                transfer = bay.transfer
                if row.state.terminal:
                    transfer = None
                else:
                    done, total = 0, 0
                    if transfer is not None and transfer.clip_id == row.clip_id:
                        done, total = transfer.bytes_done, transfer.bytes_total
                    transfer = Transfer(row.device_id, row.clip_id, row.state.value, done, total)
                self._put(replace(bay, transfer=transfer, error=None))

    def transfer(self, transfer: Transfer) -> None:
        with self._lock:
            for bay in self._bays_of(transfer.device_id):
                self._put(replace(bay, transfer=transfer))

    def bay_finished(self, report: BayReport) -> None:
        with self._lock:
            bay = self._bays.get(report.bay)
            if bay is None or bay.serial != report.serial:
                return
            if report.outcome is Outcome.LEFT and bay.docked is not BayState.LEFT:
                return  # an older docking's worker ending after the camera came back
            error = report.error if report.outcome is not Outcome.DONE else None
            self._put(replace(bay, outcome=report.outcome, error=error, transfer=None))

    def retrying(self, bay: str) -> None:
        """A new worker takes the bay (an armorer's retry): it works again."""
        self._change(bay, outcome=None, error=None)

    # what the armorer reads

    def now_ns(self) -> int:
        return self._wall_ns()

    def bay_of(self, serial: str) -> str | None:
        """The bay the camera ``serial`` is docked in now, if it is."""
        with self._lock:
            for bay in self._bays.values():
                if bay.serial == serial and bay.docked is not BayState.LEFT:
                    return bay.name
        return None

    def snapshot(self) -> dict[str, Any]:
        """``GET /api/v1/bays`` (docs/dock-api.md)."""
        with self._lock:
            bays = sorted(self._bays.values(), key=lambda b: b.name)
            updates = dict(self._updates)
            updated = self._updated_ns
        rows = self._ledger.rows()
        docked = {b.device_id for b in bays if b.docked is not BayState.LEFT}
        return {
            "dock": {"name": self._name, "store": self._store, "updated_at_ns": updated},
            "bays": [
                _view(
                    bay,
                    [r for r in rows if r.device_id == bay.device_id],
                    updates.get(bay.device_id or ""),
                )
                for bay in bays
            ],
            "quarantined": sum(r.state is ClipState.QUARANTINED for r in rows),
            "unfinished_elsewhere": sum(
                not r.state.terminal and r.device_id not in docked for r in rows
            ),
        }

    # internals

    def _change(self, bay: str, **changes: Any) -> None:
        with self._lock:
            current = self._bays.get(bay)
            if current is not None:
                self._put(replace(current, **changes))

    def _put(self, bay: _Bay) -> None:
        self._bays[bay.name] = bay
        self._updated_ns = self._wall_ns()

    def _bays_of(self, device_id: str) -> list[_Bay]:
        return [
            b for b in self._bays.values()
            if b.device_id == device_id and b.docked is not BayState.LEFT
        ]  # fmt: skip


def _view(bay: _Bay, rows: list[ClipRow], update: UpdateView | None) -> dict[str, Any]:
    pending = [r for r in rows if not r.state.terminal]
    state, error = _state(bay, rows, pending)
    under_way = update is not None and update.step in UNDER_WAY
    if state in ("offloading", "done") and not pending and under_way:
        state = "updating"  # the footage is off; the page says so, lest it be unplugged now
    transfer = bay.transfer
    return {
        "bay": bay.name,
        "serial": bay.serial,
        "device_id": bay.device_id,
        "officer_id": bay.officer_id,
        "state": state,
        "battery_percent": bay.battery_percent,
        "charging": bay.charging,
        "clips_pending": len(pending),
        "clips_done": sum(r.state is ClipState.DONE for r in rows),
        "transfer": None if transfer is None else {
            "clip_id": transfer.clip_id, "step": transfer.step,
            "bytes_done": transfer.bytes_done, "bytes_total": transfer.bytes_total,
        },
        "last_error": error,
        "firmware": bay.firmware,
        "firmware_state": bay.firmware_state,
        "target": bay.target,
        "profile_id": bay.profile_id,
        "profile_version": bay.profile_version,
        "update": None if update is None else update.to_json(),
    }  # fmt: skip


def _state(bay: _Bay, rows: list[ClipRow], pending: list[ClipRow]) -> tuple[str, str | None]:
    """The bay's state at a glance and the error that explains it (or the last one seen)."""
    quarantined = [r for r in rows if r.state is ClipState.QUARANTINED]
    failing = [r for r in pending if r.attempts >= ATTENTION_AFTER and r.last_error]
    clip_error = next((r.last_error for r in reversed(quarantined + failing) if r.last_error), None)
    if bay.docked is BayState.LEFT:
        return "left", bay.error
    if bay.docked is BayState.UNKNOWN:
        return "needs_attention", bay.reason
    if bay.outcome in (Outcome.FAILED, Outcome.REFUSED):
        return "needs_attention", bay.error or clip_error
    if quarantined or failing:
        return "needs_attention", bay.error or clip_error
    if bay.docked is BayState.ARRIVED:
        return "identifying", bay.error
    if bay.outcome is Outcome.DONE and not pending:
        return "done", None
    return "offloading", bay.error
