"""``bwc dock firmware stage|list`` and ``bwc dock config push`` against a running dock, and the
Firmware and Profile columns of ``bwc dock status``.

The dock is real (tests/dock/staging_rig.py: its local API served by uvicorn on loopback, no
camera docked); the commands run in-process and find the dock's armorer token through the same
configuration file as ``bwc dock run``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console

from bwc.commands.dock_armorer import bay_table
from tests.cli.conftest import Run
from tests.cli.test_config_errors import single_error_line
from tests.device.slot_helpers import make_bundle
from tests.dock.conftest import DockCfgFactory, FleetFactory, Server, Store, url_of
from tests.dock.fleet import dock_toml
from tests.dock.staging_rig import (
    install_release_key,
    signed_profile,
    staging_config,
    staging_dock,
)
from tests.dock.ui_rig import RunningDock, bus_with, running_dock, wait_done

Bwc = Callable[..., Run]


@pytest.fixture
def release() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def dock(
    tmp_path: Path,
    store_sock: socket.socket,
    store: Store,
    dock_key: Ed25519PrivateKey,
    release: Ed25519PrivateKey,
) -> Iterator[RunningDock]:
    cfg = staging_config(tmp_path, url_of(store_sock))
    with staging_dock(cfg, dock_key, store) as running:
        install_release_key(cfg, release)
        yield running


@pytest.fixture
def config(dock: RunningDock, config_file: Callable[[str], Path]) -> str:
    """The dock's configuration file, as ``bwc dock run`` read it (data folder, tokens)."""
    return str(config_file(dock_toml(dock.cfg)))


def stage(bwc: Bwc, dock: RunningDock, config: str, bundle: Path) -> Run:
    return bwc("dock", "firmware", "stage", str(bundle), "--url", dock.url, "--config", config)


def push(bwc: Bwc, dock: RunningDock, config: str, profile: Path) -> Run:
    return bwc("dock", "config", "push", str(profile), "--url", dock.url, "--config", config)


def test_firmware_stage_sends_the_bundle_and_prints_what_was_staged(
    dock: RunningDock, config: str, tmp_path: Path, release: Ed25519PrivateKey, bwc: Bwc
) -> None:
    bundle = make_bundle(tmp_path, release, version="1.2.0")
    run = stage(bwc, dock, config, bundle)
    assert run.code == 0, run.err
    size = bundle.stat().st_size
    assert run.out.strip() == (
        f"staged firmware 1.2.0 for sim ({size} bytes): cameras get it after their next offload"
    )
    assert (dock.cfg.updates_dir / "firmware-sim.bundle").read_bytes() == bundle.read_bytes()


def test_a_bundle_the_dock_refuses_is_one_line_naming_the_check_and_exit_1(
    dock: RunningDock, config: str, tmp_path: Path, bwc: Bwc
) -> None:
    run = stage(bwc, dock, config, make_bundle(tmp_path, None, version="1.2.0"))
    assert run.code == 1
    assert single_error_line(run).startswith(
        "bwc: error: the dock refused (422): firmware bundle refused: signer: "
    )
    assert dock.get("/api/v1/updates").json()["firmware"] == []


def test_a_bundle_over_the_docks_limit_is_one_line_and_exit_1(
    tmp_path: Path,
    store_sock: socket.socket,
    store: Store,
    dock_key: Ed25519PrivateKey,
    release: Ed25519PrivateKey,
    config_file: Callable[[str], Path],
    bwc: Bwc,
) -> None:
    cfg = staging_config(tmp_path, url_of(store_sock), max_bundle_bytes=100_000)
    with staging_dock(cfg, dock_key, store) as dock:
        install_release_key(cfg, release)
        config = str(config_file(dock_toml(cfg)))
        run = stage(bwc, dock, config, make_bundle(tmp_path, release, version="1.2.0"))
    assert run.code == 1
    assert "the dock refused (413)" in single_error_line(run)
    assert "max_bundle_bytes (100000)" in run.err


def test_a_bundle_file_that_does_not_exist_is_one_line_and_exit_2(
    dock: RunningDock, config: str, tmp_path: Path, bwc: Bwc
) -> None:
    run = stage(bwc, dock, config, tmp_path / "missing.fw")
    assert run.code == 2
    assert single_error_line(run) == (
        f"bwc: error: cannot read the bundle {tmp_path / 'missing.fw'}: No such file or directory"
    )


def test_staging_with_a_token_the_dock_does_not_know_is_refused(
    dock: RunningDock, config: str, tmp_path: Path, release: Ed25519PrivateKey, bwc: Bwc
) -> None:
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-an-armorer-token\n")
    bundle = make_bundle(tmp_path, release, version="1.2.0")
    run = bwc("dock", "firmware", "stage", str(bundle), "--url", dock.url,
              "--token-file", str(wrong), "--config", config)  # fmt: skip
    assert run.code == 2
    assert "the dock refused (401)" in single_error_line(run)


def test_config_push_sends_the_profile_and_prints_what_was_staged(
    dock: RunningDock, config: str, tmp_path: Path, release: Ed25519PrivateKey, bwc: Bwc
) -> None:
    profile = tmp_path / "patrol.profile.json"
    profile.write_bytes(signed_profile(release, version=4))
    run = push(bwc, dock, config, profile)
    assert run.code == 0, run.err
    staged = dock.get("/api/v1/updates").json()["profile"]
    assert run.out.strip() == (
        f"staged profile 'patrol' version 4 (id {staged['profile_id'][:12]}): "
        "cameras get it after their next offload"
    )


