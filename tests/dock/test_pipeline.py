"""The offload pipeline end to end over loopback HTTP: test camera -> dock -> evidence store."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.receipt import parse_receipt, verify_receipt
from dock.errors import CameraRefused, StoreUnavailable
from dock.ledger import ClipState
from dock.spool import WHY_NAME
from dock.store_client import HttpEvidenceSink, UploadState
from tests.dock.camera_server import TestCamera
from tests.dock.conftest import (
    CHUNK,
    RETRY,
    DockFactory,
    HookClock,
    Server,
    Store,
    seal,
    serving,
    store_app,
)


@pytest.fixture
def two_clips(
    camera: TestCamera, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> list[str]:
    clips = [seal(device_key, agency_key, segments=n) for n in (3, 2)]
    for clip in clips:
        camera.add(clip)
    return [clip.clip_id for clip in clips]


def spooled_files(dock_data: Path) -> list[Path]:
    return [p for p in (dock_data / "spool").rglob("*") if p.is_file()]


def test_every_clip_is_stored_receipted_erased_and_its_spool_cleaned(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    two_clips: list[str],
    make_dock: DockFactory,
) -> None:
    manifests = {c: camera.clips[c].manifest for c in two_clips}
    dock = make_dock()

    rows = dock.offloader.offload(dock.camera(camera_url))

    assert [(r.clip_id, r.state) for r in rows] == [(c, ClipState.DONE) for c in two_clips]
    for row in rows:
        assert row.receipt is not None
        assert verify_receipt(row.receipt, store.public, manifests[row.clip_id]).ok
    assert sorted(store.clip_ids()) == sorted(two_clips)
    assert camera.erase_requests == two_clips
    assert camera.clips == {}
    assert spooled_files(dock.cfg.data_dir) == []


def test_a_store_that_is_down_is_retried_with_backoff_until_it_stores_the_clip(
    store: Store,
    store_sock: socket.socket,
    camera: TestCamera,
    camera_url: str,
    two_clips: list[str],
    make_dock: DockFactory,
    clock: HookClock,
) -> None:
    dock = make_dock()
    with StartLater(store, store_sock) as later:
        clock.on_first_sleep = later.start  # the store comes up while the dock waits
        rows = dock.offloader.offload(dock.camera(camera_url))

    assert [r.state for r in rows] == [ClipState.DONE, ClipState.DONE]
    assert sorted(store.clip_ids()) == sorted(two_clips)
    assert len(clock.sleeps) == 1 and 0 <= clock.sleeps[0] <= RETRY.base_s
    first = dock.ledger.get("cam-0042", two_clips[0])
    assert first.attempts == 1 and first.last_error is None


class StartLater:
    """The store's port is reserved but refuses connections until ``start``."""

    def __init__(self, store: Store, sock: socket.socket) -> None:
        self._server = Server(store_app(store), sock)
        self._started = False

    def start(self) -> None:
        self._server.start()
        self._started = True

    def __enter__(self) -> StartLater:
        return self

    def __exit__(self, *_: object) -> None:
        if self._started:
            self._server.stop()


def test_a_store_down_for_every_attempt_leaves_the_clip_spooled_for_the_next_docking(
    store: Store,
    camera: TestCamera,
    camera_url: str,
    two_clips: list[str],
    make_dock: DockFactory,
    clock: HookClock,
) -> None:
    dock = make_dock()
    with pytest.raises(StoreUnavailable):
        dock.offloader.offload(dock.camera(camera_url))

    row = dock.ledger.get("cam-0042", two_clips[0])
    assert row.state == ClipState.SPOOLED
    assert row.attempts == RETRY.attempts
    assert "does not answer" in (row.last_error or "")
    assert len(clock.sleeps) == RETRY.attempts - 1
    assert all(s <= RETRY.cap_s for s in clock.sleeps)
    assert camera.erase_requests == []


def test_a_camera_cut_off_mid_segment_resumes_where_it_stopped_and_the_clip_completes(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    make_dock: DockFactory,
) -> None:
    clip = seal(device_key, agency_key, segments=2, segment_bytes=5 * CHUNK)
    camera.add(clip)
    camera.cut_segment_once(clip.clip_id, 1, after=3 * CHUNK + 100)
    dock = make_dock()

    (row,) = dock.offloader.offload(dock.camera(camera_url))

    assert row.state == ClipState.DONE and row.attempts == 1
    # whole chunks that arrived before the cut are kept; only the rest is asked for again
    assert camera.range_requests == [f"bytes={3 * CHUNK}-"]
    assert store.clip_ids() == [clip.clip_id]


