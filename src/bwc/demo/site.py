"""The shift's folder and keys: everything a fresh agency would provision, made for the demo.

One folder holds it all: ``keys/`` (the agency's recording key pair, the evidence store's receipt
key pair, the dock's credential), one folder per camera (its card and its own keys folder, as a
dock would provision it), ``store/`` (the evidence store's data), ``dock/`` (the dock's ledger and
spool) and ``exports/`` (the playable MP4s).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from custody.keys import KeyPairFiles, Role, write_atomic, write_key_pair
from custody.trigger_registry import TriggerRegistry

REGISTRY_NAME = "triggers.json"  # where the firmware's composition root looks for it too


@dataclass(frozen=True)
class Officer:
    """Who wears a camera, which camera it is, and where the officer stands (metres)."""

    officer_id: str
    serial: str
    device_id: str
    x_m: float


@dataclass(frozen=True)
class CameraFolder:
    officer: Officer
    root: Path
    device: KeyPairFiles

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def card(self) -> Path:
        return self.root / "card"


@dataclass(frozen=True)
class Site:
    root: Path
    agency: KeyPairFiles
    store: KeyPairFiles
    dock: KeyPairFiles
    cameras: tuple[CameraFolder, ...]

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def dock_dir(self) -> Path:
        return self.root / "dock"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"


def make_site(
    root: Path, officers: tuple[Officer, ...], registry_for: Callable[[Officer], TriggerRegistry]
) -> Site:
    """Generate every key and provision each camera as an armorer's dock would."""
    keys = root / "keys"
    agency = write_key_pair(keys, Role.AGENCY)
    store = write_key_pair(keys, Role.STORE)
    dock = write_key_pair(keys, Role.DOCK)
    cameras = tuple(
        _provision(root / o.serial, o, agency, store, dock, registry_for(o)) for o in officers
    )
    return Site(root, agency, store, dock, cameras)


def _provision(
    folder: Path,
    officer: Officer,
    agency: KeyPairFiles,
    store: KeyPairFiles,
    dock: KeyPairFiles,
    registry: TriggerRegistry,
) -> CameraFolder:
    keys = folder / "keys"
    device = write_key_pair(keys, Role.DEVICE)  # device.key.pem: the camera's own identity
    (keys / "docks").mkdir()
    shutil.copyfile(agency.public, keys / "agency.pub.pem")  # clips are wrapped to it
    shutil.copyfile(store.public, keys / "store.pub.pem")  # erase needs a receipt it verifies
    shutil.copyfile(dock.public, keys / "docks" / "dock.pub.pem")  # the dock it trusts
    registry.save(keys / REGISTRY_NAME)
    return CameraFolder(officer, folder, device)


def enrol(devices_dir: Path, cameras: tuple[CameraFolder, ...]) -> None:
    """Put each camera's public key where a store or a dock looks it up by device id."""
    devices_dir.mkdir(parents=True, exist_ok=True)
    for camera in cameras:
        target = devices_dir / f"{camera.officer.device_id}.pub.pem"
        write_atomic(target, camera.device.public.read_bytes(), mode=0o644, overwrite=True)
