"""Firmware bundles: built from a folder, signed by the release key, and every bad one refused."""

from __future__ import annotations

import dataclasses
import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody import vectors_release
from custody.errors import FormatError, SignatureError
from custody.firmware_bundle import (
    CHUNK,
    BundleHeader,
    FileEntry,
    build_bundle,
    parse_version,
    read_header,
    sign_bundle,
    verify_bundle,
)
from custody.report import Report

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "formats" / "vectors"


@pytest.fixture
def release_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    folder = tmp_path / "payload"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "bwc-firmware").write_bytes(b"#!/bin/sh\nexec true\n")
    (folder / "VERSION").write_bytes(b"1.2.0\n")
    return folder


def _build(payload: Path, out: Path, **changes: Any) -> BundleHeader:
    fields: dict[str, Any] = {
        "firmware_version": "1.2.0", "target": "sim", "min_version": "1.0.0",
        "notes": "notes", "created_at_ns": 1,
    }  # fmt: skip
    return build_bundle(payload, out, **{**fields, **changes})


@pytest.fixture
def bundle(payload: Path, tmp_path: Path, release_key: Ed25519PrivateKey) -> Path:
    out = tmp_path / "fw.bwcfw"
    _build(payload, out)
    sign_bundle(out, release_key)
    return out


def _failed(report: Report) -> str | None:
    first = report.first_failure
    return None if first is None else first.name


def test_a_signed_bundle_passes_every_check(bundle: Path, release_key: Ed25519PrivateKey) -> None:
    report = verify_bundle(
        bundle, [release_key.public_key()], target="sim", current_version="1.1.0"
    )
    assert report.ok
    assert [check.name for check in report.checks] == [
        "format", "signer", "signature", "payload size", "payload hashes", "target", "minimum",
        "downgrade",
    ]  # fmt: skip


def test_the_header_lists_every_file_with_its_size_and_hash(payload: Path, tmp_path: Path) -> None:
    header = _build(payload, tmp_path / "fw.bwcfw")
    with (tmp_path / "fw.bwcfw").open("rb") as stream:
        read, start = read_header(stream)
        rest = stream.read()
    assert read == header
    assert [entry.path for entry in header.files] == ["VERSION", "bin/bwc-firmware"]
    assert rest == b"1.2.0\n#!/bin/sh\nexec true\n"
    assert start == len(header.to_line())


def test_an_unsigned_bundle_fails_signer(payload: Path, tmp_path: Path) -> None:
    _build(payload, tmp_path / "fw.bwcfw")
    report = verify_bundle(tmp_path / "fw.bwcfw", [Ed25519PrivateKey.generate().public_key()])
    assert _failed(report) == "signer"
    assert "unsigned" in report.checks[1].detail


def test_a_bundle_signed_by_another_key_fails_signer_as_a_signature_error(bundle: Path) -> None:
    report = verify_bundle(bundle, [Ed25519PrivateKey.generate().public_key()])
    assert _failed(report) == "signer"
    with pytest.raises(SignatureError, match="not trusted"):
        report.raise_for_failure()


def test_a_tampered_payload_fails_payload_hashes_naming_the_file(
    bundle: Path, release_key: Ed25519PrivateKey
) -> None:
    data = bytearray(bundle.read_bytes())
    data[-2] ^= 0x20
    bundle.write_bytes(bytes(data))
    report = verify_bundle(bundle, [release_key.public_key()])
    assert _failed(report) == "payload hashes"
    assert "bin/bwc-firmware" in report.failures[0].detail


def test_a_changed_header_fails_signature(bundle: Path, release_key: Ed25519PrivateKey) -> None:
    bundle.write_bytes(bundle.read_bytes().replace(b'"target":"sim"', b'"target":"rpi"', 1))
    assert _failed(verify_bundle(bundle, [release_key.public_key()])) == "signature"


def test_a_bundle_for_other_hardware_fails_target(
    bundle: Path, release_key: Ed25519PrivateKey
) -> None:
    report = verify_bundle(bundle, [release_key.public_key()], target="rpi-zero2w")
    assert _failed(report) == "target"


def test_a_camera_older_than_the_minimum_fails_minimum(
    bundle: Path, release_key: Ed25519PrivateKey
) -> None:
    report = verify_bundle(bundle, [release_key.public_key()], current_version="0.9.0")
    assert _failed(report) == "minimum"


