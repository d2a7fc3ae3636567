"""Verifying manifests and clips against a trusted device key (and, optionally, the agency key).

Every check is recorded in a :class:`Report`; failures name the record line or the segment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.canonical import sha256_hex
from custody.clip import MANIFEST_NAME, FolderSegments, SegmentSource, read_limited
from custody.envelope import unwrap_data_key
from custody.errors import CustodyError, FormatError
from custody.keys import key_id, raw_public
from custody.manifest import (
    MAX_MANIFEST_BYTES,
    ZERO_HASH,
    Manifest,
    Record,
    SegmentRecord,
    line_hash,
    parse_manifest,
)
from custody.manifest_writer import seal_message
from custody.report import Report
from custody.segment import open_segment, read_header


def verify_manifest(data: bytes, device_key: Ed25519PublicKey) -> Report:
    """Check a manifest's format, signer, hash chain, segment order, totals and signature."""
    report = Report("manifest")
    try:
        manifest = parse_manifest(data)
    except FormatError as exc:
        report.failed("format", str(exc))
        return report
    report.passed("format", f"{len(manifest.lines)} records, format version 1")
    _check_signer(report, manifest, device_key)
    _check_chain(report, manifest)
    _check_order(report, manifest)
    _check_seal(report, manifest, device_key)
    return report


def _describe(record: Record) -> str:
    if isinstance(record, SegmentRecord):
        return f"segment {record.index}"
    return type(record).__name__.removesuffix("Record").removeprefix("Clip").lower()


def _check_signer(report: Report, manifest: Manifest, device_key: Ed25519PublicKey) -> None:
    named, trusted = manifest.header.device_key_id, key_id(device_key)
    if manifest.header.device_public_key != raw_public(device_key):
        report.failed(
            "signer",
            f"signed by an unknown key: the manifest names device key {named}, "
            f"the trusted device key is {trusted}",
        )
    else:
        report.passed("signer", f"device key {trusted} ({manifest.header.info.device_id})")


def _check_chain(report: Report, manifest: Manifest) -> None:
    expected = ZERO_HASH
    for number, (line, record) in enumerate(zip(manifest.lines, manifest.records, strict=True)):
        if record.prev != expected:
            before = manifest.records[number - 1] if number else None
            segment = next(
                (r.index for r in (before, record) if isinstance(r, SegmentRecord)), None
            )
            report.failed(
                "chain",
                f"line {number + 1} ({_describe(record)}) does not link to the line before it: "
                "a record was altered, removed or inserted",
                segment,
            )
            return
        expected = line_hash(line)
    report.passed("chain", f"{len(manifest.lines)} records, each linked to the one before")


def _check_order(report: Report, manifest: Manifest) -> None:
    indices = [s.index for s in manifest.segments]
    for position, index in enumerate(indices):
        if index == position:
            continue
        if index in indices[:position]:
            detail = f"recorded twice (again after segment {indices[position - 1]})"
        elif index > position:
            detail = f"follows segment {position - 1}: segment {position} is missing"
        else:
            detail = f"recorded out of order (after segment {indices[position - 1]})"
        report.failed("segment order", detail, index)
        return
    span = f"segments 0..{len(indices) - 1}" if indices else "no segments"
    report.passed("segment order", f"{span} in order")


def _check_seal(report: Report, manifest: Manifest, device_key: Ed25519PublicKey) -> None:
    seal = manifest.seal
    if seal is None:
        report.failed(
            "sealed",
            "the manifest has no seal: the clip was never closed "
            "(recovery on the device seals it with recovered: true)",
        )
        return
    report.passed("sealed", "recovered: true" if seal.recovered else "recovered: false")
    count, total = len(manifest.segments), sum(s.size for s in manifest.segments)
    if (seal.segment_count, seal.total_bytes) != (count, total):
        report.failed(
            "seal totals",
            f"seal says {seal.segment_count} segments / {seal.total_bytes} bytes, "
            f"the records add up to {count} / {total}",
        )
    else:
        report.passed("seal totals", f"{count} segments, {total} bytes")
    body = sha256_hex(manifest.body_bytes())
    if seal.body_sha256 != body:
        report.failed("body hash", "the bytes before the seal are not those that were sealed")
    else:
        report.passed("body hash", f"sha256 {seal.body_sha256[:16]}…")
    # The signature is checked over the hashes of the bytes actually present, not the ones the
    # seal claims, so it holds only if every byte before the seal is what the device signed.
    actual = dataclasses.replace(seal, body_sha256=body, prev=line_hash(manifest.lines[-2]))
    try:
        device_key.verify(seal.signature, seal_message(actual))
    except InvalidSignature:
        report.failed("signature", "the seal's Ed25519 signature does not verify with the key")
    else:
        report.passed("signature", f"Ed25519 by device key {key_id(device_key)}")


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    detail: str


