"""The ingest folder: dropped files and sealed clips go to the store and move to done/ only once
its receipt verifies; links and names that climb out are refused."""

from __future__ import annotations

import hashlib
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from custody.clip import MANIFEST_NAME, SealedClip, segment_name
from custody.file_receipt import parse_file_receipt, verify_file_receipt
from custody.keys import public_pem, write_atomic
from custody.receipt import verify_receipt
from dock.enrolment import EnrolledDevices
from dock.errors import IngestRefused, LedgerError
from dock.ingest_folder import ClipUpload, IngestFolder, UploadFile, file_uploader, sink_uploader
from dock.ingest_names import relative_name
from dock.ingest_table import IngestItem, IngestTable, ItemKind, ItemState
from dock.ledger import Ledger
from dock.store_client import EvidenceSink, HttpEvidenceSink, UploadState
from tests.dock.conftest import DEVICE_ID, Server, Store, seal, url_of

WAIT_S = 10.0
Uploader = Callable[[ClipUpload], bytes]


class Ingest:
    """A running ingest folder and what the test watches it through."""

    def __init__(self, folder: IngestFolder) -> None:
        self.folder = folder
        self.root = folder.root
        self.updates = folder.updates()

    def wait_for(
        self, name: str, state: ItemState, has: Callable[[IngestItem], bool] = lambda _: True
    ) -> IngestItem:
        """The first update of ``name`` in ``state`` (and satisfying ``has``), within WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        seen: list[tuple[str, str]] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.updates.get(timeout=left)
            except queue.Empty:
                break
            seen.append((item.name, str(item.state)))
            if item.name == name and item.state is state and has(item):
                return item
        raise AssertionError(f"{name} did not become {state} within {WAIT_S} s; saw {seen}")


class GatedSink:
    """The real HTTP sink, with the store's final answer held until the test releases it."""

    def __init__(self, inner: HttpEvidenceSink) -> None:
        self.inner = inner
        self.completing = threading.Event()
        self.release = threading.Event()

    def create_upload(self, manifest: Path) -> UploadState:
        return self.inner.create_upload(manifest)

    def put_segment(self, upload_id: str, index: int, segment: Path) -> None:
        self.inner.put_segment(upload_id, index, segment)

    def status(self, upload_id: str) -> UploadState:
        return self.inner.status(upload_id)

    def complete(self, upload_id: str) -> bytes:
        self.completing.set()
        assert self.release.wait(WAIT_S), "the test never released the receipt"
        return self.inner.complete(upload_id)

    def put_file(self, path: Path, sha256: str, name: str) -> bytes:
        receipt = self.inner.put_file(path, sha256, name)  # stored: only the answer is held
        self.completing.set()
        assert self.release.wait(WAIT_S), "the test never released the receipt"
        return receipt


@pytest.fixture
def enrolled(tmp_path: Path, device_key: Ed25519PrivateKey) -> EnrolledDevices:
    folder = tmp_path / "dock" / "devices"
    folder.mkdir(parents=True)
    write_atomic(folder / f"{DEVICE_ID}.pub.pem", public_pem(device_key), mode=0o644)
    return EnrolledDevices(folder)


@pytest.fixture
def table(tmp_path: Path) -> Iterator[IngestTable]:
    opened = IngestTable(tmp_path / "dock" / "ledger.sqlite3", wall_ns=time.time_ns)
    yield opened
    opened.close()


@pytest.fixture
def uploads() -> list[ClipUpload]:
    return []


@pytest.fixture
def http_sink(live_store: Server, store: Store) -> Iterator[HttpEvidenceSink]:
    sink = HttpEvidenceSink(live_store.url, store.dock_token, timeout_s=5)
    yield sink
    sink.close()


StartIngest = Callable[..., Ingest]


@pytest.fixture
def start_ingest(
    tmp_path: Path,
    table: IngestTable,
    enrolled: EnrolledDevices,
    store: Store,
    uploads: list[ClipUpload],
) -> Iterator[StartIngest]:
    running: list[IngestFolder] = []

    def start(
        sink: EvidenceSink | None = None,
        *,
        upload: Uploader | None = None,
        upload_file: UploadFile | None = None,
        observer: BaseObserver | None = None,
        rescan_s: float = 0.05,
    ) -> Ingest:
        inner = upload or (sink_uploader(sink) if sink is not None else _refuse_uploads)
        files = upload_file or (file_uploader(sink) if sink is not None else _refuse_files)

        def recorded(clip: ClipUpload) -> bytes:
            uploads.append(clip)
            return inner(clip)

        folder = IngestFolder(
            tmp_path / "ingest",
            table,
            upload_clip=recorded,
            upload_file=files,
            device_key=enrolled.key_for,
            store_key=store.public,
            rescan_s=rescan_s,
            observer=observer,
        )
        ingest = Ingest(folder)
        folder.start()
        running.append(folder)
        return ingest

    yield start
    for folder in running:
        folder.stop()


