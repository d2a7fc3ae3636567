"""What the dock offers a camera once its offload is complete, and what each offer became.

Three parts, all without I/O (docs/dock-api.md "Updates: firmware and configuration profiles"):

* :func:`plan` decides from the camera's ``GET /status`` and what is staged: the staged profile
  when the camera neither runs nor holds it pending and its version is greater than both; the
  bundle staged for the camera's target when its version is strictly newer (``MAJOR.MINOR.PATCH``
  compared as numbers) and the camera's firmware is ``healthy``, never while a slot is on trial.
* :func:`judge` reads the camera's status after the reboot: the new version ``healthy`` is
  confirmed, still on ``trial`` is followed further, any other version means it rolled back.
* :class:`UpdateTracker` remembers every offer by device id, in memory for this dock run and
  durably in dock/offer_table.py: so nothing is offered twice to one camera (a camera that
  refused a bundle or rolled back keeps its old one, across restarts, until something newer is
  staged), so a worker that starts after the camera re-enumerated, or after the dock restarted,
  follows the reboot on instead of sending again, and so the armorer sees each step (the view
  stays in memory).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from custody.errors import FormatError
from custody.firmware_bundle import parse_version
from dock.camera_answers import UNKNOWN_TARGET, CameraStatus
from dock.offer_table import OfferOutcome, OfferRecord, OfferTable
from dock.updates import StagedFirmware, StagedProfile


class Step(StrEnum):
    SENDING = "sending"
    INSTALLING = "installing"
    REBOOTING = "rebooting"
    CONFIRMING = "confirming"
    DONE = "done"
    FAILED = "failed"


#: the steps of an update still under way: the bay shows "updating" meanwhile
UNDER_WAY = frozenset({Step.SENDING, Step.INSTALLING, Step.REBOOTING, Step.CONFIRMING})


@dataclass(frozen=True)
class UpdateView:
    """The bay's ``update`` field: where the camera's current update is."""

    kind: str  #: ``firmware`` or ``profile``
    version: str  #: the firmware version, or the profile's ``profile_version`` as text
    step: Step
    bytes_done: int = 0
    bytes_total: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "version": self.version, "step": self.step.value,
            "bytes_done": self.bytes_done, "bytes_total": self.bytes_total, "error": self.error,
        }  # fmt: skip


@dataclass(frozen=True)
class Plan:
    profile: StagedProfile | None = None
    firmware: StagedFirmware | None = None

    def __bool__(self) -> bool:
        return self.profile is not None or self.firmware is not None


def newer(candidate: str, running: str) -> bool:
    """Whether ``candidate`` is a strictly newer version; False when either is not a version."""
    try:
        return parse_version(candidate) > parse_version(running)
    except FormatError:
        return False  # a camera that reports no comparable version is never offered one


def profile_wanted(status: CameraStatus, staged: StagedProfile) -> bool:
    pending = status.profile_pending
    held = {status.profile_id} | ({pending.profile_id} if pending else set())
    newest = max(status.profile_version, pending.profile_version if pending else 0)
    return staged.profile.profile_id not in held and staged.profile.profile_version > newest


def firmware_wanted(status: CameraStatus, staged: StagedFirmware) -> bool:
    return (
        status.target != UNKNOWN_TARGET
        and staged.header.target == status.target
        and status.firmware_state == "healthy"
        and newer(staged.header.firmware_version, status.firmware)
    )


def plan(
    status: CameraStatus,
    firmware: StagedFirmware | None,
    profile: StagedProfile | None,
    *,
    offered: Callable[[str, str], bool] = lambda kind, key: False,
) -> Plan:
    """What to send the camera; ``offered(kind, key)`` says what it must not be sent again."""
    if profile is not None and (
        not profile_wanted(status, profile) or offered("profile", profile.profile.profile_id)
    ):
        profile = None
    if firmware is not None and (
        not firmware_wanted(status, firmware)
        or offered("firmware", firmware.header.firmware_version)
    ):
        firmware = None
    return Plan(profile, firmware)


@dataclass(frozen=True)
class Awaited:
    """A camera asked to reboot, and what it should run when it is back."""

    firmware: str | None  #: the version sent (None: only a profile was)
    previous_firmware: str
    profile_id: str | None  #: the profile sent
    profile_version: int
    #: the client session that asked for the reboot (CameraClient.session_number); 0 when an
    #: earlier dock run asked, so any session of this run is after the restart
    session: int
    since_ns: int  #: when (or when this run took it up), on the dock's monotonic clock


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    WAIT = "wait"
    FAILED = "failed"


def judge(awaited: Awaited, status: CameraStatus) -> tuple[Verdict, str | None]:
    """The firmware's fate from a status read after the camera restarted, with the reason."""
    if awaited.firmware is None:
        return Verdict.CONFIRMED, None
    if status.firmware == awaited.firmware:
        if status.firmware_state == "healthy":
            return Verdict.CONFIRMED, None
        return Verdict.WAIT, None
    if status.firmware == awaited.previous_firmware:
        return Verdict.FAILED, (
            f"rolled back: the camera runs {status.firmware} again, {awaited.firmware} did not "
            "boot healthy (see the camera's audit log)"
        )
    return Verdict.FAILED, (
        f"the camera runs {status.firmware}, not {awaited.firmware}, after the reboot"
    )


def profile_applied(awaited: Awaited, status: CameraStatus) -> str | None:
    """None when the profile sent is the one the camera runs after its reboot, else why not."""
    if awaited.profile_id is None or status.profile_id == awaited.profile_id:
        return None
    return (
        f"profile version {awaited.profile_version} was accepted but not applied at the "
        f"reboot (the camera runs profile version {status.profile_version})"
    )