def verify_clip(
    source: SegmentSource,
    manifest_bytes: bytes,
    device_key: Ed25519PublicKey,
    agency_key: X25519PrivateKey | None = None,
) -> Report:
    """Verify the manifest, then every segment file against it; with the agency key, decrypt."""
    report = Report("clip")
    report.extend(verify_manifest(manifest_bytes, device_key))
    if report.has_failed("format"):
        return report
    manifest = parse_manifest(manifest_bytes)
    _check_segment_files(report, source, manifest)
    if agency_key is not None:
        _check_plaintext(report, source, manifest, agency_key)
    return report


def _check_segment_files(report: Report, source: SegmentSource, manifest: Manifest) -> None:
    records = manifest.segments
    failures = 0
    for record in records:
        blob = source.read(record.index, record.size + 1)
        check, outcome = _check_file(record, blob, source.name(record.index))
        if not outcome.ok:
            report.failed(check, outcome.detail, record.index)
            failures += 1
    known = {r.index for r in records}
    extra = [source.name(i) for i in source.indices() if i not in known]
    if extra:
        report.failed("extra segments", f"files not in the manifest: {', '.join(extra)}")
    if not failures:
        total = sum(r.size for r in records)
        report.passed(
            "segment files", f"{len(records)} files: size, header and sha256 match ({total} bytes)"
        )


def _check_file(record: SegmentRecord, blob: bytes | None, name: str) -> tuple[str, _Outcome]:
    if blob is None:
        return "segment file", _Outcome(False, f"{name} is missing")
    try:
        header = read_header(blob, what=name)
    except FormatError as exc:
        return "segment header", _Outcome(False, str(exc))
    if header.index != record.index:
        return "segment header", _Outcome(
            False, f"{name} holds segment {header.index}: segments renamed or reordered"
        )
    if len(blob) != record.size:
        found = f"more than {record.size}" if len(blob) > record.size else str(len(blob))
        return "segment size", _Outcome(
            False,
            f"{name} is {found} bytes, the manifest says {record.size} (truncated or appended to)",
        )
    if sha256_hex(blob) != record.cipher_sha256:
        return "ciphertext sha256", _Outcome(
            False, f"{name} does not match the manifest: the file was altered"
        )
    return "segment file", _Outcome(True, "")


def _check_plaintext(
    report: Report, source: SegmentSource, manifest: Manifest, agency_key: X25519PrivateKey
) -> None:
    header = manifest.header
    try:
        data_key = unwrap_data_key(header.data_key, agency_key, header.clip_id)
    except CustodyError as exc:
        report.failed("data key", str(exc))
        return
    report.passed("data key", f"unwrapped with agency key {key_id(agency_key)}")
    failures = 0
    for record in manifest.segments:
        blob = source.read(record.index, record.size + 1)
        if blob is None:
            continue  # already reported as missing
        try:
            plaintext = open_segment(data_key, header.clip_id, record.index, blob)
        except CustodyError as exc:
            report.failed(
                "decryption", str(exc).removeprefix(f"segment {record.index}: "), record.index
            )
            failures += 1
            continue
        if sha256_hex(plaintext) != record.plain_sha256:
            report.failed(
                "plaintext sha256", "decrypted data does not match the manifest", record.index
            )
            failures += 1
    if not failures:
        report.passed("plaintext", f"{len(manifest.segments)} segments decrypted, sha256 match")


def verify_clip_folder(
    folder: Path, device_key: Ed25519PublicKey, agency_key: X25519PrivateKey | None = None
) -> Report:
    """``verify_clip`` for a clip folder (manifest.jsonl and seg-NNNNNN.bwcs files)."""
    manifest = read_limited(folder / MANIFEST_NAME, MAX_MANIFEST_BYTES)
    return verify_clip(FolderSegments(folder), manifest, device_key, agency_key)


def require_valid_clip(
    source: SegmentSource,
    manifest_bytes: bytes,
    device_key: Ed25519PublicKey,
    agency_key: X25519PrivateKey | None = None,
) -> Manifest:
    """Verify a clip and return its parsed manifest, or raise naming the first failed check."""
    verify_clip(source, manifest_bytes, device_key, agency_key).raise_for_failure()
    return parse_manifest(manifest_bytes)
