"""HLS for a stored clip: a VOD playlist over its segments, each split into fMP4 parts. No I/O.

Every stored segment decrypts to a self-contained fragmented MP4 (``ftyp`` + ``moov``, then
``moof``/``mdat`` fragments). HLS wants the initialisation section (``ftyp`` + ``moov``) apart
from the media (the fragments), named by ``EXT-X-MAP`` (RFC 8216, 4.3.2.5). Each segment carries
its own, so each gets its own ``EXT-X-MAP``; and since a segment's timestamps may restart at zero
(a recovered clip, another camera's footage), each one after the first follows an
``EXT-X-DISCONTINUITY``, so players lay them end to end by their durations either way.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator

from custody.errors import FormatError
from custody.manifest import Manifest

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
#: top-level boxes that start the media part of a fragmented MP4
_MEDIA_BOXES = {b"styp", b"sidx", b"emsg", b"prft", b"moof"}


def init_uri(index: int) -> str:
    return f"{index}/init.mp4"


def media_uri(index: int) -> str:
    return f"{index}/media.m4s"


def _boxes(data: bytes) -> Iterator[tuple[bytes, int]]:
    """(type, offset) of every top-level ISO-BMFF box; refuses a truncated or garbled one."""
    pos = 0
    while pos < len(data):
        if len(data) - pos < 8:
            raise FormatError(f"a box header at byte {pos} is cut short")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if len(data) - pos < 16:
                raise FormatError(f"a box header at byte {pos} is cut short")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:  # the box runs to the end
            size = len(data) - pos
        if size < header or pos + size > len(data):
            raise FormatError(f"the {kind!r} box at byte {pos} does not fit in the file")
        yield kind, pos
        pos += size


def split_fmp4(data: bytes) -> tuple[bytes, bytes]:
    """(initialisation section, media fragments) of a self-contained fragmented MP4."""
    kinds: list[bytes] = []
    for kind, offset in _boxes(data):
        if kind in _MEDIA_BOXES:
            if b"moov" not in kinds:
                raise FormatError("media comes before the 'moov' box: not a fragmented MP4")
            return data[:offset], data[offset:]
        kinds.append(kind)
    raise FormatError("no 'moof' fragment: not a fragmented MP4")


def playlist(manifest: Manifest) -> str:
    """The VOD media playlist of every segment, with durations from the signed manifest."""
    durations = [max(r.pts_end_ns - r.pts_start_ns, 0) / 1e9 for r in manifest.segments]
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(max(durations, default=1)))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",  # each segment starts with a key frame
    ]
    for n, (record, seconds) in enumerate(zip(manifest.segments, durations, strict=True)):
        if n:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f'#EXT-X-MAP:URI="{init_uri(record.index)}"')
        lines.append(f"#EXTINF:{seconds:.6f},")
        lines.append(media_uri(record.index))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
