"""Sim cameras as real ``bwc device run`` processes, docked, for the dock's update tests.

Each camera is the firmware's own composition root on sim hardware in a process of its own, so
a reboot the dock asks for is a real one (the process starts itself again and boots the tried
firmware slot). Before it first starts, its card holds sealed clips written through the Storage
port and its keys folder what an armorer provisions: the dock's key, the store's receipt key,
the agency's release key.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import MANIFEST_NAME, seal_clip, segment_name
from custody.keys import key_id, private_pem, public_pem, write_atomic
from custody.manifest import ClipInfo
from device.control import send
from device.durable import ensure_durable_folder
from device.firmware import AUDIT_LOG, CLIPS_ROOT
from hw.ports.storage import write_durable
from hw.real.storage import FileStorage
from tests.device.camera_toml import sim_camera_toml
from tests.device.offload_rig import PREFIX, open_session
from tests.dock.conftest import reserve_port

WAIT_S = 60.0
FACTORY_VERSION = "1.0.0"


@dataclass
class CameraProcess:
    serial: str
    device_id: str
    device_key: Ed25519PrivateKey
    root: Path
    port: int
    clip_ids: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def control(self) -> Path:
        return self.root / "control.sock"

    @property
    def card(self) -> Path:
        return self.root / "card"

    def start(self) -> None:
        config = str(self.root / "camera.toml")
        command = [sys.executable, "-m", "bwc", "device", "run", "--config", config,
                   "--control", str(self.control), "--docked"]  # fmt: skip
        log = (self.root / "camera.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=log)
        log.close()

    def status(self, dock_key: Ed25519PrivateKey) -> dict[str, Any]:
        """The camera's own ``GET /status`` over a session of the test's own."""
        token, _ = open_session(self.url, dock_key)
        answer = requests.get(
            f"{self.url}{PREFIX}/status", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        status: dict[str, Any] = answer.json()
        return status

    def wait_serving(self) -> None:
        """Poll (with a deadline) until the camera answers its offload API's hello."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log()
            try:
                if requests.get(f"{self.url}{PREFIX}/hello", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)  # polling with a deadline
        raise AssertionError(f"camera {self.serial} serves within {WAIT_S} s:\n{self.log()}")

    def clips_on_card(self) -> list[str]:
        root = self.card / CLIPS_ROOT
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []

    def audit_records(self) -> list[dict[str, Any]]:
        lines = (self.card / AUDIT_LOG).read_bytes().splitlines()
        return [json.loads(line) for line in lines]

    def log(self) -> str:
        path = self.root / "camera.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            send(self.control, {"cmd": "shutdown"})
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def make_camera(
    root: Path,
    number: int,
    *,
    agency_key: X25519PrivateKey,
    dock_key: Ed25519PrivateKey,
    store_public: Ed25519PublicKey,
    release_public: Ed25519PublicKey,
    clips: int,
) -> CameraProcess:
    """Camera ``number``, provisioned, with ``clips`` sealed clips on its card; not started."""
    keys = root / "keys"
    (keys / "docks").mkdir(parents=True)
    device_key = Ed25519PrivateKey.generate()
    write_atomic(keys / "device.key.pem", private_pem(device_key), mode=0o600)
    (keys / "agency.pub.pem").write_bytes(public_pem(agency_key.public_key()))
    (keys / "docks" / "dock.pub.pem").write_bytes(public_pem(dock_key))
    (keys / "store.pub.pem").write_bytes(public_pem(store_public))
    (keys / f"release-{key_id(release_public)[:16]}.pub.pem").write_bytes(
        public_pem(release_public)
    )
    with reserve_port() as sock:  # released at once: the camera binds it when docked
        port = sock.getsockname()[1]
    camera = CameraProcess(f"BWC1-{number:06d}", f"cam-{number:04d}", device_key, root, port)
    (root / "camera.toml").write_text(sim_camera_toml(
        root, serial=camera.serial, device_id=camera.device_id, officer_id=f"officer-{number}",
        firmware_version=FACTORY_VERSION, hardware_target="sim", healthy_after_s=1,
        storage_reserve_bytes=4096, offload_port=port,
    ))  # fmt: skip
    camera.clip_ids = seed_clips(camera, agency_key, clips)
    return camera


def seed_clips(camera: CameraProcess, agency_key: X25519PrivateKey, count: int) -> list[str]:
    """``count`` clips sealed by custody, written to the card durably as the firmware would."""
    (camera.card).mkdir(parents=True, exist_ok=True)
    storage = FileStorage(camera.card)
    ids = []
    for n in range(count):
        info = ClipInfo(camera.device_id, camera.serial, "officer", FACTORY_VERSION,
                        time.time_ns() - (count - n) * 600 * 10**9, 1)  # fmt: skip
        sealed = seal_clip([os.urandom(2000 + n), os.urandom(700)], device_key=camera.device_key,
                           agency_public=agency_key.public_key(), info=info)  # fmt: skip
        folder = f"{CLIPS_ROOT}/{sealed.clip_id}"
        ensure_durable_folder(storage, folder)
        for index, blob in sealed.segments.items():
            write_durable(storage, f"{folder}/{segment_name(index)}", blob)
        write_durable(storage, f"{folder}/{MANIFEST_NAME}", sealed.manifest)
        ids.append(sealed.clip_id)
    return ids


@contextmanager
def running_cameras(cameras: list[CameraProcess]) -> Iterator[list[CameraProcess]]:
    """Every camera started (in parallel) and serving its offload API; all stopped at the end."""
    try:
        for camera in cameras:
            camera.start()
        for camera in cameras:
            camera.wait_serving()
        yield cameras
    finally:
        for camera in cameras:
            camera.stop()
