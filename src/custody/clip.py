"""A clip folder: ``manifest.jsonl`` plus ``seg-NNNNNN.bwcs`` segment files.

Layout (docs/formats/manifest.md, "Clip folder")::

    CLIP/manifest.jsonl        the manifest
    CLIP/seg-000000.bwcs       segment 0 (index zero-padded to at least 6 digits)
    CLIP/seg-000001.bwcs       ...
    CLIP/receipt.json          optional: the evidence store's receipt, once stored

Also here: a segment source protocol the verifier reads through, and ``seal_clip``, which builds
a complete sealed clip in memory (the evidence store, tools and tests use it; the device writes
segments one at a time through its storage port with ``seal_segment`` and ``ManifestWriter``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from custody.canonical import sha256_hex
from custody.clipid import new_clip_id
from custody.envelope import unwrap_data_key, wrap_data_key
from custody.errors import FormatError, IntegrityError
from custody.keys import raw_public, write_atomic
from custody.manifest import ClipHeader, ClipInfo, EventRecord, Manifest, SegmentRecord
from custody.manifest_writer import ManifestWriter
from custody.segment import new_data_key, open_segment, seal_segment

MANIFEST_NAME = "manifest.jsonl"
RECEIPT_NAME = "receipt.json"
_SEGMENT_RE = re.compile(r"seg-(\d{6,})\.bwcs")


def segment_name(index: int) -> str:
    return f"seg-{index:06d}.bwcs"


class SegmentSource(Protocol):
    """Where a verifier reads segment files from (a folder, memory, an object store)."""

    def indices(self) -> list[int]:
        """Every segment index present, sorted."""
        ...

    def read(self, index: int, limit: int) -> bytes | None:
        """At most ``limit`` bytes of segment ``index``, or None when it is absent."""
        ...

    def name(self, index: int) -> str: ...


class FolderSegments:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def indices(self) -> list[int]:
        try:
            found = [_SEGMENT_RE.fullmatch(p.name) for p in self.folder.iterdir()]
        except OSError as exc:
            raise FormatError(f"cannot list {self.folder}: {exc.strerror}") from exc
        return sorted(int(m.group(1)) for m in found if m is not None)

    def read(self, index: int, limit: int) -> bytes | None:
        path = self.folder / segment_name(index)
        try:
            with path.open("rb") as f:
                return f.read(limit)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FormatError(f"cannot read {path}: {exc.strerror}; check its permissions") from exc

    def name(self, index: int) -> str:
        return segment_name(index)


class MemorySegments:
    def __init__(self, segments: Mapping[int, bytes]) -> None:
        self.segments = dict(segments)

    def indices(self) -> list[int]:
        return sorted(self.segments)

    def read(self, index: int, limit: int) -> bytes | None:
        blob = self.segments.get(index)
        return None if blob is None else blob[:limit]

    def name(self, index: int) -> str:
        return segment_name(index)


@dataclass(frozen=True)
class SealedClip:
    clip_id: str
    manifest: bytes
    segments: dict[int, bytes]

    def write_to(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for index, blob in self.segments.items():
            write_atomic(folder / segment_name(index), blob, mode=0o644)
        write_atomic(folder / MANIFEST_NAME, self.manifest, mode=0o644)


def seal_clip(
    plaintexts: Sequence[bytes],
    *,
    device_key: Ed25519PrivateKey,
    agency_public: X25519PublicKey,
    info: ClipInfo,
    clip_id: str | None = None,
    segment_ns: int = 1_000_000_000,
    events: Iterable[tuple[int, EventRecord]] = (),
    end_wall_ns: int | None = None,
    recovered: bool = False,
) -> SealedClip:
    """Encrypt ``plaintexts`` as segments 0..n-1 and write a sealed manifest for them.

    ``events`` are (segment count before which to record it, event) pairs. Each segment is
    taken to last ``segment_ns`` on the clip's timeline.
    """
    clip_id = clip_id or new_clip_id()
    data_key = new_data_key()
    header = ClipHeader(
        clip_id, raw_public(device_key), wrap_data_key(data_key, agency_public, clip_id), info
    )
    lines: list[bytes] = []
    writer = ManifestWriter.start(lines.append, header)
    pending = sorted(events, key=lambda pair: pair[0])
    segments: dict[int, bytes] = {}
    for index, plaintext in enumerate(plaintexts):
        while pending and pending[0][0] <= index:
            writer.add_event(pending.pop(0)[1])
        blob = seal_segment(data_key, clip_id, index, plaintext)
        segments[index] = blob
        writer.add_segment(
            SegmentRecord(
                index=index,
                pts_start_ns=index * segment_ns,
                pts_end_ns=(index + 1) * segment_ns,
                plain_sha256=sha256_hex(plaintext),
                cipher_sha256=sha256_hex(blob),
                size=len(blob),
            )
        )
    for _, event in pending:
        writer.add_event(event)
    duration = len(plaintexts) * segment_ns
    writer.seal(
        device_key,
        end_wall_ns=end_wall_ns if end_wall_ns is not None else info.start_wall_ns + duration,
        end_monotonic_ns=info.start_monotonic_ns + duration,
        recovered=recovered,
    )
    return SealedClip(clip_id, b"".join(lines), segments)


def decrypt_segments(
    source: SegmentSource, manifest: Manifest, agency_key: X25519PrivateKey
) -> Iterator[bytes]:
    """Each segment's plaintext in order, checked against the manifest; raises at the first fault.

    Verify the manifest (signature and chain) first: this only checks segments against it.
    """
    header = manifest.header
    data_key = unwrap_data_key(header.data_key, agency_key, header.clip_id)
    for record in manifest.segments:
        blob = source.read(record.index, record.size + 1)
        if blob is None:
            raise IntegrityError(f"segment {record.index}: {source.name(record.index)} is missing")
        plaintext = open_segment(data_key, header.clip_id, record.index, blob)
        if sha256_hex(plaintext) != record.plain_sha256:
            raise IntegrityError(f"segment {record.index}: plaintext sha256 does not match")
        yield plaintext


def read_limited(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a file, so a parser can refuse an oversized one unread."""
    try:
        with path.open("rb") as f:
            return f.read(limit + 1)
    except FileNotFoundError as exc:
        raise FormatError(f"{path} does not exist") from exc
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror}") from exc
