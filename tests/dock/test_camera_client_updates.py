"""The dock's update calls against a real docked camera's offload API (device/offload).

The camera is the whole firmware on sim hardware with its firmware slots (tests/device/
offload_rig.py); the dock side is its own CameraClient. Each refusal comes back as
UpdateDeclined carrying the camera's reason, and the camera keeps what it ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.keys import public_pem
from dock.camera_client import CameraClient
from dock.enrolment import EnrolledDevices
from dock.errors import UpdateDeclined
from tests.device.docked_update_rig import close, reboot_in_dock, release_key_provisioned
from tests.device.offload_rig import DEVICE_ID, DockedCamera, build_docked_camera
from tests.device.slot_helpers import make_bundle
from tests.dock.update_helpers import signed_profile, signed_unchecked


@pytest.fixture
def docked(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> Iterator[DockedCamera]:
    camera = build_docked_camera(tmp_path / "camera", device_key, agency_key)
    yield camera
    close(camera)


@pytest.fixture
def release_key(docked: DockedCamera) -> Ed25519PrivateKey:
    docked.login()
    return release_key_provisioned(docked)


def client_for(docked: DockedCamera, folder: Path, device_key: Ed25519PrivateKey) -> CameraClient:
    devices = folder / "devices"
    devices.mkdir(exist_ok=True)
    (devices / f"{DEVICE_ID}.pub.pem").write_bytes(public_pem(device_key.public_key()))
    return CameraClient(docked.url, docked.dock_key, EnrolledDevices(devices), chunk_bytes=8192)


@pytest.fixture
def client(
    docked: DockedCamera, tmp_path: Path, device_key: Ed25519PrivateKey
) -> Iterator[CameraClient]:
    made = client_for(docked, tmp_path, device_key)
    yield made
    made.close()


@pytest.fixture
def bundles(tmp_path: Path) -> Path:
    folder = tmp_path / "bundles"
    folder.mkdir()
    return folder


def test_a_cameras_status_says_what_firmware_and_profile_it_runs(client: CameraClient) -> None:
    status = client.status()
    assert (status.target, status.firmware_slot, status.firmware_state) == ("sim", None, "healthy")
    assert (status.profile_id, status.profile_version, status.profile_pending) == ("", 0, None)


def test_a_bundle_is_streamed_with_progress_and_installed_in_the_inactive_slot(
    client: CameraClient, release_key: Ed25519PrivateKey, bundles: Path
) -> None:
    bundle = make_bundle(bundles, release_key, version="1.2.0")
    size = bundle.stat().st_size
    seen: list[int] = []

    installed = client.put_firmware(bundle, size, seen.append)

    assert (installed.slot, installed.firmware_version) == ("a", "1.2.0")
    assert seen == sorted(seen) and len(seen) > 2 and seen[-1] == size


def test_a_bundle_the_camera_refuses_is_declined_naming_the_check(
    client: CameraClient, release_key: Ed25519PrivateKey, bundles: Path
) -> None:
    bundle = make_bundle(bundles, release_key, version="1.2.0", target="pi5-bwc1")

    with pytest.raises(UpdateDeclined, match=r"422: .*refused: target: built for pi5-bwc1") as exc:
        client.put_firmware(bundle, bundle.stat().st_size)

    assert exc.value.status == 422
    assert client.status().firmware_slot is None


def test_a_bundle_larger_than_the_cards_free_space_is_declined_before_it_is_sent(
    client: CameraClient, docked: DockedCamera, bundles: Path
) -> None:
    huge = bundles / "huge.bundle"
    with huge.open("wb") as f:  # sparse: the camera refuses on its Content-Length alone
        f.truncate(docked.storage.free_bytes() + 1024**2)

    with pytest.raises(UpdateDeclined, match="507") as exc:
        client.put_firmware(huge, huge.stat().st_size)

    assert exc.value.status == 507


def test_a_profile_is_accepted_and_held_pending_until_the_next_boot(
    client: CameraClient, release_key: Ed25519PrivateKey
) -> None:
    profile = signed_profile(release_key, 2)

    accepted = client.put_profile(profile.to_bytes())

    assert (accepted.profile_id, accepted.profile_version) == (profile.profile_id, 2)
    pending = client.status().profile_pending
    assert pending is not None and pending.profile_id == profile.profile_id


def test_a_profile_with_an_out_of_range_value_is_declined_naming_the_setting(
    client: CameraClient, release_key: Ed25519PrivateKey
) -> None:
    bad = signed_unchecked(release_key, 2, video_fps=240)

    with pytest.raises(UpdateDeclined, match="video_fps = 240 is out of range") as exc:
        client.put_profile(bad.to_bytes())

    assert exc.value.status == 422
    assert client.status().profile_pending is None


def test_a_camera_without_a_reboot_handler_declines_to_reboot(client: CameraClient) -> None:
    with pytest.raises(UpdateDeclined, match="cannot reboot on request"):
        client.reboot()


def test_a_camera_that_can_reboot_is_asked_to(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> None:
    rebooted = reboot_in_dock(build_docked_camera(tmp_path / "camera", device_key, agency_key))
    client = client_for(rebooted.docked, tmp_path, device_key)
    try:
        client.reboot()
    finally:
        client.close()
        close(rebooted.docked)
    assert rebooted.reboot_asked.wait(5)
