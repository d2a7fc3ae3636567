"""Offering one docked camera what is staged, rebooting it, and following it until it is settled.

Runs on the camera's bay worker after a pass that finished every clip (footage leaves first),
with the worker's session and its clock, whose sleeps end (BayChanged) when the camera leaves:

1. the staged profile (``PUT /profile``), then the bundle for the camera's target
   (``PUT /firmware``, streamed with progress), each if dock/update_offer.py's :func:`plan`
   wants it; a refusal (4xx) is final, across restarts, until something newer is staged, and
   says why;
2. if the camera took either, ``POST /reboot``, then its status is read until the camera is back
   under a new session (a camera keeps a session until it restarts, so a status under the old one
   is from before the restart) and the new firmware reports ``healthy`` (confirmed), or the camera
   runs its old version (rolled back), or ``update_confirm_s`` passed.

A camera that does not answer while it restarts is waited for, not failed. On a real dock the
reboot makes the camera leave its bay and come back: the worker ends and the next docking's
worker finds the reboot in the :class:`~dock.update_offer.UpdateTracker` and follows it from
there, against the same deadline. A transfer cut by the camera leaving is withdrawn and offered
again at the next pass.

Every offer and its outcome is also kept in the dock's SQLite file (dock/offer_table.py): the
reboot is recorded there before it is asked, so a dock that stopped (or was killed) while a
camera rebooted follows it on at the camera's next session, from that session's time, rather
than sending it again; the outcome is recorded once known.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from dock.audit_log import DockAuditLog
from dock.camera_answers import CameraStatus
from dock.camera_client import CameraClient
from dock.errors import CameraMisbehaved, CameraRefused, CameraUnavailable, DockError
from dock.offer_table import OfferOutcome
from dock.update_offer import (
    Awaited,
    Plan,
    Step,
    UpdateTracker,
    UpdateView,
    Verdict,
    judge,
    plan,
    profile_applied,
)
from dock.updates import StagedFirmware, StagedProfile, StagedUpdates
from hw.ports.clock import Clock
from hw.ports.usb import UsbDeviceInfo

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Sent:
    firmware: str | None = None
    profile: StagedProfile | None = None


class UpdateFlow:
    """What every bay does with staged updates; one per dock run, shared by the bays."""

    def __init__(
        self,
        updates: StagedUpdates,
        tracker: UpdateTracker,
        *,
        confirm_s: float,
        poll_s: float,
        audit: DockAuditLog | None = None,
        on_status: Callable[[str, CameraStatus], None] = lambda bay, status: None,
    ) -> None:
        """``poll_s``: the wait between status reads of a rebooting camera.

        ``on_status`` sees every status read (bay name, status) for the armorer's view.
        """
        self.updates, self.tracker = updates, tracker
        self._confirm_ns = round(confirm_s * 1e9)
        self._poll_s = poll_s
        self._audit, self._on_status = audit, on_status

    def run(self, device: UsbDeviceInfo, camera: CameraClient, clock: Clock) -> None:
        """Offer, reboot and confirm, or continue following a reboot asked for earlier.

        CameraUnavailable and BayChanged end it for a later pass; a refusal or a misbehaving
        camera ends this update (recorded) but never the offload that came before.
        """
        device_id = camera.device_id
        try:
            awaited = self.tracker.awaited(device_id) or self.tracker.resume(
                device_id, clock.monotonic_ns()
            )
            if awaited is None:
                status = camera.status()
                self._on_status(device.bay, status)
                firmware = self.updates.firmware_for(status.target)
                offered = self._offered(device_id)
                chosen = plan(status, firmware, self.updates.profile(), offered=offered)
                if not chosen:
                    return
                awaited = self._send(device, camera, status, chosen, clock)
                if awaited is None:
                    return
            self._follow(device, device_id, camera, clock, awaited)
        except CameraUnavailable:
            raise
        except DockError as exc:
            self._fail_open(device, device_id, str(exc))
            if isinstance(exc, CameraRefused):
                raise  # the bay must show it: the camera no longer proves who it is

    def _offered(self, device_id: str) -> Callable[[str, str], bool]:
        return lambda kind, key: self.tracker.offered(device_id, kind, key)

    # sending

    def _send(
        self, device: UsbDeviceInfo, camera: CameraClient, status: CameraStatus, chosen: Plan,
        clock: Clock,
    ) -> Awaited | None:  # fmt: skip
        """Send what was chosen; the reboot to wait for, or None when the camera took nothing."""
        sent = _Sent()
        if chosen.profile is not None and self._send_profile(
            device, camera, status, chosen.profile
        ):
            sent = _Sent(profile=chosen.profile)
        if chosen.firmware is not None and self._send_firmware(
            device, camera, status, chosen.firmware
        ):
            sent = _Sent(chosen.firmware.header.firmware_version, sent.profile)
        if sent.firmware is None and sent.profile is None:
            return None
        awaited = Awaited(
            firmware=sent.firmware, previous_firmware=status.firmware,
            profile_id=sent.profile.profile.profile_id if sent.profile else None,
            profile_version=sent.profile.profile.profile_version if sent.profile else 0,
            session=camera.session_number, since_ns=clock.monotonic_ns(),
        )  # fmt: skip
        self.tracker.await_reboot(camera.device_id, awaited)
        self._step(camera.device_id, awaited, Step.REBOOTING)
        with contextlib.suppress(CameraUnavailable):  # it may restart before its answer leaves
            camera.reboot()
        return awaited

    def _send_profile(
        self, device: UsbDeviceInfo, camera: CameraClient, status: CameraStatus,
        staged: StagedProfile,
    ) -> bool:  # fmt: skip
        device_id, profile = camera.device_id, staged.profile
        view = UpdateView(
            "profile", str(profile.profile_version), Step.SENDING, 0, len(staged.data)
        )
        self.tracker.offer(device_id, "profile", profile.profile_id, view)
        facts = {"profile_id": profile.profile_id, "profile_version": profile.profile_version,
                 "previous_profile_id": status.profile_id}  # fmt: skip

        def send() -> None:
            accepted = camera.put_profile(staged.data)
            if accepted.profile_id != profile.profile_id:
                raise CameraMisbehaved(
                    f"camera {device_id} answered the profile with profile {accepted.profile_id}"
                )

        if not self._deliver(device, device_id, ("profile", profile.profile_id), facts, send):
            return False
        self._record(device, device_id, "profile.pushed", facts)
        self.tracker.step(device_id, Step.DONE, bytes_done=len(staged.data))
        return True

    def _send_firmware(
        self, device: UsbDeviceInfo, camera: CameraClient, status: CameraStatus,
        staged: StagedFirmware,
    ) -> bool:  # fmt: skip
        device_id, version = camera.device_id, staged.header.firmware_version
        view = UpdateView("firmware", version, Step.SENDING, 0, staged.size)
        self.tracker.offer(device_id, "firmware", version, view, previous=status.firmware)
        facts = {"firmware_version": version, "previous_firmware": status.firmware,
                 "target": staged.header.target, "size": staged.size}  # fmt: skip
        self._record(device, device_id, "firmware.offered", facts)
        if staged.size > status.free_bytes:  # it would refuse it (507), after the whole body
            why = (
                f"camera {device_id} has {status.free_bytes} bytes free, the bundle needs "
                f"{staged.size}: free space on it; it is offered again when the dock restarts"
            )
            self.tracker.conclude(device_id, "firmware", version, OfferOutcome.WITHDRAWN, why)
            self._failed(device, device_id, "firmware.failed", why, facts)
            return False

        def progress(done: int) -> None:
            step = Step.INSTALLING if done >= staged.size else Step.SENDING
            self.tracker.step(device_id, step, bytes_done=done)

        def send() -> None:
            installed = camera.put_firmware(staged.path, staged.size, progress)
            if installed.firmware_version != version:
                raise CameraMisbehaved(
                    f"camera {device_id} says it installed {installed.firmware_version}, "
                    f"not {version}"
                )

        return self._deliver(device, device_id, ("firmware", version), facts, send)

    def _deliver(
        self, device: UsbDeviceInfo, device_id: str, offer: tuple[str, str],
        facts: dict[str, Any], send: Callable[[], None],
    ) -> bool:  # fmt: skip
        """Run ``send``: a camera gone away withdraws the offer (made again at the next pass), a
        camera refused ends the pass, any other refusal fails the offer; True when it went."""
        kind, key = offer
        try:
            send()
        except CameraUnavailable:
            self.tracker.withdraw(device_id, kind, key)
            raise
        except CameraRefused:
            raise
        except DockError as exc:
            self.tracker.conclude(device_id, kind, key, OfferOutcome.FAILED, str(exc))
            self._failed(device, device_id, f"{kind}.failed", str(exc), facts)
            return False
        return True

    # after the reboot

    def _follow(
        self, device: UsbDeviceInfo, device_id: str, camera: CameraClient, clock: Clock,
        awaited: Awaited,
    ) -> None:  # fmt: skip
        """Read the camera's status until its reboot is settled or the deadline passes."""
        deadline = awaited.since_ns + self._confirm_ns
        seen: CameraStatus | None = None
        while True:
            try:
                status: CameraStatus | None = camera.status()
            except CameraUnavailable:
                status = None  # restarting: its link or its server is not back yet
            if status is not None and camera.session_number != awaited.session:
                seen = status
                self._on_status(device.bay, status)
                self._step(device_id, awaited, Step.CONFIRMING)
                verdict, reason = judge(awaited, status)
                if verdict is not Verdict.WAIT:
                    self._settle(device, device_id, awaited, status, reason)
                    return
            if clock.monotonic_ns() >= deadline:
                self._settle(device, device_id, awaited, seen, _late(awaited, status, seen,
                             self._confirm_ns))  # fmt: skip
                return
            clock.sleep(self._poll_s)  # BayChanged when it leaves: its next docking follows on

    def _settle(
        self, device: UsbDeviceInfo, device_id: str, awaited: Awaited,
        status: CameraStatus | None, failure: str | None,
    ) -> None:  # fmt: skip
        """Record the reboot's outcome: ``failure`` None is confirmed."""
        self.tracker.settled(device_id)
        if awaited.profile_id is not None:
            why = failure if status is None else profile_applied(awaited, status)
            applied = OfferOutcome.CONFIRMED if why is None else OfferOutcome.FAILED
            self.tracker.conclude(device_id, "profile", awaited.profile_id, applied, why)
            if why is not None:
                sent = {"profile_id": awaited.profile_id,
                        "profile_version": awaited.profile_version}  # fmt: skip
                self._failed(device, device_id, "profile.failed", why, sent,
                             show=awaited.firmware is None)  # fmt: skip
            elif awaited.firmware is None:
                self._step(device_id, awaited, Step.DONE)
        if awaited.firmware is None:
            return
        facts: dict[str, Any] = {
            "firmware_version": awaited.firmware, "previous_firmware": awaited.previous_firmware,
        }  # fmt: skip
        if status is not None:
            facts.update(running=status.firmware, slot=status.firmware_slot)
        outcome = OfferOutcome.CONFIRMED if failure is None else OfferOutcome.FAILED
        self.tracker.conclude(device_id, "firmware", awaited.firmware, outcome, failure)
        if failure is not None:
            self._failed(device, device_id, "firmware.failed", failure, facts)
            return
        self._record(device, device_id, "firmware.confirmed", facts)
        self._step(device_id, awaited, Step.DONE)

    # recording

    def _step(self, device_id: str, awaited: Awaited, step: Step) -> None:
        # the view shows the update the reboot is for: a refused bundle's failure stays shown
        # when only the profile sent with it is followed
        self.tracker.step(device_id, step, kind="profile" if awaited.firmware is None else None)

    def _fail_open(self, device: UsbDeviceInfo, device_id: str, reason: str) -> None:
        """A non-retryable error outside a send: a reboot being followed ends as failed."""
        awaited = self.tracker.awaited(device_id)
        if awaited is not None:
            self._settle(device, device_id, awaited, None, reason)
        else:  # its status could not be read: the bay shows that (DockAgent._on_session)
            _log.warning("no update offered", bay=device.bay, device_id=device_id, reason=reason)

    def _failed(
        self, device: UsbDeviceInfo, device_id: str, event: str, reason: str,
        facts: dict[str, Any], *, show: bool = True,
    ) -> None:  # fmt: skip
        _log.warning("update failed", bay=device.bay, device_id=device_id, reason=reason)
        self._record(device, device_id, event, {**facts, "reason": reason})
        if show:
            self.tracker.step(device_id, Step.FAILED, error=reason)

    def _record(
        self, device: UsbDeviceInfo, device_id: str, event: str, facts: dict[str, Any]
    ) -> None:
        if self._audit is not None:
            self._audit.append(
                event, {"device_id": device_id, "serial": device.serial, "bay": device.bay, **facts}
            )


def _late(
    awaited: Awaited, last: CameraStatus | None, seen: CameraStatus | None, confirm_ns: int
) -> str:
    seconds = confirm_ns / 1e9
    if seen is None and last is not None:
        return f"the camera did not restart within {seconds:g} s of being asked to reboot"
    if seen is None:
        return f"the camera did not come back within {seconds:g} s of its reboot: check it"
    return (
        f"{awaited.firmware} was still on trial {seconds:g} s after the reboot (it did not "
        "report healthy): check the camera"
    )
