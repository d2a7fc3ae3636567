"""The cameras the dock figures offload: keys, sealed clips on disk, and a fresh card per run.

Clips are sealed once per run, before anything is timed, with custody's own writer
(:class:`~custody.manifest_writer.ManifestWriter` and :func:`~custody.segment.seal_segment`,
what :func:`custody.clip.seal_clip` uses) but one segment at a time straight to disk, so a
multi-GB clip never sits in memory. The plaintext is random bytes in 1 MB segments (one second
of the camera's 1080p30 stream): the dock verifies sizes, hashes and signatures, never the media.

A camera erases what it offloaded, so each run gets a fresh card: the sealed files hard-linked
(copied where links are refused) into ``card/clips/<clip_id>/``. Erasing removes the links only.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from custody.canonical import sha256_hex
from custody.clip import MANIFEST_NAME, segment_name
from custody.clipid import new_clip_id
from custody.envelope import wrap_data_key
from custody.keys import private_pem, raw_public, write_atomic
from custody.manifest import ClipHeader, ClipInfo, SegmentRecord
from custody.manifest_writer import ManifestWriter
from custody.segment import new_data_key, seal_segment
from device.firmware import CLIPS_ROOT

SEGMENT_NS = 1_000_000_000  #: each segment is one second of the clip's timeline
START_WALL_NS = 1_700_000_000 * 10**9


@dataclass(frozen=True)
class ClipSize:
    clips: int
    segments: int  #: per clip
    segment_bytes: int  #: plaintext per segment; the ciphertext adds a header and the GCM tag

    def describe(self) -> str:
        return f"{self.clips} clips x {self.segments} segments of {self.segment_bytes / 1e6:g} MB"


@dataclass(frozen=True)
class SealedFolder:
    clip_id: str
    folder: Path  #: ``manifest.jsonl`` and ``seg-NNNNNN.bwcs``, as a camera's card holds them
    segments: int
    bytes: int  #: sealed: the manifest and every segment file

    def files(self) -> list[Path]:
        """The manifest, then every segment in order: what a dock moves."""
        names = [MANIFEST_NAME] + [segment_name(i) for i in range(self.segments)]
        return [self.folder / name for name in names]


@dataclass(frozen=True)
class BenchCamera:
    """One camera's identity and the clips it holds (sealed once; every card links to them)."""

    device_id: str
    device_key: Ed25519PrivateKey
    clips: list[SealedFolder]
    seal_s: float  #: wall seconds it took to seal and write them

    @property
    def total_bytes(self) -> int:
        return sum(clip.bytes for clip in self.clips)

    @property
    def segments(self) -> int:
        return sum(clip.segments for clip in self.clips)

    def files(self) -> list[Path]:
        return [f for clip in self.clips for f in clip.files()]


def seal_to_folder(
    parent: Path, segments: int, segment_bytes: int, *, device_key: Ed25519PrivateKey,
    agency: X25519PublicKey, info: ClipInfo,
) -> SealedFolder:  # fmt: skip
    """A sealed clip of random plaintext written segment by segment into ``parent/<clip_id>``."""
    clip_id = new_clip_id()
    data_key = new_data_key()
    folder = parent / clip_id
    folder.mkdir(parents=True)
    header = ClipHeader(
        clip_id, raw_public(device_key), wrap_data_key(data_key, agency, clip_id), info
    )
    with (folder / MANIFEST_NAME).open("wb") as manifest:
        writer = ManifestWriter.start(manifest.write, header)
        written = 0
        for index in range(segments):
            plaintext = os.urandom(segment_bytes)
            blob = seal_segment(data_key, clip_id, index, plaintext)
            (folder / segment_name(index)).write_bytes(blob)
            written += len(blob)
            writer.add_segment(
                SegmentRecord(
                    index=index,
                    pts_start_ns=index * SEGMENT_NS,
                    pts_end_ns=(index + 1) * SEGMENT_NS,
                    plain_sha256=sha256_hex(plaintext),
                    cipher_sha256=sha256_hex(blob),
                    size=len(blob),
                )
            )
        duration = segments * SEGMENT_NS
        writer.seal(
            device_key,
            end_wall_ns=info.start_wall_ns + duration,
            end_monotonic_ns=info.start_monotonic_ns + duration,
        )
    return SealedFolder(
        clip_id, folder, segments, written + (folder / MANIFEST_NAME).stat().st_size
    )


def make_camera(
    device_id: str, size: ClipSize, folder: Path, agency: X25519PublicKey
) -> BenchCamera:
    """A camera with a fresh device key and ``size.clips`` sealed clips under ``folder``."""
    device_key = Ed25519PrivateKey.generate()
    started = time.perf_counter()
    clips = []
    for n in range(size.clips):
        info = ClipInfo(device_id, f"SER-{device_id}", "officer-bench", "bench",
                        START_WALL_NS + n * 10**10, n * 10**10)  # fmt: skip
        clips.append(
            seal_to_folder(
                folder,
                size.segments,
                size.segment_bytes,
                device_key=device_key,
                agency=agency,
                info=info,
            )
        )
    return BenchCamera(device_id, device_key, clips, time.perf_counter() - started)


def fill_card(camera: BenchCamera, card: Path) -> None:
    """A fresh card holding every clip of ``camera``: hard links to the sealed files."""
    for clip in camera.clips:
        target = card / CLIPS_ROOT / clip.clip_id
        target.mkdir(parents=True)
        for source in clip.files():
            try:
                os.link(source, target / source.name)
            except OSError:  # another filesystem, or links refused: a copy holds the same bytes
                shutil.copyfile(source, target / source.name)


def clips_left(card: Path) -> int:
    """Clip folders still on a card (zero once everything was offloaded and erased)."""
    root = card / CLIPS_ROOT
    return sum(1 for p in root.iterdir() if p.is_dir()) if root.is_dir() else 0


def write_camera_keys(
    keys_dir: Path, device_key: Ed25519PrivateKey, dock_public: bytes, store_public: bytes
) -> Path:
    """A camera's key folder: the dock it trusts and the store key it checks receipts with.

    Returns the device key file (kept out of the folder the API provisions into).
    """
    (keys_dir / "docks").mkdir(parents=True)
    write_atomic(keys_dir / "docks" / "bench-dock.pub.pem", dock_public, mode=0o644)
    write_atomic(keys_dir / "store.pub.pem", store_public, mode=0o644)
    device_key_file = keys_dir.parent / "device.key.pem"
    write_atomic(device_key_file, private_pem(device_key), mode=0o600)
    return device_key_file


def split_loads(camera: BenchCamera, loads: int) -> list[BenchCamera]:
    """``camera``'s clips in ``loads`` equal parts, one per offload.

    A camera remembers the clips it erased (its audit log) and never offers them again, so a
    camera process that serves several offloads needs fresh clips for each.
    """
    per = len(camera.clips) // loads
    return [
        BenchCamera(
            camera.device_id,
            camera.device_key,
            camera.clips[i * per : (i + 1) * per],
            camera.seal_s / loads,
        )
        for i in range(loads)
    ]
