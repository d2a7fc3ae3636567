"""Clip manifests: an append-only JSON Lines hash chain, sealed by the device's signature.

Each line is one canonical JSON record followed by LF (0x0A). Every record's ``prev`` is the
SHA-256 (hex) of the previous line's bytes without its LF; the header's ``prev`` is 64 zeros. The
file starts with one ``header``, then ``segment`` and ``event`` records in the order they happened,
and ends with one ``seal`` carrying the device's Ed25519 signature. See docs/formats/manifest.md.
This module holds the record types and the strict parser; writer and verifier live beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from custody.canonical import b64d, b64e, check_hex, parse_json, sha256_hex
from custody.clipid import check_clip_id
from custody.envelope import WrappedKey
from custody.errors import FormatError, UnsupportedVersionError
from custody.keys import key_id
from custody.schema import require_fields, require_non_negative

FORMAT = "bwc-manifest"
VERSION = 2  #: the newest version written: 2 adds the header's ``profile_id``
VERSIONS = (1, 2)
PROFILE_VERSION = 2  #: the first version whose header records a profile
ZERO_HASH = "0" * 64
MAX_LINE_BYTES = 64 * 1024
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
SEAL_DOMAIN = b"bwc-manifest-seal-v1\x00"


@dataclass(frozen=True)
class ClipInfo:
    """What the device knows about a clip when it starts, besides keys."""

    device_id: str
    device_serial: str
    officer_id: str
    firmware_version: str
    start_wall_ns: int
    start_monotonic_ns: int
    time_sync_offset_ns: int = 0  # wall minus dock time at the last dock time sync
    triggers: tuple[dict[str, Any], ...] = ()  # the events that started the clip
    pre_event_ns: int = 0  # how much buffered footage precedes the start
    pre_event_audio: bool = False
    profile_id: str = ""  # the configuration profile it was made under; "" for none


@dataclass(frozen=True)
class ClipHeader:
    clip_id: str
    device_public_key: bytes
    data_key: WrappedKey
    info: ClipInfo
    prev: str = ZERO_HASH

    @property
    def device_key_id(self) -> str:
        return key_id(self.device_public_key)

    @property
    def version(self) -> int:
        """Version 1 unless a profile is recorded: manifests without one stay as they were."""
        return PROFILE_VERSION if self.info.profile_id else 1

    def to_json(self) -> dict[str, Any]:
        i = self.info
        profile = {"profile_id": i.profile_id} if i.profile_id else {}
        return {
            "type": "header",
            "format": FORMAT,
            "version": self.version,
            "prev": self.prev,
            "clip_id": self.clip_id,
            "device_id": i.device_id,
            "device_serial": i.device_serial,
            "device_key_id": self.device_key_id,
            "device_public_key": b64e(self.device_public_key),
            "officer_id": i.officer_id,
            "firmware_version": i.firmware_version,
            "start_wall_ns": i.start_wall_ns,
            "start_monotonic_ns": i.start_monotonic_ns,
            "time_sync_offset_ns": i.time_sync_offset_ns,
            "triggers": [dict(t) for t in i.triggers],
            "pre_event": {"duration_ns": i.pre_event_ns, "audio": i.pre_event_audio},
            "data_key": self.data_key.to_json(),
            **profile,
        }


@dataclass(frozen=True)
class SegmentRecord:
    index: int
    pts_start_ns: int  # presentation time of the first frame, on the clip's timeline
    pts_end_ns: int  # end of the last frame (exclusive)
    plain_sha256: str
    cipher_sha256: str
    size: int  # bytes of the segment file (header, ciphertext and tag)
    prev: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "segment",
            "index": self.index,
            "pts_start_ns": self.pts_start_ns,
            "pts_end_ns": self.pts_end_ns,
            "plain_sha256": self.plain_sha256,
            "cipher_sha256": self.cipher_sha256,
            "size": self.size,
            "prev": self.prev,
        }


@dataclass(frozen=True)
class EventRecord:
    kind: str  # "marker", "gnss", "trigger", ...
    wall_ns: int
    monotonic_ns: int
    data: dict[str, Any] = field(default_factory=dict)
    prev: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "event",
            "kind": self.kind,
            "wall_ns": self.wall_ns,
            "monotonic_ns": self.monotonic_ns,
            "data": self.data,
            "prev": self.prev,
        }


@dataclass(frozen=True)
class SealRecord:
    end_wall_ns: int
    end_monotonic_ns: int
    segment_count: int
    total_bytes: int
    recovered: bool
    body_sha256: str  # SHA-256 of every byte of the file before the seal line
    prev: str  # the chain head: SHA-256 of the last line before the seal
    signature: bytes = b""

    def unsigned_json(self) -> dict[str, Any]:
        return {
            "type": "seal",
            "end_wall_ns": self.end_wall_ns,
            "end_monotonic_ns": self.end_monotonic_ns,
            "segment_count": self.segment_count,
            "total_bytes": self.total_bytes,
            "recovered": self.recovered,
            "body_sha256": self.body_sha256,
            "prev": self.prev,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.unsigned_json(), "signature": b64e(self.signature)}


Record = ClipHeader | SegmentRecord | EventRecord | SealRecord


@dataclass(frozen=True)
class Manifest:
    lines: tuple[bytes, ...]  # each record's bytes, without the LF
    records: tuple[Record, ...]

    @property
    def header(self) -> ClipHeader:
        first = self.records[0]
        assert isinstance(first, ClipHeader)  # the parser guarantees it
        return first

    @property
    def segments(self) -> list[SegmentRecord]:
        return [r for r in self.records if isinstance(r, SegmentRecord)]

    @property
    def events(self) -> list[EventRecord]:
        return [r for r in self.records if isinstance(r, EventRecord)]

    @property
    def seal(self) -> SealRecord | None:
        last = self.records[-1]
        return last if isinstance(last, SealRecord) else None

    def body_bytes(self) -> bytes:
        """The bytes the seal's ``body_sha256`` covers: every line before the seal, with LFs."""
        body = self.lines[:-1] if self.seal is not None else self.lines
        return b"".join(line + b"\n" for line in body)


