"""Acceptance tests of issue 9, written once and run on any rig: ``--rig sim`` or a bench file.

Each test drives the camera as an officer, a sensor, a peer or a dock would, through the rig's
drivers only, and checks what QA signs off: what is on the card, what the store holds, what the
camera announced. Figures and clip folders are recorded as properties for the summary and report.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from custody.trigger import EventType
from device.events import State
from dock.bay_worker import Outcome
from tests.device.trigger_helpers import HOLSTER, PEER_CAMERA, THIS_CAMERA
from tests.hil.air import TriggerSource
from tests.hil.bench import DEVICE_ID, Bench
from tests.hil.camera_dut import CameraUnderTest
from tests.hil.dock_station import DockedCamera, DockStation
from tests.hil.drivers import Power
from tests.hil.rig_file import Rig

SECOND = 1_000_000_000
WARM_UP_S = 2.0  # fills the 1 s pre-event ring
LOW_MARGIN_BYTES = 60_000  # the warning comes after about this much footage

Record = Callable[[str, object], None]  # the record_property fixture


def record_clip(camera: CameraUnderTest, seconds: float = 2.0) -> str:
    """The officer double-presses, records ``seconds``, and holds to stop: the sealed clip id."""
    camera.run(WARM_UP_S)
    camera.double_press()
    camera.run_until(lambda: camera.state is State.RECORDING, "recording after a double press")
    camera.run(seconds)
    camera.hold_record()
    camera.run_until(lambda: camera.state is State.BUFFERING, "buffering after the stop hold")
    return camera.firmware.sealed[-1]


def recording(camera: CameraUnderTest) -> bool:
    return camera.firmware.recorder is not None


@pytest.mark.needs("camera", "buttons", "storage")
def test_double_press_records_a_verified_clip_that_starts_with_pre_event_footage(
    camera: CameraUnderTest, record_property: Record
) -> None:
    clip_id = record_clip(camera)
    record_property("clip", str(camera.clip_folder(clip_id)))
    report = camera.verify(clip_id)
    assert report.ok, report.first_failure
    info = camera.manifest(clip_id).header.info
    assert info.triggers[0]["kind"] == "button"
    assert info.pre_event_ns >= camera.firmware.config.pre_event_s * SECOND
    record_property("pre_event_s", f"{info.pre_event_ns / SECOND:.2f}")


@pytest.mark.needs("camera", "trigger_source")
def test_holster_trigger_starts_recording_within_the_target_latency(
    camera: CameraUnderTest, trigger_source: TriggerSource, rig: Rig, record_property: Record
) -> None:
    camera.run(WARM_UP_S)
    sent = trigger_source.send(HOLSTER, EventType.HOLSTER)
    camera.run_until(lambda: recording(camera), "recording after the holster draw")
    latency_ms = (time.perf_counter() - sent) * 1000
    trigger_source.stop()
    record_property("trigger_latency_ms", f"{latency_ms:.1f}")
    recorder = camera.firmware.recorder
    assert recorder is not None
    record_property("clip", str(camera.clip_folder(recorder.clip_id)))
    assert recorder.writer.header.info.triggers[0]["kind"] == "holster"
    assert recorder.pre_event_ns >= camera.firmware.config.pre_event_s * SECOND
    assert latency_ms <= rig.file.targets.trigger_latency_ms


@pytest.mark.needs("camera", "peer_radio")
def test_a_peer_cameras_beacon_starts_recording_and_the_camera_relays_it(
    camera: CameraUnderTest, trigger_source: TriggerSource
) -> None:
    incident = 0x00ABCD
    camera.run(WARM_UP_S)
    trigger_source.send(PEER_CAMERA, EventType.PEER_RECORDING, incident=incident)
    camera.run_until(lambda: recording(camera), "recording after a peer's beacon")
    recorder = camera.firmware.recorder
    assert recorder is not None
    started_by = recorder.writer.header.info.triggers[0]
    assert (started_by["kind"], started_by["source_id"]) == ("peer", PEER_CAMERA.name)

    def relayed() -> bool:
        return any(
            (b.source_id, b.incident, b.hop) == (THIS_CAMERA.source_id, incident, 1)
            for b in trigger_source.heard_beacons()
        )

    camera.run_until(relayed, "the camera's own beacon for the incident, one hop on")


@pytest.mark.needs("camera", "buttons", "power")
def test_power_cut_while_recording_loses_at_most_one_segment(
    bench: Bench, camera: CameraUnderTest, power: Power, record_property: Record
) -> None:
    camera.run(WARM_UP_S)
    camera.double_press()
    camera.run_until(lambda: recording(camera), "recording after a double press")
    camera.run(3.0)
    recorder = camera.firmware.recorder
    assert recorder is not None
    clip_id, written = recorder.clip_id, recorder.writer.segment_count
    started_ns = recorder.writer.header.info.start_monotonic_ns  # the first pre-event frame
    recorded_s = (camera.ports.clock.monotonic_ns() - started_ns) / SECOND
    power.off()
    camera.lose_power()
    power.on()
    rebooted = bench.boot_camera(bench.device_config())
    recovered = {clip.clip_id: clip for clip in rebooted.boot_report.recovered}
    assert clip_id in recovered, "the clip cut short is recovered at boot"
    record_property("clip", str(rebooted.clip_folder(clip_id)))
    kept = recovered[clip_id].segment_count
    record_property("segments_kept", f"{kept} of {written} written, {recorded_s:.1f} s recorded")
    assert kept >= written, "every segment written before the cut survives"
    assert kept >= int(recorded_s) - 1, "at most the segment being filled is lost"
    seal = rebooted.manifest(clip_id).seal
    assert seal is not None and seal.recovered
    report = rebooted.verify(clip_id)
    assert report.ok, report.first_failure


@pytest.mark.needs("camera", "buttons", "dock")
def test_dock_offload_verifies_stores_and_then_erases_the_clip(
    bench: Bench, camera: CameraUnderTest, dock: DockStation, record_property: Record
) -> None:
    clip_id = record_clip(camera)
    camera.dock()
    link = bench.link_url(camera)
    record_property("link", link)
    docked = DockedCamera(bench.serial, DEVICE_ID, camera.keys.device.public_key(), link)
    started = time.perf_counter()
    report = dock.offload(docked, bench.usb_bus())
    record_property("offload_s", f"{time.perf_counter() - started:.2f}")
    assert (report.device_id, report.outcome, report.error) == (DEVICE_ID, Outcome.DONE, None)
    assert dock.stored_clip_ids() == [clip_id]
    assert camera.clips_on_card() == []
    erased = camera.audit_events("clip.erased")
    assert [record["data"]["clip_id"] for record in erased] == [clip_id]


@pytest.mark.needs("camera", "trigger_source")
def test_a_forged_trigger_is_ignored_and_counted(
    camera: CameraUnderTest, trigger_source: TriggerSource
) -> None:
    camera.run(WARM_UP_S)
    trigger_source.send(HOLSTER, EventType.HOLSTER, forged=True)
    link = camera.link
    assert link is not None
    camera.run_until(lambda: link.engine.rejected["bad_mac"] >= 3, "the forgery heard three times")
    camera.run(1.0)
    assert camera.state is State.BUFFERING
    assert camera.clips_on_card() == []
    assert link.engine.accepted == 0


@pytest.mark.needs("camera", "buttons", "storage")
def test_storage_running_low_while_recording_warns_the_officer(bench: Bench) -> None:
    low = bench.storage.free_bytes() - LOW_MARGIN_BYTES
    camera = bench.boot_camera(bench.device_config(storage_low_bytes=low))
    camera.run(WARM_UP_S)
    assert "storage_low" not in camera.firmware.feedback.shown
    camera.double_press()
    camera.run_until(lambda: "storage_low" in camera.firmware.feedback.shown,
                     "the storage-low warning")  # fmt: skip
    assert camera.state is State.RECORDING, "a warning, not a stop"
