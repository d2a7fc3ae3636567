"""What a docked camera answers over its offload API, as the dock reads it (offload.md).

Every answer is a strict schema that ignores extra fields (a newer camera may say more), and every
body is read with a size limit: nothing a camera sends is trusted, not even its length.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custody.manifest import MAX_MANIFEST_BYTES
from custody.segment import MAX_INDEX
from dock.errors import CameraMisbehaved, CameraUnavailable
from dock.ids import CLIP_ID_RE

MAX_JSON_BYTES = 4 * 1024 * 1024  # a listing of many thousands of clips fits
#: ``target`` of a camera whose firmware predates it: no bundle is ever offered to it
UNKNOWN_TARGET = "unknown"
_PROFILE_ID = r"^[0-9a-f]{64}$"


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class Hello(_Answer):
    device_id: str
    serial: Annotated[str, Field(max_length=128)]
    firmware: Annotated[str, Field(max_length=128)]
    nonce: str


class SessionAnswer(_Answer):
    token: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
    device_signature: str


class ClipListing(_Answer):
    clip_id: Annotated[str, Field(pattern=f"^{CLIP_ID_RE.pattern}$")]
    segment_count: Annotated[int, Field(ge=0, le=MAX_INDEX + 1)]
    total_bytes: Annotated[int, Field(ge=0)]
    manifest_bytes: Annotated[int, Field(ge=1, le=MAX_MANIFEST_BYTES)]
    manifest_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    recovered: bool


class PendingProfile(_Answer):
    profile_id: Annotated[str, Field(pattern=_PROFILE_ID)]
    profile_version: Annotated[int, Field(ge=1)]


class CameraStatus(_Answer):
    """``GET /status``: what the armorer sees of a docked camera (never trusted for anything).

    The update fields are optional: a camera on firmware older than them still parses, with
    an unknown target (never offered a bundle) and no profile.
    """

    device_id: str
    serial: Annotated[str, Field(max_length=128)]
    officer_id: Annotated[str, Field(max_length=64)] | None
    firmware: Annotated[str, Field(max_length=128)]
    battery_percent: Annotated[float, Field(ge=0, le=100)] | None
    charging: bool | None
    free_bytes: Annotated[int, Field(ge=0)]
    clips_pending: Annotated[int, Field(ge=0)]
    target: Annotated[str, Field(max_length=64)] = UNKNOWN_TARGET
    firmware_slot: Literal["a", "b"] | None = None
    firmware_state: Literal["healthy", "trial"] = "healthy"
    profile_id: Annotated[str, Field(pattern=r"^([0-9a-f]{64})?$")] = ""
    profile_version: Annotated[int, Field(ge=0)] = 0
    profile_pending: PendingProfile | None = None


class FirmwareInstalled(_Answer):
    """``PUT /firmware`` accepted: the bundle is in ``slot`` and runs after a reboot."""

    slot: Literal["a", "b"]
    firmware_version: Annotated[str, Field(max_length=32)]
    applies: Literal["reboot"]


class ProfileAccepted(_Answer):
    """``PUT /profile`` accepted: the profile applies at the camera's next boot."""

    profile_id: Annotated[str, Field(pattern=_PROFILE_ID)]
    profile_version: Annotated[int, Field(ge=1)]
    applies: Annotated[str, Field(max_length=32)]


class RebootAnswer(_Answer):
    rebooting: bool


class OfficerAnswer(_Answer):
    officer_id: str


class EraseAnswer(_Answer):
    clip_id: str
    erased: bool
    evidence_id: str


def read_bounded(answer: requests.Response, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (then the rest is never read)."""
    body = bytearray()
    try:
        for chunk in answer.iter_content(64 * 1024):
            body += chunk
            if len(body) > limit:
                return None
    except requests.RequestException as exc:
        raise CameraUnavailable(f"the camera's answer was cut ({type(exc).__name__})") from exc
    finally:
        answer.close()
    return bytes(body)


def bounded_json(answer: requests.Response, what: str) -> object:
    body = read_bounded(answer, MAX_JSON_BYTES)
    if body is None:
        raise CameraMisbehaved(f"the camera's {what} is larger than {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CameraMisbehaved(f"the camera's {what} is not JSON") from exc


def error_text(answer: requests.Response) -> str:
    """The camera's one-line error, shortened, for a message (never trusted for anything)."""
    body = read_bounded(answer, 4096) or b"{}"
    try:
        text = str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        text = ""
    return " ".join(text.split())[:200] or f"HTTP {answer.status_code}"


def first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
