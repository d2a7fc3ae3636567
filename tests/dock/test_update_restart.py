"""A restarted dock remembers what it offered each camera: refusals, rollbacks, reboots.

Each test runs one DockAgent, stops it, and starts another on the same data folder (its ledger
file holds the offers, dock/offer_table.py) and a bus of its own, as a new dock process would
enumerate it, with the same fake camera (tests/dock/camera_server.py) in its bay.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dock.bay_worker import Outcome
from dock.config import DockConfig
from hw.sim.usb import SimUsbBus
from tests.device.slot_helpers import make_bundle
from tests.dock import update_rig
from tests.dock.camera_server import TestCamera
from tests.dock.ui_rig import bus_with
from tests.dock.update_rig import NEW, RunningDock, dock_camera

release_key = update_rig.release_key
cfg = update_rig.cfg
bus = update_rig.bus
bundle = update_rig.bundle
NEWER = "0.3.0"


@pytest.fixture
def bus_after_restart(camera: TestCamera) -> Iterator[SimUsbBus]:
    """The bus the restarted dock enumerates: the camera is in bay 1-1."""
    made = bus_with([camera])
    yield made
    made.close()


@pytest.fixture(params=["refused", "rolled back"])
def failing_camera(request: pytest.FixtureRequest, cfg: DockConfig, camera: TestCamera) -> str:
    """The camera refuses the bundle (it does not trust its signer), or rolls back from it."""
    if request.param == "refused":
        camera.release_keys = []
    else:
        camera.after_reboot = [{"firmware": "0.1.0", "firmware_slot": None}]
    return str(request.param)


def first_run_fails(cfg: DockConfig, dock_key: Ed25519PrivateKey, bus: SimUsbBus,
                    camera: TestCamera, bundle: Path) -> None:  # fmt: skip
    """A dock offers the bundle, sees the update fail, and stops."""
    first = RunningDock(cfg, dock_key, bus)
    try:
        first.stage_firmware(bundle)
        assert dock_camera(first, camera).outcome is Outcome.DONE
        assert first.bay()["update"]["step"] == "failed"
    finally:
        first.stop()


def test_a_refused_or_rolled_back_bundle_is_not_offered_again_after_a_restart(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, bus: SimUsbBus, camera: TestCamera,
    bus_after_restart: SimUsbBus, bundle: Path, failing_camera: str,
) -> None:  # fmt: skip
    first_run_fails(cfg, dock_key, bus, camera, bundle)
    reboots = camera.reboots

    second = RunningDock(cfg, dock_key, bus_after_restart)
    try:
        assert second.agent.updates.firmware_for("sim") is not None  # still staged
        assert second.report().outcome is Outcome.DONE
        update = second.bay()["update"]
    finally:
        second.stop()

    assert (len(camera.firmware_puts), camera.reboots) == (1, reboots)
    assert (update, camera.runs["firmware"]) == (None, "0.1.0")


def test_a_newer_bundle_staged_after_a_refusal_is_offered_after_a_restart(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, bus: SimUsbBus, camera: TestCamera,
    bus_after_restart: SimUsbBus, bundle: Path, release_key: Ed25519PrivateKey, tmp_path: Path,
) -> None:  # fmt: skip
    camera.release_keys = []
    first_run_fails(cfg, dock_key, bus, camera, bundle)
    camera.release_keys = [release_key.public_key()]  # its keys were fixed meanwhile
    newer = make_bundle(tmp_path / "newer", release_key, version=NEWER, size=40_000)

    second = RunningDock(cfg, dock_key, bus_after_restart)
    try:
        assert second.report().outcome is Outcome.DONE
        assert len(camera.firmware_puts) == 1  # the refused one is not sent again
        second.stage_firmware(newer)
        assert second.report().outcome is Outcome.DONE
        update = second.bay()["update"]
    finally:
        second.stop()

    assert camera.firmware_puts == [bundle.stat().st_size, newer.stat().st_size]
    assert (camera.runs["firmware"], update["version"], update["step"]) == (NEWER, NEWER, "done")


def test_a_reboot_under_way_when_the_dock_stopped_is_confirmed_by_the_next_dock_unsent(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, bus: SimUsbBus, camera: TestCamera,
    bus_after_restart: SimUsbBus, bundle: Path,
) -> None:  # fmt: skip
    camera.on_reboot = lambda: bus.unplug(camera.serial)  # as its USB device leaves
    first = RunningDock(cfg, dock_key, bus)
    try:
        first.stage_firmware(bundle)
        assert dock_camera(first, camera).outcome is Outcome.LEFT
        assert first.bay()["update"]["step"] == "rebooting"
    finally:
        first.stop()
    camera.on_reboot = None

    second = RunningDock(cfg, dock_key, bus_after_restart)
    try:
        assert second.report().outcome is Outcome.DONE
        update = second.bay()["update"]
        confirmed = second.events("firmware.confirmed")
        offered = second.events("firmware.offered")
    finally:
        second.stop()

    assert (len(camera.firmware_puts), camera.reboots, camera.runs["firmware"]) == (1, 1, NEW)
    assert (update["kind"], update["version"], update["step"]) == ("firmware", NEW, "done")
    assert len(offered) == 1
    assert [e["data"]["previous_firmware"] for e in confirmed] == ["0.1.0"]


def test_a_reboot_still_on_trial_is_followed_by_the_next_dock_until_healthy(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, bus: SimUsbBus, camera: TestCamera,
    bus_after_restart: SimUsbBus, bundle: Path,
) -> None:  # fmt: skip
    camera.on_reboot = lambda: bus.unplug(camera.serial)
    first = RunningDock(cfg, dock_key, bus)
    try:
        first.stage_firmware(bundle)
        assert dock_camera(first, camera).outcome is Outcome.LEFT
    finally:
        first.stop()
    trial = {"firmware": NEW, "firmware_state": "trial"}
    camera.on_reboot, camera.after_reboot = None, [trial, trial, {"firmware_state": "healthy"}]

    second = RunningDock(cfg, dock_key, bus_after_restart)
    try:
        assert second.report().outcome is Outcome.DONE
        update = second.bay()["update"]
    finally:
        second.stop()

    assert (update["step"], len(camera.firmware_puts), camera.reboots) == ("done", 1, 1)
