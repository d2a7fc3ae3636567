"""Which firmware runs and when a slot on trial becomes the active one (device/updates.py)."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.events import DockInput, State
from device.updates import SECOND, BootChoice, firmware_healthy
from tests.device.docked_update_rig import (
    Rebooted,
    close,
    reboot_in_dock,
    release_key_provisioned,
)
from tests.device.offload_rig import DockedCamera
from tests.device.slot_helpers import make_bundle

HEALTHY_AFTER_S = 1.0


@pytest.fixture
def on_trial(docked: DockedCamera, tmp_path: Path) -> Iterator[Rebooted]:
    """A docked camera rebooted into a newly installed slot a, on its one trial boot."""
    release: Ed25519PrivateKey = release_key_provisioned(docked)
    bundle = make_bundle(tmp_path, release, version="1.2.0")
    assert docked.request("PUT", "/firmware", data=bundle.read_bytes()).status_code == 200
    rebooted = reboot_in_dock(docked, healthy_after_s=HEALTHY_AFTER_S)
    yield rebooted
    close(rebooted.docked)


def run_checking_health(on_trial: Rebooted, seconds: float) -> int:
    """Frames for ``seconds`` of camera time, health checked after each; promotions seen."""
    cam, promoted = on_trial.docked.camera, 0
    for _ in range(round(seconds * 10)):
        cam.firmware.step()
        promoted += on_trial.slots.check_health(cam.now(), firmware_healthy(cam.firmware))
    return promoted


def activations(docked: DockedCamera) -> list[dict[str, object]]:
    records = [json.loads(line) for line in docked.audit_bytes().splitlines()]
    return [r["data"] for r in records if r["event"] == "firmware.activated"]


def test_a_slot_on_trial_stays_on_trial_until_it_ran_healthy_after_s(on_trial: Rebooted) -> None:
    assert run_checking_health(on_trial, HEALTHY_AFTER_S - 0.2) == 0
    assert on_trial.slots.status()["firmware_state"] == "trial"
    assert activations(on_trial.docked) == []


def test_a_healthy_slot_on_trial_becomes_the_active_slot_once(on_trial: Rebooted) -> None:
    assert run_checking_health(on_trial, 3 * HEALTHY_AFTER_S) == 1
    assert on_trial.slots.status() == {
        "firmware": "1.2.0", "target": "sim", "firmware_slot": "a", "firmware_state": "healthy",
    }  # fmt: skip
    assert activations(on_trial.docked) == [{"slot": "a", "version": "1.2.0"}]
    assert on_trial.docked.get("/status").json()["firmware_state"] == "healthy"


def test_a_break_in_health_starts_the_count_again(on_trial: Rebooted) -> None:
    slots, start = on_trial.slots, on_trial.docked.camera.now()

    def at(seconds: float, healthy: bool) -> bool:
        return slots.check_health(start + round(seconds * SECOND), healthy)

    assert [at(0, True), at(0.9, True), at(0.95, False), at(1.0, True), at(1.9, True)] == [
        False, False, False, False, False,
    ]  # fmt: skip
    assert at(2.0, True)
    assert not at(5.0, True)  # promoted once


def test_a_faulted_camera_is_not_healthy(on_trial: Rebooted) -> None:
    cam = on_trial.docked.camera
    cam.submit(DockInput(docked=False, at_ns=cam.now()))  # in the dock the card is not watched
    cam.run(0.5)
    assert firmware_healthy(cam.firmware)
    with cam.storage.open_write("filler.bin") as f:  # below the reserve: the camera faults
        f.write(bytes(cam.storage.free_bytes() - 100))
    cam.run(0.2)
    assert cam.firmware.controller.state is State.FAULT
    assert not firmware_healthy(cam.firmware)


def test_a_camera_whose_audit_log_cannot_write_is_not_healthy(on_trial: Rebooted) -> None:
    docked = on_trial.docked
    docked.camera.run(0.5)
    docked.storage.fail_fsync(errno.EIO)
    assert docked.request("POST", "/time", json={"dock_wall_ns": 1}).status_code == 500
    assert not firmware_healthy(docked.camera.firmware)


def test_the_boot_choice_says_what_runs() -> None:
    assert BootChoice("0.1.0", None, False).describe() == "factory firmware 0.1.0"
    trial = BootChoice("1.2.0", "b", True).describe()
    assert trial == "firmware 1.2.0 from slot b (trial)"
    assert BootChoice("1.2.0", "b", False).describe() == "firmware 1.2.0 from slot b"
