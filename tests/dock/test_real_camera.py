"""The dock against the camera firmware's own offload server (device/offload) on sim hardware.

The camera is the whole firmware (tests/device/offload_rig.py): clips it recorded and sealed,
clips sealed by custody on its card, and one still open that must never be offered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.keys import public_pem
from dock.ledger import ClipState
from tests.device.offload_rig import DockedCamera, build_docked_camera
from tests.dock.conftest import DockFactory, Server, Store


@pytest.fixture
def real_camera(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey, store: Store
) -> Iterator[DockedCamera]:
    docked = build_docked_camera(tmp_path / "camera", device_key, agency_key)
    # The armorer provisions the evidence store's receipt key, so the camera can check receipts.
    answer = docked.request("PUT", "/keys/store", data=public_pem(store.public))
    assert answer.status_code == 200, answer.text
    yield docked
    docked.server.close()
    docked.camera.firmware.close()
    docked.camera.io.close()


@pytest.fixture
def dock_key(real_camera: DockedCamera) -> Ed25519PrivateKey:
    """The dock key the camera was provisioned with."""
    return real_camera.dock_key


def test_every_sealed_clip_of_a_real_camera_is_stored_and_erased_and_the_open_one_kept(
    live_store: Server, store: Store, real_camera: DockedCamera, make_dock: DockFactory
) -> None:
    dock = make_dock()

    rows = dock.offloader.offload(dock.camera(real_camera.url))

    assert sorted(r.clip_id for r in rows) == sorted(real_camera.sealed)
    assert {r.state for r in rows} == {ClipState.DONE}
    assert sorted(store.clip_ids()) == sorted(real_camera.sealed)
    assert real_camera.open_clip not in store.clip_ids()
    for clip_id in real_camera.sealed:
        assert not real_camera.folder(clip_id).exists()
    assert real_camera.folder(real_camera.open_clip).exists()
