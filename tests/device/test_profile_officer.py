"""A profile naming an officer assigns the camera when it is accepted; the latest assignment wins,
and a reboot never changes who the camera belongs to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.keys import public_pem
from custody.profile import Profile
from device.offload import load_officer
from device.profile import PROFILE_FILE
from tests.device.offload_rig import DockedCamera
from tests.device.profile_rig import CONFIG_OFFICER, Rebooted, audit_events, reboot, signed


@pytest.fixture
def release_key(docked: DockedCamera) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    assert docked.request("PUT", "/keys/release-agency", data=public_pem(key)).ok
    return key


@pytest.fixture
def assigning(docked: DockedCamera, release_key: Ed25519PrivateKey) -> Profile:
    """A profile that assigns the camera to officer-2001, accepted by the camera."""
    profile = signed(release_key, 1, officer_id="officer-2001")
    assert docked.request("PUT", "/profile", data=profile.to_bytes()).ok
    return profile


@pytest.fixture
def rebooted(docked: DockedCamera) -> Iterator[Rebooted]:
    """The camera after a power cycle (e.g. a firmware update), booted as bwc device run does."""
    booted = reboot(docked)
    yield booted
    booted.close()


def test_an_accepted_profile_assigns_its_officer_at_once(
    docked: DockedCamera, assigning: Profile
) -> None:
    assert docked.get("/status").json()["officer_id"] == "officer-2001"
    assert load_officer(docked.storage) == "officer-2001"


def test_the_profiles_assignment_is_audited_as_made_by_the_profile(
    docked: DockedCamera, assigning: Profile
) -> None:
    assert audit_events(docked.storage.root, "officer.assigned") == [
        {"officer_id": "officer-2001", "previous": CONFIG_OFFICER, "by": "profile",
         "profile_id": assigning.profile_id},
    ]  # fmt: skip


def test_clips_after_the_profile_is_accepted_carry_its_officer(
    docked: DockedCamera, assigning: Profile
) -> None:
    docked.undock()
    docked.camera.tap(2)
    docked.camera.run(2)
    docked.dock()
    clip_id = docked.camera.firmware.sealed[-1]
    assert docked.camera.manifest(clip_id).header.info.officer_id == "officer-2001"


def test_the_profiles_officer_stays_after_a_reboot(assigning: Profile, rebooted: Rebooted) -> None:
    assert rebooted.camera.firmware.config.officer_id == "officer-2001"
    assert rebooted.camera.firmware.config.profile_id == assigning.profile_id


def test_an_officer_assigned_after_the_profile_wins_now(
    docked: DockedCamera, assigning: Profile
) -> None:
    assert docked.request("PUT", "/officer", json={"officer_id": "officer-3001"}).ok
    assert docked.get("/status").json()["officer_id"] == "officer-3001"


def test_an_officer_assigned_after_the_profile_wins_after_a_reboot(
    docked: DockedCamera, assigning: Profile
) -> None:
    assert docked.request("PUT", "/officer", json={"officer_id": "officer-3001"}).ok
    booted = reboot(docked)
    try:
        assert booted.camera.firmware.config.officer_id == "officer-3001"
        assert booted.camera.firmware.config.profile_id == assigning.profile_id
    finally:
        booted.close()


def test_a_pool_profile_leaves_the_assignment_alone(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    assert docked.request("PUT", "/officer", json={"officer_id": "officer-3001"}).ok
    assert docked.request("PUT", "/profile", data=signed(release_key, 1).to_bytes()).ok
    assert docked.get("/status").json()["officer_id"] == "officer-3001"
    assert [e.get("by") for e in audit_events(docked.storage.root, "officer.assigned")] == [None]


def test_a_pool_profile_keeps_the_configured_officer_after_a_reboot(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    assert docked.request("PUT", "/profile", data=signed(release_key, 1).to_bytes()).ok
    booted = reboot(docked)
    try:
        assert booted.camera.firmware.config.officer_id == CONFIG_OFFICER
    finally:
        booted.close()


def test_a_refused_profile_assigns_nobody(
    docked: DockedCamera, release_key: Ed25519PrivateKey, assigning: Profile
) -> None:
    older = signed(release_key, 1, officer_id="officer-4001", video_fps=5)
    assert docked.request("PUT", "/profile", data=older.to_bytes()).status_code == 409
    assert docked.get("/status").json()["officer_id"] == "officer-2001"
    assert load_officer(docked.storage) == "officer-2001"


def test_a_profile_whose_officer_is_not_an_officer_id_is_refused_whole(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    answer = docked.request(
        "PUT", "/profile", data=signed(release_key, 1, officer_id="../etc").to_bytes()
    )
    assert answer.status_code == 422
    assert "officer_id" in answer.json()["error"]
    assert "nothing was changed" in answer.json()["error"]
    assert not (docked.storage.root / PROFILE_FILE).exists()
    assert load_officer(docked.storage) is None
    [refused] = audit_events(docked.storage.root, "profile.refused")
    assert "officer_id" in refused["reason"]
