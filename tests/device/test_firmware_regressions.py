"""Firmware bugs the whole-camera state machine test found, each pinned by the shortest story."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device.config import DeviceConfig
from device.events import DockInput, State, StorageInput, TriggerInput
from tests.device.firmware_rig import Camera, build_camera

RESERVE = 64 * 1024

MakeCamera = Callable[..., Camera]


@pytest.fixture
def make_camera(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> Iterator[MakeCamera]:
    """Boots a camera on a fresh card, with the post-event time given."""
    cameras: list[Camera] = []

    def make(post_event_s: float = 0) -> Camera:
        config = DeviceConfig(
            device_id="cam-0042", serial="BWC1-000042", officer_id="officer-1187",
            pre_event_s=2, post_event_s=post_event_s,
            storage_reserve_bytes=RESERVE, storage_low_bytes=256 * 1024,
        )  # fmt: skip
        cam = build_camera(tmp_path / f"card-{len(cameras)}", device_key, agency_key, config)
        cameras.append(cam)
        cam.firmware.boot()
        return cam

    yield make
    for cam in cameras:
        cam.firmware.close()
        cam.io.close()


@pytest.fixture
def camera(make_camera: MakeCamera) -> Camera:
    return make_camera()


def state_changes(camera: Camera) -> list[str]:
    """``from>to`` of every state change in the device's audit log, oldest first."""
    path = camera.storage.root / "audit" / "device.jsonl"
    records = [json.loads(line) for line in path.read_bytes().splitlines()]
    return [f"{r['data']['from']}>{r['data']['to']}" for r in records if r["event"] == "state"]


def shown_state(camera: Camera) -> str:
    return [s for s in camera.firmware.feedback.shown if s.startswith("state:")][-1]


def open_clip(camera: Camera) -> str | None:
    recorder = camera.firmware.recorder
    return recorder.clip_id if recorder is not None else None


def record_then_stop(camera: Camera) -> str:
    """Record a clip and stop it with the hold; returns the clip id (a tail may still run)."""
    camera.run(3)
    camera.tap(2)
    camera.run(2)
    clip_id = open_clip(camera)
    assert clip_id is not None
    camera.hold_record()
    return clip_id


def test_a_start_whose_clip_cannot_be_created_shows_fault_not_recording(camera: Camera) -> None:
    camera.run(3)
    camera.storage.fail_fsync(errno.EIO, count=1)
    camera.submit(TriggerInput("HOLSTER-7", "holster", camera.now()))
    camera.run(0.1)
    assert camera.firmware.controller.state is State.FAULT
    assert shown_state(camera) == "state:fault"
    assert state_changes(camera)[-2:] == ["buffering>recording", "recording>fault"]


def test_a_failed_audit_write_leaves_the_camera_running(camera: Camera) -> None:
    camera.run(3)
    camera.storage.fail_fsync(errno.EIO, count=1)
    for _ in range(2):  # FUNCTION double press: mute, which the audit log records
        camera.io.press(camera.io.function_button)
        camera.run(0.1)
        camera.io.release(camera.io.function_button)
        camera.run(0.1)
    camera.run(1)
    assert camera.firmware.running
    assert camera.firmware.controller.muted
    assert camera.firmware.controller.state is State.BUFFERING


def test_closing_survives_a_failed_final_audit_checkpoint(camera: Camera) -> None:
    camera.run(1)
    camera.storage.fail_fsync(errno.EIO, count=1)
    camera.firmware.close()
    assert camera.firmware.stopped.is_set()


def test_docking_during_the_post_event_tail_seals_the_clip_at_once(
    make_camera: MakeCamera,
) -> None:
    camera = make_camera(post_event_s=4)
    clip_id = record_then_stop(camera)
    assert open_clip(camera) == clip_id  # the post-event tail is still recording
    camera.submit(DockInput(docked=True, at_ns=camera.now()))
    camera.run(0.1)
    assert camera.firmware.controller.state is State.DOCKED
    assert open_clip(camera) is None
    assert camera.firmware.sealed == [clip_id]
    assert camera.verify(clip_id).ok


def test_a_storage_fault_during_the_post_event_tail_seals_the_clip_at_once(
    make_camera: MakeCamera,
) -> None:
    camera = make_camera(post_event_s=4)
    clip_id = record_then_stop(camera)
    assert open_clip(camera) == clip_id
    camera.submit(StorageInput("full", 0, camera.now()))
    camera.run(0.1)
    assert camera.firmware.controller.state is State.FAULT
    assert open_clip(camera) is None
    assert camera.firmware.sealed == [clip_id]


def test_a_clip_sealed_by_a_full_card_while_writing_its_pre_event_is_reported(
    camera: Camera,
) -> None:
    camera.run(3)
    # leave room for a clip's header but not for its first (pre-event) segment
    with camera.storage.open_write("filler.bin") as filler:
        filler.write(bytes(camera.storage.free_bytes() - RESERVE - 8 * 1024))
    camera.run(0.1)
    camera.submit(TriggerInput("DOOR-2", "door", camera.now()))
    camera.run(0.1)
    assert camera.firmware.controller.state is State.FAULT
    assert camera.firmware.controller.fault == "storage"
    [clip_id] = camera.clip_ids()
    assert camera.firmware.sealed == [clip_id]
    assert camera.verify(clip_id).ok


def test_a_seal_whose_fsync_fails_on_a_full_card_is_rewritten_and_reported(
    camera: Camera,
) -> None:
    camera.run(3)
    camera.tap(2)
    camera.run(1.5)
    clip_id = open_clip(camera)
    assert clip_id is not None
    # the next segment will not fit, and the seal written instead fails its fsync once
    with camera.storage.open_write("filler.bin") as filler:
        filler.write(bytes(camera.storage.free_bytes() - RESERVE - 8 * 1024))
    camera.storage.fail_fsync(errno.EIO, count=1)
    camera.run(1)
    assert camera.firmware.controller.fault == "storage"
    assert camera.firmware.sealed == [clip_id]
    assert camera.manifest(clip_id).seal is not None
    assert camera.verify(clip_id).ok
