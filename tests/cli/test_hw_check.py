"""``bwc hw check``: a row per port, exit 0 only when every port works."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hw.check import check_all
from hw.config import HwConfig
from hw.ports.storage import StorageConfig
from tests.cli.conftest import Run

PORTS = {
    "clock", "camera", "microphone", "ble_scanner", "ble_advertiser",
    "usb", "io", "battery", "gnss", "storage",
}  # fmt: skip


def test_every_sim_port_works(tmp_path: Path) -> None:
    results = check_all(HwConfig(storage=StorageConfig(root=tmp_path)))
    assert {r.port for r in results} == PORTS
    failed = {r.port: r.detail for r in results if not r.ok}
    assert failed == {}
    assert all(r.adapter == "sim" for r in results)


def test_camera_check_reports_a_key_frame(tmp_path: Path) -> None:
    results = {r.port: r for r in check_all(HwConfig(storage=StorageConfig(root=tmp_path)))}
    assert "key frame" in results["camera"].detail


def test_hw_check_without_config_exits_0_and_lists_every_port(
    tmp_path: Path,
) -> None:
    # a real process, as an armorer runs it; default sim storage lands in the working folder
    run = subprocess.run(
        [sys.executable, "-m", "bwc", "hw", "check"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    for port in PORTS:
        assert port in run.stdout
    assert "all 10 ports work" in run.stdout


def test_missing_real_library_fails_its_row_naming_what_to_install(
    bwc: Callable[..., Run], config_file: Callable[[str], Path]
) -> None:
    run = bwc("hw", "check", "--config", str(config_file('[camera]\nadapter = "picamera2"\n')))
    assert run.code == 1
    assert "FAILED" in run.out
    assert "pip install" in run.out.replace("\n", " ")
    assert "1 port(s) not working" in run.out
