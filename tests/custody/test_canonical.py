"""Canonical JSON: one spelling per document, integers only, strict binary encodings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.canonical import b64d, b64e, canonical_bytes, check_hex, parse_json
from custody.errors import FormatError


def test_keys_are_sorted_and_whitespace_is_dropped() -> None:
    assert canonical_bytes({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'


def test_non_ascii_text_is_utf8_not_escaped() -> None:
    assert canonical_bytes({"officer": "Zoë"}) == '{"officer":"Zoë"}'.encode()


def test_a_float_is_refused_naming_its_path() -> None:
    with pytest.raises(FormatError, match=r"\$\.fix\.lat is a float.*1e-7 degrees"):
        canonical_bytes({"fix": {"lat": 51.5}})


def test_an_integer_beyond_64_bits_is_refused() -> None:
    with pytest.raises(FormatError, match="signed 64-bit"):
        canonical_bytes({"n": 2**63})


def test_parsing_refuses_a_float() -> None:
    with pytest.raises(FormatError, match=r"float 1\.5 is not allowed"):
        parse_json(b'{"a":1.5}', what="doc")


def test_parsing_refuses_a_duplicate_key() -> None:
    with pytest.raises(FormatError, match="key 'a' appears twice"):
        parse_json(b'{"a":1,"a":2}', what="doc")


def test_parsing_refuses_non_canonical_spacing() -> None:
    with pytest.raises(FormatError, match="not in canonical form"):
        parse_json(b'{"a": 1}', what="doc")


def test_parsing_refuses_invalid_utf8() -> None:
    with pytest.raises(FormatError, match="not valid UTF-8"):
        parse_json(b'{"a":"\xff"}', what="doc")


def test_parsing_refuses_a_non_object() -> None:
    with pytest.raises(FormatError, match="expected a JSON object"):
        parse_json(b"[1]", what="doc")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_canonical_bytes_parse_back_to_the_same_document(doc: dict[str, object]) -> None:
    encoded = canonical_bytes(doc)
    assert parse_json(encoded, what="doc") == doc


@settings(max_examples=60)
@given(st.binary(max_size=70))
def test_base64url_round_trips_without_padding(data: bytes) -> None:
    text = b64e(data)
    assert "=" not in text
    assert b64d(text, what="field") == data


def test_base64url_with_padding_is_refused() -> None:
    with pytest.raises(FormatError, match="without padding"):
        b64d("AA==", what="field")


def test_base64url_with_non_canonical_trailing_bits_is_refused() -> None:
    with pytest.raises(FormatError, match="non-canonical"):
        b64d("AB", what="field")


def test_base64url_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(FormatError, match="expected 32 bytes, found 1"):
        b64d("AA", what="field", size=32)


def test_uppercase_hex_is_refused() -> None:
    with pytest.raises(FormatError, match="16 lowercase hex"):
        check_hex("ABCDEF0123456789", what="key id", chars=16)
