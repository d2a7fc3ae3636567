"""Several real sim cameras docked at once, and a dock configured for them and a live store.

Each camera is the whole firmware on sim hardware (tests/device/firmware_rig.py) with its own
device id, serial and key, serving the offload API (device/offload) on its own loopback port. Its
card holds sealed clips written through its Storage port. Its clock runs in real time, so the
wall time of its signed audit records (``clip.erased``) compares with the store's receipts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.canonical import sha256_hex
from custody.clip import MANIFEST_NAME, seal_clip, segment_name
from custody.keys import private_pem, public_pem, write_atomic
from custody.manifest import ClipInfo
from custody.receipt import verify_receipt
from device.config import DeviceConfig
from device.durable import ensure_durable_folder
from device.events import DockInput
from device.firmware import AUDIT_LOG, CLIPS_ROOT
from device.offload import OffloadServer, attach_offload
from dock.config import DockConfig, RetryPolicy
from hw.ports.storage import write_durable
from hw.sim.clock import SimClock
from tests.device.firmware_rig import Camera, build_camera
from tests.device.offload_rig import PREFIX, open_session

if TYPE_CHECKING:  # tests/dock/conftest.py imports this module for its fleet fixtures
    from tests.dock.conftest import Store

WAIT_S = 10.0
FAST_RETRY = RetryPolicy(base_s=0.02, cap_s=0.2, attempts=5)
SEGMENT_SIZES = (1500, 2500, 700)  #: bytes of each clip's segments, unless a test asks others


class Enrolled(Protocol):
    """A camera as enrolment sees it (a FleetCamera, or a camera process of its own)."""

    @property
    def device_id(self) -> str: ...

    @property
    def device_key(self) -> Ed25519PrivateKey: ...


@dataclass
class FleetCamera:
    serial: str
    device_id: str
    device_key: Ed25519PrivateKey
    camera: Camera
    server: OffloadServer
    manifests: dict[str, bytes]  #: clip id -> the sealed manifest, as written to the card

    @property
    def url(self) -> str:
        url = self.server.url
        assert url is not None, f"camera {self.serial} is not serving its offload API"
        return url

    def listed(self, dock_key: Ed25519PrivateKey) -> list[str]:
        """The clip ids the camera offers now, asked over its own offload API."""
        token, _ = open_session(self.url, dock_key)
        answer = requests.get(
            f"{self.url}{PREFIX}/clips",
            headers={"Authorization": f"Bearer {token}"},
            timeout=WAIT_S,
        )
        assert answer.status_code == 200, answer.text
        return [clip["clip_id"] for clip in answer.json()]

    def undock(self) -> None:
        """Out of the dock: the camera stops serving its offload API."""
        self.camera.submit(DockInput(docked=False, at_ns=self.camera.now()))
        self.camera.firmware.step()
        assert self.server.idle.wait(WAIT_S), f"camera {self.serial} stops serving when undocked"

    def dock(self) -> None:
        self.camera.submit(DockInput(docked=True, at_ns=self.camera.now()))
        self.camera.firmware.step()
        assert self.server.serving.wait(WAIT_S), f"camera {self.serial} serves once docked"

    def clips_on_card(self) -> list[str]:
        root = self.camera.storage.root / CLIPS_ROOT
        return sorted(p.name for p in root.iterdir() if p.is_dir())

    def audit_log(self) -> bytes:
        return (self.camera.storage.root / AUDIT_LOG).read_bytes()

    def audit_records(self, event: str) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in self.audit_log().splitlines()]
        return [r for r in records if r["event"] == event]

    def close(self) -> None:
        self.server.close()
        self.camera.firmware.close()
        self.camera.io.close()


def build_fleet_camera(
    root: Path,
    number: int,
    *,
    agency_key: X25519PrivateKey,
    dock_key: Ed25519PrivateKey,
    store_public: Ed25519PublicKey,
    clips: int,
    segment_sizes: tuple[int, ...] = SEGMENT_SIZES,
) -> FleetCamera:
    """Camera ``number`` with ``clips`` sealed clips, docked and serving; trusts ``dock_key``."""
    serial, device_id = f"BWC1-{number:06d}", f"cam-{number:04d}"
    device_key = Ed25519PrivateKey.generate()
    keys_dir = root / "keys"
    (keys_dir / "docks").mkdir(parents=True)
    (keys_dir / "docks" / "dock.pub.pem").write_bytes(public_pem(dock_key))
    # the armorer provisioned the evidence store's receipt key, so the camera can check receipts
    (keys_dir / "store.pub.pem").write_bytes(public_pem(store_public))
    config = DeviceConfig(
        device_id=device_id, serial=serial, officer_id=f"officer-{number}", pre_event_s=1,
        storage_reserve_bytes=4096, keys_dir=keys_dir, offload_port=0,
    )  # fmt: skip
    cam = build_camera(root / "card", device_key, agency_key, config, audio=False, clock=SimClock())
    cam.firmware.boot()
    server = attach_offload(cam.firmware, device_key)
    manifests = {}
    for n in range(clips):
        info = ClipInfo(device_id, serial, f"officer-{number}", "0.1.0",
                        cam.clock.wall_ns() - (clips - n) * 600 * 10**9, 1)  # fmt: skip
        sealed = seal_clip(
            [os.urandom(size + n) for size in segment_sizes],
            device_key=device_key,
            agency_public=agency_key.public_key(),
            info=info,
        )
        folder = f"{CLIPS_ROOT}/{sealed.clip_id}"
        ensure_durable_folder(cam.storage, folder)
        for index, blob in sealed.segments.items():
            write_durable(cam.storage, f"{folder}/{segment_name(index)}", blob)
        write_durable(cam.storage, f"{folder}/{MANIFEST_NAME}", sealed.manifest)
        manifests[sealed.clip_id] = sealed.manifest
    camera = FleetCamera(serial, device_id, device_key, cam, server, manifests)
    camera.dock()
    return camera


@contextmanager
def docked_fleet(
    root: Path,
    count: int,
    *,
    clips: int,
    agency_key: X25519PrivateKey,
    dock_key: Ed25519PrivateKey,
    store_public: Ed25519PublicKey,
    segment_sizes: tuple[int, ...] = SEGMENT_SIZES,
) -> Iterator[list[FleetCamera]]:
    """``count`` cameras numbered from 1, each with ``clips`` sealed clips, docked and serving."""
    cameras: list[FleetCamera] = []
    try:
        for number in range(1, count + 1):
            camera = build_fleet_camera(
                root / f"camera-{number}", number, agency_key=agency_key, dock_key=dock_key,
                store_public=store_public, clips=clips, segment_sizes=segment_sizes,
            )  # fmt: skip
            cameras.append(camera)
        yield cameras
    finally:
        for camera in cameras:
            camera.close()


def dock_config(
    data_dir: Path, store_url: str, cameras: list[FleetCamera], **settings: Any
) -> DockConfig:
    settings.setdefault("ui_port", 0)  # a dock process serves its web page on a free port
    return DockConfig(
        data_dir=data_dir,
        store_url=store_url,
        retry=FAST_RETRY,
        poll_s=0.05,
        chunk_bytes=4096,
        cameras={c.serial: c.device_id for c in cameras},
        links={c.serial: c.url for c in cameras},
        **settings,
    )


def install_dock(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, store: Store, cameras: Sequence[Enrolled]
) -> None:
    """The dock's key, the store's key and token, and every camera enrolled, at both ends."""
    (cfg.data_dir / "keys").mkdir(parents=True)
    cfg.devices_path.mkdir()
    write_atomic(cfg.dock_key_path, private_pem(dock_key), mode=0o600)
    write_atomic(cfg.store_key_path, public_pem(store.public), mode=0o644)
    write_atomic(cfg.store_token_path, store.dock_token.encode() + b"\n", mode=0o600)
    for camera in cameras:
        key = public_pem(camera.device_key.public_key())
        write_atomic(cfg.devices_path / f"{camera.device_id}.pub.pem", key, mode=0o644)
        write_atomic(store.cfg.devices_path / f"{camera.device_id}.pub.pem", key, mode=0o644)


def token_of(store: Store, role: str) -> str:
    entries = json.loads(store.cfg.tokens_path.read_text())["tokens"]
    return str(next(e["token"] for e in entries if e["role"] == role))


@dataclass(frozen=True)
class StoredClip:
    evidence_id: str
    clip_id: str
    manifest_sha256: str
    stored_at_ns: int
    receipt: bytes


def stored_clips(store_url: str, store: Store) -> list[StoredClip]:
    """Every evidence record the store lists over its API, each with its receipt."""
    headers = {"Authorization": f"Bearer {token_of(store, 'records')}"}
    listing = requests.get(f"{store_url}/v1/evidence?limit=1000", headers=headers, timeout=WAIT_S)
    assert listing.status_code == 200, listing.text
    found = []
    for record in listing.json():
        answer = requests.get(
            f"{store_url}/v1/evidence/{record['evidence_id']}/receipt",
            headers=headers,
            timeout=WAIT_S,
        )
        assert answer.status_code == 200, answer.text
        stored = StoredClip(
            record["evidence_id"], record["clip_id"], record["manifest_sha256"],
            record["stored_at_ns"], answer.content,
        )  # fmt: skip
        found.append(stored)
    return found


def check_stored_once(
    store_url: str, store: Store, cameras: list[FleetCamera]
) -> dict[str, StoredClip]:
    """Every sealed clip is in the store exactly once, with a receipt that verifies against it."""
    manifests = {clip_id: m for camera in cameras for clip_id, m in camera.manifests.items()}
    stored = stored_clips(store_url, store)
    assert sorted(s.clip_id for s in stored) == sorted(manifests), "each clip stored exactly once"
    by_clip = {s.clip_id: s for s in stored}
    for clip_id, manifest in manifests.items():
        record = by_clip[clip_id]
        assert record.manifest_sha256 == sha256_hex(manifest)
        report = verify_receipt(record.receipt, store.public, manifest)
        assert report.ok, report.first_failure
    return by_clip


def dock_toml(cfg: DockConfig) -> str:
    """``cfg`` as the ``[dock]`` table of a bwc configuration file."""
    q = json.dumps  # a JSON string is a TOML basic string
    lines = [
        "[dock]",
        f"data_dir = {q(str(cfg.data_dir))}",
        f"store_url = {q(cfg.store_url)}",
        f"poll_s = {cfg.poll_s}",
        f"chunk_bytes = {cfg.chunk_bytes}",
        f"ui_port = {cfg.ui_port}",
        "[dock.retry]",
        f"base_s = {cfg.retry.base_s}",
        f"cap_s = {cfg.retry.cap_s}",
        f"attempts = {cfg.retry.attempts}",
        "[dock.cameras]",
        *(f"{q(serial)} = {q(device_id)}" for serial, device_id in cfg.cameras.items()),
        "[dock.links]",
        *(f"{q(serial)} = {q(url)}" for serial, url in cfg.links.items()),
    ]
    return "\n".join(lines) + "\n"
