"""The dock's client of a docked camera's offload API (docs/formats/offload.md).

Nothing the camera sends is trusted: every answer is read with a size limit and checked against
a strict schema, every id against the contract's patterns before it names a file, every byte of a
manifest or segment against what the listing and the signed manifest say. A camera proves its
identity with the key enrolled for it at this dock; until it has, nothing is downloaded.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ValidationError

from custody.canonical import b64d, b64e
from custody.errors import FormatError
from custody.keys import key_id
from custody.manifest import MAX_MANIFEST_BYTES, SegmentRecord
from dock.camera_answers import (
    CameraStatus,
    ClipListing,
    EraseAnswer,
    FirmwareInstalled,
    Hello,
    OfficerAnswer,
    ProfileAccepted,
    RebootAnswer,
    SessionAnswer,
    bounded_json,
    error_text,
    first_error,
)
from dock.enrolment import EnrolledDevices
from dock.errors import (
    CameraMisbehaved,
    CameraRefused,
    CameraUnavailable,
    EraseRefused,
    UpdateDeclined,
)
from dock.ids import check_clip_id, check_device_id
from dock.links import mount_link_local
from dock.transfer import Expected, Opener, fetch

PREFIX = "/offload/v1"
SESSION_DOMAIN = b"bwc-offload-session-v1\n"
DEVICE_DOMAIN = b"bwc-offload-device-v1\n"
#: how fast a camera is assumed to hash and write a bundle once it has it all: its answer to
#: ``PUT /firmware`` comes only after that, so the read timeout grows with the bundle
_INSTALL_BYTES_PER_S = 4 * 1024 * 1024
_NONCE_BYTES = 32
_sessions = itertools.count(1)  # numbers every session any client opens, see session_number
M = TypeVar("M", bound=BaseModel)
__all__ = ["CameraClient", "CameraIdentity", "CameraStatus", "ClipListing"]


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
        #: the open session's number, unique across clients (0: none yet); a camera keeps a
        #: session until it restarts, so a status read under a newer one is after a restart
        self.session_number = 0

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
                f"provision the dock key to it ({error_text(answer)})"
            )
        session = self._json(SessionAnswer, answer)
        signature = _decode(session.device_signature, "device_signature", 64)
        _verify_device(device_key, signature, DEVICE_DOMAIN + dock_nonce + device_id.encode(),
                       device_id)  # fmt: skip
        self._token = session.token
        self.session_number = next(_sessions)
        self.identity = CameraIdentity(device_id, hello.serial, hello.firmware)
        return self.identity

    def clips(self) -> list[ClipListing]:
        """Sealed clips the camera holds, oldest first, each checked against the contract."""
        answer = self._call("GET", "/clips")
        raw = bounded_json(answer, "the clip list")
        if not isinstance(raw, list):
            raise CameraMisbehaved("the camera's clip list is not a JSON array")
        try:
            return [ClipListing.model_validate(item) for item in raw]
        except ValidationError as exc:
            raise CameraMisbehaved(
                f"the camera's clip list is malformed: {first_error(exc)}"
            ) from exc

    def status(self) -> CameraStatus:
        """The camera's officer, battery and free space, as it reports them."""
        return self._json(CameraStatus, self._call("GET", "/status"))

    def assign_officer(self, officer_id: str) -> str:
        """``PUT /officer``: later clips of the camera carry this officer; returns it."""
        answer = self._call("PUT", "/officer", json={"officer_id": officer_id}, ok=(200, 400, 422))
        if answer.status_code in (400, 422):
            raise CameraRefused(
                f"camera {self.device_id} refused officer {officer_id!r} "
                f"({answer.status_code}: {error_text(answer)})"
            )
        done = self._json(OfficerAnswer, answer)
        if done.officer_id != officer_id:
            raise CameraMisbehaved(f"the camera's answer to assigning {officer_id} is not a yes")
        return done.officer_id

    def put_profile(self, data: bytes) -> ProfileAccepted:
        """``PUT /profile``: the signed profile, applied at the camera's next boot.

        UpdateDeclined (with the camera's reason) when the camera refuses it.
        """
        answer = self._call(
            "PUT", "/profile", data=data, headers={"Content-Type": "application/json"},
            ok=(200, 400, 409, 413, 422),
        )  # fmt: skip
        if answer.status_code != 200:
            raise UpdateDeclined(
                f"camera {self.device_id} refused the profile "
                f"({answer.status_code}: {error_text(answer)})",
                answer.status_code,
            )
        return self._json(ProfileAccepted, answer)

    def put_firmware(
        self, path: Path, size: int, progress: Callable[[int], None] | None = None
    ) -> FirmwareInstalled:
        """``PUT /firmware``: stream the bundle at ``path`` (exactly ``size`` bytes) to the camera.

        ``progress`` sees the bytes handed to the connection so far, after each chunk. The camera
        answers once it has verified the bundle and written it to its inactive slot;
        UpdateDeclined (with its reason) when it refuses it.
        """
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_size != size:
                raise CameraMisbehaved(  # never a camera's fault, but the dock's files changed
                    f"the staged bundle {path} is no longer {size} bytes: stage it again"
                )
            body = _StreamBody(f, size, self._chunk, progress or (lambda _: None))
            answer = self._call(
                "PUT", "/firmware", data=body, ok=(200, 400, 409, 411, 413, 422, 507),
                headers={"Content-Type": "application/octet-stream"},
                timeout=(self._timeout, self._timeout + size / _INSTALL_BYTES_PER_S),
            )  # fmt: skip
        if answer.status_code != 200:
            raise UpdateDeclined(
                f"camera {self.device_id} refused firmware bundle {path.name} "
                f"({answer.status_code}: {error_text(answer)})",
                answer.status_code,
            )
        return self._json(FirmwareInstalled, answer)

    def reboot(self) -> None:
        """``POST /reboot``: the camera restarts (its session ends) and comes back docked."""
        answer = self._call("POST", "/reboot", json={}, ok=(202, 409))
        if answer.status_code == 409:  # it cannot reboot on request, or is leaving the dock
            raise UpdateDeclined(
                f"camera {self.device_id} did not reboot ({error_text(answer)})", 409
            )
        if not self._json(RebootAnswer, answer, 202).rebooting:
            raise CameraMisbehaved(f"camera {self.device_id} did not agree to reboot")

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
                f"({answer.status_code}: {error_text(answer)}); the footage stays on it"
            )
        done = self._json(EraseAnswer, answer)
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
        timeout = kwargs.pop("timeout", self._timeout)
        if auth:
            self.connect()
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            answer = self._http.request(
                method, self.base_url + PREFIX + path, headers=headers, stream=stream,
                timeout=timeout, allow_redirects=False, **kwargs,
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
            text = error_text(answer)
            raise CameraUnavailable(f"the camera at {self.base_url} cannot answer now: {text}")
        return answer

    def _json(self, model: type[M], answer: requests.Response, expected: int = 200) -> M:
        if answer.status_code != expected:
            raise CameraMisbehaved(
                f"the camera answered {answer.status_code} to {answer.request.path_url}: "
                f"{error_text(answer)}"
            )
        try:
            return model.model_validate(bounded_json(answer, model.__name__))
        except ValidationError as exc:
            raise CameraMisbehaved(
                f"the camera's {model.__name__} answer is malformed: {first_error(exc)}"
            ) from exc


class _StreamBody:
    """A file sent as a request body in chunks; its length makes requests send Content-Length."""

    def __init__(
        self, f: IO[bytes], size: int, chunk: int, progress: Callable[[int], None]
    ) -> None:  # fmt: skip
        self._f, self._size, self._chunk, self._progress = f, size, chunk, progress

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        while sent < self._size:
            chunk = self._f.read(min(self._chunk, self._size - sent))
            if not chunk:
                return  # the camera sees the body end early and refuses it (400)
            sent += len(chunk)
            yield chunk
            self._progress(sent)  # after the connection took it


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
