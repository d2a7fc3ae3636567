"""File receipts: signed by the store under their own domain, valid only for the bytes they name."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.errors import FormatError, IntegrityError, SignatureError, UnsupportedVersionError
from custody.file_receipt import (
    FileReceipt,
    check_file_name,
    issue_file_receipt,
    parse_file_receipt,
    require_valid_file_receipt,
    verify_file_receipt,
)
from custody.receipt import parse_receipt

DATA = b"\x00\x00\x00\x18ftypmp42 an export from another maker"
SHA = hashlib.sha256(DATA).hexdigest()
STORE = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))


def _issue(name: str = "MOV_0001.MP4") -> FileReceipt:
    return issue_file_receipt(
        STORE, evidence_id="FILE-1", sha256=SHA, size=len(DATA), name=name,
        submitted_by="dock:dock-01", stored_at_ns=1_700_000_000_000_000_000,
    )  # fmt: skip


def test_a_file_receipt_verifies_for_its_hash_and_size() -> None:
    report = verify_file_receipt(
        _issue().to_bytes(), STORE.public_key(), sha256=SHA, size=len(DATA)
    )
    assert report.ok, report.first_failure


def test_a_file_receipt_for_other_bytes_names_the_differing_fields() -> None:
    report = verify_file_receipt(_issue(), STORE.public_key(), sha256="0" * 64, size=1)
    assert report.first_failure is not None
    assert report.first_failure.name == "matches file"
    assert "sha256" in report.first_failure.detail and "size" in report.first_failure.detail
    with pytest.raises(IntegrityError):
        require_valid_file_receipt(_issue(), STORE.public_key(), sha256="0" * 64, size=len(DATA))


def test_a_file_receipt_from_another_key_is_refused() -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(SignatureError):
        require_valid_file_receipt(_issue(), other.public_key(), sha256=SHA, size=len(DATA))


def test_a_file_receipt_is_not_a_clip_receipt() -> None:
    with pytest.raises(FormatError):
        parse_receipt(_issue().to_bytes())


def test_an_altered_field_breaks_the_signature() -> None:
    forged = dataclasses.replace(_issue(), name="OTHER.MP4")
    assert not verify_file_receipt(forged, STORE.public_key()).ok


def test_another_version_is_refused() -> None:
    text = _issue().to_bytes().replace(b'"version":1', b'"version":2')
    with pytest.raises(UnsupportedVersionError):
        parse_file_receipt(text)


@pytest.mark.parametrize(
    "name", ["", ".", "..", "a/b.mp4", "..\\x.mp4", "a\x00b", "line\nbreak", "x" * 256]
)
def test_a_name_that_is_not_a_plain_file_name_is_refused(name: str) -> None:
    with pytest.raises(FormatError):
        check_file_name(name)


_names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\"),
    min_size=1, max_size=60,
).filter(lambda n: n not in (".", ".."))  # fmt: skip


@settings(max_examples=50)
@given(name=_names)
def test_a_file_receipt_survives_a_round_trip(name: str) -> None:
    issued = _issue(name)
    assert parse_file_receipt(issued.to_bytes()) == issued


@settings(max_examples=100)
@given(bit=st.integers(min_value=0))
def test_any_single_bit_flip_in_a_file_receipt_is_detected(bit: int) -> None:
    data = bytearray(_issue().to_bytes().rstrip(b"\n"))
    bit %= len(data) * 8
    data[bit // 8] ^= 1 << (bit % 8)
    report = verify_file_receipt(bytes(data), STORE.public_key(), sha256=SHA, size=len(DATA))
    assert not report.ok
