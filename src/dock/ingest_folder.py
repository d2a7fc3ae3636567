"""The ingest folder: footage an armorer drops by hand, hashed, recorded, uploaded, moved to done/.

Two kinds of item (recorded in :mod:`dock.ingest_table`):

* **our sealed clip folders** (a top-level folder named by its clip id, with ``manifest.jsonl``
  and ``seg-NNNNNN.bwcs``): verified with custody against the enrolled device key, handed to the
  clip uploader, and moved to ``done/`` only once the store's receipt verifies against the
  manifest and is recorded durably. There is no erase step: the dock owns no camera here.
* **foreign files** (anything else, e.g. MP4 exports of another maker's mass-storage camera):
  hashed (SHA-256, streaming, without following links), recorded, and sent to the evidence store
  with that hash and the file's name (:meth:`EvidenceSink.put_file`). The store re-hashes the
  bytes and signs a file receipt (docs/formats/file-receipt.md); the file is moved to ``done/``
  only once that receipt verifies with the store key, names the same SHA-256 and size as the
  dock's own hash, and is recorded durably. A store that is down or refuses leaves the file
  where it is (``uploading``, with the reason) for the next scan.

An item is taken up when it is complete: on Linux when the writer closes it (inotify's
close-write, watchdog's ``FileClosedEvent``) or renames it into place; everywhere, by a rescan
every ``rescan_s`` that takes up files whose size and mtime did not change since the last one.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from watchdog.events import (
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from custody.clip import MANIFEST_NAME, segment_name
from custody.clipid import check_clip_id
from custody.errors import CustodyError
from custody.file_receipt import check_file_name, require_valid_file_receipt
from custody.receipt import require_valid_receipt
from dock.errors import DockError, IngestRefused
from dock.ingest_clip import ClipCheck, NoFollowSegments, check_clip
from dock.ingest_names import (
    DONE_FOLDER,
    file_stat,
    move_to_done,
    opened_file,
    relative_name,
    sha256_of,
)
from dock.ingest_table import IngestItem, IngestTable, ItemKind, ItemState
from dock.store_client import EvidenceSink

_log = structlog.get_logger(__name__)

#: states a scan takes up again even when the files did not change
_RETRIED = frozenset({ItemState.UPLOADING, ItemState.STORED})


@dataclass(frozen=True)
class ClipUpload:
    """A verified clip for the uploader.

    ``segments`` reads without following links; ``folder`` is for sinks that stream files by
    path. Either way the receipt must match ``manifest``, the bytes that were verified, or the
    folder is not moved.
    """

    clip_id: str
    device_id: str
    manifest: bytes
    folder: Path
    segments: NoFollowSegments


#: uploads a verified clip to the evidence store and returns the store's receipt (JSON bytes)
UploadClip = Callable[[ClipUpload], bytes]
#: uploads a foreign file (path, the dock's SHA-256, its name) and returns the file receipt
UploadFile = Callable[[Path, str, str], bytes]


def file_uploader(sink: EvidenceSink) -> UploadFile:
    """A foreign-file uploader over the pipeline's evidence sink."""
    return sink.put_file


def sink_uploader(sink: EvidenceSink) -> UploadClip:
    """An uploader over the pipeline's evidence sink, sending only what it has not acknowledged."""

    def upload(clip: ClipUpload) -> bytes:
        state = sink.create_upload(clip.folder / MANIFEST_NAME)
        if not state.stored:
            for index in state.missing:
                sink.put_segment(state.upload_id, index, clip.folder / segment_name(index))
        return sink.complete(state.upload_id)

    return upload


class _Events(FileSystemEventHandler):
    """watchdog's thread only queues paths; the worker does the reading."""

    def __init__(self, inbox: queue.Queue[str]) -> None:
        self._inbox = inbox

    def on_closed(self, event: FileClosedEvent) -> None:
        self._inbox.put(_text(event.src_path))

    def on_moved(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileMovedEvent | DirMovedEvent):
            self._inbox.put(_text(event.dest_path))

    def on_created(self, event: FileSystemEvent) -> None:
        # a link is never closed after writing: take it up now, to refuse it
        path = _text(event.src_path)
        if isinstance(event, FileCreatedEvent) and Path(path).is_symlink():
            self._inbox.put(path)


def _text(path: str | bytes) -> str:
    return os.fsdecode(path)


