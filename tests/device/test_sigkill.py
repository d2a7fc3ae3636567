"""SIGKILL the firmware process while it records, again and again: no clip is ever lost.

Each round starts ``bwc device run`` as a real process, starts a recording through the control
socket, waits until a randomly chosen number of segments is durable, and kills the process with
SIGKILL. The next boot recovers the clip. At the end every clip must verify, and every segment
the camera had reported durable must still be in its clip.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from custody.keys import load_agency_private_key, load_verify_key
from custody.manifest import parse_manifest
from custody.verify import verify_clip_folder
from device.control import send

ROUNDS = 50
CONFIG = """
[clock]
virtual = true
[camera]
width = 160
height = 120
fps = 10
keyframe_interval = 10
bitrate = 200000
[microphone]
sample_rate = 16000
chunk_ms = 50
[storage]
root = "{root}/card"
[device]
pre_event_s = 2
keys_dir = "{root}/keys"
"""


def poll(condition: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
    raise TimeoutError(f"{what} within {timeout_s} s")


def status(sock: Path) -> dict[str, Any] | None:
    try:
        return send(sock, {"cmd": "status"}, timeout_s=5)
    except OSError:
        return None


def start_camera(config: Path, sock: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bwc", "device", "run", "--config", str(config),
         "--control", str(sock), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def camera_in_waiting(config: Path, sock: Path) -> subprocess.Popen[bytes]:
    """The next round's camera: imported already, it boots when told (tests/device/device_entry)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.device.device_entry", "device", "run",
         "--config", str(config), "--control", str(sock)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def go(camera: subprocess.Popen[bytes]) -> None:
    assert camera.stdin is not None
    camera.stdin.write(b"go\n")
    camera.stdin.close()


def test_sigkill_while_recording_never_loses_a_durable_segment(tmp_path: Path) -> None:
    config = tmp_path / "camera.toml"
    config.write_text(CONFIG.format(root=tmp_path))
    sock = tmp_path / "control.sock"
    rng = random.Random(20261123)
    reported: dict[str, int] = {}  # clip id -> segments the camera said were durable
    waiting = camera_in_waiting(config, sock)
    for round_ in range(ROUNDS):
        sock.unlink(missing_ok=True)
        camera, waiting = waiting, camera_in_waiting(config, sock) if round_ + 1 < ROUNDS else None
        go(camera)
        try:
            poll(lambda: status(sock), "the camera's control socket answers")
            send(sock, {"cmd": "trigger", "kind": "holster", "source_id": "HOLSTER-1"})
            target = rng.randint(1, 6)
            seen = poll(
                lambda t=target: (s := status(sock)) and s["segments"] >= t and s,
                f"{target} durable segments",
            )
            reported[seen["clip"]] = max(reported.get(seen["clip"], 0), seen["segments"])
        finally:
            os.kill(camera.pid, signal.SIGKILL)
            camera.wait(timeout=30)
        assert camera.returncode == -signal.SIGKILL

    # one clean boot recovers the last clip, then the camera stops by itself
    sock.unlink(missing_ok=True)
    final = start_camera(config, sock, "--seconds", "1")
    out, err = final.communicate(timeout=60)
    assert final.returncode == 0, err.decode()
    assert json.loads(out.decode().splitlines()[-1])["state"] == "buffering"

    device_key = load_verify_key(tmp_path / "keys" / "device.pub.pem")
    agency_key = load_agency_private_key(tmp_path / "keys" / "agency.key.pem")
    clips = tmp_path / "card" / "clips"
    assert set(reported) <= {p.name for p in clips.iterdir()}
    for clip_id, durable in reported.items():
        folder = clips / clip_id
        report = verify_clip_folder(folder, device_key, agency_key)
        assert report.ok, report.first_failure
        manifest = parse_manifest((folder / "manifest.jsonl").read_bytes())
        assert manifest.seal is not None and manifest.seal.recovered
        assert len(manifest.segments) >= durable
