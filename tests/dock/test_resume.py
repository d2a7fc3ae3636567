"""A dock that stops at any point and is started again finishes the job, storing each clip once.

The crash is simulated by dropping the dock (ledger closed, clients gone) and opening a new one on
the same data folder: at every ledger state, and in the two gaps where an action has happened but
its record has not (the store issued the receipt; the camera erased the clip).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import SealedClip
from custody.receipt import parse_receipt, verify_receipt
from dock.agent import Dock
from dock.ledger import ClipState
from dock.store_client import HttpEvidenceSink, UploadState
from tests.dock.camera_server import TestCamera
from tests.dock.conftest import DEVICE_ID, DockFactory, Server, Store, seal


class SimulatedCrash(BaseException):
    """The dock process dies here: nothing after this point runs, nothing catches it."""


@pytest.fixture
def clip(
    camera: TestCamera, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> SealedClip:
    sealed = seal(device_key, agency_key, segments=4)
    camera.add(sealed)
    return sealed


def run_until(dock: Dock, camera_url: str, clip_id: str, state: ClipState) -> None:
    camera = dock.camera(camera_url)
    dock.offloader.admit(camera)
    while dock.ledger.get(DEVICE_ID, clip_id).state != state:
        dock.offloader.step(camera, clip_id)
    camera.close()


def assert_stored_once_and_erased(
    store: Store, camera: TestCamera, clip: SealedClip, dock: Dock
) -> None:
    row = dock.ledger.get(DEVICE_ID, clip.clip_id)
    assert row.state == ClipState.DONE
    assert row.receipt is not None
    assert verify_receipt(row.receipt, store.public, clip.manifest).ok
    assert store.clip_ids() == [clip.clip_id]
    assert clip.clip_id in camera.erased and clip.clip_id not in camera.clips
    assert [p for p in (dock.cfg.data_dir / "spool").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    "crash_at", [s for s in ClipState if s not in (ClipState.DONE, ClipState.QUARANTINED)]
)
def test_a_dock_restarted_at_any_state_finishes_the_clip_with_one_stored_copy(
    crash_at: ClipState,
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
    make_dock: DockFactory,
) -> None:
    first = make_dock()
    run_until(first, camera_url, clip.clip_id, crash_at)
    first.close()
    camera.undock()  # the old session's token is gone too

    again = make_dock()
    (row,) = again.offloader.offload(again.camera(camera_url))

    assert row.state == ClipState.DONE
    assert_stored_once_and_erased(store, camera, clip, again)


class CrashAfterComplete:
    """The store issues its receipt, and the dock dies before it can record it."""

    def __init__(self, real: HttpEvidenceSink) -> None:
        self._real = real
        self.issued: bytes | None = None

    def create_upload(self, manifest: Path) -> UploadState:
        return self._real.create_upload(manifest)

    def put_segment(self, upload_id: str, index: int, segment: Path) -> None:
        self._real.put_segment(upload_id, index, segment)

    def status(self, upload_id: str) -> UploadState:
        return self._real.status(upload_id)

    def complete(self, upload_id: str) -> bytes:
        self.issued = self._real.complete(upload_id)
        raise SimulatedCrash


def test_a_receipt_issued_but_not_recorded_is_issued_again_for_the_same_evidence(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
    make_dock: DockFactory,
) -> None:
    sink = CrashAfterComplete(HttpEvidenceSink(live_store.url, store.dock_token))
    first = make_dock(sink)
    with pytest.raises(SimulatedCrash):
        first.offloader.offload(first.camera(camera_url))
    first.close()
    assert first.ledger.path.exists() and sink.issued is not None
    assert camera.erase_requests == []

    again = make_dock()
    again.offloader.offload(again.camera(camera_url))

    row = again.ledger.get(DEVICE_ID, clip.clip_id)
    assert row.receipt is not None
    assert parse_receipt(row.receipt).evidence_id == parse_receipt(sink.issued).evidence_id
    assert_stored_once_and_erased(store, camera, clip, again)


def test_an_erase_done_but_not_recorded_is_asked_again_and_answered_yes(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
    make_dock: DockFactory,
) -> None:
    first = make_dock()
    run_until(first, camera_url, clip.clip_id, ClipState.STORED)
    receipt = first.ledger.get(DEVICE_ID, clip.clip_id).receipt
    assert receipt is not None
    first.camera(camera_url).erase(clip.clip_id, receipt)  # the dock dies before recording it
    first.close()

    again = make_dock()
    again.offloader.offload(again.camera(camera_url))

    assert camera.erase_requests == [clip.clip_id, clip.clip_id]
    assert_stored_once_and_erased(store, camera, clip, again)


def test_a_receipt_is_on_disk_before_the_erase_is_sent(
    live_store: Server,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
    make_dock: DockFactory,
) -> None:
    first = make_dock()
    run_until(first, camera_url, clip.clip_id, ClipState.STORED)

    # A second connection sees the committed receipt while the first one is still open.
    reader = make_dock()
    row = reader.ledger.get(DEVICE_ID, clip.clip_id)
    assert row.state == ClipState.STORED and row.receipt is not None
    assert first.ledger.durability() == ("wal", 2)
    assert camera.erase_requests == []


def test_a_spool_lost_after_spooling_is_fetched_again_from_the_camera(
    live_store: Server,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
    make_dock: DockFactory,
) -> None:
    first = make_dock()
    run_until(first, camera_url, clip.clip_id, ClipState.UPLOADING)
    first.close()
    shutil.rmtree(first.cfg.data_dir / "spool")

    again = make_dock()
    (row,) = again.offloader.offload(again.camera(camera_url))

    assert row.state == ClipState.DONE
    assert_stored_once_and_erased(store, camera, clip, again)
