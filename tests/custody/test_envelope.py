"""Key wrap: only the agency private key, for this clip, unwraps the data key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.clipid import new_clip_id
from custody.envelope import WrappedKey, unwrap_data_key, wrap_data_key
from custody.errors import FormatError, IntegrityError, KeyMismatchError, UnsupportedVersionError

AGENCY = X25519PrivateKey.generate()


@settings(max_examples=25)
@given(st.binary(min_size=32, max_size=32), st.uuids(version=4))
def test_unwrap_returns_the_wrapped_key(data_key: bytes, clip: object) -> None:
    clip_id = str(clip)
    wrapped = wrap_data_key(data_key, AGENCY.public_key(), clip_id)
    parsed = WrappedKey.from_json(wrapped.to_json())
    assert unwrap_data_key(parsed, AGENCY, clip_id) == data_key


def test_another_agency_key_is_refused_naming_the_right_key_id() -> None:
    wrapped = wrap_data_key(b"k" * 32, AGENCY.public_key(), new_clip_id())
    with pytest.raises(
        KeyMismatchError, match=f"use the agency private key with id {wrapped.recipient}"
    ):
        unwrap_data_key(wrapped, X25519PrivateKey.generate(), new_clip_id())


def test_a_key_wrapped_for_another_clip_does_not_unwrap() -> None:
    wrapped = wrap_data_key(b"k" * 32, AGENCY.public_key(), new_clip_id())
    with pytest.raises(IntegrityError, match="belongs to another clip"):
        unwrap_data_key(wrapped, AGENCY, new_clip_id())


def test_an_unknown_wrap_version_is_refused() -> None:
    doc = wrap_data_key(b"k" * 32, AGENCY.public_key(), new_clip_id()).to_json()
    doc["version"] = 2
    with pytest.raises(UnsupportedVersionError, match="version 2 is not supported"):
        WrappedKey.from_json(doc)


def test_a_wrapped_key_with_an_extra_field_is_refused() -> None:
    doc = wrap_data_key(b"k" * 32, AGENCY.public_key(), new_clip_id()).to_json()
    doc["hint"] = "x"
    with pytest.raises(FormatError, match="expected fields"):
        WrappedKey.from_json(doc)
