"""The sealed clips on the card, as the offload API lists, serves and erases them.

Only a clip whose manifest ends in a seal is offered: the clip being recorded, a staging folder
(``.<id>.creating``) and anything recovery has not sealed yet are never listed or served. Every
id from a request is checked against the contract's pattern before it is joined to a path, and
every file is reached through the Storage port, which refuses a path leaving its root anyway.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import BinaryIO

from custody.canonical import sha256_hex
from custody.clip import MANIFEST_NAME, segment_name
from custody.errors import FormatError
from custody.manifest import MAX_MANIFEST_BYTES, Manifest, parse_manifest
from device.durable import join
from device.errors import OffloadBadRequest, OffloadNotFound
from hw.ports.storage import Storage

#: docs/formats/offload.md: a clip id is the clip folder's name
CLIP_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")
INDEX_RE = re.compile(r"[0-9]{1,9}")
CHUNK = 64 * 1024


@dataclass(frozen=True)
class SealedClip:
    """One listed clip: what ``GET /clips`` answers, plus the parsed manifest."""

    clip_id: str
    manifest: Manifest
    manifest_bytes: int
    manifest_sha256: str

    @property
    def segment_count(self) -> int:
        seal = self.manifest.seal
        return seal.segment_count if seal is not None else 0

    @property
    def start_wall_ns(self) -> int:
        return self.manifest.header.info.start_wall_ns

    def to_json(self) -> dict[str, object]:
        seal = self.manifest.seal
        assert seal is not None  # only sealed manifests become a SealedClip
        return {
            "clip_id": self.clip_id,
            "segment_count": seal.segment_count,
            "total_bytes": seal.total_bytes,
            "manifest_bytes": self.manifest_bytes,
            "manifest_sha256": self.manifest_sha256,
            "recovered": seal.recovered,
        }


def check_path_clip_id(text: str) -> str:
    if not CLIP_ID_RE.fullmatch(text):
        raise OffloadBadRequest(
            f"clip id {text[:80]!r} does not match {CLIP_ID_RE.pattern}: use an id from GET /clips"
        )
    return text


def check_path_index(text: str) -> int:
    if not INDEX_RE.fullmatch(text):
        raise OffloadBadRequest(f"segment index {text[:20]!r} is not a decimal number")
    return int(text)


class ClipStore:
    """Reads sealed clips under ``root`` and deletes erased ones; sealed manifests are cached."""

    def __init__(self, storage: Storage, root: str) -> None:
        self.storage = storage
        self.root = root
        self._lock = threading.Lock()
        self._cache: dict[str, SealedClip] = {}  # a sealed manifest never changes

    def sealed(self, *, excluding: frozenset[str] = frozenset()) -> list[SealedClip]:
        """Every sealed clip, oldest first; ``excluding`` names clips being or already erased."""
        if not self.storage.exists(self.root):
            return []
        clips = []
        for name in self.storage.listdir(self.root):
            if name in excluding or not CLIP_ID_RE.fullmatch(name):
                continue  # staging folders and temp files start with a dot
            clip = self._load(name)
            if clip is not None:
                clips.append(clip)
        return sorted(clips, key=lambda c: (c.start_wall_ns, c.clip_id))

    def get(self, clip_id: str) -> SealedClip:
        """The sealed clip ``clip_id``; 404 when there is none (or it is still being recorded)."""
        clip = self._load(check_path_clip_id(clip_id))
        if clip is None:
            raise OffloadNotFound(f"no sealed clip {clip_id} on this camera: see GET /clips")
        return clip

    def manifest_path(self, clip_id: str) -> str:
        return join(join(self.root, clip_id), MANIFEST_NAME)

    def segment_path(self, clip: SealedClip, index: int) -> str:
        if not 0 <= index < clip.segment_count:
            raise OffloadNotFound(
                f"clip {clip.clip_id} has segments 0..{clip.segment_count - 1}, not {index}"
            )
        return join(join(self.root, clip.clip_id), segment_name(index))

    def manifest_bytes(self, clip_id: str) -> bytes:
        return self.storage.read_bytes(self.manifest_path(clip_id))

    def open(self, path: str) -> tuple[BinaryIO, int]:
        """A file for streaming, and its size; 404 when it is gone."""
        try:
            return self.storage.open_read(path), self.storage.size(path)
        except FileNotFoundError as exc:
            raise OffloadNotFound(f"{path} is not on the card: list the clips again") from exc

    def delete(self, clip_id: str, segment_count: int) -> None:
        """Remove the segments, then anything else, then the manifest, then the folder.

        Each removal is made durable before the next kind starts, so a power cut leaves the
        manifest (and its wrapped key) until every segment is gone, and a repeated erase finishes.
        """
        folder = join(self.root, check_path_clip_id(clip_id))
        names = self.storage.listdir(folder) if self.storage.exists(folder) else []
        segments = {segment_name(i) for i in range(segment_count)}
        order = [n for n in names if n in segments]
        order += [n for n in names if n not in segments and n != MANIFEST_NAME]
        for name in order:
            self.storage.remove(join(folder, name))
        if order:
            self.storage.fsync_dir(folder)
        if MANIFEST_NAME in names:
            self.storage.remove(join(folder, MANIFEST_NAME))
            self.storage.fsync_dir(folder)
        if self.storage.exists(folder):
            self.storage.rmdir(folder)
            self.storage.fsync_dir(self.root)
        with self._lock:
            self._cache.pop(clip_id, None)

    def _load(self, clip_id: str) -> SealedClip | None:
        with self._lock:
            cached = self._cache.get(clip_id)
        path = self.manifest_path(clip_id)
        if not self.storage.exists(path):
            return None
        if cached is not None:
            return cached
        if self.storage.size(path) > MAX_MANIFEST_BYTES:
            return None  # not a manifest this camera wrote; recovery reports such folders
        data = self.storage.read_bytes(path)
        try:
            manifest = parse_manifest(data)
        except FormatError:
            return None  # torn or being written: not sealed, so not offered
        if manifest.seal is None or manifest.header.clip_id != clip_id:
            return None
        clip = SealedClip(clip_id, manifest, len(data), sha256_hex(data))
        with self._lock:
            self._cache[clip_id] = clip
        return clip
