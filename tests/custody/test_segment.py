"""Segment files: AES-256-GCM bound to the clip id and the segment index."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.clipid import new_clip_id
from custody.errors import FormatError, IntegrityError
from custody.segment import HEADER_SIZE, OVERHEAD, new_data_key, open_segment, seal_segment

CLIP = "6f1c1b2e-8d1a-4c3e-9b7f-2a4d5e6f7a8b"


@settings(max_examples=40)
@given(st.binary(max_size=2048), st.integers(min_value=0, max_value=2**32 - 1))
def test_open_returns_what_was_sealed(plaintext: bytes, index: int) -> None:
    key = new_data_key()
    blob = seal_segment(key, CLIP, index, plaintext)
    assert len(blob) == len(plaintext) + OVERHEAD
    assert blob[:4] == b"BWCS"
    assert open_segment(key, CLIP, index, blob) == plaintext


def test_a_flipped_ciphertext_byte_fails_authentication() -> None:
    key = new_data_key()
    blob = bytearray(seal_segment(key, CLIP, 0, b"video" * 20))
    blob[HEADER_SIZE + 5] ^= 0x01
    with pytest.raises(IntegrityError, match="segment 0: authentication failed"):
        open_segment(key, CLIP, 0, bytes(blob))


def test_a_segment_of_another_clip_does_not_open() -> None:
    key = new_data_key()
    blob = seal_segment(key, new_clip_id(), 3, b"frames")
    with pytest.raises(IntegrityError, match="belongs to another clip"):
        open_segment(key, CLIP, 3, blob)


def test_a_segment_at_another_index_is_refused() -> None:
    key = new_data_key()
    blob = seal_segment(key, CLIP, 4, b"frames")
    with pytest.raises(IntegrityError, match="holds segment 4: segments renamed or reordered"):
        open_segment(key, CLIP, 5, blob)


def test_a_truncated_segment_is_refused() -> None:
    key = new_data_key()
    blob = seal_segment(key, CLIP, 0, b"frames" * 10)
    with pytest.raises(IntegrityError, match="altered or truncated"):
        open_segment(key, CLIP, 0, blob[:-1])
    with pytest.raises(FormatError, match="shorter than the 37-byte minimum"):
        open_segment(key, CLIP, 0, blob[:20])


def test_a_file_without_the_magic_is_not_a_segment() -> None:
    with pytest.raises(FormatError, match="not a segment file"):
        open_segment(new_data_key(), CLIP, 0, b"\x00" * 64)


def test_each_seal_draws_a_fresh_nonce() -> None:
    key = new_data_key()
    assert seal_segment(key, CLIP, 0, b"x") != seal_segment(key, CLIP, 0, b"x")
