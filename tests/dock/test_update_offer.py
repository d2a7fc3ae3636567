"""What the dock offers a docked camera, and how it reads the camera after the reboot.

Plain decisions (dock/update_offer.py): no camera, no thread, no clock. The camera's status is
parsed by the dock's own schema (dock/camera_answers.py), as a camera would send it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody.firmware_bundle import FileEntry, make_header, parse_version
from custody.profile import Profile
from dock.camera_answers import CameraStatus
from dock.update_offer import (
    Awaited,
    Step,
    UpdateTracker,
    UpdateView,
    Verdict,
    judge,
    newer,
    plan,
    profile_applied,
)
from dock.updates import StagedFirmware, StagedProfile

DEVICE = "cam-0042"
versions = st.tuples(*[st.integers(0, 999)] * 3).map(lambda v: ".".join(map(str, v)))


def status(**fields: Any) -> CameraStatus:
    """A camera's ``GET /status`` answer; by default one running 1.0.0 on sim, healthy."""
    answer = {
        "device_id": DEVICE, "serial": "BWC1-000042", "officer_id": None, "firmware": "1.0.0",
        "battery_percent": 80.0, "charging": True, "free_bytes": 10**9, "wall_ns": 0,
        "clips_pending": 0, "target": "sim", "firmware_slot": None, "firmware_state": "healthy",
        "profile_id": "", "profile_version": 0, "profile_pending": None, **fields,
    }  # fmt: skip
    return CameraStatus.model_validate(answer)


def bundle(version: str, target: str = "sim") -> StagedFirmware:
    entry = FileEntry("bwc.bin", 10, "0" * 64)
    header = make_header([entry], firmware_version=version, target=target, min_version="0.0.0",
                         notes="", created_at_ns=0)  # fmt: skip
    return StagedFirmware(Path(f"firmware-{target}.bundle"), header, 1000, 0)


def profile(version: int, name: str = "patrol") -> StagedProfile:
    made = Profile(name, version, 0, {"video_fps": 25})
    return StagedProfile(made.to_bytes(), made, 0)


# firmware


def test_a_newer_bundle_for_the_cameras_target_is_offered() -> None:
    staged = bundle("1.1.0")
    assert plan(status(), staged, None).firmware == staged


@pytest.mark.parametrize("version", ["1.0.0", "0.9.9"])
def test_a_bundle_of_the_running_or_an_older_version_is_not_offered(version: str) -> None:
    assert plan(status(), bundle(version), None).firmware is None


def test_a_bundle_for_another_target_is_not_offered() -> None:
    assert plan(status(), bundle("2.0.0", target="pi5-bwc1"), None).firmware is None


def test_a_camera_whose_slot_is_on_trial_is_not_offered_firmware() -> None:
    assert plan(status(firmware_state="trial"), bundle("1.1.0"), None).firmware is None


def test_a_camera_on_firmware_without_update_fields_parses_and_is_never_offered_firmware() -> None:
    old = CameraStatus.model_validate({
        "device_id": DEVICE, "serial": "BWC1-000042", "officer_id": None, "firmware": "0.1.0",
        "battery_percent": None, "charging": None, "free_bytes": 0, "clips_pending": 0,
    })  # fmt: skip
    assert (old.target, old.profile_id, old.profile_version) == ("unknown", "", 0)
    assert plan(old, bundle("9.0.0", target="unknown"), None).firmware is None


def test_a_camera_reporting_no_comparable_version_is_not_offered_firmware() -> None:
    assert plan(status(firmware="dev-build"), bundle("1.1.0"), None).firmware is None


def test_a_bundle_offered_once_in_this_run_is_not_offered_again() -> None:
    offered = {("firmware", "1.1.0")}
    chosen = plan(status(), bundle("1.1.0"), None, offered=lambda k, v: (k, v) in offered)
    assert not chosen


def test_versions_compare_as_numbers_not_text() -> None:
    assert newer("1.10.0", "1.9.0") and not newer("1.9.0", "1.10.0")


@given(staged=versions, running=versions)
def test_firmware_is_offered_exactly_when_strictly_newer(staged: str, running: str) -> None:
    chosen = plan(status(firmware=running), bundle(staged), None)
    assert (chosen.firmware is not None) == (parse_version(staged) > parse_version(running))


# profile


def test_a_profile_newer_than_the_cameras_is_offered() -> None:
    staged = profile(3)
    assert plan(status(profile_id="a" * 64, profile_version=2), None, staged).profile == staged