@dataclass
class _Device:
    offered: set[tuple[str, str]] = field(default_factory=set)
    view: UpdateView | None = None
    awaited: Awaited | None = None
    looked: bool = False  #: whether this run looked for a reboot an earlier run asked for


class UpdateTracker:
    """Every camera's offers, by device id; thread-safe (one worker per camera works on its
    entry at a time, the armorer's API reads)."""

    def __init__(
        self,
        on_view: Callable[[str, UpdateView | None], None] = lambda device, view: None,
        offers: OfferTable | None = None,
    ) -> None:
        """``on_view`` sees each change of a camera's :class:`UpdateView` (the bays' status);
        ``offers`` keeps offers and their outcomes across restarts (None: this run only)."""
        self._on_view = on_view
        self._offers = offers
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}

    def offered(self, device_id: str, kind: str, key: str) -> bool:
        """Whether the camera must not be sent that bundle version or profile id: this run
        offered it, or an earlier one saw it refused, rolled back, confirmed or rebooted into."""
        with self._lock:
            entry = self._devices.get(device_id)
            if entry is not None and (kind, key) in entry.offered:
                return True
        if self._offers is None:
            return False
        record = self._offers.get(device_id, kind, key)
        return record is not None and record.settled

    def offer(
        self, device_id: str, kind: str, key: str, view: UpdateView, *, previous: str = ""
    ) -> None:
        """It is being offered now: never again to this camera in this run (nor in later ones
        once the camera took it). ``previous``: the firmware it ran when offered a bundle."""
        with self._lock:
            self._entry(device_id).offered.add((kind, key))
        if self._offers is not None:
            self._offers.offered(device_id, kind, key, version=view.version, previous=previous)
        self.show(device_id, view)

    def withdraw(self, device_id: str, kind: str, key: str) -> None:
        """The offer never reached the camera (it left mid-way): it may be offered again."""
        with self._lock:
            self._entry(device_id).offered.discard((kind, key))
        self.conclude(device_id, kind, key, OfferOutcome.WITHDRAWN)
        self.show(device_id, None)

    def conclude(
        self, device_id: str, kind: str, key: str, outcome: OfferOutcome, reason: str | None = None
    ) -> None:
        """Record what the offer became; in this run it stays offered whatever the outcome."""
        if self._offers is not None:
            self._offers.conclude(device_id, kind, key, outcome, reason)

    def view(self, device_id: str) -> UpdateView | None:
        with self._lock:
            entry = self._devices.get(device_id)
            return entry.view if entry is not None else None

    def show(self, device_id: str, view: UpdateView | None) -> None:
        with self._lock:
            self._entry(device_id).view = view
        self._on_view(device_id, view)

    def step(self, device_id: str, step: Step, *, kind: str | None = None, **changes: Any) -> None:
        """The current update (if of ``kind``, when given) moves on (``changes``: bytes_done,
        error, ...)."""
        with self._lock:
            current = self._entry(device_id).view
        if current is not None and kind in (None, current.kind):
            self.show(device_id, replace(current, step=step, **changes))

    def await_reboot(self, device_id: str, awaited: Awaited) -> None:
        """Recorded durably before the reboot is asked: a restarted dock follows it on."""
        with self._lock:
            self._entry(device_id).awaited = awaited
        if self._offers is not None:
            sent = [("firmware", awaited.firmware), ("profile", awaited.profile_id)]
            self._offers.reboot_asked(device_id, [(k, v) for k, v in sent if v is not None])

    def awaited(self, device_id: str) -> Awaited | None:
        with self._lock:
            entry = self._devices.get(device_id)
            return entry.awaited if entry is not None else None

    def resume(self, device_id: str, since_ns: int) -> Awaited | None:
        """The reboot an earlier dock run asked of the camera and never saw settled, followed
        from ``since_ns`` on; looked for once per run (None: there is none)."""
        with self._lock:
            entry = self._entry(device_id)
            if entry.awaited is not None or entry.looked or self._offers is None:
                return entry.awaited
            entry.looked = True
        records = self._offers.rebooting(device_id)
        if not records:
            return None
        awaited = _resumed(records, since_ns)
        with self._lock:
            entry.awaited = awaited
            entry.offered.update((r.kind, r.key) for r in records)
        kind = "profile" if awaited.firmware is None else "firmware"
        version = awaited.firmware or str(awaited.profile_version)
        self.show(device_id, UpdateView(kind, version, Step.REBOOTING))
        return awaited

    def settled(self, device_id: str) -> None:
        """The reboot's outcome is known: nothing more to follow."""
        with self._lock:
            self._entry(device_id).awaited = None

    def _entry(self, device_id: str) -> _Device:
        # under self._lock
        return self._devices.setdefault(device_id, _Device())


def _resumed(records: list[OfferRecord], since_ns: int) -> Awaited:
    """The reboot an earlier run asked for, from its offers' rows (the latest of each kind)."""
    latest = {r.kind: r for r in sorted(records, key=lambda r: r.reboot_ns or 0)}
    firmware, profile = latest.get("firmware"), latest.get("profile")
    return Awaited(
        firmware=firmware.key if firmware else None,
        previous_firmware=firmware.previous if firmware else "",
        profile_id=profile.key if profile else None,
        profile_version=int(profile.version) if profile else 0,
        session=0, since_ns=since_ns,
    )  # fmt: skip
