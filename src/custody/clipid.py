"""Clip ids: a UUID in lowercase 8-4-4-4-12 text; its 16 raw bytes go into associated data."""

from __future__ import annotations

import re
import uuid

from custody.errors import FormatError

_CLIP_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_clip_id() -> str:
    return str(uuid.uuid4())


def check_clip_id(text: object, *, what: str = "clip id") -> str:
    if not isinstance(text, str) or not _CLIP_ID_RE.fullmatch(text):
        raise FormatError(f"{what}: expected a lowercase UUID like 0f8c...-...., found {text!r}")
    return text


def clip_id_bytes(clip_id: str) -> bytes:
    """The 16 bytes of the UUID, as bound into segment and key-wrap associated data."""
    return uuid.UUID(check_clip_id(clip_id)).bytes
