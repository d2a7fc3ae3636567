"""``bwc trigger send`` and ``bwc trigger scan`` against a running simulated camera."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from device.control import send
from tests.cli.conftest import Run

CONFIG = """
[clock]
virtual = false
[camera]
width = 160
height = 120
fps = 10
keyframe_interval = 10
[storage]
root = "{root}/card"
[device]
pre_event_s = 1
keys_dir = "{root}/keys"
"""


@pytest.fixture
def camera(tmp_path: Path) -> Iterator[Path]:
    """A simulated camera process; yields its control socket."""
    config = tmp_path / "camera.toml"
    config.write_text(CONFIG.format(root=tmp_path))
    sock = tmp_path / "control.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "bwc", "device", "run", "--config", str(config),
         "--control", str(sock)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not sock.exists():
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() < deadline, "the camera's control socket did not appear"
    yield sock
    send(sock, {"cmd": "shutdown"})
    process.communicate(timeout=30)


def state(sock: Path) -> str:
    return str(send(sock, {"cmd": "status"})["state"])


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"


def test_a_sent_holster_trigger_starts_recording(
    camera: Path, tmp_path: Path, bwc: Callable[..., Run]
) -> None:
    registry = tmp_path / "keys" / "triggers.json"
    run = bwc("trigger", "send", "--registry", str(registry), "--source", "holster-1",
              "--control", str(camera))  # fmt: skip
    assert run.code == 0, run.err
    assert "sent holster #1 from holster-1" in run.out
    wait_for(lambda: state(camera) == "recording", "recording")


def test_scan_shows_an_accepted_and_a_replayed_trigger(
    camera: Path, tmp_path: Path, bwc: Callable[..., Run]
) -> None:
    registry = str(tmp_path / "keys" / "triggers.json")
    for _ in range(2):
        bwc("trigger", "send", "--registry", registry, "--source", "lightbar-1",
            "--counter", "7", "--control", str(camera))  # fmt: skip
    wait_for(lambda: state(camera) == "recording", "recording")
    run = bwc("trigger", "scan", "--control", str(camera))
    text = " ".join(run.out.replace("│", " ").split())
    assert "accepted 1" in text
    assert "rejected: duplicate 1" in text
    assert "lightbar-1" in text


def test_an_unknown_source_is_one_clear_error(
    camera: Path, tmp_path: Path, bwc: Callable[..., Run]
) -> None:
    run = bwc("trigger", "send", "--registry", str(tmp_path / "keys" / "triggers.json"),
              "--source", "holster-99", "--control", str(camera))  # fmt: skip
    assert run.code == 2
    assert run.err.startswith("bwc: error: no source 'holster-99'")
    assert "holster-1" in run.err


def test_sending_to_no_camera_says_how_to_start_one(
    tmp_path: Path, bwc: Callable[..., Run]
) -> None:
    run = bwc("trigger", "scan", "--control", str(tmp_path / "nothing.sock"))
    assert run.code == 2
    assert "start one with 'bwc device run'" in run.err
