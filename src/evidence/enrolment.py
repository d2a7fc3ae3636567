"""Enrolled devices: a folder of public keys named ``<device_id>.pub.pem``.

A manifest is verified against the key enrolled for the device it names, never against the key
the manifest itself carries.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import KeyFileError
from custody.keys import load_verify_key
from evidence.errors import StoreSetupError, UnenrolledDevice

_DEVICE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class DeviceRegistry:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key_file(self, device_id: str) -> Path:
        return self.folder / f"{device_id}.pub.pem"

    def key_for(self, device_id: str) -> Ed25519PublicKey:
        """The enrolled key of ``device_id``; refuses a device that is not enrolled."""
        if not _DEVICE_ID_RE.fullmatch(device_id) or ".." in device_id:
            raise UnenrolledDevice(f"device id {device_id!r} cannot be enrolled: not a plain name")
        path = self.key_file(device_id)
        if not path.is_file():
            raise UnenrolledDevice(
                f"device {device_id} is not enrolled: put its public key in {path} "
                "(bwc keys generate --role device) and retry"
            )
        try:
            return load_verify_key(path)
        except KeyFileError as exc:
            raise StoreSetupError(f"enrolled key of device {device_id}: {exc}") from exc