def test_a_segment_corrupted_by_the_camera_quarantines_the_clip_and_nothing_is_erased(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    two_clips: list[str],
    make_dock: DockFactory,
) -> None:
    bad, good = two_clips
    camera.corrupt_segment(bad, 1)
    dock = make_dock()

    rows = {r.clip_id: r for r in dock.offloader.offload(dock.camera(camera_url))}

    assert rows[bad].state == ClipState.QUARANTINED
    assert "segment 1" in (rows[bad].last_error or "")
    assert rows[good].state == ClipState.DONE
    assert camera.erase_requests == [good]
    assert bad in camera.clips
    assert store.clip_ids() == [good]
    (folder,) = (dock.cfg.data_dir / "quarantine" / "cam-0042").iterdir()
    why = json.loads((folder / WHY_NAME).read_text())
    assert why["clip_id"] == bad and "segment 1" in why["why"]
    assert (folder / "manifest.jsonl").is_file()


def test_a_manifest_not_signed_by_the_enrolled_device_key_quarantines_the_clip(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    agency_key: X25519PrivateKey,
    make_dock: DockFactory,
) -> None:
    forged = seal(Ed25519PrivateKey.generate(), agency_key)
    camera.add(forged)
    dock = make_dock()

    (row,) = dock.offloader.offload(dock.camera(camera_url))

    assert row.state == ClipState.QUARANTINED
    assert "signer" in (row.last_error or "")
    assert camera.erase_requests == []
    assert store.clip_ids() == []


def test_a_truncated_manifest_quarantines_the_clip_with_the_reason(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    two_clips: list[str],
    make_dock: DockFactory,
) -> None:
    broken = two_clips[0]
    camera.serve_manifest(broken, camera.clips[broken].manifest[:-20])
    dock = make_dock()

    rows = {r.clip_id: r for r in dock.offloader.offload(dock.camera(camera_url))}

    assert rows[broken].state == ClipState.QUARANTINED
    assert "truncated" in (rows[broken].last_error or "")
    assert camera.erase_requests == [two_clips[1]]
    assert store.clip_ids() == [two_clips[1]]


class OtherClipReceipt:
    """A store that answers every completion with its receipt for another clip."""

    def __init__(self, real: HttpEvidenceSink, other_receipt: bytes) -> None:
        self._real, self._other = real, other_receipt

    def create_upload(self, manifest: Path) -> UploadState:
        return self._real.create_upload(manifest)

    def put_segment(self, upload_id: str, index: int, segment: Path) -> None:
        self._real.put_segment(upload_id, index, segment)

    def status(self, upload_id: str) -> UploadState:
        return self._real.status(upload_id)

    def complete(self, upload_id: str) -> bytes:
        self._real.complete(upload_id)
        return self._other


def test_a_receipt_for_another_clip_is_rejected_and_the_clip_is_not_erased(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    make_dock: DockFactory,
) -> None:
    other = seal(device_key, agency_key)
    store.service.create_upload(other.manifest, "dock:test")
    upload = store.service.create_upload(other.manifest, "dock:test").upload
    for index, blob in other.segments.items():
        store.service.put_segment(upload.id, index, blob, "dock:test")
    other_receipt = store.service.complete(upload.id, "dock:test").to_bytes()
    clip = seal(device_key, agency_key)
    camera.add(clip)
    sink = HttpEvidenceSink(live_store.url, store.dock_token)
    dock = make_dock(OtherClipReceipt(sink, other_receipt))

    (row,) = dock.offloader.offload(dock.camera(camera_url))
    sink.close()

    assert row.state == ClipState.UPLOADING
    assert "matches manifest" in (row.last_error or "")
    assert row.receipt is None
    assert camera.erase_requests == []
    assert clip.clip_id in camera.clips
    assert parse_receipt(other_receipt).clip_id != clip.clip_id


def test_an_unenrolled_camera_is_refused_before_anything_is_downloaded(
    camera: TestCamera,
    camera_url: str,
    two_clips: list[str],
    make_dock: DockFactory,
) -> None:
    dock = make_dock()
    (dock.cfg.devices_path / "cam-0042.pub.pem").unlink()

    with pytest.raises(CameraRefused, match="not enrolled"):
        dock.offloader.offload(dock.camera(camera_url))

    assert dock.ledger.rows() == []
    assert camera.range_requests == [] and camera.erase_requests == []


def test_a_camera_whose_device_signature_fails_is_refused(
    store: Store,
    dock_key: Ed25519PrivateKey,
    make_dock: DockFactory,
) -> None:
    impostor = TestCamera("cam-0042", Ed25519PrivateKey.generate(), store.public,
                          [dock_key.public_key()])  # fmt: skip
    dock = make_dock()
    with serving(impostor.app()) as server, pytest.raises(CameraRefused, match="identity"):
        dock.offloader.offload(dock.camera(server.url))
    assert dock.ledger.rows() == []
