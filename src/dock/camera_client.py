"""The dock's client of a docked camera's offload API (docs/formats/offload.md).

Nothing the camera sends is trusted: every answer is read with a size limit and checked against
a strict schema, every id against the contract's patterns before it names a file, every byte of a
manifest or segment against what the listing and the signed manifest say. A camera proves its
identity with the key enrolled for it at this dock; until it has, nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custody.canonical import b64d, b64e
from custody.errors import FormatError
from custody.keys import key_id
from custody.manifest import MAX_MANIFEST_BYTES, SegmentRecord
from custody.segment import MAX_INDEX
from dock.enrolment import EnrolledDevices
from dock.errors import CameraMisbehaved, CameraRefused, CameraUnavailable, EraseRefused
from dock.ids import CLIP_ID_RE, check_clip_id, check_device_id
from dock.links import mount_link_local
from dock.transfer import Expected, Opener, fetch

PREFIX = "/offload/v1"
SESSION_DOMAIN = b"bwc-offload-session-v1\n"
DEVICE_DOMAIN = b"bwc-offload-device-v1\n"
MAX_JSON_BYTES = 4 * 1024 * 1024  # a listing of many thousands of clips fits
_NONCE_BYTES = 32
M = TypeVar("M", bound=BaseModel)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class Hello(_Answer):
    device_id: str
    serial: Annotated[str, Field(max_length=128)]
    firmware: Annotated[str, Field(max_length=128)]
    nonce: str


class _SessionAnswer(_Answer):
    token: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
    device_signature: str


class ClipListing(_Answer):
    clip_id: Annotated[str, Field(pattern=f"^{CLIP_ID_RE.pattern}$")]
    segment_count: Annotated[int, Field(ge=0, le=MAX_INDEX + 1)]
    total_bytes: Annotated[int, Field(ge=0)]
    manifest_bytes: Annotated[int, Field(ge=1, le=MAX_MANIFEST_BYTES)]
    manifest_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    recovered: bool


class CameraStatus(_Answer):
    """``GET /status``: what the armorer sees of a docked camera (never trusted for anything)."""

    device_id: str
    serial: Annotated[str, Field(max_length=128)]
    officer_id: Annotated[str, Field(max_length=64)] | None
    firmware: Annotated[str, Field(max_length=128)]
    battery_percent: Annotated[float, Field(ge=0, le=100)] | None
    charging: bool | None
    free_bytes: Annotated[int, Field(ge=0)]
    clips_pending: Annotated[int, Field(ge=0)]


class _OfficerAnswer(_Answer):
    officer_id: str


class _EraseAnswer(_Answer):
    clip_id: str
    erased: bool
    evidence_id: str


@dataclass(frozen=True)
class CameraIdentity:
    device_id: str
    serial: str
    firmware: str


class CameraClient:
    """One docking session with one camera, over ``requests``."""

    def __init__(
        self,
        base_url: str,
        dock_key: Ed25519PrivateKey,
        devices: EnrolledDevices,
        *,
        timeout_s: float = 30.0,
        chunk_bytes: int = 256 * 1024,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._dock_key, self._devices = dock_key, devices
        self._timeout, self._chunk = timeout_s, chunk_bytes
        # a real camera answers on a link-local URL with a zone (dock/links.py)
        self._http = mount_link_local(requests.Session())
        self._token: str | None = None
        self.identity: CameraIdentity | None = None

    def close(self) -> None:
        self._http.close()

    @property
    def device_id(self) -> str:
        return self.connect().device_id

    def connect(self) -> CameraIdentity:
        """Both ends prove who they are (hello, then session); CameraRefused if the camera fails."""
        if self.identity is not None and self._token is not None:
            return self.identity
        hello = self._json(Hello, self._call("GET", "/hello", auth=False))
        device_id = check_device_id(hello.device_id)
        if self.identity is not None and device_id != self.identity.device_id:
            raise CameraMisbehaved(
                f"the camera at {self.base_url} was {self.identity.device_id} and now says it is "
                f"{device_id}: unplug it and report it to the armorer"
            )
        device_key = self._devices.key_for(device_id)  # unenrolled: refused before anything else
        nonce = _decode(hello.nonce, "hello nonce", _NONCE_BYTES)
        dock_nonce = os.urandom(_NONCE_BYTES)
        body = {
            "dock_key_id": key_id(self._dock_key),
            "dock_nonce": b64e(dock_nonce),
            "signature": b64e(self._dock_key.sign(SESSION_DOMAIN + nonce + device_id.encode())),
        }
        answer = self._call("POST", "/session", auth=False, json=body)
        if answer.status_code in (401, 403):
            raise CameraRefused(
                f"camera {device_id} does not accept this dock (key {key_id(self._dock_key)}): "
                f"provision the dock key to it ({_error_text(answer)})"
            )
        session = self._json(_SessionAnswer, answer)
        signature = _decode(session.device_signature, "device_signature", 64)
        _verify_device(device_key, signature, DEVICE_DOMAIN + dock_nonce + device_id.encode(),
                       device_id)  # fmt: skip
        self._token = session.token
        self.identity = CameraIdentity(device_id, hello.serial, hello.firmware)
        return self.identity

    def clips(self) -> list[ClipListing]:
        """Sealed clips the camera holds, oldest first, each checked against the contract."""
        answer = self._call("GET", "/clips")
        raw = _bounded_json(answer, "the clip list")
        if not isinstance(raw, list):
            raise CameraMisbehaved("the camera's clip list is not a JSON array")
        try:
            return [ClipListing.model_validate(item) for item in raw]
        except ValidationError as exc:
            raise CameraMisbehaved(f"the camera's clip list is malformed: {_first(exc)}") from exc

    def status(self) -> CameraStatus:
        """The camera's officer, battery and free space, as it reports them."""
        return self._json(CameraStatus, self._call("GET", "/status"))

    def assign_officer(self, officer_id: str) -> str:
        """``PUT /officer``: later clips of the camera carry this officer; returns it."""
        answer = self._call("PUT", "/officer", json={"officer_id": officer_id}, ok=(200, 400, 422))
        if answer.status_code in (400, 422):
            raise CameraRefused(
                f"camera {self.device_id} refused officer {officer_id!r} "
                f"({answer.status_code}: {_error_text(answer)})"
            )
        done = self._json(_OfficerAnswer, answer)
        if done.officer_id != officer_id:
            raise CameraMisbehaved(f"the camera's answer to assigning {officer_id} is not a yes")
        return done.officer_id

    def fetch_manifest(self, clip_id: str, size: int, sha256: str, dest: Path) -> None:
        """Download a clip's manifest to ``dest``: exactly ``size`` bytes hashing to ``sha256``."""
        check_clip_id(clip_id)
        if not 0 < size <= MAX_MANIFEST_BYTES:
            raise CameraMisbehaved(
                f"the camera lists a {size}-byte manifest for clip {clip_id}; at most "
                f"{MAX_MANIFEST_BYTES} are allowed"
            )
        expected = Expected(f"the manifest of clip {clip_id}", size, sha256)
        fetch(dest, expected, self._opener(f"/clips/{clip_id}/manifest"), self._chunk)

    def fetch_segment(self, clip_id: str, record: SegmentRecord, dest: Path) -> None:
        """Download one segment to ``dest``: exactly what the signed manifest's record says."""
        check_clip_id(clip_id)
        expected = Expected(
            f"segment {record.index} of clip {clip_id}", record.size, record.cipher_sha256
        )
        fetch(dest, expected, self._opener(f"/clips/{clip_id}/segments/{record.index}"),
              self._chunk)  # fmt: skip

    def erase(self, clip_id: str, receipt: bytes) -> str:
        """Ask the camera to erase a clip, showing the store's receipt; returns the evidence id."""
        check_clip_id(clip_id)
        answer = self._call(
            "POST", f"/clips/{clip_id}/erase", data=receipt, ok=(200, 404, 409, 422),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        if answer.status_code in (404, 409, 422):
            raise EraseRefused(
                f"camera {self.device_id} refused to erase clip {clip_id} "
                f"({answer.status_code}: {_error_text(answer)}); the footage stays on it"
            )
        done = self._json(_EraseAnswer, answer)
        if done.clip_id != clip_id or not done.erased:
            raise CameraMisbehaved(f"the camera's answer to erasing clip {clip_id} is not a yes")
        return done.evidence_id

    def _opener(self, path: str) -> Opener:
        @contextmanager
        def open_from(offset: int) -> Iterator[requests.Response]:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            answer = self._call("GET", path, headers=headers, stream=True, ok=(200, 206, 416))
            try:
                yield answer
            finally:
                answer.close()

        return open_from

    def _call(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        stream: bool = False,
        ok: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> requests.Response:
        """One request; connection faults, 5xx and a lost session become CameraUnavailable."""
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            self.connect()
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            answer = self._http.request(
                method, self.base_url + PREFIX + path, headers=headers, stream=stream,
                timeout=self._timeout, allow_redirects=False, **kwargs,
            )  # fmt: skip
        except requests.RequestException as exc:
            raise CameraUnavailable(
                f"the camera at {self.base_url} does not answer ({type(exc).__name__}): "
                "check it is docked"
            ) from exc
        if answer.status_code in ok:
            return answer
        if answer.status_code == 401 and auth:
            self._token = None  # the camera restarted or left the dock: prove ourselves again
            answer.close()
            raise CameraUnavailable(f"the camera at {self.base_url} ended the session")
        if answer.status_code >= 500 or answer.status_code == 409:
            # 409 is "not docked": the moment between undock and the camera's server stopping
            text = _error_text(answer)
            raise CameraUnavailable(f"the camera at {self.base_url} cannot answer now: {text}")
        return answer

    def _json(self, model: type[M], answer: requests.Response) -> M:
        if answer.status_code != 200:
            raise CameraMisbehaved(
                f"the camera answered {answer.status_code} to {answer.request.path_url}: "
                f"{_error_text(answer)}"
            )
        try:
            return model.model_validate(_bounded_json(answer, model.__name__))
        except ValidationError as exc:
            raise CameraMisbehaved(
                f"the camera's {model.__name__} answer is malformed: {_first(exc)}"
            ) from exc


def _read_bounded(answer: requests.Response, limit: int) -> bytes | None:
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


def _bounded_json(answer: requests.Response, what: str) -> object:
    body = _read_bounded(answer, MAX_JSON_BYTES)
    if body is None:
        raise CameraMisbehaved(f"the camera's {what} is larger than {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise CameraMisbehaved(f"the camera's {what} is not JSON") from exc


def _decode(text: str, what: str, size: int) -> bytes:
    try:
        return b64d(text, what=what, size=size)
    except FormatError as exc:
        raise CameraMisbehaved(f"the camera's {exc}") from exc


def _verify_device(key: Ed25519PublicKey, signature: bytes, message: bytes, device_id: str) -> None:
    try:
        key.verify(signature, message)
    except InvalidSignature as exc:
        raise CameraRefused(
            f"camera {device_id} failed to prove its identity (its signature does not verify with "
            "the enrolled key): report it to the armorer, it will not be offloaded"
        ) from exc


def _error_text(answer: requests.Response) -> str:
    """The camera's one-line error, shortened, for a message (never trusted for anything)."""
    body = _read_bounded(answer, 4096) or b"{}"
    try:
        text = str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        text = ""
    return " ".join(text.split())[:200] or f"HTTP {answer.status_code}"


def _first(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
