"""The offload pipeline: every clip from a docked camera into the evidence store, exactly once.

Per clip, one ledger state at a time (dock/ledger.py):

``listed``             fetch the manifest; verify its signature with the *enrolled* device key
``manifest_verified``  spool every segment, each checked against the signed manifest while it
                       streams; then verify the whole spooled clip with custody
``spooled``            open an upload at the evidence store
``uploading``          send what the store has not acknowledged, complete, and check the receipt
                       against the store key and the manifest; record it (durably)
``stored``             ask the camera to erase the clip with that receipt
``erased``             clean the spool: ``done``

Every step is idempotent, so a dock killed anywhere resumes from the ledger state and repeats at
most the step it was in (the store returns the same receipt for the same manifest; the camera
answers an erase it already did with yes). A manifest or segment that fails a check quarantines
the clip (files and why in ``quarantine/``); a quarantined clip is never erased. A receipt that
does not verify, or is for other data, leaves the clip ``uploading``: nothing is erased.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.clip import MANIFEST_NAME, read_limited, segment_name
from custody.errors import CustodyError
from custody.manifest import MAX_MANIFEST_BYTES, Manifest, parse_manifest
from custody.receipt import require_valid_receipt
from custody.verify import verify_clip_folder, verify_manifest
from dock import progress
from dock.camera_client import CameraClient
from dock.enrolment import EnrolledDevices
from dock.errors import (
    CameraMisbehaved,
    DockError,
    DockSetupError,
    EraseRefused,
    LedgerError,
    ReceiptRejected,
    SpoolFull,
    StoreRefused,
)
from dock.ledger import ClipRow, ClipState, Ledger
from dock.retry import Retrier
from dock.spool import Spool
from dock.store_client import EvidenceSink, UploadState
from hw.ports.clock import Clock

_log = structlog.get_logger(__name__)
T = TypeVar("T")

#: failures that concern one clip only: record them and go on with the camera's other clips
CLIP_FAILURES = (StoreRefused, ReceiptRejected, EraseRefused)


class Offloader:
    def __init__(
        self,
        *,
        ledger: Ledger,
        spool: Spool,
        sink: EvidenceSink,
        devices: EnrolledDevices,
        store_key: Ed25519PublicKey,
        retrier: Retrier,
        clock: Clock,
        on_change: Callable[[ClipRow], None] | None = None,
        on_progress: Callable[[progress.Transfer], None] | None = None,
    ) -> None:
        """``on_change`` sees each clip's row after every state change (progress display);
        ``on_progress`` the bytes of each download and upload as they stream."""
        self.ledger, self.spool, self.sink = ledger, spool, sink
        self._devices, self._store_key = devices, store_key
        self._retrier, self._clock = retrier, clock
        self._on_change = on_change
        self._on_progress = on_progress

    def offload(self, camera: CameraClient) -> list[ClipRow]:
        """Offload every clip of a docked camera; returns each clip's ledger row at the end.

        Raises CameraRefused (never offload it), and, after recording them in the ledger, the
        failures that stop the whole camera (unplugged, store down, spool full).
        """
        return [self.finish(camera, row.clip_id) for row in self.admit(camera)]

    def admit(self, camera: CameraClient) -> list[ClipRow]:
        """Check the camera's identity, add the clips it lists to the ledger; the rows to work on.

        Those are the camera's unfinished clips: listed ones, and ones the store already holds
        (their erase or clean-up is still due). A clip not yet stored that the camera no longer
        lists is left alone, with a note.
        """
        identity = self._retrier.call(camera.connect)
        listed = self._retrier.call(camera.clips)
        for clip in listed:
            self.ledger.note_listed(
                identity.device_id, clip.clip_id,
                manifest_bytes=clip.manifest_bytes, manifest_sha256=clip.manifest_sha256,
            )  # fmt: skip
        on_camera = {clip.clip_id for clip in listed}
        rows = []
        for row in self.ledger.pending(identity.device_id):
            if row.state.rank < ClipState.STORED.rank and row.clip_id not in on_camera:
                self.ledger.record_failure(
                    row.device_id, row.clip_id, "the camera no longer lists this clip"
                )
                continue
            rows.append(row)
        return rows

    def finish(
        self, camera: CameraClient, clip_id: str, *, stop: threading.Event | None = None
    ) -> ClipRow:
        """Run a clip's steps until it is done or quarantined, a step fails, or ``stop`` is set.

        ``stop`` is looked at between steps, so a dock shutting down leaves every clip at a
        ledger state (a step in flight finishes its file first).
        """
        device_id = camera.device_id
        while not (row := self.ledger.get(device_id, clip_id)).state.terminal:
            if stop is not None and stop.is_set():
                return row
            try:
                self.step(camera, clip_id)
            except CLIP_FAILURES as exc:
                return self.ledger.record_failure(device_id, clip_id, str(exc))
            except LedgerError:
                raise
            except DockError as exc:
                if not exc.retryable:  # retryable ones were counted by the retrier
                    self.ledger.record_failure(device_id, clip_id, str(exc))
                raise
        return row

    def step(self, camera: CameraClient, clip_id: str) -> ClipState:
        """Do the one step after the clip's current ledger state and record it; the new state."""
        device_id = camera.device_id
        row = self.ledger.get(device_id, clip_id)
        if row.state.rank < ClipState.STORED.rank:
            try:
                if row.state == ClipState.LISTED:
                    self._fetch_manifest(camera, row)
                elif row.state == ClipState.MANIFEST_VERIFIED or not self._spool_intact(row):
                    # After 'spooled' only a damaged spool gets here: fetch what is missing again.
                    self._spool_segments(camera, row)
            except (CameraMisbehaved, CustodyError) as exc:
                return self._quarantine(row, str(exc))
        if row.state in (ClipState.LISTED, ClipState.MANIFEST_VERIFIED):
            nxt = (
                ClipState.MANIFEST_VERIFIED if row.state == ClipState.LISTED else ClipState.SPOOLED
            )
            return self._advance(row, nxt)
        if row.state == ClipState.SPOOLED:
            manifest = self._folder(row) / MANIFEST_NAME
            upload = self._retry(row, lambda: self.sink.create_upload(manifest))
            return self._advance(row, ClipState.UPLOADING, upload_id=upload.upload_id)
        if row.state == ClipState.UPLOADING:
            receipt = self._upload(row)
            return self._advance(row, ClipState.STORED, receipt=receipt)
        if row.state == ClipState.STORED:
            assert row.receipt is not None  # the ledger refuses 'stored' without one
            receipt = row.receipt
            self._retry(row, lambda: camera.erase(clip_id, receipt))
            return self._advance(row, ClipState.ERASED)
        if row.state == ClipState.ERASED:
            self.spool.remove(device_id, clip_id)
            return self._advance(row, ClipState.DONE)
        raise LedgerError(f"clip {clip_id} is {row.state.value}: there is no step after it")

    def _advance(
        self,
        row: ClipRow,
        state: ClipState,
        *,
        upload_id: str | None = None,
        receipt: bytes | None = None,
    ) -> ClipState:
        done = self.ledger.advance(
            row.device_id, row.clip_id, state, upload_id=upload_id, receipt=receipt
        )
        _log.info("clip.advanced", device_id=row.device_id, clip_id=row.clip_id, state=state)
        self._changed(done)
        return done.state

    def _changed(self, row: ClipRow) -> None:
        if self._on_change is not None:
            self._on_change(row)

    def _tracker(self, row: ClipRow, step: str, total: int) -> progress.Tracker:
        report = self._on_progress or (lambda _: None)
        return progress.Tracker(row.device_id, row.clip_id, step, total, report)

    def _retry(self, row: ClipRow, action: Callable[[], T]) -> T:
        def count(exc: DockError) -> None:
            self.ledger.record_failure(row.device_id, row.clip_id, str(exc))

        return self._retrier.call(action, on_failure=count)

    def _folder(self, row: ClipRow) -> Path:
        return self.spool.clip_folder(row.device_id, row.clip_id)

    def _fetch_manifest(self, camera: CameraClient, row: ClipRow) -> None:
        folder = self.spool.prepare(row.device_id, row.clip_id)
        self._retry(row, lambda: camera.fetch_manifest(
            row.clip_id, row.manifest_bytes, row.manifest_sha256, folder / MANIFEST_NAME
        ))  # fmt: skip
        self._verified_manifest(row)

    def _verified_manifest(self, row: ClipRow) -> tuple[Manifest, bytes]:
        """The spooled manifest, signed by the key enrolled for the camera and for this clip."""
        data = read_limited(self._folder(row) / MANIFEST_NAME, MAX_MANIFEST_BYTES)
        verify_manifest(data, self._devices.key_for(row.device_id)).raise_for_failure()
        manifest = parse_manifest(data)
        header = manifest.header
        if header.clip_id != row.clip_id or header.info.device_id != row.device_id:
            raise CameraMisbehaved(
                f"the camera listed clip {row.clip_id} of {row.device_id} but its manifest is "
                f"for clip {header.clip_id} of {header.info.device_id}"
            )
        return manifest, data

    def _spool_intact(self, row: ClipRow) -> bool:
        """Every file of the clip is in the spool at its signed size (cheap: no hashing)."""
        folder = self._folder(row)
        try:
            manifest = parse_manifest(read_limited(folder / MANIFEST_NAME, MAX_MANIFEST_BYTES))
            return all(
                (folder / segment_name(s.index)).stat().st_size == s.size for s in manifest.segments
            )
        except (CustodyError, OSError):
            return False

    def _spool_segments(self, camera: CameraClient, row: ClipRow) -> None:
        self._fetch_manifest(camera, row)  # no transfer when the spooled one is intact
        manifest, _ = self._verified_manifest(row)
        folder = self._folder(row)
        self._require_room(row, _still_to_spool(folder, manifest))
        sizes = [record.size for record in manifest.segments]
        tracker = self._tracker(row, "downloading", sum(sizes))
        with progress.reporting(tracker.moved):
            for n, record in enumerate(manifest.segments):
                dest = folder / segment_name(record.index)
                fetch = partial(camera.fetch_segment, row.clip_id, record, dest)
                self._retry(row, partial(_counted, tracker, sum(sizes[:n]), fetch))
        device_key = self._devices.key_for(row.device_id)
        verify_clip_folder(folder, device_key).raise_for_failure()

    def _require_room(self, row: ClipRow, needed: int) -> None:
        """Never start spooling a clip the disk cannot hold (with its reserve) to the end."""
        if needed == 0:
            return  # all there already (a crash just before 'spooled'): nothing to write
        try:
            self.spool.require_room(row.device_id, row.clip_id, needed)
        except SpoolFull as exc:  # retryable, so finish() does not record it: say why it waits
            self.ledger.record_failure(row.device_id, row.clip_id, str(exc))
            raise

    def _upload(self, row: ClipRow) -> bytes:
        """Send what the store lacks, complete, and return the checked receipt's file bytes."""
        folder = self._folder(row)
        try:
            parsed, manifest = self._verified_manifest(row)
        except CustodyError as exc:  # checked just before: only the dock's own disk can do this
            raise DockSetupError(f"the spooled clip {row.clip_id} changed: {exc}") from exc
        state = self._upload_state(row, folder)
        sizes = {record.index: record.size for record in parsed.segments}
        done = sum(sizes.get(index, 0) for index in state.acknowledged)
        tracker = self._tracker(row, "uploading", sum(sizes.values()))
        with progress.reporting(tracker.moved):
            for index in state.missing:
                segment = folder / segment_name(index)
                put = partial(self.sink.put_segment, state.upload_id, index, segment)
                self._retry(row, partial(_counted, tracker, done, put))
                done += sizes.get(index, 0)
        receipt = self._retry(row, lambda: self.sink.complete(state.upload_id))
        try:
            checked = require_valid_receipt(receipt, self._store_key, manifest)
        except CustodyError as exc:
            raise ReceiptRejected(
                f"the store's receipt for clip {row.clip_id} is not valid ({exc}): "
                "the clip is not erased; check the store"
            ) from exc
        return checked.to_bytes()

    def _upload_state(self, row: ClipRow, folder: Path) -> UploadState:
        assert row.upload_id is not None  # recorded with 'uploading'
        upload_id = row.upload_id
        try:
            return self._retry(row, lambda: self.sink.status(upload_id))
        except StoreRefused as exc:
            if exc.status != 404:
                raise
        # The store no longer knows the upload: open it again (it finds the same manifest).
        return self._retry(row, lambda: self.sink.create_upload(folder / MANIFEST_NAME))

    def _quarantine(self, row: ClipRow, why: str) -> ClipState:
        where = self.spool.quarantine(
            row.device_id, row.clip_id, why, wall_ns=self._clock.wall_ns()
        )
        _log.warning(
            "clip.quarantined", device_id=row.device_id, clip_id=row.clip_id, why=why,
            folder=str(where),
        )  # fmt: skip
        done = self.ledger.advance(row.device_id, row.clip_id, ClipState.QUARANTINED, error=why)
        self._changed(done)
        return done.state


def _counted(tracker: progress.Tracker, before: int, action: Callable[[], T]) -> T:
    """``action`` (one file's transfer) counted from ``before`` bytes, every try afresh."""
    tracker.file(before)
    return action()


def _still_to_spool(folder: Path, manifest: Manifest) -> int:
    """Bytes of the clip's segments not yet in the spool (a finished or partial file counts)."""
    needed = 0
    for record in manifest.segments:
        final = folder / segment_name(record.index)
        part = final.with_name(final.name + ".part")
        have = 0
        for path in (final, part):
            try:
                have = max(have, min(path.stat().st_size, record.size))
            except OSError:
                continue
        needed += record.size - have
    return needed