def test_a_profile_with_an_unknown_key_is_one_line_naming_it_and_exit_1(
    dock: RunningDock, config: str, tmp_path: Path, release: Ed25519PrivateKey, bwc: Bwc
) -> None:
    profile = tmp_path / "bad.profile.json"
    profile.write_bytes(signed_profile(release, wifi_ssid="x"))
    run = push(bwc, dock, config, profile)
    assert run.code == 1
    line = single_error_line(run)
    assert "profile refused: settings: profile settings: unknown field" in line
    assert "wifi_ssid" in line


def test_firmware_list_shows_what_is_staged(
    dock: RunningDock, config: str, tmp_path: Path, release: Ed25519PrivateKey, bwc: Bwc
) -> None:
    assert bwc("dock", "firmware", "list", "--url", dock.url).out.startswith("nothing is staged")
    assert stage(bwc, dock, config, make_bundle(tmp_path, release, version="1.2.0")).code == 0
    run = bwc("dock", "firmware", "list", "--url", dock.url, "--json")
    assert run.code == 0, run.err
    assert [fw["firmware_version"] for fw in json.loads(run.out)["firmware"]] == ["1.2.0"]


def test_status_printed_to_a_pipe_shows_the_firmware_on_the_cameras_line(
    make_fleet: FleetFactory,
    make_dock_cfg: DockCfgFactory,
    live_store: Server,
    dock_key: Ed25519PrivateKey,
    bwc: Bwc,
) -> None:
    (camera,) = make_fleet(1, clips=1)
    cfg = make_dock_cfg(live_store.url, [camera])
    with running_dock(cfg, dock_key, bus_with([camera])) as dock:
        bay = wait_done(dock, camera.serial)
        run = bwc("dock", "status", "--url", dock.url)
    assert run.code == 0, run.err
    # the dock's own log lines go to the same captured stdout: the table's rows start with │
    rows = [line for line in run.out.splitlines() if line.startswith("│")]
    (line,) = [row for row in rows if camera.serial in row]
    assert f" {bay['firmware']} " in line and " done " in line


# -- the status table's Firmware and Profile columns (fed the API's bay shape) ----------------

PROFILE_ID = "1a2b3c4d" + "0" * 56


def shown(**fields: Any) -> str:
    """The status table's row for one bay with ``fields``, as text."""
    bay = {"bay": "1-1", "serial": "BWC1-000001", "state": "done", "firmware": "1.1.0",
           "firmware_state": "healthy", "target": "sim", "profile_id": "", "profile_version": 0,
           "update": None} | fields  # fmt: skip
    console = Console(record=True, width=200)
    console.print(bay_table({"dock": {"name": "d"}, "bays": [bay]}))
    (row,) = [line for line in console.export_text().splitlines() if "BWC1-000001" in line]
    return " ".join(row.split())


def firmware_update(step: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "firmware", "version": "1.2.0", "step": step, "bytes_done": 0,
            "bytes_total": 0, "error": None} | fields  # fmt: skip


def test_a_healthy_camera_shows_its_firmware_version() -> None:
    assert " 1.1.0 " in shown()


def test_a_camera_on_trial_firmware_says_so() -> None:
    assert " 1.2.0 (trial) " in shown(firmware="1.2.0", firmware_state="trial")


def test_a_bundle_being_sent_shows_both_versions_and_the_percentage() -> None:
    update = firmware_update("sending", bytes_done=42, bytes_total=100)
    assert " 1.1.0 -> 1.2.0 42% " in shown(update=update)


def test_after_sending_the_update_shows_its_step() -> None:
    assert " 1.1.0 -> 1.2.0 rebooting " in shown(update=firmware_update("rebooting"))


def test_a_failed_update_shows_its_reason_shortened() -> None:
    error = "the camera rolled back to 1.1.0: the new firmware did not report healthy in 300 s"
    row = shown(update=firmware_update("failed", error=error))
    assert f" failed: {error[:39]}… " in row  # 40 characters in all
    assert "300 s" not in row


def test_a_confirmed_update_shows_the_new_version_alone() -> None:
    row = shown(firmware="1.2.0", update=firmware_update("done"))
    assert " 1.2.0 " in row and "->" not in row


def test_the_profile_column_shows_version_and_short_id() -> None:
    assert " v3 1a2b3c4d " in shown(profile_id=PROFILE_ID, profile_version=3)


def test_a_profile_being_pushed_shows_the_versions_and_step() -> None:
    update = {"kind": "profile", "version": 4, "step": "rebooting", "bytes_done": 0,
              "bytes_total": 0, "error": None}  # fmt: skip
    row = shown(profile_id=PROFILE_ID, profile_version=3, update=update)
    assert " v3 1a2b3c4d -> v4 rebooting " in row
    assert " 1.1.0 " in row  # the firmware column is untouched by a profile push


def test_a_bay_without_update_fields_still_renders() -> None:
    # a camera that has not answered its status yet: the fields are null
    row = shown(firmware=None, firmware_state=None, profile_id=None, profile_version=None)
    assert "│ 1-1 │ BWC1-000001 │" in row and " done " in row
