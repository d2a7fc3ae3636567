"""Boot-time recovery: every clip the camera was writing when it lost power is sealed, none lost.

For each clip folder whose manifest has no seal, recovery keeps the manifest's intact prefix
(complete, well-formed, correctly chained lines), cuts it back further before the first segment
record whose file is missing, short or altered, drops every file no kept record names (orphan
segments written just before the cut, torn temp files), and seals with ``recovered: true``. A clip
with a header and no segments is sealed too. The data key is not stored, so all of this works from
the ciphertext hashes and sizes in the records.

Every drop is audited *before* it is made, so a power cut during recovery can repeat an audit
record but never lose one; each step leaves a state the next run reads the same way, so recovery
after a cut during recovery ends where an uninterrupted run would. Folders recovery cannot read
(no manifest, no intact header, another device's key) are left as found and reported.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.canonical import sha256_hex
from custody.clip import MANIFEST_NAME, segment_name
from custody.clipid import check_clip_id
from custody.errors import FormatError
from custody.keys import raw_public
from custody.manifest import (
    MAX_LINE_BYTES,
    MAX_MANIFEST_BYTES,
    Manifest,
    SealRecord,
    SegmentRecord,
    parse_manifest,
    parse_record,
)
from custody.manifest_writer import ManifestWriter, intact_prefix
from device.audit_log import DeviceAuditLog
from device.clip_writer import STAGING_SUFFIX
from device.durable import is_temp_name, join, write_all
from device.errors import RecoveryError
from hw.ports.storage import Storage, write_durable

log = structlog.get_logger(__name__)

_SEGMENT_RE = re.compile(r"seg-\d{6,}\.bwcs")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Dropped:
    """A file or manifest tail that recovery removed, and why."""

    clip_id: str
    name: str
    reason: str
    size: int


@dataclass(frozen=True)
class RecoveredClip:
    clip_id: str
    segment_count: int
    total_bytes: int


@dataclass
class RecoveryReport:
    recovered: list[RecoveredClip] = field(default_factory=list)  #: sealed now, recovered: true
    intact: list[str] = field(default_factory=list)  #: clip ids found sealed
    dropped: list[Dropped] = field(default_factory=list)  #: everything removed, with the reason
    unrecovered: list[RecoveryError] = field(default_factory=list)  #: folders left as found


def recover_clips(
    storage: Storage, clips_root: str, device_key: Ed25519PrivateKey, audit: DeviceAuditLog
) -> RecoveryReport:
    """Seal every unsealed clip under ``clips_root`` over its intact segments; see the module."""
    return _Recovery(storage, clips_root, device_key, audit).run()


class _Recovery:
    def __init__(
        self,
        storage: Storage,
        root: str,
        device_key: Ed25519PrivateKey,
        audit: DeviceAuditLog,
    ) -> None:
        self.storage = storage
        self.root = root
        self.key = device_key
        self.audit = audit
        self.report = RecoveryReport()

    def run(self) -> RecoveryReport:
        if not self.storage.exists(self.root):
            return self.report
        for name in self.storage.listdir(self.root):
            path = join(self.root, name)
            try:
                self._entry(name)
            except RecoveryError as err:
                self._unrecovered(path, err)
            except (OSError, FormatError) as exc:
                self._unrecovered(path, _left_for_next_boot(path, exc))
        return self.report

    def _entry(self, name: str) -> None:
        path = join(self.root, name)
        if not _is_folder(self.storage, path):
            raise RecoveryError(f"{path} is a file, not a clip folder: it is left untouched")
        if name.startswith(".") and name.endswith(STAGING_SUFFIX):
            self._staging(name, name[1 : -len(STAGING_SUFFIX)])
            return
        try:
            clip_id = check_clip_id(name)
        except FormatError as exc:
            raise RecoveryError(
                f"{path} is not named by a clip id: it is left untouched; move it off the card"
            ) from exc
        self._clip(clip_id)

    def _unrecovered(self, path: str, err: RecoveryError) -> None:
        self.report.unrecovered.append(err)
        log.warning("clip.unrecoverable", folder=path, reason=str(err))
        self.audit.append("clip.unrecoverable", {"folder": path, "reason": str(err)})

    # A clip folder.

    def _clip(self, clip_id: str) -> None:
        folder = join(self.root, clip_id)
        seal = self._sealed_tail(folder)
        if seal is not None:
            # Sealed clips are the dock's to verify; here only leftovers of a fault are cleared.
            self._drop_unrecorded(clip_id, range(seal.segment_count), "not in the sealed manifest")
            self.report.intact.append(clip_id)
            return
        data = self._read_manifest(folder)
        prefix = intact_prefix(data)
        if prefix == 0:
            raise RecoveryError(
                f"{folder}: the manifest has no readable header: the folder is left untouched; "
                "offload the camera and have it examined"
            )
        manifest = parse_manifest(data[:prefix])
        if manifest.header.clip_id != clip_id:
            raise RecoveryError(
                f"{folder}: the manifest belongs to clip {manifest.header.clip_id}: "
                "the folder is left untouched; offload the camera and have it examined"
            )
        if manifest.seal is not None:
            if prefix != len(data):
                raise RecoveryError(
                    f"{folder}: bytes follow the manifest's seal: the folder is left untouched"
                )
            self._drop_unrecorded(
                clip_id, [s.index for s in manifest.segments], "not in the sealed manifest"
            )
            self.report.intact.append(clip_id)
            return
        if manifest.header.device_public_key != raw_public(self.key):
            raise RecoveryError(
                f"{folder}: recorded under another device key: it is left unsealed; "
                "offload it at a dock enrolled for that camera"
            )
        self._seal(clip_id, data, manifest)

    def _sealed_tail(self, folder: str) -> SealRecord | None:
        """The seal, when the manifest's last line is one; reads only the end of the file."""
        path = join(folder, MANIFEST_NAME)
        if not self.storage.exists(path):
            return None
        size = self.storage.size(path)
        with self.storage.open_read(path) as f:
            f.seek(max(0, size - MAX_LINE_BYTES - 1))
            tail = f.read()
        if not tail.endswith(b"\n"):
            return None
        last = tail[:-1].rpartition(b"\n")[2]
        try:
            record = parse_record(last, 2)
        except FormatError:
            return None
        return record if isinstance(record, SealRecord) else None

    def _read_manifest(self, folder: str) -> bytes:
        path = join(folder, MANIFEST_NAME)
        if not self.storage.exists(path):
            raise RecoveryError(
                f"{folder} has no {MANIFEST_NAME}: the folder is left untouched; "
                "offload the camera and have it examined"
            )
        if self.storage.size(path) > MAX_MANIFEST_BYTES:
            raise RecoveryError(f"{path} is larger than any manifest: it is left untouched")
        return self.storage.read_bytes(path)

    def _seal(self, clip_id: str, data: bytes, manifest: Manifest) -> None:
        folder = join(self.root, clip_id)
        keep, why = sum(len(line) + 1 for line in manifest.lines), "a torn or unreadable line"
        kept: list[SegmentRecord] = []
        for line_no, record in enumerate(manifest.records):
            if not isinstance(record, SegmentRecord):
                continue
            problem = self._segment_problem(folder, record)
            if problem is not None:
                # The chain only lets a manifest lose a tail: cut before this record.
                keep = sum(len(line) + 1 for line in manifest.lines[:line_no])
                why = f"segment {record.index}: {problem}"
                break
            kept.append(record)
        path = join(folder, MANIFEST_NAME)
        writer = ManifestWriter.resume(
            data[:keep], lambda line: write_all(self.storage, path, line, append=True)
        )
        orphan = "not recorded: the power was lost before its manifest record was durable"
        if keep < len(data):
            self._truncate_manifest(clip_id, data, keep, why)
            orphan = f"its record was in the dropped manifest tail ({why})"
        self._drop_unrecorded(clip_id, [r.index for r in kept], orphan)
        end_mono, end_wall = _end_times(parse_manifest(data[:keep]))
        writer.seal(self.key, end_wall_ns=end_wall, end_monotonic_ns=end_mono, recovered=True)
        clip = RecoveredClip(clip_id, writer.segment_count, writer.total_bytes)
        self.report.recovered.append(clip)
        log.info("clip.recovered", clip_id=clip_id, segments=clip.segment_count)
        self.audit.append(
            "clip.recovered",
            {
                "clip_id": clip_id,
                "segment_count": clip.segment_count,
                "total_bytes": clip.total_bytes,
            },
        )

    def _segment_problem(self, folder: str, record: SegmentRecord) -> str | None:
        path = join(folder, segment_name(record.index))
        if not self.storage.exists(path):
            return "its file is missing"
        size = self.storage.size(path)
        if size != record.size:
            return f"its file is {size} bytes, the record says {record.size} (torn)"
        digest = hashlib.sha256()
        with self.storage.open_read(path) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != record.cipher_sha256:
            return "its file does not match the record's ciphertext sha256"
        return None

    def _truncate_manifest(self, clip_id: str, data: bytes, keep: int, why: str) -> None:
        tail = data[keep:]
        self.audit.append(
            "clip.manifest_truncated",
            {
                "clip_id": clip_id,
                "kept_bytes": keep,
                "dropped_bytes": len(tail),
                "dropped_sha256": sha256_hex(tail),
                "reason": why,
            },
        )
        self.report.dropped.append(Dropped(clip_id, f"{MANIFEST_NAME} tail", why, len(tail)))
        write_durable(self.storage, join(join(self.root, clip_id), MANIFEST_NAME), data[:keep])

    def _drop_unrecorded(self, clip_id: str, kept: Iterable[int], orphan_reason: str) -> None:
        """Remove temp files and segment files that no kept record names."""
        folder = join(self.root, clip_id)
        recorded = {segment_name(index) for index in kept}
        removed = False
        for name in self.storage.listdir(folder):
            if is_temp_name(name):
                reason = "temporary file of a write cut short"
            elif _SEGMENT_RE.fullmatch(name) and name not in recorded:
                reason = orphan_reason
            else:
                continue
            self._drop_file(clip_id, join(folder, name), reason)
            removed = True
        if removed:
            self.storage.fsync_dir(folder)

    def _drop_file(self, clip_id: str, path: str, reason: str) -> None:
        blob = self.storage.read_bytes(path)
        name = path.rpartition("/")[2]
        self.audit.append(
            "clip.file_dropped",
            {
                "clip_id": clip_id,
                "file": name,
                "bytes": len(blob),
                "sha256": sha256_hex(blob),
                "reason": reason,
            },
        )
        self.report.dropped.append(Dropped(clip_id, name, reason, len(blob)))
        self.storage.remove(path)

    # A folder cut off while the clip was being created.

    def _staging(self, name: str, clip_id: str) -> None:
        staging, final = join(self.root, name), join(self.root, clip_id)
        check_clip_id(clip_id, what=f"staging folder {staging}")
        if self.storage.exists(final):
            raise RecoveryError(f"{staging} and {final} both exist: both are left untouched")
        path = join(staging, MANIFEST_NAME)
        data = self.storage.read_bytes(path) if self.storage.exists(path) else b""
        prefix = intact_prefix(data)
        if prefix and parse_manifest(data[:prefix]).header.clip_id == clip_id:
            # The header is durable: the officer started this clip. Finish creating it.
            self.audit.append(
                "clip.creation_completed",
                {"clip_id": clip_id, "reason": "power lost while its folder was being created"},
            )
            self.storage.rename(staging, final)
            self.storage.fsync_dir(self.root)
            self._clip(clip_id)
            return
        names = self.storage.listdir(staging)
        if any(n != MANIFEST_NAME and not is_temp_name(n) for n in names):
            raise RecoveryError(
                f"{staging} holds files a clip being created never has: it is left untouched"
            )
        reason = "power lost before its header was durable: it holds no footage"
        self.audit.append("clip.creation_dropped", {"folder": staging, "reason": reason})
        for n in names:
            size = self.storage.size(join(staging, n))
            self.report.dropped.append(Dropped(clip_id, f"{name}/{n}", reason, size))
            self.storage.remove(join(staging, n))
        self.storage.rmdir(staging)
        self.storage.fsync_dir(self.root)


def _left_for_next_boot(path: str, exc: Exception) -> RecoveryError:
    err = RecoveryError(
        f"cannot recover {path}: {exc}; it is left as it is for the next boot: "
        "offload the camera and check its card"
    )
    err.__cause__ = exc
    return err


def _is_folder(storage: Storage, path: str) -> bool:
    try:
        storage.listdir(path)
    except NotADirectoryError:
        return False
    return True


def _end_times(manifest: Manifest) -> tuple[int, int]:
    """The clip's end as far as its records show: the last segment's end or the last event."""
    info = manifest.header.info
    ends = [info.start_monotonic_ns]
    ends += [info.start_monotonic_ns + s.pts_end_ns for s in manifest.segments[-1:]]
    ends += [e.monotonic_ns for e in manifest.events]
    end = max(ends)
    return end, info.start_wall_ns + (end - info.start_monotonic_ns)
