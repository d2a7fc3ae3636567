"""A docked camera serving the offload API on loopback, and a dock-side client for the tests.

The camera is the whole firmware on sim hardware (tests/device/firmware_rig.py). Its card holds
one clip the firmware recorded and sealed when it docked, two clips sealed by custody's
``seal_clip`` and written through the Storage port (one with segments bigger than a stream
chunk), and one clip still open (unsealed), which must never be offered.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.canonical import b64d, b64e
from custody.clip import MANIFEST_NAME, seal_clip, segment_name
from custody.keys import key_id, public_pem
from custody.manifest import ClipInfo
from custody.receipt import Receipt, issue_receipt
from device.config import DeviceConfig
from device.durable import ensure_durable_folder
from device.events import DockInput
from device.firmware import AUDIT_LOG, CLIPS_ROOT
from device.offload import OffloadServer, attach_offload, session_message
from hw.ports.storage import Storage, write_durable
from hw.sim.clock import SimClock
from tests.device.clip_helpers import add_segments, start_clip
from tests.device.firmware_rig import Camera, build_camera

PREFIX = "/offload/v1"
DEVICE_ID = "cam-0042"
WAIT_S = 10.0
BIG_SEGMENT = 300_000  # several stream chunks


def wait(event: threading.Event, what: str) -> None:
    assert event.wait(WAIT_S), f"{what} within {WAIT_S} s"


def open_session(url: str, dock_key: Ed25519PrivateKey) -> tuple[str, dict[str, Any]]:
    """The dock's half of the challenge-response: returns the token and the camera's answer."""
    hello = requests.get(f"{url}{PREFIX}/hello", timeout=WAIT_S).json()
    nonce = b64d(hello["nonce"], what="nonce", size=32)
    answer = requests.post(
        f"{url}{PREFIX}/session",
        json={
            "dock_key_id": key_id(dock_key),
            "dock_nonce": b64e(os.urandom(32)),
            "signature": b64e(dock_key.sign(session_message(nonce, hello["device_id"]))),
        },
        timeout=WAIT_S,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return str(body["token"]), body


@dataclass
class DockedCamera:
    camera: Camera
    server: OffloadServer
    keys_dir: Path
    dock_key: Ed25519PrivateKey
    store_key: Ed25519PrivateKey
    sealed: list[str]  #: every sealed clip on the card
    open_clip: str  #: a clip whose manifest has no seal yet
    token: str = ""
    _headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        url = self.server.url
        assert url is not None, "the offload API is not serving"
        return url

    @property
    def storage(self) -> Storage:
        return self.camera.storage

    def login(self) -> None:
        self.token, _ = open_session(self.url, self.dock_key)
        self._headers = {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self._headers, **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.url}{PREFIX}{path}", headers=headers, timeout=WAIT_S, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def undock(self) -> None:
        self.camera.submit(DockInput(docked=False, at_ns=self.camera.now()))
        self.camera.firmware.step()
        wait(self.server.idle, "the offload API stops after undock")

    def dock(self) -> None:
        self.camera.submit(DockInput(docked=True, at_ns=self.camera.now()))
        self.camera.firmware.step()
        wait(self.server.serving, "the offload API serves once docked")

    def folder(self, clip_id: str) -> Path:
        return self.camera.clip_folder(clip_id)

    def manifest(self, clip_id: str) -> bytes:
        return (self.folder(clip_id) / MANIFEST_NAME).read_bytes()

    def receipt(self, clip_id: str, *, key: Ed25519PrivateKey | None = None) -> Receipt:
        return issue_receipt(
            key or self.store_key,
            self.manifest(clip_id),
            evidence_id=f"ev-{clip_id[:8]}",
            stored_at_ns=1_700_000_100_000_000_000,
        )

    def audit_bytes(self) -> bytes:
        return (self.storage.root / AUDIT_LOG).read_bytes()


def footage_digest(root: Path) -> str:
    """One hash over every file name and byte under ``root`` (the clips folder)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def write_sealed(
    storage: Storage, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey, *,
    sizes: list[int], start_wall_ns: int,
) -> str:  # fmt: skip
    """A clip sealed by custody, written through the camera's Storage port."""
    info = ClipInfo(
        device_id=DEVICE_ID, device_serial="BWC1-000042", officer_id="officer-1187",
        firmware_version="0.1.0", start_wall_ns=start_wall_ns, start_monotonic_ns=1,
    )  # fmt: skip
    clip = seal_clip(
        [os.urandom(n) for n in sizes],
        device_key=device_key,
        agency_public=agency_key.public_key(),
        info=info,
    )
    folder = f"{CLIPS_ROOT}/{clip.clip_id}"
    ensure_durable_folder(storage, folder)
    for index, blob in clip.segments.items():
        write_durable(storage, f"{folder}/{segment_name(index)}", blob)
    write_durable(storage, f"{folder}/{MANIFEST_NAME}", clip.manifest)
    return clip.clip_id


def build_docked_camera(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> DockedCamera:
    keys_dir = tmp_path / "keys"
    (keys_dir / "docks").mkdir(parents=True)
    dock_key, store_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    (keys_dir / "docks" / "bay-1.pub.pem").write_bytes(public_pem(dock_key))
    (keys_dir / "store.pub.pem").write_bytes(public_pem(store_key))
    config = DeviceConfig(
        device_id=DEVICE_ID, serial="BWC1-000042", officer_id="officer-1187", pre_event_s=1,
        storage_reserve_bytes=4096, keys_dir=keys_dir, offload_port=0,
    )  # fmt: skip
    clock = SimClock(virtual=True, start_wall_ns=1_700_000_000_000_000_000)
    clock.advance(60)  # so the open clip below can claim 30 s of pre-event footage
    cam = build_camera(tmp_path / "card", device_key, agency_key, config, audio=False, clock=clock)
    cam.firmware.boot()
    server = attach_offload(cam.firmware, device_key)
    start = cam.clock.wall_ns()
    older = [
        write_sealed(cam.storage, device_key, agency_key, sizes=[1000, 2000],
                     start_wall_ns=start - 7200 * 10**9),
        write_sealed(cam.storage, device_key, agency_key, sizes=[BIG_SEGMENT, 5000, 700],
                     start_wall_ns=start - 3600 * 10**9),
    ]  # fmt: skip
    writer = start_clip(cam.storage, config, device_key, agency_key, cam.clock)
    add_segments(writer, cam.clock, 2)  # left open, as if the camera were still writing it
    cam.run(1)
    cam.tap(2)
    cam.run(2)
    cam.submit(DockInput(docked=True, at_ns=cam.now()))  # docking seals the recording
    cam.firmware.step()
    wait(server.serving, "the offload API serves once docked")
    docked = DockedCamera(
        cam, server, keys_dir, dock_key, store_key,
        sealed=[*older, *cam.firmware.sealed], open_clip=writer.clip_id,
    )  # fmt: skip
    docked.login()
    return docked