def split_lines(data: bytes, *, what: str, max_total: int, max_line: int) -> list[bytes]:
    """Complete LF-terminated lines; refuses oversized input and reports a torn last line."""
    if len(data) > max_total:
        raise FormatError(f"{what}: {len(data)} bytes is more than the {max_total} allowed")
    if not data:
        raise FormatError(f"{what}: the file is empty")
    lines = data.split(b"\n")
    tail = lines.pop()
    for number, line in enumerate(lines, start=1):
        if len(line) > max_line:
            raise FormatError(
                f"{what}: line {number} is {len(line)} bytes, more than the {max_line} allowed"
            )
    if tail:
        raise FormatError(
            f"{what}: line {len(lines) + 1} is truncated (no line end): the file was cut off "
            "while being written"
        )
    return lines


def parse_manifest(data: bytes) -> Manifest:
    """Parse a manifest strictly (format, version, field types, record order); no crypto checks."""
    lines = split_lines(
        data, what="manifest", max_total=MAX_MANIFEST_BYTES, max_line=MAX_LINE_BYTES
    )
    records: list[Record] = []
    for number, line in enumerate(lines, start=1):
        if records and isinstance(records[-1], SealRecord):
            raise FormatError(
                f"manifest line {number}: a record follows the seal; nothing may be appended"
            )
        records.append(parse_record(line, number))
    return Manifest(tuple(lines), tuple(records))


def parse_record(line: bytes, number: int) -> Record:
    """One manifest line (without LF); line 1 must be the header and only line 1."""
    what = f"manifest line {number}"
    obj = parse_json(line, what=what)
    return _parse_header(obj, what) if number == 1 else _parse_body_record(obj, what)


def _parse_header(obj: dict[str, Any], what: str) -> ClipHeader:
    if obj.get("type") != "header" or obj.get("format") != FORMAT:
        raise FormatError(f"{what}: not a bwc manifest header (type 'header', format {FORMAT!r})")
    version = obj.get("version")
    if version not in VERSIONS or isinstance(version, bool):
        raise UnsupportedVersionError(
            f"manifest format version {version!r} is not supported "
            f"(this bwc reads versions {', '.join(map(str, VERSIONS))}): upgrade bwc"
        )
    spec: dict[str, type] = {
        "type": str, "format": str, "version": int, "prev": str, "clip_id": str,
        "device_id": str, "device_serial": str, "device_key_id": str, "device_public_key": str,
        "officer_id": str, "firmware_version": str, "start_wall_ns": int,
        "start_monotonic_ns": int, "time_sync_offset_ns": int, "triggers": list,
        "pre_event": dict, "data_key": dict,
    }  # fmt: skip
    if version >= PROFILE_VERSION:
        spec["profile_id"] = str
    require_fields(obj, spec, what)
    profile_id = ""
    if version >= PROFILE_VERSION:
        profile_id = check_hex(obj["profile_id"], what=f"{what}.profile_id", chars=64)
    require_non_negative(obj, ("start_wall_ns", "start_monotonic_ns"), what)
    check_hex(obj["prev"], what=f"{what}.prev", chars=64)
    public = b64d(obj["device_public_key"], what=f"{what}.device_public_key", size=32)
    if check_hex(obj["device_key_id"], what=f"{what}.device_key_id", chars=16) != key_id(public):
        raise FormatError(f"{what}: device_key_id does not match device_public_key")
    if not all(isinstance(t, dict) and isinstance(t.get("kind"), str) for t in obj["triggers"]):
        raise FormatError(f"{what}: each trigger must be an object with a string 'kind'")
    require_fields(obj["pre_event"], {"duration_ns": int, "audio": bool}, f"{what}.pre_event")
    require_non_negative(obj["pre_event"], ("duration_ns",), f"{what}.pre_event")
    info = ClipInfo(
        device_id=obj["device_id"],
        device_serial=obj["device_serial"],
        officer_id=obj["officer_id"],
        firmware_version=obj["firmware_version"],
        start_wall_ns=obj["start_wall_ns"],
        start_monotonic_ns=obj["start_monotonic_ns"],
        time_sync_offset_ns=obj["time_sync_offset_ns"],
        triggers=tuple(obj["triggers"]),
        pre_event_ns=obj["pre_event"]["duration_ns"],
        pre_event_audio=obj["pre_event"]["audio"],
        profile_id=profile_id,
    )
    return ClipHeader(
        clip_id=check_clip_id(obj["clip_id"], what=f"{what}.clip_id"),
        device_public_key=public,
        data_key=WrappedKey.from_json(obj["data_key"], what=f"{what}.data_key"),
        info=info,
        prev=obj["prev"],
    )


