"""A dock pushes a signed configuration profile: verified whole, kept, applied at the next boot."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from rich.console import Console

from bwc.commands.device_rig import with_provisioned
from bwc.config import Config
from custody.keys import key_id, public_pem
from custody.profile import Profile, sign_profile
from device.events import DockInput
from device.profile import PROFILE_FILE
from hw.config import HwConfig
from hw.ports.storage import StorageConfig
from tests.device.firmware_rig import Camera, build_camera
from tests.device.offload_rig import DockedCamera

CREATED_NS = 1_700_000_050_000_000_000
SETTINGS: dict[str, Any] = {
    "pre_event_ms": 2500,
    "pre_event_audio": True,
    "video_width": 1280,
    "video_height": 720,
    "video_fps": 25,
    "trigger_kinds": ["holster", "siren"],
    "trigger_registry_sha256": "",
    "feedback": {"marker": {"haptic_ms": [80, 40, 80], "buzzer_ms": []}},
    "storage_low_bytes": 8 * 1024**2,
    "storage_reserve_bytes": 8192,
    "officer_id": "",
}


def signed(key: Ed25519PrivateKey, version: int, **settings: Any) -> Profile:
    draft = {"name": "patrol", "profile_version": version, "settings": {**SETTINGS, **settings}}
    return sign_profile(json.dumps(draft).encode(), key, created_at_ns=CREATED_NS)


def signed_unchecked(key: Ed25519PrivateKey, version: int, settings: dict[str, Any]) -> Profile:
    """Signed by the release key without validating the settings, as a careless tool might."""
    unsigned = Profile("patrol", version, CREATED_NS, settings, release_key_id=key_id(key))
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.signed_message()))


def audit_events(docked: DockedCamera, event: str) -> list[dict[str, Any]]:
    records = map(json.loads, docked.audit_bytes().splitlines())
    return [r["data"] for r in records if r["event"] == event]


def active_file(docked: DockedCamera) -> bytes | None:
    path = docked.storage.root / PROFILE_FILE
    return path.read_bytes() if path.exists() else None


@pytest.fixture
def release_key(docked: DockedCamera) -> Ed25519PrivateKey:
    """The agency release key, provisioned to the camera the way a dock does it."""
    key = Ed25519PrivateKey.generate()
    answer = docked.request("PUT", "/keys/release-agency", data=public_pem(key))
    assert answer.json() == {"name": "release-agency", "key_id": key_id(key)}
    return key


@pytest.fixture
def rebooted(docked: DockedCamera, release_key: Ed25519PrivateKey) -> Iterator[Camera]:
    """The docked camera after a profile push: powered off, then booted by the composition root."""
    profile = signed(release_key, 3)
    assert docked.request("PUT", "/profile", data=profile.to_bytes()).status_code == 200
    docked.server.close()
    docked.camera.firmware.close()
    docked.camera.io.close()
    card = docked.storage.root
    hw = HwConfig(storage=StorageConfig(root=card))
    config = Config(hw=hw, device=docked.camera.firmware.config)
    merged = with_provisioned(config, docked.storage, Console(file=io.StringIO()))
    camera = build_camera(card, docked.camera.device_key, docked.camera.agency_key, merged.device)
    camera.firmware.boot()
    yield camera
    camera.firmware.close()
    camera.io.close()


def test_a_signed_profile_becomes_the_active_one_and_is_audited(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    profile = signed(release_key, 1)
    answer = docked.request("PUT", "/profile", data=profile.to_bytes())
    assert answer.status_code == 200
    assert answer.json() == {
        "profile_id": profile.profile_id, "profile_version": 1, "applies": "next boot",
    }  # fmt: skip
    assert active_file(docked) == profile.to_bytes()
    assert audit_events(docked, "profile.applied") == [
        {"profile_id": profile.profile_id, "version": 1, "name": "patrol",
         "previous_profile_id": None},
    ]  # fmt: skip


def test_a_newer_profile_replaces_the_active_one(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    first, second = signed(release_key, 1), signed(release_key, 2, video_fps=15)
    assert docked.request("PUT", "/profile", data=first.to_bytes()).ok
    assert docked.request("PUT", "/profile", data=second.to_bytes()).ok
    assert active_file(docked) == second.to_bytes()
    assert audit_events(docked, "profile.applied")[-1]["previous_profile_id"] == first.profile_id


def test_clips_before_the_next_boot_keep_the_settings_they_booted_with(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    assert docked.request("PUT", "/profile", data=signed(release_key, 1).to_bytes()).ok
    docked.undock()
    docked.camera.tap(2)
    docked.camera.run(2)
    docked.dock()
    clip_id = docked.camera.firmware.sealed[-1]
    assert docked.camera.manifest(clip_id).header.info.profile_id == ""


def test_after_a_reboot_the_profile_settings_apply_and_each_clip_records_the_profile(
    rebooted: Camera, release_key: Ed25519PrivateKey
) -> None:
    profile = signed(release_key, 3)
    config = rebooted.firmware.config
    assert (config.pre_event_s, config.pre_event_audio) == (2.5, True)
    assert (config.storage_low_bytes, config.storage_reserve_bytes) == (8 * 1024**2, 8192)
    assert config.profile_id == profile.profile_id
    rebooted.run(3)
    rebooted.tap(2)
    rebooted.run(2)
    rebooted.submit(DockInput(docked=True, at_ns=rebooted.now()))  # docking seals the clip
    rebooted.firmware.step()
    clip_id = rebooted.firmware.sealed[-1]
    assert rebooted.manifest(clip_id).header.info.profile_id == profile.profile_id


def test_the_boot_overlays_resolution_and_frame_rate_on_the_camera_table(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    assert docked.request("PUT", "/profile", data=signed(release_key, 1).to_bytes()).ok
    config = Config(hw=HwConfig(storage=StorageConfig(root=docked.storage.root)))
    config = config.model_copy(update={"device": docked.camera.firmware.config})
    merged = with_provisioned(config, docked.storage, Console(file=io.StringIO()))
    camera = merged.hw.camera
    assert (camera.width, camera.height, camera.fps) == (1280, 720, 25)


def test_a_profile_whose_release_key_is_gone_is_ignored_at_boot(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    assert docked.request("PUT", "/profile", data=signed(release_key, 1).to_bytes()).ok
    (docked.keys_dir / "release-agency.pub.pem").unlink()
    config = Config(device=docked.camera.firmware.config)
    merged = with_provisioned(config, docked.storage, Console(file=io.StringIO()))
    assert merged.device == config.device
    assert merged.hw.camera == config.hw.camera


REFUSALS: dict[str, tuple[Any, int, str]] = {
    # name: (how to make the body from the release key, status, what the error names)
    "unsigned": (
        lambda k: dataclasses.replace(signed(k, 5), release_key_id="", signature=b"").to_bytes(),
        422, "signer",
    ),
    "wrong key": (lambda k: signed(Ed25519PrivateKey.generate(), 5).to_bytes(), 422, "signer"),
    "tampered": (
        lambda k: signed(k, 5).to_bytes().replace(b'"video_fps":25', b'"video_fps":30'),
        422, "signature",
    ),
    "unknown setting": (
        lambda k: signed_unchecked(k, 5, {**SETTINGS, "wifi_ssid": "x"}).to_bytes(),
        422, "wifi_ssid",
    ),
    "out of range": (
        lambda k: signed_unchecked(k, 5, {**SETTINGS, "video_fps": 240}).to_bytes(),
        422, "video_fps = 240 is out of range",
    ),
    "truncated": (lambda k: signed(k, 5).to_bytes()[:-40], 422, "format"),
    "older version": (lambda k: signed(k, 1).to_bytes(), 409, "not newer"),
    "same version": (lambda k: signed(k, 2, video_fps=10).to_bytes(), 409, "not newer"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_a_bad_profile_is_refused_whole_audited_and_changes_nothing(
    docked: DockedCamera, release_key: Ed25519PrivateKey, case: str
) -> None:
    make, status, named = REFUSALS[case]
    active = signed(release_key, 2)
    assert docked.request("PUT", "/profile", data=active.to_bytes()).ok
    answer = docked.request("PUT", "/profile", data=make(release_key))
    assert answer.status_code == status
    error = answer.json()["error"]
    assert named in error
    assert "nothing was changed" in error
    assert active_file(docked) == active.to_bytes()
    assert len(audit_events(docked, "profile.applied")) == 1
    [refused] = audit_events(docked, "profile.refused")
    assert named in refused["reason"]


def test_a_release_key_must_be_ed25519(docked: DockedCamera) -> None:
    answer = docked.request(
        "PUT", "/keys/release-agency", data=public_pem(X25519PrivateKey.generate())
    )
    assert answer.status_code == 422
    assert not (docked.keys_dir / "release-agency.pub.pem").exists()
