"""Manifest records: strict parsing, append-only writing, recovery of a torn tail."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.canonical import canonical_bytes, parse_json, sha256_hex
from custody.clip import SealedClip
from custody.envelope import wrap_data_key
from custody.errors import FormatError, KeyMismatchError, UnsupportedVersionError
from custody.keys import raw_public
from custody.manifest import (
    MAX_LINE_BYTES,
    ClipHeader,
    ClipInfo,
    EventRecord,
    SegmentRecord,
    manifest_digest,
    parse_manifest,
)
from custody.manifest_writer import ManifestWriter, intact_prefix
from custody.segment import new_data_key


def _lines(clip: SealedClip) -> list[bytes]:
    return clip.manifest.split(b"\n")[:-1]


def _segment(index: int) -> SegmentRecord:
    return SegmentRecord(index, index, index + 1, "a" * 64, "b" * 64, 100)


@pytest.fixture
def header(
    device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey, info: ClipInfo
) -> ClipHeader:
    clip_id = "0b4e7c8a-1d2f-4a5b-8c6d-7e8f9a0b1c2d"
    wrapped = wrap_data_key(new_data_key(), agency_key.public_key(), clip_id)
    return ClipHeader(clip_id, raw_public(device_key), wrapped, info)


def test_each_record_is_one_canonical_line_chained_to_the_one_before(clip: SealedClip) -> None:
    lines = _lines(clip)
    records = [parse_json(line, what="line") for line in lines]
    assert [r["type"] for r in records] == ["header"] + ["segment"] * 2 + ["event"] + [
        "segment"
    ] * 3 + ["seal"]
    assert records[0]["prev"] == "0" * 64
    for before, record in zip(lines, records[1:], strict=False):
        assert record["prev"] == sha256_hex(before)


def test_appending_a_segment_writes_only_the_new_line(header: ClipHeader) -> None:
    writes: list[bytes] = []
    writer = ManifestWriter.start(writes.append, header)
    writer.add_segment(_segment(0))
    assert len(writes) == 2
    assert writes[1].endswith(b"\n") and writes[1].count(b"\n") == 1
    assert parse_json(writes[1][:-1], what="line")["prev"] == sha256_hex(writes[0][:-1])


def test_segments_must_be_added_in_order(header: ClipHeader) -> None:
    writer = ManifestWriter.start(lambda _: None, header)
    with pytest.raises(FormatError, match="segment 1 added where segment 0 is next"):
        writer.add_segment(_segment(1))


def test_a_sealed_manifest_takes_no_more_records(
    header: ClipHeader, device_key: Ed25519PrivateKey
) -> None:
    writer = ManifestWriter.start(lambda _: None, header)
    writer.seal(device_key, end_wall_ns=1, end_monotonic_ns=1)
    with pytest.raises(FormatError, match="sealed"):
        writer.add_event(EventRecord("marker", 1, 1))


def test_only_the_header_device_key_may_seal(header: ClipHeader) -> None:
    writer = ManifestWriter.start(lambda _: None, header)
    with pytest.raises(KeyMismatchError, match="not the device key named in the manifest header"):
        writer.seal(Ed25519PrivateKey.generate(), end_wall_ns=1, end_monotonic_ns=1)


def test_a_float_in_event_data_is_refused_when_appended(header: ClipHeader) -> None:
    writer = ManifestWriter.start(lambda _: None, header)
    with pytest.raises(FormatError, match=r"\$\.data\.lat is a float"):
        writer.add_event(EventRecord("gnss", 1, 1, {"lat": 51.5}))


def test_truncated_json_on_the_last_line_is_reported_as_truncated(clip: SealedClip) -> None:
    with pytest.raises(FormatError, match="line 8 is truncated \\(no line end\\)"):
        parse_manifest(clip.manifest[:-20])


def test_an_oversized_line_is_refused(clip: SealedClip) -> None:
    big = b"x" * (MAX_LINE_BYTES + 1) + b"\n"
    with pytest.raises(FormatError, match=f"line 2 is {MAX_LINE_BYTES + 1} bytes, more than"):
        parse_manifest(_lines(clip)[0] + b"\n" + big)


def test_an_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(FormatError, match="more than the 33554432 allowed"):
        parse_manifest(b"\n" * (32 * 1024 * 1024 + 1))


def test_an_unknown_format_version_is_refused(clip: SealedClip) -> None:
    header = parse_json(_lines(clip)[0], what="header")
    header["version"] = 3
    with pytest.raises(UnsupportedVersionError, match=r"version 3 is not supported.*upgrade bwc"):
        parse_manifest(canonical_bytes(header) + b"\n")


def test_an_unknown_field_is_refused(clip: SealedClip) -> None:
    lines = _lines(clip)
    record = parse_json(lines[1], what="line")
    record["note"] = "x"
    lines[1] = canonical_bytes(record)
    with pytest.raises(FormatError, match="line 2: unknown field\\(s\\) note"):
        parse_manifest(b"".join(line + b"\n" for line in lines))


def test_a_record_after_the_seal_is_refused(clip: SealedClip) -> None:
    extra = _lines(clip)[1] + b"\n"
    with pytest.raises(FormatError, match="line 9: a record follows the seal"):
        parse_manifest(clip.manifest + extra)


def test_a_file_that_is_not_a_manifest_is_named_as_such() -> None:
    with pytest.raises(FormatError, match="line 1: not a bwc manifest header"):
        parse_manifest(b'{"type":"receipt"}\n')


def test_a_torn_tail_is_dropped_and_the_manifest_resumed(
    clip: SealedClip, device_key: Ed25519PrivateKey
) -> None:
    unsealed = b"".join(line + b"\n" for line in _lines(clip)[:-1])
    torn = unsealed + b'{"cipher_sha256":"ab'
    keep = intact_prefix(torn)
    assert keep == len(unsealed)
    writes: list[bytes] = []
    writer = ManifestWriter.resume(torn[:keep], writes.append)
    assert writer.segment_count == 5
    writer.seal(device_key, end_wall_ns=2, end_monotonic_ns=2, recovered=True)
    manifest = parse_manifest(torn[:keep] + b"".join(writes))
    assert manifest.seal is not None and manifest.seal.recovered


def test_the_digest_names_the_chain_head_and_the_bytes_stored(clip: SealedClip) -> None:
    digest = manifest_digest(clip.manifest)
    assert digest.chain_head == sha256_hex(_lines(clip)[-2])
    assert digest.manifest_sha256 == sha256_hex(clip.manifest)
    assert digest.byte_count == len(clip.manifest) + sum(len(b) for b in clip.segments.values())
