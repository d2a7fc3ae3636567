"""Receipts: signed by the store, and only valid for the manifest they name."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.canonical import canonical_bytes
from custody.clip import SealedClip, seal_clip
from custody.errors import IntegrityError, SignatureError, UnsupportedVersionError
from custody.manifest import ClipInfo
from custody.receipt import (
    Receipt,
    issue_receipt,
    parse_receipt,
    require_valid_receipt,
    verify_receipt,
)

STORED_AT = 1_700_000_500_000_000_000


@pytest.fixture
def store_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def receipt(store_key: Ed25519PrivateKey, clip: SealedClip) -> Receipt:
    return issue_receipt(
        store_key, clip.manifest, evidence_id="EV-2024-000123", stored_at_ns=STORED_AT
    )


def test_a_receipt_verifies_for_its_manifest(
    receipt: Receipt, store_key: Ed25519PrivateKey, clip: SealedClip
) -> None:
    report = verify_receipt(receipt.to_bytes(), store_key.public_key(), clip.manifest)
    assert report.ok, report.first_failure
    assert [c.name for c in report.checks] == ["format", "signer", "signature", "matches manifest"]


def test_a_receipt_file_round_trips(receipt: Receipt) -> None:
    assert parse_receipt(receipt.to_bytes()) == receipt


def test_a_receipt_signed_by_another_key_is_refused(receipt: Receipt, clip: SealedClip) -> None:
    forger = Ed25519PrivateKey.generate()
    forged = issue_receipt(forger, clip.manifest, evidence_id="EV-1", stored_at_ns=STORED_AT)
    with pytest.raises(SignatureError, match="signed by an unknown key"):
        require_valid_receipt(forged, Ed25519PrivateKey.generate().public_key(), clip.manifest)


def test_an_altered_receipt_field_fails_the_signature(
    receipt: Receipt, store_key: Ed25519PrivateKey, clip: SealedClip
) -> None:
    altered = dataclasses.replace(receipt, byte_count=receipt.byte_count + 1)
    report = verify_receipt(altered, store_key.public_key(), clip.manifest)
    assert report.first_failure is not None and report.first_failure.name == "signature"
    assert "forged or altered" in report.first_failure.detail


def test_a_genuine_receipt_for_another_clip_does_not_match(
    store_key: Ed25519PrivateKey,
    clip: SealedClip,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    info: ClipInfo,
) -> None:
    other = seal_clip(
        [b"x"], device_key=device_key, agency_public=agency_key.public_key(), info=info
    )
    receipt = issue_receipt(store_key, other.manifest, evidence_id="EV-9", stored_at_ns=STORED_AT)
    with pytest.raises(
        IntegrityError, match="matches manifest: the receipt is for other data: clip_id"
    ):
        require_valid_receipt(receipt, store_key.public_key(), clip.manifest)


def test_an_unknown_receipt_version_is_refused(receipt: Receipt) -> None:
    doc = receipt.to_json() | {"version": 2}
    with pytest.raises(UnsupportedVersionError, match="receipt format version 2"):
        parse_receipt(canonical_bytes(doc))


def test_an_oversized_receipt_is_a_failed_format_check(store_key: Ed25519PrivateKey) -> None:
    report = verify_receipt(b" " * 20_000, store_key.public_key())
    assert report.first_failure is not None and report.first_failure.name == "format"
    assert "more than the 16384 allowed" in report.first_failure.detail