def _refuse_uploads(clip: ClipUpload) -> bytes:
    raise AssertionError(f"clip {clip.clip_id} was uploaded in a test that forbids it")


def _refuse_files(path: Path, sha256: str, name: str) -> bytes:
    raise AssertionError(f"file {path} was uploaded in a test that forbids it")


@pytest.fixture
def clip(device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey) -> SealedClip:
    return seal(device_key, agency_key, segments=3)


def upload_folder(sink: EvidenceSink, folder: Path) -> bytes:
    """Store a clip folder straight through the sink; the store's receipt."""
    state = sink.create_upload(folder / MANIFEST_NAME)
    for index in state.missing:
        sink.put_segment(state.upload_id, index, folder / segment_name(index))
    return sink.complete(state.upload_id)


def drop_clip(clip: SealedClip, root: Path, staging: Path) -> Path:
    """Copy a clip folder in the way an armorer's file manager would: beside, then into place."""
    clip.write_to(staging / clip.clip_id)
    (staging / clip.clip_id).rename(root / clip.clip_id)
    return root / clip.clip_id


# foreign files


def test_a_dropped_foreign_file_moves_to_done_only_after_a_verified_file_receipt(
    start_ingest: StartIngest, http_sink: HttpEvidenceSink, store: Store
) -> None:
    gated = GatedSink(http_sink)
    ingest = start_ingest(gated)
    data = os.urandom(3 * 1024 * 1024 + 17)  # several hashing and body chunks
    sha256 = hashlib.sha256(data).hexdigest()
    (ingest.root / "DCIM").mkdir()
    (ingest.root / "DCIM" / "MOV_0001.MP4").write_bytes(data)
    assert gated.completing.wait(WAIT_S), "the file was never uploaded"

    # the store holds it but its receipt has not reached the dock: nothing may move yet
    uploading = ingest.folder.table.open_item("DCIM/MOV_0001.MP4")
    assert uploading is not None and uploading.state is ItemState.UPLOADING
    assert (ingest.root / "DCIM" / "MOV_0001.MP4").read_bytes() == data
    gated.release.set()

    done = ingest.wait_for("DCIM/MOV_0001.MP4", ItemState.DONE)
    assert (done.kind, done.size, done.sha256) == (ItemKind.FOREIGN, len(data), sha256)
    assert done.receipt is not None
    assert verify_file_receipt(done.receipt, store.public, sha256=sha256, size=len(data)).ok
    assert parse_file_receipt(done.receipt).name == "MOV_0001.MP4"
    assert not (ingest.root / "DCIM" / "MOV_0001.MP4").exists()
    assert (ingest.root / "done" / "DCIM" / "MOV_0001.MP4").read_bytes() == data
    assert store.service.metadata.file_for_sha256(sha256) is not None


def test_a_file_is_taken_up_when_its_writer_closes_it_not_while_it_is_written(
    start_ingest: StartIngest, http_sink: HttpEvidenceSink
) -> None:
    observer = Observer()
    if not isinstance(observer, InotifyObserver):
        pytest.skip("close-write events need inotify (Linux)")
    # only the close event can trigger
    ingest = start_ingest(http_sink, observer=observer, rescan_s=3600)
    first, second = b"a" * 100_000, b"b" * 100_000

    with (ingest.root / "export.avi").open("wb") as f:
        f.write(first)
        f.flush()
        os.fsync(f.fileno())
        f.write(second)

    item = ingest.wait_for("export.avi", ItemState.DONE)
    assert item.sha256 == hashlib.sha256(first + second).hexdigest()


