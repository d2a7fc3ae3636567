"""A running dock that cameras have not docked at yet, for staging updates through its local API.

The dock is what ``bwc dock run`` builds (tests/dock/ui_rig.py running_dock) over an empty USB
bus; its store is never called (no camera, no clip), so the store's port need not listen. The
agency release key is written where the dock looks for it (``keys/release-<id>.pub.pem``).
Signed profiles, good and bad, are built here with custody.profile.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody import vectors_release
from custody.keys import key_id, public_pem, write_atomic
from custody.profile import Profile, sign_profile
from dock.config import DockConfig
from tests.dock.conftest import Store
from tests.dock.fleet import dock_config, install_dock
from tests.dock.ui_rig import RunningDock, bus_with, running_dock

CREATED_AT_NS = 1_700_000_000_000_000_000


def install_release_key(cfg: DockConfig, release: Ed25519PrivateKey) -> Path:
    path = cfg.release_keys_dir / f"release-{key_id(release)}.pub.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, public_pem(release.public_key()), mode=0o644)
    return path


def staging_config(root: Path, store_url: str, **settings: Any) -> DockConfig:
    return dock_config(root / "dock", store_url, [], **settings)


@contextmanager
def staging_dock(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, store: Store
) -> Iterator[RunningDock]:
    install_dock(cfg, dock_key, store, [])
    with running_dock(cfg, dock_key, bus_with([])) as dock:
        yield dock


def signed_profile(
    release: Ed25519PrivateKey, *, version: int = 2, name: str = "patrol", **settings: Any
) -> bytes:
    """A profile signed by ``release``; ``settings`` override the reference ones, unchecked, so
    a profile with a bad setting can be signed as an agency's mistake would be."""
    unsigned = Profile(
        name, version, CREATED_AT_NS, {**vectors_release.SETTINGS, **settings},
        release_key_id=key_id(release),
    )  # fmt: skip
    if not settings:  # the reference settings: sign through the real path, which checks them
        draft = json.dumps(
            {"name": name, "profile_version": version, "settings": unsigned.settings}
        )
        return sign_profile(draft.encode(), release, created_at_ns=CREATED_AT_NS).to_bytes()
    signature = release.sign(unsigned.signed_message())
    return dataclasses.replace(unsigned, signature=signature).to_bytes()


def update_files(cfg: DockConfig) -> list[str]:
    """Every file name in the dock's updates folder, temporary ones included."""
    folder = cfg.updates_dir
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def audit_events(cfg: DockConfig, event: str) -> list[dict[str, Any]]:
    """The records of ``event`` in the dock's audit log, oldest first."""
    records = [json.loads(line) for line in cfg.audit_path.read_bytes().splitlines()]
    return [r for r in records if r.get("event") == event]
