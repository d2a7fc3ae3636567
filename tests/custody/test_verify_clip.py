"""Verifying a sealed clip: each kind of damage is found and named (check and segment)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.canonical import canonical_bytes, parse_json
from custody.clip import (
    MemorySegments,
    SealedClip,
    decrypt_segments,
    seal_clip,
    segment_name,
)
from custody.errors import IntegrityError, SignatureError
from custody.manifest import ClipInfo, parse_manifest
from custody.report import Check, Report
from custody.verify import require_valid_clip, verify_clip, verify_clip_folder, verify_manifest


def _first_failure(report: Report) -> Check:
    failure = report.first_failure
    assert failure is not None, "expected a failed check"
    assert not report.ok
    return failure


def _verify_folder(
    folder: Path, device_key: Ed25519PrivateKey, agency: X25519PrivateKey | None = None
) -> Report:
    return verify_clip_folder(folder, device_key.public_key(), agency)


def _rewrite_line(manifest: bytes, number: int, **changes: object) -> bytes:
    lines = manifest.split(b"\n")
    record = parse_json(lines[number - 1], what="line")
    record.update(changes)
    lines[number - 1] = canonical_bytes(record)
    return b"\n".join(lines)


def test_an_intact_clip_passes_every_check(
    clip_folder: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> None:
    report = _verify_folder(clip_folder, device_key, agency_key)
    assert report.ok, report.first_failure
    names = [check.name for check in report.checks]
    assert {"signature", "chain", "segment files", "data key", "plaintext"} <= set(names)


def test_a_flipped_byte_in_a_segment_names_that_segment(
    clip_folder: Path, device_key: Ed25519PrivateKey
) -> None:
    path = clip_folder / segment_name(3)
    blob = bytearray(path.read_bytes())
    blob[50] ^= 0x20
    path.write_bytes(bytes(blob))
    failure = _first_failure(_verify_folder(clip_folder, device_key))
    assert (failure.segment, failure.name) == (3, "ciphertext sha256")


def test_a_truncated_segment_is_found_by_its_size(
    clip_folder: Path, device_key: Ed25519PrivateKey
) -> None:
    path = clip_folder / segment_name(1)
    path.write_bytes(path.read_bytes()[:-10])
    failure = _first_failure(_verify_folder(clip_folder, device_key))
    assert (failure.segment, failure.name) == (1, "segment size")
    assert "truncated" in failure.detail


def test_a_missing_segment_in_the_middle_is_named(
    clip_folder: Path, device_key: Ed25519PrivateKey
) -> None:
    (clip_folder / segment_name(2)).unlink()
    failure = _first_failure(_verify_folder(clip_folder, device_key))
    assert (failure.segment, failure.name) == (2, "segment file")
    assert "seg-000002.bwcs is missing" in failure.detail


def test_reordered_segments_are_found_by_their_header(
    clip_folder: Path, device_key: Ed25519PrivateKey
) -> None:
    one, two = clip_folder / segment_name(1), clip_folder / segment_name(2)
    first, second = one.read_bytes(), two.read_bytes()
    one.write_bytes(second)
    two.write_bytes(first)
    failure = _first_failure(_verify_folder(clip_folder, device_key))
    assert (failure.segment, failure.name) == (1, "segment header")
    assert "holds segment 2" in failure.detail


def test_a_segment_from_another_clip_is_refused(
    clip_folder: Path,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    info: ClipInfo,
    plaintexts: list[bytes],
) -> None:
    other = seal_clip(
        plaintexts, device_key=device_key, agency_public=agency_key.public_key(), info=info
    )
    (clip_folder / segment_name(2)).write_bytes(other.segments[2])
    report = _verify_folder(clip_folder, device_key, agency_key)
    failure = _first_failure(report)
    assert (failure.segment, failure.name) == (2, "ciphertext sha256")
    decryption = [c for c in report.failures if c.name == "decryption"]
    assert [c.segment for c in decryption] == [2]


def test_an_extra_segment_file_is_reported(
    clip_folder: Path, device_key: Ed25519PrivateKey
) -> None:
    (clip_folder / segment_name(5)).write_bytes((clip_folder / segment_name(4)).read_bytes())
    failure = _first_failure(_verify_folder(clip_folder, device_key))
    assert failure.name == "extra segments" and "seg-000005.bwcs" in failure.detail


def test_an_altered_manifest_field_breaks_the_chain_and_the_signature(
    clip: SealedClip, device_key: Ed25519PrivateKey
) -> None:
    altered = _rewrite_line(clip.manifest, 2, size=999)
    report = verify_manifest(altered, device_key.public_key())
    failure = _first_failure(report)
    assert (failure.name, failure.segment) == ("chain", 0)
    assert report.has_failed("signature") and report.has_failed("body hash")


def test_an_altered_seal_field_fails_the_signature(
    clip: SealedClip, device_key: Ed25519PrivateKey
) -> None:
    lines = clip.manifest.split(b"\n")
    altered = _rewrite_line(clip.manifest, len(lines) - 1, recovered=True)
    failure = _first_failure(verify_manifest(altered, device_key.public_key()))
    assert failure.name == "signature"


def test_a_signature_by_an_unknown_key_is_named_as_such(clip: SealedClip) -> None:
    report = verify_manifest(clip.manifest, Ed25519PrivateKey.generate().public_key())
    failure = _first_failure(report)
    assert failure.name == "signer"
    assert "signed by an unknown key" in failure.detail
    with pytest.raises(SignatureError, match="signed by an unknown key"):
        report.raise_for_failure()


def test_a_manifest_resigned_by_another_device_key_is_refused(
    plaintexts: list[bytes],
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    info: ClipInfo,
) -> None:
    forged = seal_clip(
        plaintexts,
        device_key=Ed25519PrivateKey.generate(),
        agency_public=agency_key.public_key(),
        info=info,
    )
    report = verify_clip(MemorySegments(forged.segments), forged.manifest, device_key.public_key())
    assert _first_failure(report).name == "signer"


def test_the_wrong_agency_key_is_named(clip_folder: Path, device_key: Ed25519PrivateKey) -> None:
    report = _verify_folder(clip_folder, device_key, X25519PrivateKey.generate())
    failure = _first_failure(report)
    assert failure.name == "data key"
    assert "use the agency private key with id" in failure.detail


def test_an_unsealed_manifest_does_not_verify(
    clip: SealedClip, device_key: Ed25519PrivateKey
) -> None:
    unsealed = b"".join(line + b"\n" for line in clip.manifest.split(b"\n")[:-2])
    failure = _first_failure(verify_manifest(unsealed, device_key.public_key()))
    assert failure.name == "sealed"


def test_truncated_manifest_json_is_a_failed_format_check(
    clip: SealedClip, device_key: Ed25519PrivateKey
) -> None:
    failure = _first_failure(verify_manifest(clip.manifest[:-30], device_key.public_key()))
    assert failure.name == "format" and "truncated" in failure.detail


def test_a_valid_clip_decrypts_to_its_plaintexts(
    clip: SealedClip,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    plaintexts: list[bytes],
) -> None:
    source = MemorySegments(clip.segments)
    manifest = require_valid_clip(source, clip.manifest, device_key.public_key(), agency_key)
    assert list(decrypt_segments(source, manifest, agency_key)) == plaintexts


def test_require_valid_clip_raises_naming_the_segment(
    clip: SealedClip, device_key: Ed25519PrivateKey
) -> None:
    segments = dict(clip.segments)
    del segments[1]
    with pytest.raises(
        IntegrityError,
        match=r"segment 1: segment file: seg-000001\.bwcs is missing",
    ):
        require_valid_clip(MemorySegments(segments), clip.manifest, device_key.public_key())


def test_a_clip_with_no_segments_verifies(
    device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey, info: ClipInfo
) -> None:
    empty = seal_clip([], device_key=device_key, agency_public=agency_key.public_key(), info=info)
    assert verify_clip(MemorySegments({}), empty.manifest, device_key.public_key(), agency_key).ok
    assert parse_manifest(empty.manifest).segments == []
