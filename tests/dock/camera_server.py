"""A docked camera's offload API for dock tests (docs/formats/offload.md), served over HTTP.

The camera is the dock's hardware edge: this server holds sealed clips in memory and answers
the contract (session challenge-response, listing, ranged downloads, erase only with a receipt
that verifies with its own store key and manifest). Test controls alter what it serves, the way
a broken or hostile camera would: ``corrupt_segment``, ``pad_segment``, ``listing_extra``.

Updates (offload.md "Updates: firmware and reboot"): ``GET /status`` reports what it runs;
``PUT /firmware`` and ``PUT /profile`` verify what they get with custody against
``release_keys``, like a camera; ``POST /reboot`` ends every session and makes the camera answer
503 to its next ``down_for`` requests, then report what it installed (healthy), or the statuses a
test put in ``after_reboot``, one per status read (the last one stays).
"""

from __future__ import annotations

import re
import secrets
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from custody.canonical import b64d, b64e, sha256_hex
from custody.clip import SealedClip
from custody.errors import CustodyError
from custody.firmware_bundle import read_header, verify_bundle
from custody.keys import key_id
from custody.profile import parse_profile, verify_profile
from custody.receipt import parse_receipt, verify_receipt

PREFIX = "/offload/v1"
SESSION_DOMAIN = b"bwc-offload-session-v1\n"
DEVICE_DOMAIN = b"bwc-offload-device-v1\n"
_RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)")


