"""Identifiers a camera sends, checked before any of them names a file or a URL path.

Patterns from docs/formats/offload.md; a device id follows the evidence store's enrolment rule
(a plain file name: letters, digits, ``.``, ``_``, ``-``, never ``..``).
"""

from __future__ import annotations

import re

from dock.errors import CameraMisbehaved

CLIP_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")
DEVICE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_clip_id(value: object) -> str:
    if not isinstance(value, str) or not CLIP_ID_RE.fullmatch(value):
        raise CameraMisbehaved(
            f"the camera sent clip id {str(value)[:80]!r}, which is not a valid clip id: "
            "report the camera to the armorer"
        )
    return value


def check_device_id(value: object) -> str:
    if not isinstance(value, str) or not DEVICE_ID_RE.fullmatch(value) or ".." in value:
        raise CameraMisbehaved(
            f"the camera sent device id {str(value)[:80]!r}, which is not a valid device id: "
            "report the camera to the armorer"
        )
    return value
