"""Issue 11, end to end: a dock offloads three cameras, then updates them, and says so.

Everything is real but the USB bus (hw SimUsbBus): three ``bwc device run`` camera processes
on sim hardware, the evidence store over HTTP, the DockAgent with its local API served by
uvicorn, and the armorer's ``bwc dock`` commands. The firmware is staged only after every clip
has left the cameras, and each camera reboots (a real re-exec) into the new slot.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from dock.config import DockConfig
from tests.cli import conftest as cli_fixtures
from tests.cli.conftest import Run
from tests.device.slot_helpers import make_bundle
from tests.dock.camera_processes import (
    FACTORY_VERSION,
    CameraProcess,
    make_camera,
    running_cameras,
)
from tests.dock.conftest import Server, Store
from tests.dock.fleet import FAST_RETRY, dock_toml, install_dock
from tests.dock.staging_rig import install_release_key
from tests.dock.ui_rig import RunningDock, bus_with, running_dock, wait_done

Bwc = Callable[..., Run]
NEW_VERSION = "1.1.0"
CAMERAS = 3
CLIPS = 2

bwc = cli_fixtures.bwc
config_file = cli_fixtures.config_file


@pytest.fixture
def release_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def cameras(
    tmp_path: Path,
    agency_key: X25519PrivateKey,
    dock_key: Ed25519PrivateKey,
    store: Store,
    release_key: Ed25519PrivateKey,
) -> Iterator[list[CameraProcess]]:
    made = [
        make_camera(tmp_path / f"camera-{n}", n, agency_key=agency_key, dock_key=dock_key,
                    store_public=store.public, release_public=release_key.public_key(), clips=CLIPS)
        for n in range(1, CAMERAS + 1)
    ]  # fmt: skip
    with running_cameras(made) as running:
        yield running


@pytest.fixture
def dock(
    tmp_path: Path,
    live_store: Server,
    store: Store,
    cameras: list[CameraProcess],
    dock_key: Ed25519PrivateKey,
    release_key: Ed25519PrivateKey,
) -> Iterator[RunningDock]:
    cfg = DockConfig(
        data_dir=tmp_path / "dock", store_url=live_store.url, retry=FAST_RETRY, poll_s=0.05,
        ui_port=0, cameras={c.serial: c.device_id for c in cameras},
        links={c.serial: c.url for c in cameras},
    )  # fmt: skip
    install_dock(cfg, dock_key, store, cameras)
    install_release_key(cfg, release_key)
    with running_dock(cfg, dock_key, bus_with(cameras)) as running:
        yield running


def updated(bay: dict[str, Any]) -> bool:
    update = bay.get("update") or {}
    if update.get("step") == "failed":
        raise AssertionError(f"the update of {bay['serial']} failed: {update.get('error')}")
    return bool(
        bay["firmware"] == NEW_VERSION
        and bay["firmware_state"] == "healthy"
        and update.get("step") == "done"
    )


def test_a_dock_offloads_three_cameras_then_updates_them_and_status_shows_the_new_version(
    tmp_path: Path,
    dock: RunningDock,
    cameras: list[CameraProcess],
    store: Store,
    dock_key: Ed25519PrivateKey,
    release_key: Ed25519PrivateKey,
    config_file: Callable[[str], Path],
    bwc: Bwc,
) -> None:
    for camera in cameras:  # footage first: every clip stored and erased before any update
        bay = wait_done(dock, camera.serial)
        assert bay["firmware"] == FACTORY_VERSION
        assert camera.clips_on_card() == []
    assert sorted(store.clip_ids()) == sorted(c for cam in cameras for c in cam.clip_ids)
    bundle = make_bundle(tmp_path, release_key, version=NEW_VERSION, min_version=FACTORY_VERSION)
    config = str(config_file(dock_toml(dock.cfg)))

    staged = bwc("dock", "firmware", "stage", str(bundle), "--url", dock.url, "--config", config)

    assert staged.code == 0, staged.err
    assert NEW_VERSION in staged.out
    for camera in cameras:
        dock.wait_bay(camera.serial, updated, f"{camera.serial} runs {NEW_VERSION}, healthy")
    status = bwc("dock", "status", "--url", dock.url)
    assert status.code == 0, status.err
    for camera in cameras:
        (line,) = [line for line in status.out.splitlines() if camera.serial in line]
        assert NEW_VERSION in line, line
    for camera in cameras:
        seen = camera.status(dock_key)
        assert (seen["firmware"], seen["firmware_state"]) == (NEW_VERSION, "healthy")
    for camera in cameras:  # on the camera's own signed record: every erase came before
        events = [r["event"] for r in camera.audit_records()]
        assert events.count("clip.erased") == CLIPS
        last_erase = max(i for i, e in enumerate(events) if e == "clip.erased")
        assert last_erase < events.index("firmware.installed") < events.index("firmware.activated")
    shown = json.loads(bwc("dock", "status", "--url", dock.url, "--json").out)
    assert {b["serial"]: b["firmware"] for b in shown["bays"]} == {
        c.serial: NEW_VERSION for c in cameras
    }