def test_an_older_bundle_than_the_running_firmware_fails_downgrade(
    bundle: Path, release_key: Ed25519PrivateKey
) -> None:
    report = verify_bundle(bundle, [release_key.public_key()], current_version="1.10.0")
    assert _failed(report) == "downgrade"


def test_versions_compare_as_numbers() -> None:
    assert parse_version("1.10.0") > parse_version("1.9.12")
    with pytest.raises(FormatError, match=r"MAJOR\.MINOR\.PATCH"):
        parse_version("1.02.0")


@pytest.mark.parametrize("cut", [1, 100])
def test_a_truncated_payload_fails_payload_size(
    bundle: Path, release_key: Ed25519PrivateKey, cut: int
) -> None:
    data = bundle.read_bytes()
    header_len = data.index(b"\n") + 1
    bundle.write_bytes(data[: max(header_len, len(data) - cut)])
    report = verify_bundle(bundle, [release_key.public_key()])
    assert _failed(report) == "payload size"
    assert "truncated" in report.failures[0].detail


def test_a_truncated_header_fails_format(bundle: Path, release_key: Ed25519PrivateKey) -> None:
    bundle.write_bytes(bundle.read_bytes()[:50])
    report = verify_bundle(bundle, [release_key.public_key()])
    assert _failed(report) == "format"
    assert "truncated" in report.failures[0].detail


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "a//b", "a/./b", "a\\b"])
def test_a_path_outside_the_bundle_fails_format(
    tmp_path: Path, release_key: Ed25519PrivateKey, path: str
) -> None:
    header = BundleHeader("1.2.0", "sim", "1.0.0", "", 1, (FileEntry(path, 0, "0" * 64),))
    out = tmp_path / "evil.bwcfw"
    out.write_bytes(header.to_line())
    report = verify_bundle(out, [release_key.public_key()])
    assert _failed(report) == "format"
    assert "plain relative path" in report.failures[0].detail


def test_a_folder_with_a_symlink_is_not_bundled(payload: Path, tmp_path: Path) -> None:
    (payload / "link").symlink_to("/etc/passwd")
    with pytest.raises(FormatError, match="link"):
        _build(payload, tmp_path / "fw.bwcfw")
    assert not (tmp_path / "fw.bwcfw").exists()


def test_a_large_payload_is_hashed_without_holding_it_in_memory(
    tmp_path: Path, release_key: Ed25519PrivateKey
) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    size = 12 * CHUNK
    (folder / "rootfs.img").write_bytes(os.urandom(size))
    out = tmp_path / "big.bwcfw"
    _build(folder, out)
    sign_bundle(out, release_key)
    tracemalloc.start()
    try:
        report = verify_bundle(out, [release_key.public_key()])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok
    assert peak < size / 4


def test_the_published_vectors_verify_and_fail_where_they_say(tmp_path: Path) -> None:
    doc = json.loads((VECTORS / "firmware-bundle.json").read_text(encoding="utf-8"))
    trusted = [vectors_release.release().public_key()]
    path = tmp_path / "vector.bwcfw"
    path.write_bytes(bytes.fromhex(doc["bundle_hex"]))
    assert verify_bundle(path, trusted).ok
    for case in doc["invalid"]:
        path.write_bytes(bytes.fromhex(case["bundle_hex"]))
        report = verify_bundle(
            path, trusted, target=case.get("target"), current_version=case.get("current_version")
        )
        assert _failed(report) == case["check"], case["case"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_bit_flip_in_a_signed_bundle_is_detected(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    valid = vectors_release.bundle_bytes(vectors_release.release())
    bit = data.draw(st.integers(0, len(valid) * 8 - 1))
    flipped = bytearray(valid)
    flipped[bit // 8] ^= 1 << (bit % 8)
    path = tmp_path_factory.mktemp("flip") / "fw.bwcfw"
    path.write_bytes(bytes(flipped))
    assert not verify_bundle(path, [vectors_release.release().public_key()]).ok


def test_signing_keeps_the_payload_and_replaces_only_the_header(
    payload: Path, tmp_path: Path, release_key: Ed25519PrivateKey
) -> None:
    out = tmp_path / "fw.bwcfw"
    unsigned = _build(payload, out)
    before = out.read_bytes()
    signed = sign_bundle(out, release_key)
    assert dataclasses.replace(signed, release_key_id="", signature=b"") == unsigned
    assert out.read_bytes().endswith(before[len(unsigned.to_line()) :])
