"""Test-side helpers for clip writer and recovery tests: a power-cut switch and clip checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import MANIFEST_NAME, FolderSegments, decrypt_segments
from custody.manifest import Manifest, parse_manifest
from custody.report import Report
from custody.verify import verify_clip_folder
from device.clip_head import ClipStart
from device.clip_writer import ClipWriter
from device.config import DeviceConfig
from hw.ports.storage import Storage, StorageFile
from hw.sim.clock import SimClock
from hw.sim.storage import SimStorage

CLIPS = "clips"
AUDIT = "audit/device.jsonl"
SECOND = 10**9

Predicate = Callable[[str, str], bool]


class PowerCutStorage:
    """A SimStorage with a switch that cuts its power just before a chosen write-side operation.

    Operations are ``open_write``, ``open_append``, ``write``, ``fsync``, ``close``, ``rename``,
    ``fsync_dir``, ``mkdir``, ``remove`` and ``rmdir``; reads pass straight through. ``ops``
    counts them, so a test can cut "after K operations" or "before the append to manifest.jsonl".
    """

    def __init__(self, sim: SimStorage) -> None:
        self.sim = sim
        self.ops = 0
        self.cuts = 0
        self._cut_at: int | None = None
        self._when: Predicate | None = None

    def cut_after(self, count: int) -> None:
        """Cut the power just before the ``count``-th operation from now."""
        self._cut_at = self.ops + count

    def cut_when(self, predicate: Predicate) -> None:
        """Cut the power just before the first operation ``predicate(op, path)`` accepts."""
        self._when = predicate

    def disarm(self) -> None:
        self._cut_at, self._when = None, None

    def tick(self, op: str, path: str) -> None:
        self.ops += 1
        due = self._cut_at is not None and self.ops >= self._cut_at
        if due or (self._when is not None and self._when(op, path)):
            self.disarm()
            self.cuts += 1
            self.sim.power_cut()

    @property
    def root(self) -> Path:
        return self.sim.root

    def open_write(self, path: str, *, append: bool = False) -> StorageFile:
        self.tick("open_append" if append else "open_write", path)
        return _CutFile(self, self.sim.open_write(path, append=append), path)

    def rename(self, src: str, dst: str) -> None:
        self.tick("rename", src)
        self.sim.rename(src, dst)

    def fsync_dir(self, path: str) -> None:
        self.tick("fsync_dir", path)
        self.sim.fsync_dir(path)

    def mkdir(self, path: str) -> None:
        self.tick("mkdir", path)
        self.sim.mkdir(path)

    def remove(self, path: str) -> None:
        self.tick("remove", path)
        self.sim.remove(path)

    def rmdir(self, path: str) -> None:
        self.tick("rmdir", path)
        self.sim.rmdir(path)

    def open_read(self, path: str) -> BinaryIO:
        return self.sim.open_read(path)

    def read_bytes(self, path: str) -> bytes:
        return self.sim.read_bytes(path)

    def listdir(self, path: str) -> list[str]:
        return self.sim.listdir(path)

    def exists(self, path: str) -> bool:
        return self.sim.exists(path)

    def size(self, path: str) -> int:
        return self.sim.size(path)

    def free_bytes(self) -> int:
        return self.sim.free_bytes()

    def total_bytes(self) -> int:
        return self.sim.total_bytes()


class _CutFile:
    def __init__(self, storage: PowerCutStorage, inner: StorageFile, path: str) -> None:
        self._storage = storage
        self._inner = inner
        self._path = path

    def write(self, data: bytes) -> int:
        self._storage.tick("write", self._path)
        return self._inner.write(data)

    def fsync(self) -> None:
        self._storage.tick("fsync", self._path)
        self._inner.fsync()

    def close(self) -> None:
        self._storage.tick("close", self._path)
        self._inner.close()

    def __enter__(self) -> _CutFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def payload(index: int, size: int = 1500) -> bytes:
    """Stand-in plaintext for segment ``index`` (the real ones are fMP4 from the segmenter)."""
    return bytes((index * 31 + i) % 251 for i in range(size))


def start_clip(
    storage: Storage,
    config: DeviceConfig,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    clock: SimClock,
    *,
    clip_id: str | None = None,
) -> ClipWriter:
    start = ClipStart(
        triggers=[{"kind": "button", "gesture": "double_press"}],
        first_frame_monotonic_ns=clock.monotonic_ns() - 30 * SECOND,
        pre_event_ns=30 * SECOND,
        time_sync_offset_ns=-2_500_000,
    )
    return ClipWriter.create(
        storage,
        CLIPS,
        config=config,
        device_key=device_key,
        agency_public=agency_key.public_key(),
        clock=clock,
        start=start,
        clip_id=clip_id,
    )


def add_segments(writer: ClipWriter, clock: SimClock, count: int, *, first: int = 0) -> None:
    for index in range(first, first + count):
        clock.advance(1)
        writer.add_segment(payload(index), index * SECOND, (index + 1) * SECOND)


def clip_folder(storage: Storage, clip_id: str) -> Path:
    return storage.root / CLIPS / clip_id


def read_manifest(storage: Storage, clip_id: str) -> Manifest:
    return parse_manifest((clip_folder(storage, clip_id) / MANIFEST_NAME).read_bytes())


def verify(
    storage: Storage, clip_id: str, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> Report:
    return verify_clip_folder(clip_folder(storage, clip_id), device_key.public_key(), agency_key)


def plaintexts(storage: Storage, clip_id: str, agency_key: X25519PrivateKey) -> list[bytes]:
    folder = clip_folder(storage, clip_id)
    manifest = read_manifest(storage, clip_id)
    return list(decrypt_segments(FolderSegments(folder), manifest, agency_key))
