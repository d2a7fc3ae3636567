"""The crash-safe clip writer: one clip folder of encrypted segments and an append-only manifest.

Layout (docs/formats/manifest.md, "Clip folder"), under a clips root on the Storage port::

    CLIPS/<clip id>/manifest.jsonl      header, segment and event records, then the seal
    CLIPS/<clip id>/seg-NNNNNN.bwcs     one encrypted segment per record

Durability order, so that a power cut at any instant leaves a state recovery can seal:

* The folder is born whole: header written in ``.<clip id>.creating``, fsynced, the folder
  fsynced, then renamed to ``<clip id>`` and the clips root fsynced. A clip folder therefore
  always has a durable header; a staging folder holds no footage.
* A segment is written to ``.seg-NNNNNN.bwcs.tmp``, fsynced, renamed, the folder fsynced, and only
  then is its record appended to the manifest and fsynced. A cut leaves at worst an orphan or a
  torn temp file (recovery drops them), never a record without its segment.

The clip's data key lives only in this object's memory; the manifest holds it wrapped to the
agency key, so the camera cannot read back its own footage.

On a write or fsync failure the writer seals over what is already durable when it can (dropping
the in-flight segment and any torn manifest bytes) and raises :class:`StorageFullError` or
:class:`ClipWriteError`; if even that fails the clip stays unsealed and boot-time recovery seals it.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from custody.canonical import sha256_hex
from custody.clip import MANIFEST_NAME, segment_name
from custody.clipid import new_clip_id
from custody.manifest import ClipHeader, EventRecord, SealRecord, SegmentRecord
from custody.manifest_writer import ManifestWriter
from custody.segment import OVERHEAD, new_data_key, seal_segment
from device.clip_head import ClipStart, clip_head
from device.config import DeviceConfig
from device.durable import ensure_durable_folder, join, temp_name, write_all
from device.errors import ClipExistsError, ClipWriteError, StorageFullError
from hw.ports.clock import Clock
from hw.ports.gnss import GnssFix
from hw.ports.storage import Storage, write_durable

#: room kept for one manifest record besides the segment itself (a record is about 400 bytes)
RECORD_BUDGET = 1024
STAGING_SUFFIX = ".creating"


def staging_name(clip_id: str) -> str:
    """The hidden folder a clip is created in before it is renamed to its id."""
    return f".{clip_id}{STAGING_SUFFIX}"


@dataclass(frozen=True)
class DroppedFile:
    """Something the writer removed while sealing after a fault, for the audit log."""

    name: str
    reason: str
    size: int


class ClipWriter:
    """Writes one clip: :meth:`create` it, add segments and events, then ``seal`` it."""

    def __init__(
        self,
        storage: Storage,
        folder: str,
        head: bytes,
        data_key: bytes,
        device_key: Ed25519PrivateKey,
        clock: Clock,
        reserve_bytes: int,
    ) -> None:
        """Continue a clip whose durable manifest is ``head``; use :meth:`create` to start one."""
        self._storage = storage
        self._folder = folder
        self._manifest = ManifestWriter.resume(head, self._append_line)
        self._good_size = len(head)  # manifest bytes known durable
        self._data_key = data_key
        self._device_key = device_key
        self._clock = clock
        self._reserve = reserve_bytes
        self._last_pts = 0
        self._closed = False
        self._sealed: SealRecord | None = None
        self.dropped: list[DroppedFile] = []  #: what a fault left out of the clip

    @classmethod
    def create(
        cls,
        storage: Storage,
        clips_root: str,
        *,
        config: DeviceConfig,
        device_key: Ed25519PrivateKey,
        agency_public: X25519PublicKey,
        clock: Clock,
        start: ClipStart,
        clip_id: str | None = None,
    ) -> ClipWriter:
        """Make the clip folder with a durable header; refuses an id whose folder exists."""
        clip_id = clip_id or new_clip_id()
        folder, staging = join(clips_root, clip_id), join(clips_root, staging_name(clip_id))
        if storage.exists(folder) or storage.exists(staging):
            raise ClipExistsError(
                f"clip folder {folder} already exists: footage is never overwritten; "
                "start the clip under a new id"
            )
        data_key = new_data_key()  # held only in memory; the manifest keeps it wrapped
        head = clip_head(clip_id, data_key, config, device_key, agency_public, clock, start)
        free = storage.free_bytes()
        if free < config.storage_reserve_bytes + len(head):
            raise StorageFullError(
                f"storage full: {free} bytes free, {config.storage_reserve_bytes} reserved: "
                "no clip was started; offload the camera at a dock"
            )
        try:
            ensure_durable_folder(storage, clips_root)
            storage.mkdir(staging)
            write_all(storage, join(staging, MANIFEST_NAME), head, append=False)
            storage.fsync_dir(staging)
            storage.rename(staging, folder)
            storage.fsync_dir(clips_root)
        except OSError as exc:
            # Whatever reached the card is a staging folder or a header-only clip: recovery
            # completes or clears it at the next boot. No footage was written yet.
            error = StorageFullError if exc.errno == errno.ENOSPC else ClipWriteError
            raise error(
                f"cannot create clip {clip_id} in {clips_root}: {exc.strerror or exc}; "
                "offload the camera at a dock and check its card"
            ) from exc
        return cls(storage, folder, head, data_key, device_key, clock, config.storage_reserve_bytes)

    # What the firmware reads.

    @property
    def clip_id(self) -> str:
        return self._manifest.header.clip_id

    @property
    def folder(self) -> str:
        return self._folder

    @property
    def header(self) -> ClipHeader:
        return self._manifest.header

    @property
    def segment_count(self) -> int:
        return self._manifest.segment_count

    @property
    def total_bytes(self) -> int:
        return self._manifest.total_bytes

    @property
    def sealed(self) -> SealRecord | None:
        """The seal once the clip is sealed (by ``seal`` or after a fault), else None."""
        return self._sealed

    @property
    def closed(self) -> bool:
        """True once sealed or given up after a fault: nothing more may be added."""
        return self._closed

    # Writing.

    def add_segment(self, plaintext: bytes, pts_start_ns: int, pts_end_ns: int) -> SegmentRecord:
        """Encrypt and store one segment, then record it; durable when this returns.

        ``pts_start_ns``/``pts_end_ns`` are on the clip's timeline: 0 at the clip's first frame.
        """
        self._check_open()
        if not self._last_pts <= pts_start_ns <= pts_end_ns:
            raise ValueError(
                f"segment pts {pts_start_ns}..{pts_end_ns} ns must not run backwards "
                f"(the previous segment started at {self._last_pts} ns)"
            )
        index = self.segment_count
        free = self._storage.free_bytes()
        needed = len(plaintext) + OVERHEAD + RECORD_BUDGET
        if free < self._reserve + needed:
            self._give_up(full=True, detail=f"{free} bytes free, {self._reserve} reserved")
        blob = seal_segment(self._data_key, self.clip_id, index, plaintext)
        record = SegmentRecord(
            index=index,
            pts_start_ns=pts_start_ns,
            pts_end_ns=pts_end_ns,
            plain_sha256=sha256_hex(plaintext),
            cipher_sha256=sha256_hex(blob),
            size=len(blob),
        )
        name = segment_name(index)
        temp = join(self._folder, temp_name(name))
        try:
            write_all(self._storage, temp, blob, append=False)
            self._storage.rename(temp, join(self._folder, name))
            self._storage.fsync_dir(self._folder)
            self._manifest.add_segment(record)
        except OSError as exc:
            self._fault(exc)
        self._last_pts = pts_start_ns
        return record

    def add_event(
        self,
        kind: str,
        data: Mapping[str, Any],
        *,
        monotonic_ns: int | None = None,
        wall_ns: int | None = None,
    ) -> None:
        """Record a marker, GNSS fix, trigger or other event (integers only for numbers)."""
        self._check_open()
        mono, wall = self._times(monotonic_ns, wall_ns)
        try:
            self._manifest.add_event(EventRecord(kind, wall, mono, dict(data)))
        except OSError as exc:
            self._fault(exc)

    def add_marker(self, monotonic_ns: int) -> None:
        """The officer's single press while recording."""
        self.add_event("marker", {}, monotonic_ns=monotonic_ns)

    def add_gnss_fix(self, fix: GnssFix, *, monotonic_ns: int | None = None) -> None:
        """A position fix, in the manifest's integer units (1e-7 degrees, millimetres)."""
        data = {"lat_e7": round(fix.latitude * 1e7), "lon_e7": round(fix.longitude * 1e7)}
        if fix.altitude_m is not None:
            data["alt_mm"] = round(fix.altitude_m * 1000)
        self.add_event("gnss", data, monotonic_ns=monotonic_ns, wall_ns=fix.wall_ns)

    def add_trigger(self, kind: str, source_id: str, *, monotonic_ns: int) -> None:
        """A trigger that came while already recording (triggers never stop a clip)."""
        self.add_event("trigger", {"kind": kind, "source_id": source_id}, monotonic_ns=monotonic_ns)

    def seal(
        self,
        *,
        end_monotonic_ns: int | None = None,
        end_wall_ns: int | None = None,
        recovered: bool = False,
    ) -> SealRecord:
        """Sign the manifest with the device key and close the clip."""
        self._check_open()
        mono, wall = self._times(end_monotonic_ns, end_wall_ns)
        try:
            seal = self._manifest.seal(
                self._device_key, end_wall_ns=wall, end_monotonic_ns=mono, recovered=recovered
            )
        except OSError as exc:
            self._fault(exc, end=(mono, wall))
        self._finish(seal)
        return seal

    # Internals.

    def _check_open(self) -> None:
        if self._closed:
            state = "sealed" if self._sealed is not None else "given up after a storage fault"
            raise ClipWriteError(f"clip {self.clip_id} is {state}: start a new clip")

    def _times(self, monotonic_ns: int | None, wall_ns: int | None) -> tuple[int, int]:
        now_mono, now_wall = self._clock.monotonic_ns(), self._clock.wall_ns()
        mono = now_mono if monotonic_ns is None else monotonic_ns
        wall = now_wall - (now_mono - mono) if wall_ns is None else wall_ns
        return mono, wall

    def _append_line(self, line: bytes) -> None:
        write_all(self._storage, join(self._folder, MANIFEST_NAME), line, append=True)
        self._good_size += len(line)

    def _finish(self, seal: SealRecord | None) -> None:
        self._closed = True
        self._sealed = seal
        self._data_key = b""  # nothing more is encrypted with it; do not keep it around

    def _fault(self, exc: OSError, *, end: tuple[int, int] | None = None) -> NoReturn:
        full, detail = exc.errno == errno.ENOSPC, exc.strerror or str(exc)
        self._give_up(full=full, detail=detail, end=end, cause=exc)

    def _give_up(
        self,
        *,
        full: bool,
        detail: str,
        end: tuple[int, int] | None = None,
        cause: OSError | None = None,
    ) -> NoReturn:
        """Seal over what is durable if the card still lets us, then raise the firmware's error."""
        outcome = self._seal_after_fault(end)
        what = f"clip {self.clip_id} ({self.segment_count} segments) {outcome}"
        if full:
            raise StorageFullError(
                f"storage full ({detail}): {what}; offload the camera at a dock"
            ) from cause
        raise ClipWriteError(
            f"cannot write clip {self.clip_id} ({detail}): {what}; "
            "offload the camera and replace its card"
        ) from cause

    def _seal_after_fault(self, end: tuple[int, int] | None) -> str:
        # Twice: if the seal's own append fails, the second pass rewrites the durable prefix and
        # seals that, so one failed fsync never leaves a seal line the writer cannot vouch for.
        for _ in range(2):
            try:
                self._drop_in_flight()
                manifest = join(self._folder, MANIFEST_NAME)
                if self._storage.size(manifest) != self._good_size:
                    # A failed append may have left a torn or unsynced line. Retrying fsync after
                    # an EIO is not trustworthy: rewrite the durable prefix under a new name.
                    kept = self._storage.read_bytes(manifest)[: self._good_size]
                    write_durable(self._storage, manifest, kept)
                mono, wall = end if end is not None else self._times(None, None)
                seal = self._manifest.seal(
                    self._device_key, end_wall_ns=wall, end_monotonic_ns=mono
                )
            except OSError:
                continue
            self._finish(seal)
            return "sealed"
        self._finish(None)
        return "left unsealed for recovery at the next boot"

    def _drop_in_flight(self) -> None:
        """Remove the segment being written when the fault came; no record names it."""
        name = segment_name(self.segment_count)
        removed = False
        for candidate, reason in ((temp_name(name), "torn temp file"), (name, "not recorded")):
            path = join(self._folder, candidate)
            if self._storage.exists(path):
                size = self._storage.size(path)
                self._storage.remove(path)
                self.dropped.append(DroppedFile(candidate, f"in flight at a fault: {reason}", size))
                removed = True
        if removed:
            self._storage.fsync_dir(self._folder)