def _parse_body_record(obj: dict[str, Any], what: str) -> Record:
    kind = obj.get("type")
    if kind == "segment":
        spec = {
            "type": str, "index": int, "pts_start_ns": int, "pts_end_ns": int,
            "plain_sha256": str, "cipher_sha256": str, "size": int, "prev": str,
        }  # fmt: skip
        require_fields(obj, spec, what)
        require_non_negative(obj, ("index", "size"), what)
        return SegmentRecord(
            index=obj["index"],
            pts_start_ns=obj["pts_start_ns"],
            pts_end_ns=obj["pts_end_ns"],
            plain_sha256=check_hex(obj["plain_sha256"], what=f"{what}.plain_sha256", chars=64),
            cipher_sha256=check_hex(obj["cipher_sha256"], what=f"{what}.cipher_sha256", chars=64),
            size=obj["size"],
            prev=check_hex(obj["prev"], what=f"{what}.prev", chars=64),
        )
    if kind == "event":
        spec = {
            "type": str, "kind": str, "wall_ns": int, "monotonic_ns": int, "data": dict,
            "prev": str,
        }  # fmt: skip
        require_fields(obj, spec, what)
        return EventRecord(
            kind=obj["kind"],
            wall_ns=obj["wall_ns"],
            monotonic_ns=obj["monotonic_ns"],
            data=obj["data"],
            prev=check_hex(obj["prev"], what=f"{what}.prev", chars=64),
        )
    if kind == "seal":
        spec = {
            "type": str, "end_wall_ns": int, "end_monotonic_ns": int, "segment_count": int,
            "total_bytes": int, "recovered": bool, "body_sha256": str, "prev": str,
            "signature": str,
        }  # fmt: skip
        require_fields(obj, spec, what)
        return SealRecord(
            end_wall_ns=obj["end_wall_ns"],
            end_monotonic_ns=obj["end_monotonic_ns"],
            segment_count=obj["segment_count"],
            total_bytes=obj["total_bytes"],
            recovered=obj["recovered"],
            body_sha256=check_hex(obj["body_sha256"], what=f"{what}.body_sha256", chars=64),
            prev=check_hex(obj["prev"], what=f"{what}.prev", chars=64),
            signature=b64d(obj["signature"], what=f"{what}.signature", size=64),
        )
    if kind == "header":
        raise FormatError(f"{what}: a second header; a manifest has exactly one, on line 1")
    raise FormatError(f"{what}: unknown record type {kind!r} (expected segment, event or seal)")


def line_hash(line: bytes) -> str:
    """The ``prev`` value of the record that follows ``line`` (a line without its LF)."""
    return sha256_hex(line)


@dataclass(frozen=True)
class ManifestDigest:
    """What a receipt commits to about a sealed manifest."""

    clip_id: str
    device_id: str
    manifest_sha256: str  # SHA-256 of the whole manifest file
    chain_head: str  # the seal's prev: SHA-256 of the last line before the seal
    byte_count: int  # manifest file size plus the sizes of all its segment files


def manifest_digest(data: bytes) -> ManifestDigest:
    manifest = parse_manifest(data)
    seal = manifest.seal
    if seal is None:
        raise FormatError("manifest is not sealed: only a sealed clip can be stored or receipted")
    return ManifestDigest(
        clip_id=manifest.header.clip_id,
        device_id=manifest.header.info.device_id,
        manifest_sha256=sha256_hex(data),
        chain_head=seal.prev,
        byte_count=len(data) + seal.total_bytes,
    )
