"""Enrolled cameras: a folder of device public keys named ``<device_id>.pub.pem``.

A camera proves its identity with the key enrolled here for the id it claims, never with a key it
sends itself. A camera that is not enrolled is reported to the armorer and never offloaded.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import KeyFileError
from custody.keys import load_verify_key
from dock.errors import CameraMisbehaved, CameraRefused, DockSetupError
from dock.ids import check_device_id


class EnrolledDevices:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key_file(self, device_id: str) -> Path:
        return self.folder / f"{check_device_id(device_id)}.pub.pem"

    def key_for(self, device_id: str) -> Ed25519PublicKey:
        """The enrolled key of ``device_id``; CameraRefused when there is none."""
        try:
            path = self.key_file(device_id)
        except CameraMisbehaved as exc:
            raise CameraRefused(f"{exc}; it cannot be enrolled") from exc
        if not path.is_file():
            raise CameraRefused(
                f"camera {device_id} is not enrolled at this dock: put its public key in {path} "
                "to offload it"
            )
        try:
            return load_verify_key(path)
        except KeyFileError as exc:
            raise DockSetupError(f"enrolled key of camera {device_id}: {exc}") from exc