class IngestFolder:
    """Watches ``root`` from ``start`` to ``stop``.

    One worker thread does every read, upload and move, so an item is never handled twice at
    once; watchdog's thread only queues the paths its events name.
    """

    def __init__(
        self,
        root: Path,
        table: IngestTable,
        *,
        upload_clip: UploadClip,
        upload_file: UploadFile,
        device_key: Callable[[str], Ed25519PublicKey],
        store_key: Ed25519PublicKey,
        rescan_s: float = 30.0,
        observer: BaseObserver | None = None,
    ) -> None:
        if rescan_s <= 0:
            raise ValueError(f"rescan_s must be positive, not {rescan_s}")
        self.root = root
        self.table = table
        self._upload_clip = upload_clip
        self._upload_file = upload_file
        self._device_key = device_key
        self._store_key = store_key
        self._rescan_s = rescan_s
        self._observer = observer if observer is not None else Observer()
        self._inbox: queue.Queue[str] = queue.Queue()
        self._subscribers: list[Callable[[IngestItem], None]] = []
        self._previous_scan: dict[PurePosixPath, tuple[int, int]] = {}
        #: the files of each item when the scan last took it up
        self._taken: dict[PurePosixPath, frozenset[tuple[PurePosixPath, tuple[int, int]]]] = {}
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._root_fd: int | None = None

    def updates(self) -> queue.Queue[IngestItem]:
        """A queue that receives every item as it is recorded (call before ``start``)."""
        inbox: queue.Queue[IngestItem] = queue.Queue()
        self._subscribers.append(inbox.put)
        return inbox

    def start(self) -> None:
        try:
            (self.root / DONE_FOLDER).mkdir(parents=True, exist_ok=True)
            self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise DockError(
                f"cannot open the ingest folder {self.root} ({exc.strerror}): create it, or "
                "fix ingest_dir in the dock config"
            ) from exc
        self._observer.schedule(_Events(self._inbox), str(self.root), recursive=True)
        self._observer.start()
        self._worker = threading.Thread(target=self._run, name="ingest-folder", daemon=True)
        self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._inbox.put("")
        self._observer.stop()
        self._observer.join(timeout_s)
        if self._worker is not None:
            self._worker.join(timeout_s)
            self._worker = None
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None

    # the worker

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._scan()
            except Exception:
                # e.g. the folder was unmounted: say so, and look again at the next scan
                _log.exception("ingest folder scan failed", folder=str(self.root))
            self._drain(time.monotonic() + self._rescan_s)

    def _drain(self, until: float) -> None:
        """Take up the paths events name until the next scan is due (or until stopped)."""
        while not self._stop.is_set() and (left := until - time.monotonic()) > 0:
            try:
                path = self._inbox.get(timeout=left)
            except queue.Empty:
                return
            if path:  # stop() wakes the worker with an empty path
                self._take_up(path)

    def _scan(self) -> None:
        """Take up every item whose files did not change since the previous scan.

        An item already taken up with the same files is left alone, unless its upload or its
        move to done/ is still to be (re)tried.
        """
        current = self._walk()
        items: dict[PurePosixPath, list[tuple[PurePosixPath, tuple[int, int]]]] = {}
        for name, seen in current.items():
            items.setdefault(_item_of(name), []).append((name, seen))
        self._previous_scan, previous = current, self._previous_scan
        for key, files in items.items():
            snapshot = frozenset(files)
            if any(previous.get(name) != seen for name, seen in files):
                continue  # still changing: wait for the next scan
            open_item = self.table.open_item(str(key))
            retry = open_item is not None and open_item.state in _RETRIED
            if self._taken.get(key) == snapshot and not retry:
                continue
            self._taken[key] = snapshot
            self._take_up(str(self.root / files[0][0]))
        self._taken = {key: files for key, files in self._taken.items() if key in items}

    def _walk(self) -> dict[PurePosixPath, tuple[int, int]]:
        """(size, mtime) of every entry but folders, links included, outside done/."""
        found: dict[PurePosixPath, tuple[int, int]] = {}
        walk = os.fwalk(".", dir_fd=self._fd(), follow_symlinks=False)
        for dirpath, dirnames, filenames, dirfd in walk:
            if dirpath == ".":
                dirnames[:] = [d for d in dirnames if d != DONE_FOLDER]
            for leaf in [*filenames, *dirnames]:
                try:
                    info = os.stat(leaf, dir_fd=dirfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not stat.S_ISDIR(info.st_mode):
                    found[PurePosixPath(dirpath, leaf)] = (info.st_size, info.st_mtime_ns)
        return found

    def _take_up(self, path: str) -> None:
        try:
            name = relative_name(str(self.root), path)
            if name is not None:
                self._process(name)
        except IngestRefused as exc:
            self._record(os.path.relpath(path, self.root), ItemKind.FOREIGN, ItemState.REFUSED,
                         reason=str(exc))  # fmt: skip
        except FileNotFoundError:
            pass  # gone before we got to it (moved on, or deleted): nothing to record
        except Exception:
            # the worker must outlive one bad item; the error stays in the log for the armorer
            _log.exception("ingest item failed", path=path)

    def _process(self, name: PurePosixPath) -> IngestItem | None:
        """Take up the item that ``name`` belongs to: a file, or the clip folder it sits in."""
        top = PurePosixPath(name.parts[0])
        info = file_stat(self._fd(), top)
        if stat.S_ISDIR(info.st_mode) and _is_clip_id(top.name):
            return self._process_clip(top)
        return self._process_foreign(name)

    # foreign files

    def _process_foreign(self, name: PurePosixPath) -> IngestItem | None:
        key = str(name)
        item = self.table.open_item(key)
        if item is not None and item.state is ItemState.STORED:
            return self._finish(name, item)
        try:
            check_file_name(name.name)
        except CustodyError as exc:
            raise IngestRefused(f"{key}: the store takes no such file name ({exc})") from exc
        with opened_file(self._fd(), name) as fd:
            sha256, size = sha256_of(fd)
        self._record(key, ItemKind.FOREIGN, ItemState.UPLOADING, size=size, sha256=sha256)
        try:
            # The sink reads the file again by path: the receipt's check against this hash
            # catches a file that changed (or was swapped) in between.
            receipt = self._upload_file(self.root / name, sha256, name.name)
            require_valid_file_receipt(receipt, self._store_key, sha256=sha256, size=size)
        except (DockError, CustodyError) as exc:
            # kept as uploading: the next scan tries again; the file stays where it is
            return self._record(key, ItemKind.FOREIGN, ItemState.UPLOADING, reason=str(exc))
        stored = self._record(key, ItemKind.FOREIGN, ItemState.STORED, receipt=receipt)
        return self._finish(name, stored)

    # our sealed clips

    def _process_clip(self, folder: PurePosixPath) -> IngestItem | None:
        key = str(folder)
        item = self.table.open_item(key)
        if item is not None and item.state is ItemState.STORED:
            return self._finish(folder, item)
        checked = check_clip(self._fd(), folder, self._device_key)
        if not isinstance(checked, ClipCheck):
            state, reason = checked
            return self._record(key, ItemKind.CLIP, state, reason=reason)
        self._record(key, ItemKind.CLIP, ItemState.UPLOADING, size=checked.byte_count,
                     sha256=checked.manifest_sha256)  # fmt: skip
        try:
            receipt = self._upload_clip(
                ClipUpload(
                    folder.name,
                    checked.device_id,
                    checked.manifest,
                    self.root / folder,
                    checked.segments,
                )
            )
            require_valid_receipt(receipt, self._store_key, checked.manifest)
        except (DockError, CustodyError) as exc:
            # kept as uploading: the next scan tries again; the folder stays where it is
            return self._record(key, ItemKind.CLIP, ItemState.UPLOADING, reason=str(exc))
        stored = self._record(key, ItemKind.CLIP, ItemState.STORED, receipt=receipt)
        return self._finish(folder, stored)

    def _finish(self, name: PurePosixPath, item: IngestItem) -> IngestItem:
        assert item.receipt is not None  # the table allows 'stored' only with a receipt
        moved = move_to_done(self._fd(), name, suffix=str(item.id))
        return self._record(item.name, item.kind, ItemState.DONE, receipt=item.receipt,
                            reason=f"moved to {moved}")  # fmt: skip

    # helpers

    def _record(
        self,
        name: str,
        kind: ItemKind,
        state: ItemState,
        *,
        size: int | None = None,
        sha256: str | None = None,
        reason: str | None = None,
        receipt: bytes | None = None,
    ) -> IngestItem:
        item = self.table.record(
            name, kind, state, size=size, sha256=sha256, reason=reason, receipt=receipt
        )
        if state in (ItemState.REFUSED, ItemState.REJECTED):
            _log.warning("ingest item not taken", item=name, state=str(state), reason=item.reason)
        for subscriber in self._subscribers:
            subscriber(item)
        return item

    def _fd(self) -> int:
        if self._root_fd is None:
            raise DockError("the ingest folder is not started: call start() first")
        return self._root_fd


def _item_of(name: PurePosixPath) -> PurePosixPath:
    """The item a file belongs to: its clip folder, or the file itself."""
    top = name.parts[0]
    return PurePosixPath(top) if len(name.parts) > 1 and _is_clip_id(top) else name


def _is_clip_id(name: str) -> bool:
    try:
        check_clip_id(name)
    except CustodyError:
        return False
    return True
