"""``bwc dock status|assign|retry|quarantine`` against a running dock over its local API.

The dock is real (tests/dock/ui_rig.py: a DockAgent over a real sim camera, its API served by
uvicorn on loopback); the commands run in-process and find the dock and the armorer's token
through the same configuration file as ``bwc dock run``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console

from bwc.commands.dock_armorer import bay_table
from tests.cli.conftest import Run
from tests.cli.test_config_errors import single_error_line
from tests.dock.conftest import DockCfgFactory, FleetFactory, Server, reserve_port, url_of
from tests.dock.fleet import FleetCamera, dock_toml
from tests.dock.ui_rig import RunningDock, bus_with, camera_status, running_dock, wait_done

#: the ``bwc`` fixture comes after the running dock in each test's arguments, so that the output
#: it captures starts after the dock's set-up has logged
Bwc = Callable[..., Run]


@pytest.fixture
def camera(make_fleet: FleetFactory) -> FleetCamera:
    (camera,) = make_fleet(1, clips=1)
    return camera


@pytest.fixture
def dock(
    make_dock_cfg: DockCfgFactory,
    live_store: Server,
    camera: FleetCamera,
    dock_key: Ed25519PrivateKey,
) -> Iterator[RunningDock]:
    cfg = make_dock_cfg(live_store.url, [camera])
    with running_dock(cfg, dock_key, bus_with([camera])) as running:
        wait_done(running, camera.serial)
        yield running


@pytest.fixture
def config(dock: RunningDock, config_file: Callable[[str], Path]) -> str:
    """The dock's configuration file, as ``bwc dock run`` read it (data folder, tokens)."""
    return str(config_file(dock_toml(dock.cfg)))


def test_status_shows_each_bay_as_a_table(dock: RunningDock, camera: FleetCamera, bwc: Bwc) -> None:
    run = bwc("dock", "status", "--url", dock.url)
    assert run.code == 0, run.err
    assert "dock dock-t" in run.out
    (line,) = [line for line in run.out.splitlines() if camera.serial in line]
    for shown in ("1-1", "officer-1", "%", "done"):
        assert shown in line, (shown, line)


def test_status_json_is_the_apis_bay_list(dock: RunningDock, camera: FleetCamera, bwc: Bwc) -> None:
    run = bwc("dock", "status", "--url", dock.url, "--json")
    assert run.code == 0, run.err
    (bay,) = json.loads(run.out)["bays"]
    assert (bay["serial"], bay["state"], bay["clips_done"]) == (camera.serial, "done", 1)


def test_assign_with_the_data_folders_token_reaches_the_docked_camera(
    dock: RunningDock, config: str, camera: FleetCamera, dock_key: Ed25519PrivateKey, bwc: Bwc
) -> None:
    run = bwc("dock", "assign", camera.serial, "officer-42", "--url", dock.url, "--config", config)
    assert run.code == 0, run.err
    assert "assigned to officer-42 (sent to the camera)" in run.out
    assert camera_status(camera, dock_key)["officer_id"] == "officer-42"


def test_retry_names_the_bays_that_try_again(
    dock: RunningDock, config: str, camera: FleetCamera, bwc: Bwc
) -> None:
    run = bwc("dock", "retry", camera.serial, "--url", dock.url, "--config", config)
    assert run.code == 0, run.err
    assert "trying again now in bay(s) 1-1" in run.out


def test_quarantine_list_says_when_nothing_is_quarantined(dock: RunningDock, bwc: Bwc) -> None:
    run = bwc("dock", "quarantine", "list", "--url", dock.url)
    assert (run.code, run.out.strip()) == (0, "no clip is quarantined")


def test_an_action_with_a_token_the_dock_does_not_know_is_refused(
    dock: RunningDock, config: str, tmp_path: Path, bwc: Bwc
) -> None:
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-an-armorer-token\n")
    run = bwc("dock", "retry", "--url", dock.url, "--token-file", str(wrong), "--config", config)
    assert run.code == 2
    assert "the dock refused (401)" in single_error_line(run)


def test_a_dock_that_is_not_running_is_one_line_and_exit_2(bwc: Bwc) -> None:
    sock = reserve_port()  # bound, never listening: connections are refused
    url = url_of(sock)
    try:
        run = bwc("dock", "status", "--url", url)
    finally:
        sock.close()
    assert run.code == 2
    assert single_error_line(run) == (
        f"bwc: error: no dock answers at {url}: start it with 'bwc dock run'"
    )


def test_a_transfer_in_flight_shows_its_step_and_a_progress_bar() -> None:
    bay = {
        "bay": "1-2", "serial": "BWC1-000042", "officer_id": "officer-1187",
        "state": "offloading", "battery_percent": 81.0, "charging": True, "clips_pending": 3,
        "transfer": {"clip_id": "c1", "step": "uploading", "bytes_done": 512,
                     "bytes_total": 1024},
        "last_error": None,
    }  # fmt: skip
    console = Console(record=True, width=160)
    console.print(bay_table({"dock": {"name": "d"}, "bays": [bay]}))
    text = console.export_text()
    assert "uploading c1 50%" in text
    assert "━" * 5 in text  # the bar, half drawn
    assert "81% charging" in text


def test_watch_redraws_until_ctrl_c_and_then_exits_0(
    dock: RunningDock, camera: FleetCamera
) -> None:
    # FORCE_COLOR makes rich treat the pipe as a terminal, so Live draws at once
    env = os.environ | {"FORCE_COLOR": "1", "COLUMNS": "160"}
    command = [sys.executable, "-m", "bwc", "dock", "status", "--watch", "--url", dock.url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        out, lines = proc.stdout, queue.Queue[bytes]()

        def pump() -> None:
            for line in out:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        drawn = b""
        while camera.serial.encode() not in drawn:
            drawn += lines.get(timeout=30)  # the table is drawn within 30 s, or Empty fails
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert b"interrupted" not in proc.stderr.read()
