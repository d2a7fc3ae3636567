"""The whole camera on sim hardware: gestures, triggers and faults end in clips that verify."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from device.config import DeviceConfig
from device.events import BatteryInput, DockInput, State, TriggerInput
from tests.device.firmware_rig import FPS, Camera, build_camera

SECOND = 10**9


@pytest.fixture
def config() -> DeviceConfig:
    return DeviceConfig(
        device_id="cam-0042", serial="BWC1-000042", officer_id="officer-1187",
        pre_event_s=5, storage_reserve_bytes=64 * 1024, storage_low_bytes=1024**2,
    )  # fmt: skip


@pytest.fixture
def camera(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey,
    config: DeviceConfig,
) -> Iterator[Camera]:  # fmt: skip
    cam = build_camera(tmp_path / "card", device_key, agency_key, config)
    cam.firmware.boot()
    yield cam
    cam.firmware.close()
    cam.io.close()


def test_boots_into_buffering(camera: Camera) -> None:
    camera.run(1)
    assert camera.firmware.controller.state is State.BUFFERING


def test_double_press_records_a_clip_with_the_full_pre_event(camera: Camera) -> None:
    camera.run(12)
    camera.tap(2)
    pressed_at = camera.now()
    camera.run(4)
    camera.hold_record()
    camera.run(1)
    [clip_id] = camera.firmware.sealed
    assert camera.verify(clip_id).ok
    manifest = camera.manifest(clip_id)
    assert manifest.header.info.pre_event_ns >= 5 * SECOND
    assert manifest.header.info.start_monotonic_ns <= pressed_at - 5 * SECOND
    assert manifest.header.info.triggers[0]["kind"] == "button"


def test_a_clip_exports_to_a_playable_mp4_starting_on_a_key_frame(
    camera: Camera, tmp_path: Path
) -> None:
    camera.run(8)
    camera.tap(2)
    camera.run(3)
    camera.hold_record()
    camera.run(1)
    frames = camera.export(camera.firmware.sealed[0], tmp_path / "clip.mp4")
    assert frames[0].key_frame
    assert len(frames) >= (5 + 3) * FPS
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)


def test_a_trigger_starts_a_clip_with_pre_roll(camera: Camera) -> None:
    camera.run(10)
    camera.submit(TriggerInput("HOLSTER-7", "holster", camera.now()))
    camera.run(3)
    camera.hold_record()
    camera.run(1)
    [clip_id] = camera.firmware.sealed
    header = camera.manifest(clip_id).header
    assert header.info.triggers[0]["kind"] == "holster"
    assert header.info.triggers[0]["source_id"] == "HOLSTER-7"
    assert header.info.pre_event_ns >= 5 * SECOND


def test_a_trigger_never_stops_a_recording(camera: Camera) -> None:
    camera.run(2)
    camera.tap(2)
    camera.run(2)
    camera.submit(TriggerInput("LIGHTBAR-1", "lightbar", camera.now()))
    camera.run(2)
    assert camera.firmware.controller.state is State.RECORDING
    assert camera.firmware.sealed == []


def test_less_footage_than_the_pre_event_gives_everything_since_boot(camera: Camera) -> None:
    camera.run(2)
    camera.tap(2)
    camera.run(2)
    camera.hold_record()
    camera.run(1)
    manifest = camera.manifest(camera.firmware.sealed[0])
    assert manifest.segments[0].pts_start_ns == 0
    assert manifest.header.info.pre_event_ns >= 1 * SECOND


def test_a_single_press_while_recording_adds_a_marker(camera: Camera) -> None:
    camera.run(2)
    camera.tap(2)
    camera.run(2)
    camera.tap(1)
    camera.run(2)
    camera.hold_record()
    camera.run(1)
    events = camera.manifest(camera.firmware.sealed[0]).events
    assert [e.kind for e in events].count("marker") == 1


def test_docking_while_recording_seals_the_clip(camera: Camera) -> None:
    camera.run(2)
    camera.tap(2)
    camera.run(3)
    camera.submit(DockInput(docked=True, at_ns=camera.now()))
    camera.run(1)
    assert camera.firmware.controller.state is State.DOCKED
    [clip_id] = camera.firmware.sealed
    assert camera.verify(clip_id).ok


def test_critical_battery_seals_the_clip_and_powers_off(camera: Camera) -> None:
    camera.run(2)
    camera.tap(2)
    camera.run(3)
    camera.submit(BatteryInput("critical", 2.0, camera.now()))
    camera.run(1)
    assert camera.firmware.controller.state is State.OFF
    assert not camera.firmware.running
    assert camera.verify(camera.firmware.sealed[0]).ok


def test_low_battery_from_the_gauge_warns_the_officer(camera: Camera) -> None:
    camera.battery.set_percent(10)
    camera.run(11)
    assert "battery_low" in camera.firmware.feedback.shown


def test_disk_full_mid_clip_ends_with_a_sealed_clip_and_a_fault(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey,
    config: DeviceConfig,
) -> None:  # fmt: skip
    cam = build_camera(
        tmp_path / "card", device_key, agency_key, config, capacity_bytes=2 * 1024**2
    )
    cam.firmware.boot()
    cam.run(2)
    cam.tap(2)
    for _ in range(600):
        cam.run(1)
        if cam.firmware.controller.state is State.FAULT:
            break
    assert cam.firmware.controller.state is State.FAULT
    assert cam.firmware.controller.fault == "storage"
    [clip_id] = cam.clip_ids()
    assert cam.verify(clip_id).ok
    cam.firmware.close()
    cam.io.close()


def test_a_failed_fsync_ends_with_a_verifiable_clip_and_a_fault(camera: Camera) -> None:
    camera.run(2)
    camera.tap(2)
    camera.run(3)
    camera.storage.fail_fsync(errno.EIO, count=1)
    camera.run(2)
    assert camera.firmware.controller.state is State.FAULT
    assert camera.firmware.controller.fault == "writer"
    [clip_id] = camera.clip_ids()
    assert camera.verify(clip_id).ok


def test_every_transition_is_in_the_signed_audit_log(camera: Camera) -> None:
    camera.run(2)
    camera.tap(2)
    camera.run(2)
    camera.hold_record()
    camera.firmware.close()
    log = (camera.storage.root / "audit" / "device.jsonl").read_text()
    assert '"to":"recording"' in log
    assert '"to":"buffering"' in log


def test_post_event_seconds_keep_recording_after_the_stop(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey,
    config: DeviceConfig,
) -> None:  # fmt: skip
    config = config.model_copy(update={"post_event_s": 4.0})
    cam = build_camera(tmp_path / "card", device_key, agency_key, config)
    cam.firmware.boot()
    cam.run(2)
    cam.tap(2)
    cam.run(2)
    held_at = cam.now()
    cam.hold_record()  # the stop gesture comes 3 s into the hold
    cam.run(2)
    assert cam.firmware.sealed == []  # still recording the tail
    cam.run(3)
    [clip_id] = cam.firmware.sealed
    seal = cam.manifest(clip_id).seal
    assert seal is not None and seal.end_monotonic_ns >= held_at + (3 + 4) * SECOND
    assert cam.firmware.controller.state is State.BUFFERING
    cam.firmware.close()
    cam.io.close()


def test_low_free_space_warns_the_officer(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey,
    config: DeviceConfig,
) -> None:  # fmt: skip
    config = config.model_copy(update={"storage_low_bytes": 3 * 1024**2})
    cam = build_camera(
        tmp_path / "card", device_key, agency_key, config, capacity_bytes=4 * 1024**2
    )
    cam.firmware.boot()
    cam.run(1)
    assert "storage_low" not in cam.firmware.feedback.shown
    cam.tap(2)
    for _ in range(300):
        cam.run(1)
        if "storage_low" in cam.firmware.feedback.shown:
            break
    assert "storage_low" in cam.firmware.feedback.shown
    assert cam.firmware.controller.state is State.RECORDING
    cam.firmware.close()
    cam.io.close()


def audio_packets(camera: Camera, clip_id: str, out: Path) -> int:
    import av

    camera.export(clip_id, out)
    with av.open(str(out)) as container:
        if not container.streams.audio:
            return 0
        return sum(1 for p in container.demux(container.streams.audio[0]) if p.size)


def test_muted_recording_stores_no_audio(camera: Camera, tmp_path: Path) -> None:
    camera.run(2)
    camera.io.press(camera.io.function_button)
    camera.clock.advance(0.05)
    camera.io.release(camera.io.function_button)
    camera.clock.advance(0.1)
    camera.io.press(camera.io.function_button)
    camera.clock.advance(0.05)
    camera.io.release(camera.io.function_button)
    camera.run(1)
    assert camera.firmware.controller.muted
    camera.tap(2)
    camera.run(3)
    camera.hold_record()
    camera.run(1)
    assert audio_packets(camera, camera.firmware.sealed[0], tmp_path / "muted.mp4") == 0


def test_unmuted_recording_stores_audio(camera: Camera, tmp_path: Path) -> None:
    camera.run(2)
    camera.tap(2)
    camera.run(3)
    camera.hold_record()
    camera.run(1)
    assert audio_packets(camera, camera.firmware.sealed[0], tmp_path / "sound.mp4") > 0
