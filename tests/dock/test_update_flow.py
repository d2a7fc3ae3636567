"""A running dock offers what is staged to each camera after its offload, reboots it, confirms.

The dock is the real DockAgent (bays, workers, ledger, signed audit log) on the sim USB bus, with
a live evidence store; the camera is the offload API's fake at the network edge
(tests/dock/camera_server.py), which verifies bundles and profiles with custody like a camera,
and whose reboot ends its sessions, answers 503 for a moment, then reports what the test chose.
"""

from __future__ import annotations

import socket
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from dock.bay_worker import Outcome
from dock.config import DockConfig
from hw.sim.usb import SimUsbBus
from tests.dock import update_rig
from tests.dock.camera_server import TestCamera
from tests.dock.conftest import Store, seal, serving, store_app
from tests.dock.update_helpers import signed_profile
from tests.dock.update_rig import NEW, RunningDock, dock_camera

release_key = update_rig.release_key
cfg = update_rig.cfg
bus = update_rig.bus
running = update_rig.running
bundle = update_rig.bundle


def test_a_camera_gets_the_staged_firmware_after_its_offload_and_the_dock_confirms_it(
    running: RunningDock,
    camera: TestCamera,
    bundle: Path,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    store: Store,
    store_sock: socket.socket,
) -> None:
    clip = seal(device_key, agency_key)
    camera.add(clip)
    running.stage_firmware(bundle)

    with serving(store_app(store), store_sock):
        report = dock_camera(running, camera)

    assert report.outcome is Outcome.DONE
    assert camera.erase_requests == [clip.clip_id]
    assert camera.firmware_puts == [bundle.stat().st_size]
    assert (camera.runs["firmware"], camera.reboots) == (NEW, 1)
    bay = running.bay()
    assert (bay["firmware"], bay["firmware_state"], bay["target"]) == (NEW, "healthy", "sim")
    assert bay["update"] == {"kind": "firmware", "version": NEW, "step": "done",
                             "bytes_done": bundle.stat().st_size,
                             "bytes_total": bundle.stat().st_size, "error": None}  # fmt: skip
    offered, confirmed = running.events("firmware.offered", "firmware.confirmed")
    assert (offered["data"]["previous_firmware"], confirmed["data"]["firmware_version"]) == (
        "0.1.0", NEW,
    )  # fmt: skip


def test_nothing_is_offered_while_a_clip_of_the_camera_is_unfinished(
    running: RunningDock,
    camera: TestCamera,
    bundle: Path,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    store: Store,
    store_sock: socket.socket,
) -> None:
    camera.add(seal(device_key, agency_key))
    running.stage_firmware(bundle)
    running.bus.plug(camera.serial, port_path=(1,))
    running.wait_bay(lambda b: b["last_error"] is not None, "the store's outage shows")

    assert camera.firmware_puts == []  # the store is down: the clip waits, and so does the update

    with serving(store_app(store), store_sock):
        assert running.report().outcome is Outcome.DONE
    assert (camera.clips, camera.runs["firmware"]) == ({}, NEW)


def test_a_rolled_back_update_fails_with_the_reason_and_is_not_offered_again(
    running: RunningDock, camera: TestCamera, bundle: Path
) -> None:
    camera.after_reboot = [{"firmware": "0.1.0", "firmware_slot": None}]
    running.stage_firmware(bundle)

    assert dock_camera(running, camera).outcome is Outcome.DONE
    update = running.bay()["update"]
    assert (update["step"], update["error"].split(":")[0]) == ("failed", "rolled back")
    (failed,) = running.events("firmware.failed")
    assert failed["data"]["running"] == "0.1.0"

    assert running.agent.wake(camera.serial) == ["1-1"]  # a new worker looks at the camera again
    assert running.report().outcome is Outcome.DONE
    assert (len(camera.firmware_puts), camera.reboots) == (1, 1)


def test_a_camera_refusing_the_bundle_fails_the_update_with_its_reason_and_is_not_rebooted(
    running: RunningDock, camera: TestCamera, bundle: Path
) -> None:
    camera.release_keys = []  # the camera does not trust the dock's release key
    running.stage_firmware(bundle)

    assert dock_camera(running, camera).outcome is Outcome.DONE

    update = running.bay()["update"]
    assert update["step"] == "failed"
    assert "422" in update["error"] and "signer" in update["error"]
    (failed,) = running.events("firmware.failed")
    assert failed["data"]["reason"] == update["error"]
    assert (camera.reboots, camera.runs["firmware"]) == (0, "0.1.0")


def test_a_camera_on_trial_after_the_reboot_is_followed_until_it_reports_healthy(
    running: RunningDock, camera: TestCamera, bundle: Path
) -> None:
    trial = {"firmware": NEW, "firmware_state": "trial"}
    camera.after_reboot = [trial, trial, trial, {"firmware_state": "healthy"}]
    running.stage_firmware(bundle)

    assert dock_camera(running, camera).outcome is Outcome.DONE

    assert running.bay()["update"]["step"] == "done"
    assert [e["event"] for e in running.events("firmware.confirmed", "firmware.failed")] == [
        "firmware.confirmed"
    ]


