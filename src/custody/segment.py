"""Segment files: one AES-256-GCM sealed chunk of a clip.

Layout (docs/formats/segment.md)::

    offset  size  field
    0       4     magic "BWCS"
    4       1     format version (1)
    5       4     segment index, unsigned big-endian
    9       12    nonce (random per segment)
    21      n+16  AES-256-GCM ciphertext of the n plaintext bytes, then the 16-byte tag

Associated data = the 21 header bytes followed by the 16 bytes of the clip id, so a segment moved
to another index or another clip, or with any header byte changed, fails to open.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from custody.clipid import clip_id_bytes
from custody.errors import FormatError, IntegrityError

MAGIC = b"BWCS"
VERSION = 1
HEADER = struct.Struct(">4sBI12s")
HEADER_SIZE = HEADER.size  # 21
TAG_SIZE = 16
OVERHEAD = HEADER_SIZE + TAG_SIZE
DATA_KEY_SIZE = 32
NONCE_SIZE = 12
MAX_INDEX = 2**32 - 1


@dataclass(frozen=True)
class SegmentHeader:
    version: int
    index: int
    nonce: bytes


def new_data_key() -> bytes:
    """A fresh random 32-byte AES-256 key for one clip."""
    return AESGCM.generate_key(bit_length=256)


def _aad(header: bytes, clip_id: str) -> bytes:
    return header + clip_id_bytes(clip_id)


def seal_segment(
    data_key: bytes, clip_id: str, index: int, plaintext: bytes, *, nonce: bytes | None = None
) -> bytes:
    """The complete segment file for ``plaintext``.

    ``nonce`` is for test vectors only: in use it must be left out so that a fresh random nonce is
    drawn (reusing a nonce under one key breaks AES-GCM).
    """
    if len(data_key) != DATA_KEY_SIZE:
        raise FormatError(f"data key must be {DATA_KEY_SIZE} bytes, not {len(data_key)}")
    if not 0 <= index <= MAX_INDEX:
        raise FormatError(f"segment index {index} is out of range 0..{MAX_INDEX}")
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    if len(nonce) != NONCE_SIZE:
        raise FormatError(f"segment nonce must be {NONCE_SIZE} bytes, not {len(nonce)}")
    header = HEADER.pack(MAGIC, VERSION, index, nonce)
    return header + AESGCM(data_key).encrypt(nonce, plaintext, _aad(header, clip_id))


def read_header(blob: bytes, *, what: str = "segment") -> SegmentHeader:
    """Parse and check the header of a segment file (no key needed)."""
    if len(blob) < OVERHEAD:
        raise FormatError(
            f"{what}: {len(blob)} bytes is shorter than the {OVERHEAD}-byte minimum (truncated)"
        )
    magic, version, index, nonce = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise FormatError(f"{what}: does not start with 'BWCS': not a segment file")
    if version != VERSION:
        raise FormatError(
            f"{what}: segment format version {version} is not supported (this reads {VERSION})"
        )
    return SegmentHeader(version, index, nonce)


def open_segment(data_key: bytes, clip_id: str, index: int, blob: bytes) -> bytes:
    """Check and decrypt a segment file that should be segment ``index`` of ``clip_id``."""
    what = f"segment {index}"
    header = read_header(blob, what=what)
    if header.index != index:
        raise IntegrityError(
            f"{what}: the file holds segment {header.index}: segments renamed or reordered"
        )
    try:
        return AESGCM(data_key).decrypt(
            header.nonce, blob[HEADER_SIZE:], _aad(blob[:HEADER_SIZE], clip_id)
        )
    except InvalidTag as exc:
        raise IntegrityError(
            f"{what}: authentication failed: the file was altered or truncated, "
            "belongs to another clip, or the data key is wrong"
        ) from exc
