"""``bwc device run`` serves the offload API while docked and says where."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from device.control import send

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
offload_port = 0
"""


def offload(sock: Path) -> dict[str, Any]:
    reply: dict[str, Any] = send(sock, {"cmd": "status"})["offload"]
    return reply


def answering(sock: Path, process: subprocess.Popen[bytes], timeout_s: float = 30) -> Any:
    """The offload part of the first status the camera answers (its socket may lag the file)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, process.communicate()[1].decode()
        try:
            return offload(sock)
        except (FileNotFoundError, ConnectionRefusedError):
            assert time.monotonic() < deadline, "the camera's control socket did not answer"


def wait_for_url(sock: Path, timeout_s: float = 20) -> str:
    deadline = time.monotonic() + timeout_s
    while (url := offload(sock)["url"]) is None:
        assert time.monotonic() < deadline, f"no offload URL in the status within {timeout_s} s"
    return str(url)


def test_a_docked_camera_prints_and_reports_its_offload_url(tmp_path: Path) -> None:
    config = tmp_path / "camera.toml"
    config.write_text(CONFIG.format(root=tmp_path))
    sock = tmp_path / "control.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "bwc", "device", "run", "--config", str(config),
         "--control", str(sock)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert answering(sock, process) == {"serving": False, "url": None, "error": None}
        send(sock, {"cmd": "dock"})
        url = wait_for_url(sock)
        hello = requests.get(f"{url}/offload/v1/hello", timeout=10)
        assert hello.json()["serial"] == "BWC-SIM-0001"
    finally:
        send(sock, {"cmd": "shutdown"})
        _, err = process.communicate(timeout=30)
    assert f"docked: offload API at {url}" in err.decode()