def test_without_close_events_a_file_is_taken_up_once_its_size_stops_changing(
    start_ingest: StartIngest, http_sink: HttpEvidenceSink
) -> None:
    ingest = start_ingest(http_sink, observer=PollingObserver(timeout=0.05), rescan_s=0.05)
    data = b"exported by another maker's camera" * 1000

    (ingest.root / "clip.mts").write_bytes(data)

    item = ingest.wait_for("clip.mts", ItemState.DONE)
    assert (item.size, item.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_a_store_that_is_down_keeps_the_file_in_place_to_try_again(
    start_ingest: StartIngest, store_sock: socket.socket, store: Store
) -> None:
    down = HttpEvidenceSink(url_of(store_sock), store.dock_token, timeout_s=2)
    ingest = start_ingest(down)

    (ingest.root / "MOV_0002.MP4").write_bytes(b"an export" * 100)

    item = ingest.wait_for("MOV_0002.MP4", ItemState.UPLOADING, lambda i: i.reason is not None)
    assert item.reason is not None and "store" in item.reason
    assert item.receipt is None and (ingest.root / "MOV_0002.MP4").is_file()
    assert list((ingest.root / "done").iterdir()) == []
    down.close()


def test_a_file_receipt_for_other_bytes_leaves_the_file_in_place(
    start_ingest: StartIngest, http_sink: HttpEvidenceSink, tmp_path: Path
) -> None:
    other = tmp_path / "other.mp4"
    other.write_bytes(b"other bytes")
    other_receipt = http_sink.put_file(
        other, hashlib.sha256(b"other bytes").hexdigest(), "other.mp4"
    )
    ingest = start_ingest(upload_file=lambda *_: other_receipt)

    (ingest.root / "MOV_0003.MP4").write_bytes(b"the armorer's export")

    item = ingest.wait_for("MOV_0003.MP4", ItemState.UPLOADING, lambda i: i.reason is not None)
    assert item.reason is not None and "the receipt is for other data" in item.reason
    assert (ingest.root / "MOV_0003.MP4").is_file()


def test_a_clip_receipt_is_not_taken_for_a_file_receipt(
    start_ingest: StartIngest, http_sink: HttpEvidenceSink, clip: SealedClip, tmp_path: Path
) -> None:
    clip.write_to(tmp_path / "staged")
    clip_receipt = upload_folder(http_sink, tmp_path / "staged")
    ingest = start_ingest(upload_file=lambda *_: clip_receipt)

    (ingest.root / "MOV_0004.MP4").write_bytes(b"an export")

    item = ingest.wait_for("MOV_0004.MP4", ItemState.UPLOADING, lambda i: i.reason is not None)
    assert item.reason is not None and "not a bwc file receipt" in item.reason
    assert (ingest.root / "MOV_0004.MP4").is_file()


def test_a_dock_restarted_after_recording_a_file_receipt_only_moves_the_file(
    start_ingest: StartIngest, http_sink: HttpEvidenceSink, table: IngestTable, tmp_path: Path
) -> None:
    root = tmp_path / "ingest"
    root.mkdir()
    (root / "MOV_0005.MP4").write_bytes(b"stored before the dock died")
    sha256 = hashlib.sha256(b"stored before the dock died").hexdigest()
    receipt = http_sink.put_file(root / "MOV_0005.MP4", sha256, "MOV_0005.MP4")
    table.record("MOV_0005.MP4", ItemKind.FOREIGN, ItemState.STORED, receipt=receipt)

    ingest = start_ingest()  # any upload fails the test

    done = ingest.wait_for("MOV_0005.MP4", ItemState.DONE)
    assert done.receipt == receipt and (root / "done" / "MOV_0005.MP4").is_file()


# refusals


def test_a_symbolic_link_is_refused_and_its_target_never_read(
    start_ingest: StartIngest, tmp_path: Path
) -> None:
    ingest = start_ingest()
    secret = tmp_path / "outside.key"
    secret.write_bytes(b"not for the evidence store")

    (ingest.root / "evidence.mp4").symlink_to(secret)

    item = ingest.wait_for("evidence.mp4", ItemState.REFUSED)
    assert item.reason is not None and "symbolic link" in item.reason
    assert item.sha256 is None and item.size is None


def test_a_folder_that_is_a_link_is_refused(start_ingest: StartIngest, tmp_path: Path) -> None:
    ingest = start_ingest()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.mp4").write_bytes(b"x")

    (ingest.root / "card").symlink_to(elsewhere, target_is_directory=True)

    item = ingest.wait_for("card", ItemState.REFUSED)
    assert item.reason is not None and "symbolic link" in item.reason


def test_a_name_with_dot_dot_is_refused(start_ingest: StartIngest) -> None:
    ingest = start_ingest()

    (ingest.root / "clip..mp4").write_bytes(b"x" * 10)

    item = ingest.wait_for("clip..mp4", ItemState.REFUSED)
    assert item.reason is not None and "'..'" in item.reason
    assert item.sha256 is None


@pytest.mark.parametrize(
    "path",
    ["/ingest/../etc/passwd", "/ingest/a/../../etc/passwd", "/etc/passwd", "/ingest/x\x07y"],
)
def test_a_path_that_climbs_out_or_hides_characters_is_refused(path: str) -> None:
    with pytest.raises(IngestRefused):
        relative_name("/ingest", path)


@pytest.mark.parametrize("path", ["/ingest", "/ingest/done/a.mp4", "/ingest/.a.mp4.Xyz12"])
def test_the_folder_itself_done_and_temporary_files_are_ignored(path: str) -> None:
    assert relative_name("/ingest", path) is None


# our sealed clips


def test_a_sealed_clip_moves_to_done_only_after_the_store_receipt(
    start_ingest: StartIngest,
    http_sink: HttpEvidenceSink,
    clip: SealedClip,
    store: Store,
    tmp_path: Path,
) -> None:
    gated = GatedSink(http_sink)
    ingest = start_ingest(gated)

    folder = drop_clip(clip, ingest.root, tmp_path)
    assert gated.completing.wait(WAIT_S), "the clip was never uploaded"

    # the store has every segment but has not answered: nothing may move yet
    uploading = ingest.folder.table.open_item(clip.clip_id)
    assert uploading is not None and uploading.state is ItemState.UPLOADING
    assert folder.is_dir() and not (ingest.root / "done" / clip.clip_id).exists()
    gated.release.set()

    done = ingest.wait_for(clip.clip_id, ItemState.DONE)
    assert not folder.exists()
    moved = ingest.root / "done" / clip.clip_id
    assert (moved / MANIFEST_NAME).read_bytes() == clip.manifest
    assert done.receipt is not None
    assert verify_receipt(done.receipt, store.public, clip.manifest).ok
    assert done.sha256 == hashlib.sha256(clip.manifest).hexdigest()
    assert store.clip_ids() == [clip.clip_id]


def test_a_clip_still_being_copied_waits_then_goes_through(
    start_ingest: StartIngest, http_sink: HttpEvidenceSink, clip: SealedClip, store: Store
) -> None:
    ingest = start_ingest(http_sink)
    folder = ingest.root / clip.clip_id
    folder.mkdir()
    write_atomic(folder / MANIFEST_NAME, clip.manifest, mode=0o644)
    for index in (0, 1):
        write_atomic(folder / segment_name(index), clip.segments[index], mode=0o644)

    # each file that lands re-checks the folder; the last of these says what is still missing
    ingest.wait_for(
        clip.clip_id,
        ItemState.WAITING,
        lambda item: item.reason == "2 of 3 segments complete: waiting for the rest",
    )
    write_atomic(folder / segment_name(2), clip.segments[2], mode=0o644)

    ingest.wait_for(clip.clip_id, ItemState.DONE)
    assert store.clip_ids() == [clip.clip_id]


def test_a_tampered_clip_is_rejected_never_uploaded_and_left_in_place(
    start_ingest: StartIngest, clip: SealedClip, uploads: list[ClipUpload], tmp_path: Path
) -> None:
    ingest = start_ingest()
    altered = bytearray(clip.segments[1])
    altered[-1] ^= 0x01
    clip.segments[1] = bytes(altered)

    folder = drop_clip(clip, ingest.root, tmp_path)

    item = ingest.wait_for(clip.clip_id, ItemState.REJECTED)
    assert item.reason is not None and "segment 1: ciphertext sha256" in item.reason
    assert uploads == [] and folder.is_dir()


def test_a_clip_from_a_camera_not_enrolled_here_is_rejected(
    start_ingest: StartIngest,
    agency_key: X25519PrivateKey,
    uploads: list[ClipUpload],
    tmp_path: Path,
) -> None:
    ingest = start_ingest()
    stranger = seal(Ed25519PrivateKey.generate(), agency_key, device_id="cam-9999")

    drop_clip(stranger, ingest.root, tmp_path)

    item = ingest.wait_for(stranger.clip_id, ItemState.REJECTED)
    assert item.reason is not None and "camera cam-9999 is not enrolled" in item.reason
    assert uploads == []


def test_a_receipt_for_other_data_leaves_the_clip_in_place(
    start_ingest: StartIngest,
    http_sink: HttpEvidenceSink,
    clip: SealedClip,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    tmp_path: Path,
) -> None:
    other = seal(device_key, agency_key, segments=1)
    other_folder = tmp_path / "other"
    other.write_to(other_folder)
    other_receipt = upload_folder(http_sink, other_folder)
    ingest = start_ingest(upload=lambda _: other_receipt)

    folder = drop_clip(clip, ingest.root, tmp_path / "staging")

    # the first update marks the start of the upload, the next one how it went
    item = ingest.wait_for(clip.clip_id, ItemState.UPLOADING, lambda i: i.reason is not None)
    assert item.reason is not None
    assert "receipt: matches manifest: the receipt is for other data" in item.reason
    assert folder.is_dir() and not (ingest.root / "done" / clip.clip_id).exists()


def test_a_store_that_is_down_keeps_the_clip_to_try_again(
    start_ingest: StartIngest,
    store_sock: socket.socket,
    clip: SealedClip,
    store: Store,
    tmp_path: Path,
) -> None:
    down = HttpEvidenceSink(url_of(store_sock), store.dock_token, timeout_s=2)
    ingest = start_ingest(down)

    folder = drop_clip(clip, ingest.root, tmp_path)

    item = ingest.wait_for(clip.clip_id, ItemState.UPLOADING, lambda i: i.reason is not None)
    assert item.reason is not None and "store" in item.reason
    assert folder.is_dir() and item.receipt is None
    down.close()


def test_a_dock_restarted_after_recording_the_receipt_only_moves_the_clip(
    start_ingest: StartIngest,
    http_sink: HttpEvidenceSink,
    table: IngestTable,
    clip: SealedClip,
    uploads: list[ClipUpload],
    tmp_path: Path,
) -> None:
    staged = tmp_path / "staged"
    clip.write_to(staged)
    receipt = upload_folder(http_sink, staged)
    root = tmp_path / "ingest"
    root.mkdir()
    staged.rename(root / clip.clip_id)
    # the dock died between recording the receipt and moving the folder
    table.record(clip.clip_id, ItemKind.CLIP, ItemState.STORED, receipt=receipt)

    ingest = start_ingest()

    done = ingest.wait_for(clip.clip_id, ItemState.DONE)
    assert done.receipt == receipt
    assert (root / "done" / clip.clip_id / MANIFEST_NAME).is_file()
    assert uploads == []


# the record


def test_the_ingest_record_shares_the_ledger_file_with_the_clips_table(tmp_path: Path) -> None:
    path = tmp_path / "dock" / "ledger.sqlite3"
    ledger = Ledger(path, wall_ns=time.time_ns)
    table = IngestTable(path, wall_ns=time.time_ns)
    try:
        ledger.note_listed("cam-0042", "clip-1", manifest_bytes=10, manifest_sha256="0" * 64)
        table.record("a.mp4", ItemKind.FOREIGN, ItemState.NEEDS_ENDPOINT, sha256="1" * 64)

        assert [r.clip_id for r in ledger.rows()] == ["clip-1"]
        assert [(i.name, i.sha256) for i in table.items()] == [("a.mp4", "1" * 64)]
        assert ledger.durability() == ("wal", 2)
    finally:
        table.close()
        ledger.close()


def test_an_item_is_never_stored_without_a_receipt(table: IngestTable) -> None:
    with pytest.raises(LedgerError, match="needs the store's receipt"):
        table.record("clip", ItemKind.CLIP, ItemState.STORED)


def test_a_stored_item_can_only_become_done(table: IngestTable) -> None:
    table.record("clip", ItemKind.CLIP, ItemState.STORED, receipt=b"{}")

    with pytest.raises(LedgerError, match="it can only become done"):
        table.record("clip", ItemKind.CLIP, ItemState.UPLOADING)
    done = table.record("clip", ItemKind.CLIP, ItemState.DONE, receipt=b"{}")
    again = table.record("clip", ItemKind.CLIP, ItemState.WAITING)  # the same name dropped anew

    assert done.id != again.id and done.state is ItemState.DONE
    assert table.open_item("clip") == again