class TestCamera:
    """What a camera holds and answers; its test controls change what it serves."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self,
        device_id: str,
        device_key: Ed25519PrivateKey,
        store_public: Ed25519PublicKey,
        dock_keys: list[Ed25519PublicKey],
    ) -> None:
        self.device_id, self.serial = device_id, f"SER-{device_id}"
        self._device_key, self._store_public = device_key, store_public
        self._docks = {key_id(k): k for k in dock_keys}
        self._lock = threading.Lock()
        self._nonces: set[bytes] = set()
        self._tokens: set[str] = set()
        self.clips: dict[str, SealedClip] = {}
        self.served: dict[str, bytes] = {}  # what each URL serves, alterable by the tests
        self.erased: dict[str, bytes] = {}  # clip id -> manifest, kept like the audit record
        self.erase_requests: list[str] = []
        self.range_requests: list[str] = []
        self.listing_extra: list[dict[str, Any]] = []
        self._cuts: dict[str, int] = {}
        # what it runs, and what it does with updates
        self.release_keys: list[Ed25519PublicKey] = []
        self.runs: dict[str, Any] = {
            "firmware": "0.1.0", "target": "sim", "firmware_slot": None,
            "firmware_state": "healthy", "profile_id": "", "profile_version": 0,
            "profile_pending": None,
        }  # fmt: skip
        self.installed: tuple[str, str] | None = None  #: (slot, version) to boot next
        self.firmware_puts: list[int] = []  #: the bytes received by each PUT /firmware
        self.profile_puts = 0
        self.reboots = 0
        self.down_for = 2
        self.after_reboot: list[dict[str, Any]] = []
        self.on_reboot: Callable[[], None] | None = None  #: runs as it restarts
        self.fail_next_firmware = False  #: the next bundle is lost to a fault of its own (503)
        self.free_bytes = 10**9
        self._down = 0

    # test controls

    def add(self, clip: SealedClip) -> None:
        self.clips[clip.clip_id] = clip
        self.served[f"{clip.clip_id}/manifest"] = clip.manifest
        for index, blob in clip.segments.items():
            self.served[f"{clip.clip_id}/segments/{index}"] = blob

    def corrupt_segment(self, clip_id: str, index: int) -> None:
        blob = bytearray(self.served[f"{clip_id}/segments/{index}"])
        blob[-1] ^= 0x01
        self.served[f"{clip_id}/segments/{index}"] = bytes(blob)

    def pad_segment(self, clip_id: str, index: int, extra: bytes) -> None:
        self.served[f"{clip_id}/segments/{index}"] += extra

    def cut_segment_once(self, clip_id: str, index: int, after: int) -> None:
        """The next download of this segment stops after ``after`` bytes, as if unplugged."""
        self._cuts[f"{clip_id}/segments/{index}"] = after

    def serve_manifest(self, clip_id: str, data: bytes) -> None:
        """Serve other manifest bytes, and list them, as a camera with a forged file would."""
        self.served[f"{clip_id}/manifest"] = data

    def undock(self) -> None:
        with self._lock:
            self._tokens.clear()

    def reboot(self) -> None:
        """Restart: sessions end, it is away for ``down_for`` requests, then runs what it got."""
        with self._lock:
            self._tokens.clear()
            self.reboots += 1
            self._down = self.down_for
            if self.installed is not None:
                slot, version = self.installed
                self.runs.update(firmware=version, firmware_slot=slot, firmware_state="healthy")
                self.installed = None
            pending = self.runs["profile_pending"]
            if pending is not None:
                self.runs.update(pending, profile_pending=None)
        if self.on_reboot is not None:
            self.on_reboot()

    def status(self) -> dict[str, Any]:
        with self._lock:
            if self.after_reboot and self.reboots:
                self.runs.update(self.after_reboot[0])
                if len(self.after_reboot) > 1:
                    self.after_reboot.pop(0)
            return {
                "device_id": self.device_id, "serial": self.serial, "officer_id": "officer-1",
                "battery_percent": 80.0, "charging": True, "free_bytes": self.free_bytes,
                "wall_ns": 0, "clips_pending": len(self.clips), **self.runs,
            }  # fmt: skip

    async def put_firmware(self, request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared is None:
            return _error(411, "send the bundle with a Content-Length")
        if self.runs["firmware_state"] == "trial":
            return _error(409, "the running slot is on trial: reboot, then send it again")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "incoming.bundle"
            with path.open("wb") as incoming:
                async for chunk in request.stream():
                    incoming.write(chunk)
            self.firmware_puts.append(path.stat().st_size)
            if path.stat().st_size != int(declared):
                return _error(400, "the bundle ended before its Content-Length")
            if self.fail_next_firmware:
                self.fail_next_firmware = False
                return _error(503, "the card stopped answering while the bundle was written")
            report = verify_bundle(path, self.release_keys, target=self.runs["target"],
                                   current_version=self.runs["firmware"])  # fmt: skip
            first = report.first_failure
            if first is not None:
                return _error(422, f"firmware bundle {path.name} refused: {first.describe()}")
            with path.open("rb") as f:
                header, _ = read_header(f)
        slot = "b" if self.runs["firmware_slot"] == "a" else "a"
        self.installed = (slot, header.firmware_version)
        answer = {"slot": slot, "firmware_version": header.firmware_version, "applies": "reboot"}
        return JSONResponse(answer)

    def put_profile(self, data: bytes) -> JSONResponse:
        self.profile_puts += 1
        first = verify_profile(data, self.release_keys).first_failure
        if first is not None:
            return _error(422, f"profile refused, nothing was changed: {first.describe()}")
        profile = parse_profile(data)
        pending = self.runs["profile_pending"] or {}
        if profile.profile_version <= max(self.runs["profile_version"],
                                          pending.get("profile_version", 0)):  # fmt: skip
            return _error(409, "the profile is not newer than the active one")
        fields = {"profile_id": profile.profile_id, "profile_version": profile.profile_version}
        self.runs["profile_pending"] = fields
        return JSONResponse({**fields, "applies": "next boot"})

    # the API

    def listing(self) -> list[dict[str, Any]]:
        found = []
        for clip_id, clip in self.clips.items():
            manifest = self.served[f"{clip_id}/manifest"]
            found.append({
                "clip_id": clip_id, "segment_count": len(clip.segments),
                "total_bytes": sum(len(b) for b in clip.segments.values()),
                "manifest_bytes": len(manifest), "manifest_sha256": sha256_hex(manifest),
                "recovered": False,
            })  # fmt: skip
        return found + self.listing_extra

    def open_session(self, body: dict[str, Any]) -> JSONResponse:
        dock_key = self._docks.get(str(body.get("dock_key_id")))
        if dock_key is None:
            return _error(403, "this dock key is not provisioned on the camera")
        signature = b64d(body["signature"], what="signature", size=64)
        with self._lock:
            for nonce in list(self._nonces):
                try:
                    dock_key.verify(signature, SESSION_DOMAIN + nonce + self.device_id.encode())
                except InvalidSignature:
                    continue
                self._nonces.discard(nonce)
                token = secrets.token_urlsafe(32)
                self._tokens.add(token)
                break
            else:
                return _error(403, "the signature covers no open hello nonce")
        dock_nonce = b64d(body["dock_nonce"], what="dock_nonce", size=32)
        proof = self._device_key.sign(DEVICE_DOMAIN + dock_nonce + self.device_id.encode())
        return JSONResponse({"token": token, "device_signature": b64e(proof)})

    def authorized(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        with self._lock:
            return scheme == "Bearer" and token in self._tokens

    def erase(self, clip_id: str, receipt: bytes) -> JSONResponse:
        self.erase_requests.append(clip_id)
        clip = self.clips.get(clip_id)
        manifest = clip.manifest if clip is not None else self.erased.get(clip_id)
        if manifest is None:
            return _error(404, f"no clip {clip_id}")
        report = verify_receipt(receipt, self._store_public, manifest)
        if not report.ok:
            first = report.first_failure
            return _error(422, f"the receipt does not verify: {first.describe() if first else ''}")
        try:
            evidence_id = parse_receipt(receipt).evidence_id
        except CustodyError as exc:
            return _error(422, str(exc))
        if clip is not None:
            del self.clips[clip_id]
            self.erased[clip_id] = manifest
        return JSONResponse({"clip_id": clip_id, "erased": True, "evidence_id": evidence_id})

    def app(self) -> FastAPI:
        app = FastAPI()
        camera = self

        @app.middleware("http")
        async def rebooting(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            with camera._lock:
                down, camera._down = camera._down, max(0, camera._down - 1)
            if down:
                return _error(503, "restarting")
            return await call_next(request)

        @app.get(f"{PREFIX}/status")
        def status(authorization: Annotated[str | None, Header()] = None) -> Response:
            if not camera.authorized(authorization):
                return _error(401, "open a session")
            return JSONResponse(camera.status())

        @app.put(f"{PREFIX}/firmware")
        async def firmware(
            request: Request, authorization: Annotated[str | None, Header()] = None
        ) -> Response:
            if not camera.authorized(authorization):
                return _error(401, "open a session")
            return await camera.put_firmware(request)

        @app.put(f"{PREFIX}/profile")
        async def profile(
            request: Request, authorization: Annotated[str | None, Header()] = None
        ) -> Response:
            if not camera.authorized(authorization):
                return _error(401, "open a session")
            return camera.put_profile(await request.body())

        @app.post(f"{PREFIX}/reboot")
        def reboot(authorization: Annotated[str | None, Header()] = None) -> Response:
            if not camera.authorized(authorization):
                return _error(401, "open a session")
            camera.reboot()  # the answer still leaves: the server itself stays up
            return JSONResponse({"rebooting": True}, status_code=202)

        @app.get(f"{PREFIX}/hello")
        def hello() -> dict[str, str]:
            nonce = secrets.token_bytes(32)
            with camera._lock:
                camera._nonces.add(nonce)
            return {"device_id": camera.device_id, "serial": camera.serial,
                    "firmware": camera.runs["firmware"], "nonce": b64e(nonce)}  # fmt: skip

        @app.post(f"{PREFIX}/session")
        async def session(request: Request) -> JSONResponse:
            return camera.open_session(await request.json())

        @app.get(f"{PREFIX}/clips")
        def clips(authorization: Annotated[str | None, Header()] = None) -> Response:
            if not camera.authorized(authorization):
                return _error(401, "open a session")
            return JSONResponse(camera.listing())

        @app.get(PREFIX + "/clips/{clip_id}/{part:path}")
        def download(
            clip_id: str,
            part: str,
            authorization: Annotated[str | None, Header()] = None,
            range_: Annotated[str | None, Header(alias="Range")] = None,
        ) -> Response:
            if not camera.authorized(authorization):
                return _error(401, "open a session")
            data = camera.served.get(f"{clip_id}/{part}")
            if data is None or clip_id not in camera.clips:
                return _error(404, f"no {part} of clip {clip_id}")
            if range_ is not None:
                camera.range_requests.append(range_)
            cut = camera._cuts.pop(f"{clip_id}/{part}", None)
            if cut is not None:
                return _cut_short(data, cut)
            return _ranged(data, range_)

        @app.post(PREFIX + "/clips/{clip_id}/erase")
        async def erase(
            clip_id: str, request: Request, authorization: Annotated[str | None, Header()] = None
        ) -> Response:
            if not camera.authorized(authorization):
                return _error(401, "open a session")
            return camera.erase(clip_id, await request.body())

        return app


def _ranged(data: bytes, header: str | None) -> Response:
    if header is None:
        return Response(data, media_type="application/octet-stream")
    found = _RANGE_RE.fullmatch(header)
    if found is None:
        return _error(416, "only one bytes=START- or bytes=START-END range")
    start = int(found.group(1))
    end = int(found.group(2)) if found.group(2) else len(data) - 1
    if start >= len(data) or end < start:
        return _error(416, "range outside the file")
    end = min(end, len(data) - 1)
    return Response(
        data[start : end + 1],
        status_code=206,
        media_type="application/octet-stream",
        headers={"Content-Range": f"bytes {start}-{end}/{len(data)}"},
    )


def _cut_short(data: bytes, after: int) -> Response:
    """Declares the whole file but sends only its first bytes, then the connection drops."""

    async def first_bytes() -> AsyncIterator[bytes]:
        yield data[:after]

    return StreamingResponse(
        first_bytes(),
        media_type="application/octet-stream",
        headers={"Content-Length": str(len(data))},
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