def test_the_profile_the_camera_runs_is_not_offered() -> None:
    staged = profile(3)
    running = status(profile_id=staged.profile.profile_id, profile_version=3)
    assert plan(running, None, staged).profile is None


def test_a_profile_the_camera_holds_pending_is_not_offered() -> None:
    staged = profile(3)
    pending = {"profile_id": staged.profile.profile_id, "profile_version": 3}
    assert plan(status(profile_pending=pending), None, staged).profile is None


def test_a_profile_older_than_the_one_pending_is_not_offered() -> None:
    pending = {"profile_id": "b" * 64, "profile_version": 5}
    assert plan(status(profile_pending=pending), None, profile(4)).profile is None


def test_a_profile_not_newer_than_the_running_one_is_not_offered() -> None:
    assert plan(status(profile_id="a" * 64, profile_version=3), None, profile(3)).profile is None


def test_a_profile_offered_once_in_this_run_is_not_offered_again() -> None:
    staged = profile(1)
    offered = {("profile", staged.profile.profile_id)}
    assert not plan(status(), None, staged, offered=lambda k, v: (k, v) in offered)


# after the reboot


def awaited(firmware: str | None = "1.1.0", profile_id: str | None = None) -> Awaited:
    return Awaited(firmware, "1.0.0", profile_id, 2 if profile_id else 0, session=1, since_ns=0)


def test_the_new_version_reporting_healthy_is_confirmed() -> None:
    assert judge(awaited(), status(firmware="1.1.0")) == (Verdict.CONFIRMED, None)


def test_the_new_version_still_on_trial_is_followed_further() -> None:
    assert judge(awaited(), status(firmware="1.1.0", firmware_state="trial"))[0] is Verdict.WAIT


def test_the_old_version_again_means_the_update_rolled_back() -> None:
    verdict, reason = judge(awaited(), status(firmware="1.0.0"))
    assert verdict is Verdict.FAILED
    assert reason is not None and reason.startswith("rolled back: the camera runs 1.0.0 again")


def test_another_version_after_the_reboot_is_a_failure_naming_it() -> None:
    verdict, reason = judge(awaited(), status(firmware="1.0.5"))
    assert verdict is Verdict.FAILED and "runs 1.0.5, not 1.1.0" in (reason or "")


def test_a_profile_sent_is_applied_when_the_camera_runs_it_after_the_reboot() -> None:
    sent = awaited(firmware=None, profile_id="c" * 64)
    assert judge(sent, status()) == (Verdict.CONFIRMED, None)
    assert profile_applied(sent, status(profile_id="c" * 64, profile_version=2)) is None
    assert "not applied" in (profile_applied(sent, status()) or "")


# the tracker


def test_an_offer_is_remembered_per_camera() -> None:
    tracker = UpdateTracker()
    tracker.offer(DEVICE, "firmware", "1.1.0", UpdateView("firmware", "1.1.0", Step.SENDING))
    assert tracker.offered(DEVICE, "firmware", "1.1.0")
    assert not tracker.offered("cam-0043", "firmware", "1.1.0")
    assert not tracker.offered(DEVICE, "firmware", "1.2.0")


def test_an_offer_withdrawn_may_be_offered_again() -> None:
    tracker = UpdateTracker()
    tracker.offer(DEVICE, "profile", "c" * 64, UpdateView("profile", "2", Step.SENDING))
    tracker.withdraw(DEVICE, "profile", "c" * 64)
    assert not tracker.offered(DEVICE, "profile", "c" * 64)


def test_every_step_of_an_update_reaches_the_bays_view() -> None:
    seen: list[UpdateView | None] = []
    tracker = UpdateTracker(on_view=lambda device, view: seen.append(view))
    tracker.offer(DEVICE, "firmware", "1.1.0", UpdateView("firmware", "1.1.0", Step.SENDING, 0, 9))
    tracker.step(DEVICE, Step.INSTALLING, bytes_done=9)
    tracker.step(DEVICE, Step.DONE)
    assert [(v.step, v.bytes_done) for v in seen if v] == [
        (Step.SENDING, 0), (Step.INSTALLING, 9), (Step.DONE, 9),
    ]  # fmt: skip
    assert tracker.view(DEVICE) == seen[-1]


def test_a_step_for_another_kind_of_update_leaves_the_view_alone() -> None:
    tracker = UpdateTracker()
    failed = UpdateView("firmware", "1.1.0", Step.FAILED, error="refused")
    tracker.offer(DEVICE, "firmware", "1.1.0", failed)
    tracker.step(DEVICE, Step.REBOOTING, kind="profile")
    assert tracker.view(DEVICE) == failed
