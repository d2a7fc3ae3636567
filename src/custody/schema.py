"""Strict field checks for parsed JSON records: exact field set, exact JSON types."""

from __future__ import annotations

from typing import Any

from custody.errors import FormatError

_TYPES: dict[type, str] = {
    int: "an integer",
    str: "a string",
    bool: "true or false",
    dict: "an object",
    list: "an array",
}


def require_fields(obj: dict[str, Any], spec: dict[str, type], what: str) -> None:
    """``obj`` has exactly the fields of ``spec``, each of the JSON type named there."""
    missing = sorted(set(spec) - set(obj))
    unknown = sorted(set(obj) - set(spec))
    if missing:
        raise FormatError(f"{what}: missing field(s) {', '.join(missing)}")
    if unknown:
        raise FormatError(
            f"{what}: unknown field(s) {', '.join(unknown)} (written by a newer version?)"
        )
    for name, kind in spec.items():
        value = obj[name]
        # bool is a subclass of int in Python but a different type in JSON
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise FormatError(f"{what}: field {name} must be {_TYPES[kind]}")


def require_non_negative(obj: dict[str, Any], names: tuple[str, ...], what: str) -> None:
    for name in names:
        if obj[name] < 0:
            raise FormatError(f"{what}: field {name} must not be negative")
