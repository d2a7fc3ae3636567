"""Checking a sealed clip folder dropped in the ingest folder, with custody's own verifier.

A clip folder that is still being copied is *waiting* (a segment missing or shorter than the
manifest says), not rejected; one that is complete and fails a check is *rejected* with the
check's own words; a link anywhere in it is *refused*. Files are read through descriptors that
never follow links (:mod:`dock.ingest_names`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.clip import MANIFEST_NAME, segment_name
from custody.errors import FormatError
from custody.manifest import MAX_MANIFEST_BYTES, manifest_digest, parse_manifest
from custody.verify import verify_clip
from dock.errors import DockError, IngestRefused
from dock.ingest_names import file_stat, opened_dir, opened_file
from dock.ingest_table import ItemState

_SEGMENT_RE = re.compile(r"seg-(\d{6,})\.bwcs")


class NoFollowSegments:
    """custody's ``SegmentSource`` over a clip folder below the ingest folder, links refused."""

    def __init__(self, root_fd: int, folder: PurePosixPath) -> None:
        self._root_fd = root_fd
        self.folder = folder

    def indices(self) -> list[int]:
        with opened_dir(self._root_fd, self.folder.parts, self.folder) as fd:
            # listed through the descriptor: a path could have been swapped for a link
            found = [_SEGMENT_RE.fullmatch(leaf) for leaf in os.listdir(fd)]  # noqa: PTH208
        return sorted(int(m.group(1)) for m in found if m is not None)

    def read(self, index: int, limit: int) -> bytes | None:
        try:
            with opened_file(self._root_fd, self.folder / segment_name(index)) as fd:
                return _read_up_to(fd, limit)
        except FileNotFoundError:
            return None

    def size(self, index: int) -> int | None:
        try:
            return file_stat(self._root_fd, self.folder / segment_name(index)).st_size
        except FileNotFoundError:
            return None

    def name(self, index: int) -> str:
        return segment_name(index)


@dataclass(frozen=True)
class ClipCheck:
    """A complete clip folder that custody verified against the enrolled device key."""

    device_id: str
    manifest: bytes
    manifest_sha256: str
    byte_count: int  #: manifest plus segments, as the store's receipt will say
    segments: NoFollowSegments


def check_clip(
    root_fd: int,
    folder: PurePosixPath,
    device_key: Callable[[str], Ed25519PublicKey],
) -> ClipCheck | tuple[ItemState, str]:
    """The verified clip, or the state it stays in (waiting, rejected, refused) and why."""
    try:
        return _check(root_fd, folder, device_key)
    except IngestRefused as exc:
        return ItemState.REFUSED, str(exc)


def _check(
    root_fd: int, folder: PurePosixPath, device_key: Callable[[str], Ed25519PublicKey]
) -> ClipCheck | tuple[ItemState, str]:
    try:
        with opened_file(root_fd, folder / MANIFEST_NAME) as fd:
            data = _read_up_to(fd, MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        return ItemState.WAITING, f"no {MANIFEST_NAME} yet: copy the whole clip folder"
    try:
        manifest = parse_manifest(data)
        digest = manifest_digest(data)
    except FormatError as exc:
        return ItemState.REJECTED, f"{MANIFEST_NAME}: {exc}"
    if manifest.header.clip_id != folder.name:
        return ItemState.REJECTED, (
            f"the folder is named {folder.name} but holds clip {manifest.header.clip_id}: "
            "drop clip folders under their own names"
        )
    try:
        key = device_key(digest.device_id)
    except DockError as exc:
        return ItemState.REJECTED, str(exc)
    segments = NoFollowSegments(root_fd, folder)
    records = manifest.segments
    complete = [
        r for r in records if (size := segments.size(r.index)) is not None and size >= r.size
    ]
    if len(complete) < len(records):
        return ItemState.WAITING, (
            f"{len(complete)} of {len(records)} segments complete: waiting for the rest"
        )
    report = verify_clip(segments, data, key)
    first = report.first_failure
    if first is not None:
        return ItemState.REJECTED, f"verification failed: {first.describe()}"
    return ClipCheck(digest.device_id, data, digest.manifest_sha256, digest.byte_count, segments)


def _read_up_to(fd: int, limit: int) -> bytes:
    parts: list[bytes] = []
    left = limit
    while left > 0 and (chunk := os.read(fd, min(left, 1024 * 1024))):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
