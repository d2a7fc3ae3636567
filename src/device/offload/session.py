"""Docking sessions: the challenge-response that lets a provisioned dock in, and its tokens.

``hello`` hands out a single-use nonce; ``open`` accepts it once, signed by a dock key found in
``keys_dir/docks/*.pub.pem``, and answers with a bearer token and the device's own signature over
the dock's nonce (docs/formats/offload.md, "Session"). Tokens live until undock or restart.

Everything here is called from the API's threads while the firmware thread docks and undocks
the camera, so one lock guards the docked flag, the nonces and the tokens.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.canonical import b64d, b64e, check_hex
from custody.errors import CustodyError, FormatError
from custody.keys import key_id, load_verify_key
from custody.schema import require_fields
from device.errors import (
    OffloadBadRequest,
    OffloadConflict,
    OffloadForbidden,
    OffloadUnauthorized,
)

SESSION_DOMAIN = b"bwc-offload-session-v1\n"
DEVICE_DOMAIN = b"bwc-offload-device-v1\n"
NONCE_BYTES = 32
DOCKS_FOLDER = "docks"
#: hello nonces not yet used; the oldest is forgotten first, so a flood of hellos costs no memory
MAX_OPEN_NONCES = 64
#: tokens of one docking session (a dock that reconnects opens a new one; old ones stay valid)
MAX_TOKENS = 16

_SESSION_FIELDS: dict[str, type] = {"dock_key_id": str, "dock_nonce": str, "signature": str}


@dataclass(frozen=True)
class Identity:
    """Who this camera says it is in ``hello`` and ``status``."""

    device_id: str
    serial: str
    firmware: str


def session_message(nonce: bytes, device_id: str) -> bytes:
    """What the dock signs: the camera's hello nonce, bound to the device it docked."""
    return SESSION_DOMAIN + nonce + device_id.encode()


def device_message(dock_nonce: bytes, device_id: str) -> bytes:
    """What the camera signs back: the dock's nonce, so the dock knows the device key answered."""
    return DEVICE_DOMAIN + dock_nonce + device_id.encode()


def dock_keys(keys_dir: Path) -> dict[str, Ed25519PublicKey]:
    """The dock keys this camera trusts, by key id; a file that does not load is skipped."""
    folder = keys_dir / DOCKS_FOLDER
    found: dict[str, Ed25519PublicKey] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.pub.pem")):
        try:
            key = load_verify_key(path)
        except CustodyError:
            continue  # a broken file trusts nobody; provisioning refuses to write one
        found[key_id(key)] = key
    return found


class SessionGate:
    """Docked or not, the open nonces and the tokens of the current docking session."""

    def __init__(self, identity: Identity, device_key: Ed25519PrivateKey, keys_dir: Path) -> None:
        self.identity = identity
        self._device_key = device_key
        self._keys_dir = keys_dir
        self._lock = threading.Lock()
        self._docked = False
        self._nonces: OrderedDict[bytes, None] = OrderedDict()
        self._tokens: OrderedDict[str, str] = OrderedDict()  # token -> dock key id

    @property
    def docked(self) -> bool:
        return self._docked

    def set_docked(self, docked: bool) -> None:
        """Dock or undock; leaving the dock ends every session and forgets every nonce."""
        with self._lock:
            self._docked = docked
            if not docked:
                self._nonces.clear()
                self._tokens.clear()

    def require_docked(self) -> None:
        if not self._docked:
            raise OffloadConflict("not docked: put the camera in a dock bay and try again")

    def hello(self) -> dict[str, Any]:
        nonce = secrets.token_bytes(NONCE_BYTES)
        with self._lock:
            self._nonces[nonce] = None
            while len(self._nonces) > MAX_OPEN_NONCES:
                self._nonces.popitem(last=False)
        i = self.identity
        return {
            "device_id": i.device_id,
            "serial": i.serial,
            "firmware": i.firmware,
            "nonce": b64e(nonce),
        }

    def open(self, body: dict[str, Any]) -> dict[str, str]:
        """Check a dock's signed answer to a hello; returns the token and the device's proof."""
        try:
            require_fields(body, _SESSION_FIELDS, "session request")
            kid = check_hex(body["dock_key_id"], what="dock_key_id", chars=16)
            nonce = b64d(body["dock_nonce"], what="dock_nonce", size=NONCE_BYTES)
            signature = b64d(body["signature"], what="signature", size=64)
        except FormatError as exc:
            raise OffloadBadRequest(str(exc)) from exc
        key = dock_keys(self._keys_dir).get(kid)
        if key is None:
            raise OffloadForbidden(
                f"dock key {kid} is not provisioned on this camera: enrol the dock "
                "(keys_dir/docks/<name>.pub.pem) at the armory"
            )
        self._spend_signed_nonce(key, signature)
        token = secrets.token_urlsafe(32)
        with self._lock:
            if not self._docked:
                raise OffloadConflict("not docked: the camera left the dock during the session")
            self._tokens[token] = kid
            while len(self._tokens) > MAX_TOKENS:
                self._tokens.popitem(last=False)
        proof = self._device_key.sign(device_message(nonce, self.identity.device_id))
        return {"token": token, "device_signature": b64e(proof)}

    def _spend_signed_nonce(self, key: Ed25519PublicKey, signature: bytes) -> None:
        """Spend the open nonce the signature covers; refused when it covers none.

        The request does not name its hello nonce, so each open one is tried (at most 64).
        """
        with self._lock:
            for nonce in list(self._nonces):
                try:
                    key.verify(signature, session_message(nonce, self.identity.device_id))
                except InvalidSignature:
                    continue
                del self._nonces[nonce]
                return
        raise OffloadForbidden(
            "the session signature does not cover an open hello nonce of this camera "
            "(forged, for another device, or a nonce already used): call hello again"
        )

    def check_token(self, authorization: str | None) -> str:
        """The dock key id of a valid ``Authorization: Bearer`` header; raises 401 otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise OffloadUnauthorized(
                "no bearer token: open a session (GET /offload/v1/hello, POST /offload/v1/session)"
            )
        with self._lock:
            for known, kid in self._tokens.items():
                if hmac.compare_digest(known, token.strip()):
                    return kid
        raise OffloadUnauthorized(
            "unknown or expired token (sessions end at undock and restart): open a new session"
        )