def test_the_bay_shows_updating_while_the_camera_is_followed_then_done(
    running: RunningDock, camera: TestCamera, bundle: Path
) -> None:
    trial = {"firmware": NEW, "firmware_state": "trial"}
    camera.after_reboot = [trial] * 40 + [{"firmware_state": "healthy"}]
    running.stage_firmware(bundle)
    running.bus.plug(camera.serial, port_path=(1,))

    seen = running.wait_bay(lambda b: b["state"] == "updating", "the bay shows updating")

    assert seen["update"]["step"] in ("sending", "installing", "rebooting", "confirming")
    assert seen["clips_pending"] == 0  # footage first
    assert running.report().outcome is Outcome.DONE
    assert running.bay()["state"] == "done"


def test_a_camera_still_on_trial_after_update_confirm_s_fails_the_update(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, bus: SimUsbBus, camera: TestCamera, bundle: Path
) -> None:
    camera.after_reboot = [{"firmware": NEW, "firmware_state": "trial"}]
    impatient = RunningDock(cfg.model_copy(update={"update_confirm_s": 0.3}), dock_key, bus)
    try:
        impatient.stage_firmware(bundle)
        assert dock_camera(impatient, camera).outcome is Outcome.DONE
        update = impatient.bay()["update"]
    finally:
        impatient.stop()
    assert update["step"] == "failed" and "still on trial" in update["error"]


def test_a_staged_profile_is_pushed_and_confirmed_applied_after_the_reboot(
    running: RunningDock, camera: TestCamera, release_key: Ed25519PrivateKey
) -> None:
    staged = running.agent.updates.stage_profile(signed_profile(release_key, 2).to_bytes())

    assert dock_camera(running, camera).outcome is Outcome.DONE

    assert camera.runs["profile_id"] == staged.profile.profile_id
    bay = running.bay()
    assert (bay["profile_id"], bay["profile_version"]) == (staged.profile.profile_id, 2)
    assert (bay["update"]["kind"], bay["update"]["step"]) == ("profile", "done")
    (pushed,) = running.events("profile.pushed", "profile.failed")
    assert (pushed["event"], pushed["data"]["profile_version"]) == ("profile.pushed", 2)


def test_a_camera_rebooting_out_of_its_bay_is_confirmed_by_its_next_docking(
    running: RunningDock, camera: TestCamera, bundle: Path
) -> None:
    running.stage_firmware(bundle)
    camera.on_reboot = lambda: running.bus.unplug(camera.serial)  # as its USB device leaves

    assert dock_camera(running, camera).outcome is Outcome.LEFT
    assert running.bay()["update"]["step"] == "rebooting"

    running.bus.plug(camera.serial, port_path=(1,))
    assert running.report().outcome is Outcome.DONE
    assert running.bay()["update"]["step"] == "done"
    assert (len(camera.firmware_puts), camera.reboots) == (1, 1)
    assert len(running.events("firmware.confirmed")) == 1


def test_a_bundle_lost_to_a_camera_fault_is_offered_again_at_the_next_pass(
    running: RunningDock, camera: TestCamera, bundle: Path
) -> None:
    camera.fail_next_firmware = True
    running.stage_firmware(bundle)

    assert dock_camera(running, camera).outcome is Outcome.DONE

    assert camera.firmware_puts == [bundle.stat().st_size] * 2
    assert (camera.runs["firmware"], camera.reboots) == (NEW, 1)
    events = running.events("firmware.offered", "firmware.confirmed", "firmware.failed")
    assert [e["event"] for e in events] == [
        "firmware.offered", "firmware.offered", "firmware.confirmed",
    ]  # fmt: skip


def test_firmware_staged_after_a_cameras_offload_is_done_is_offered_to_it_at_once(
    running: RunningDock, camera: TestCamera, bundle: Path
) -> None:
    assert dock_camera(running, camera).outcome is Outcome.DONE
    assert running.bay()["state"] == "done"

    running.stage_firmware(bundle)

    assert running.report().outcome is Outcome.DONE
    assert (camera.runs["firmware"], running.bay()["update"]["step"]) == (NEW, "done")


def test_a_bundle_larger_than_the_cameras_free_space_fails_without_being_sent(
    running: RunningDock, camera: TestCamera, bundle: Path
) -> None:
    camera.free_bytes = bundle.stat().st_size - 1
    running.stage_firmware(bundle)

    assert dock_camera(running, camera).outcome is Outcome.DONE

    assert (camera.firmware_puts, camera.reboots) == ([], 0)
    update = running.bay()["update"]
    assert update["step"] == "failed" and "bytes free" in update["error"]
    (failed,) = running.events("firmware.failed")
    assert failed["data"]["reason"] == update["error"]
