"""The Range header of playback: one byte range, answered exactly as a slice of the file."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.exceptions import HTTPException

from evidence.api.playback import byte_range

SIZES = st.integers(min_value=1, max_value=10_000)
OFFSETS = st.integers(min_value=0, max_value=20_000)


@given(size=SIZES, first=OFFSETS, last=OFFSETS)
def test_a_range_within_the_file_is_that_slice(size: int, first: int, last: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    try:
        span = byte_range(f"bytes={first}-{last}", size)
    except HTTPException as exc:
        assert exc.status_code == 416
        assert first >= size
        return
    if last < first:
        assert span is None  # not a valid range: the whole file is sent
        return
    assert span is not None
    assert data[span[0] : span[1] + 1] == data[first : last + 1]


@given(size=SIZES, count=st.integers(min_value=1, max_value=20_000))
def test_a_suffix_range_is_the_last_bytes(size: int, count: int) -> None:
    assert byte_range(f"bytes=-{count}", size) == (max(0, size - count), size - 1)


@pytest.mark.parametrize(
    "header", [None, "", "bytes=-", "bytes=0-1,5-6", "items=0-1", "bytes=a-b", "bytes=5-2"]
)
def test_a_header_that_is_not_one_range_sends_the_whole_file(header: str | None) -> None:
    assert byte_range(header, 100) is None


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=200-300"])
def test_a_range_that_starts_past_the_end_is_unsatisfiable(header: str) -> None:
    with pytest.raises(HTTPException) as refused:
        byte_range(header, 100)
    assert refused.value.status_code == 416
    assert refused.value.headers == {"Content-Range": "bytes */100"}
