"""What the dock offers a camera once its offload is complete, and what each offer became.

Three parts, all without I/O (docs/dock-api.md "Updates: firmware and configuration profiles"):

* :func:`plan` decides from the camera's ``GET /status`` and what is staged: the staged profile
  when the camera neither runs nor holds it pending and its version is greater than both; the
  bundle staged for the camera's target when its version is strictly newer (``MAJOR.MINOR.PATCH``
  compared as numbers) and the camera's firmware is ``healthy``, never while a slot is on trial.
* :func:`judge` reads the camera's status after the reboot: the new version ``healthy`` is
  confirmed, still on ``trial`` is followed further, any other version means it rolled back.
* :class:`UpdateTracker` remembers, for this dock run, every offer by device id: so nothing is
  offered twice to one camera (a camera that refused a bundle or rolled back keeps its old one
  until the dock restarts or something newer is staged), so a worker that starts after the
  camera re-enumerated continues the confirmation, and so the armorer sees each step.
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
    """What to send the camera; ``offered(kind, key)`` says what this dock run sent it already."""
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
    session: int  #: the client session that asked for the reboot (CameraClient.session_number)
    since_ns: int  #: when, on the dock's monotonic clock


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


class UpdateTracker:
    """Every camera's offers in this dock run, by device id; thread-safe (one worker per camera
    works on its entry at a time, the armorer's API reads)."""

    def __init__(
        self, on_view: Callable[[str, UpdateView | None], None] = lambda device, view: None
    ) -> None:
        """``on_view`` sees each change of a camera's :class:`UpdateView` (the bays' status)."""
        self._on_view = on_view
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}

    def offered(self, device_id: str, kind: str, key: str) -> bool:
        """Whether this run offered the camera that bundle version or profile id already."""
        with self._lock:
            entry = self._devices.get(device_id)
            return entry is not None and (kind, key) in entry.offered

    def offer(self, device_id: str, kind: str, key: str, view: UpdateView) -> None:
        """It is being offered now: never again to this camera in this run."""
        with self._lock:
            self._entry(device_id).offered.add((kind, key))
        self.show(device_id, view)

    def withdraw(self, device_id: str, kind: str, key: str) -> None:
        """The offer never reached the camera (it left mid-way): it may be offered again."""
        with self._lock:
            self._entry(device_id).offered.discard((kind, key))
        self.show(device_id, None)

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
        with self._lock:
            self._entry(device_id).awaited = awaited

    def awaited(self, device_id: str) -> Awaited | None:
        with self._lock:
            entry = self._devices.get(device_id)
            return entry.awaited if entry is not None else None

    def settled(self, device_id: str) -> None:
        """The reboot's outcome is known: nothing more to follow."""
        with self._lock:
            self._entry(device_id).awaited = None

    def _entry(self, device_id: str) -> _Device:
        # under self._lock
        return self._devices.setdefault(device_id, _Device())
