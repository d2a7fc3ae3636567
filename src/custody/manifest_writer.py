"""Appending manifest records without ever rewriting the file.

The writer hands each finished line (record bytes plus LF) to a ``write`` callable in one call, so
the device can route it through its storage port and fsync it; this module touches no files.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.canonical import canonical_bytes
from custody.errors import FormatError, KeyMismatchError
from custody.keys import raw_public
from custody.manifest import (
    MAX_LINE_BYTES,
    MAX_MANIFEST_BYTES,
    SEAL_DOMAIN,
    ZERO_HASH,
    ClipHeader,
    EventRecord,
    SealRecord,
    SegmentRecord,
    line_hash,
    parse_manifest,
    parse_record,
)

Write = Callable[[bytes], object]


class ManifestWriter:
    """Appends records to one clip's manifest; ``seal`` signs it and ends it."""

    def __init__(self, write: Write, header: ClipHeader) -> None:
        self._write = write
        self._header = header
        self._body = hashlib.sha256()
        self._prev = ""
        self._segments = 0
        self._total = 0
        self._sealed = False

    @classmethod
    def start(cls, write: Write, header: ClipHeader) -> ManifestWriter:
        """Begin a new manifest by writing its header line."""
        writer = cls(write, header)
        writer._append(canonical_bytes(dataclasses.replace(header, prev=ZERO_HASH).to_json()))
        return writer

    @classmethod
    def resume(cls, data: bytes, write: Write) -> ManifestWriter:
        """Continue an unsealed manifest whose intact lines are ``data`` (see ``intact_prefix``)."""
        manifest = parse_manifest(data)
        if manifest.seal is not None:
            raise FormatError("manifest is already sealed: nothing may be appended to it")
        writer = cls(write, manifest.header)
        writer._body.update(data)
        writer._prev = line_hash(manifest.lines[-1])
        writer._segments = len(manifest.segments)
        writer._total = sum(s.size for s in manifest.segments)
        if [s.index for s in manifest.segments] != list(range(writer._segments)):
            raise FormatError("manifest segment indices are not 0, 1, 2, ...: cannot resume it")
        return writer

    @property
    def header(self) -> ClipHeader:
        return self._header

    @property
    def segment_count(self) -> int:
        return self._segments

    @property
    def total_bytes(self) -> int:
        return self._total

    @property
    def chain_head(self) -> str:
        return self._prev

    @property
    def sealed(self) -> bool:
        return self._sealed

    def add_segment(self, record: SegmentRecord) -> None:
        if record.index != self._segments:
            raise FormatError(
                f"segment {record.index} added where segment {self._segments} is next: "
                "segments are recorded in order, without gaps"
            )
        self._append(canonical_bytes(dataclasses.replace(record, prev=self._prev).to_json()))
        self._segments += 1
        self._total += record.size

    def add_event(self, record: EventRecord) -> None:
        self._append(canonical_bytes(dataclasses.replace(record, prev=self._prev).to_json()))

    def seal(
        self,
        device_key: Ed25519PrivateKey,
        *,
        end_wall_ns: int,
        end_monotonic_ns: int,
        recovered: bool = False,
    ) -> SealRecord:
        """Sign everything written so far and end the manifest."""
        if raw_public(device_key) != self._header.device_public_key:
            raise KeyMismatchError(
                "the signing key is not the device key named in the manifest header"
            )
        unsigned = SealRecord(
            end_wall_ns=end_wall_ns,
            end_monotonic_ns=end_monotonic_ns,
            segment_count=self._segments,
            total_bytes=self._total,
            recovered=recovered,
            body_sha256=self._body.hexdigest(),
            prev=self._prev,
        )
        signature = device_key.sign(seal_message(unsigned))
        seal = dataclasses.replace(unsigned, signature=signature)
        self._append(canonical_bytes(seal.to_json()))
        self._sealed = True
        return seal

    def _append(self, line: bytes) -> None:
        if self._sealed:
            raise FormatError("manifest is sealed: nothing may be appended to it")
        if len(line) > MAX_LINE_BYTES:
            raise FormatError(f"manifest record of {len(line)} bytes exceeds {MAX_LINE_BYTES}")
        data = line + b"\n"
        self._write(data)
        # only count what the sink accepted: a failed write leaves the writer where it was
        self._body.update(data)
        self._prev = line_hash(line)


def seal_message(seal: SealRecord) -> bytes:
    """The exact bytes the device signs: a domain label, then the canonical unsigned seal."""
    return SEAL_DOMAIN + canonical_bytes(seal.unsigned_json(), what="manifest seal")


def intact_prefix(data: bytes) -> int:
    """Length of the leading lines that are complete, well-formed and correctly chained.

    Recovery truncates an unsealed manifest to this length (dropping a torn tail) and resumes it.
    """
    end = 0
    prev = ZERO_HASH
    number = 1
    while True:
        nl = data.find(b"\n", end)
        if nl < 0 or nl - end > MAX_LINE_BYTES or nl + 1 > MAX_MANIFEST_BYTES:
            return end
        line = data[end:nl]
        try:
            record = parse_record(line, number)
        except FormatError:
            return end
        if record.prev != prev:
            return end
        prev, end, number = line_hash(line), nl + 1, number + 1
        if isinstance(record, SealRecord):
            return end
