"""Canonical JSON and the binary-field encodings every custody format shares.

Signed documents are hashed and signed as bytes, so there must be exactly one encoding of each
document: JSON with keys sorted by code point, no insignificant whitespace, UTF-8 without
``\\u`` escapes for non-ASCII, and no floats (a float has many spellings and rounds differently
across languages). Integers must fit in a signed 64-bit integer. See docs/formats/canonical.md.

Binary fields: hashes and key ids are lowercase hex; keys, nonces, signatures and ciphertexts are
base64url without padding. Both decoders are strict, so each value also has exactly one spelling.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from custody.errors import FormatError

JsonValue = Any
"""A value made of dict (str keys), list, str, int, bool and None only."""

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
_HEX_RE = re.compile(r"[0-9a-f]*")
_B64_RE = re.compile(r"[A-Za-z0-9_-]*")


def canonical_bytes(value: JsonValue, *, what: str = "document") -> bytes:
    """The canonical encoding of ``value``; refuses floats and anything JSON cannot hold exactly."""
    _check(value, what, "$")
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(f"{what}: a string holds a lone surrogate; use valid Unicode") from exc


def _check(value: JsonValue, what: str, path: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise FormatError(f"{what}: {path} = {value} does not fit in a signed 64-bit integer")
        return
    if isinstance(value, float):
        raise FormatError(
            f"{what}: {path} is a float ({value!r}); signed data holds integers only "
            "(coordinates in 1e-7 degrees, times in nanoseconds)"
        )
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, what, f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise FormatError(f"{what}: {path} has a non-string key {key!r}")
            _check(item, what, f"{path}.{key}")
        return
    raise FormatError(f"{what}: {path} is a {type(value).__name__}, which JSON cannot hold")


def _refuse_float(text: str) -> NoReturn:
    raise ValueError(f"float {text} is not allowed (integers only)")


def _refuse_constant(text: str) -> NoReturn:
    raise ValueError(f"{text} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice")
        result[key] = item
    return result


def parse_json(data: bytes, *, what: str, canonical: bool = True) -> dict[str, Any]:
    """Parse one JSON object strictly: UTF-8, no floats, no duplicate keys, integers in range.

    With ``canonical`` the bytes must also be exactly the canonical encoding of the result, so a
    document has one spelling and any change to its bytes changes its meaning or is refused.
    """
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text,
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
            object_pairs_hook=_no_duplicates,
        )
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what}: not valid UTF-8 at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise FormatError(f"{what}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{what}: {exc}") from exc
    if not isinstance(value, dict):
        raise FormatError(f"{what}: expected a JSON object, found {type(value).__name__}")
    if canonical and canonical_bytes(value, what=what) != data:
        raise FormatError(
            f"{what}: not in canonical form (sorted keys, no spaces, UTF-8, no escapes needed)"
        )
    if not canonical:
        _check(value, what, "$")
    return value


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64e(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: object, *, what: str, size: int | None = None) -> bytes:
    """Decode strict base64url without padding; ``size`` checks the decoded length."""
    if not isinstance(text, str) or not _B64_RE.fullmatch(text):
        raise FormatError(f"{what}: expected base64url text without padding")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{what}: not valid base64url ({exc})") from exc
    if b64e(data) != text:
        raise FormatError(f"{what}: base64url has a non-canonical spelling")
    if size is not None and len(data) != size:
        raise FormatError(f"{what}: expected {size} bytes, found {len(data)}")
    return data


def check_hex(text: object, *, what: str, chars: int) -> str:
    """A lowercase hex string of exactly ``chars`` characters (64 for SHA-256, 16 for key ids)."""
    if not isinstance(text, str) or len(text) != chars or not _HEX_RE.fullmatch(text):
        raise FormatError(f"{what}: expected {chars} lowercase hex characters")
    return text
