"""The dock's pipeline with the S3 sink, against the camera firmware and a real SeaweedFS."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.keys import private_pem, public_pem, write_atomic
from custody.receipt import verify_receipt
from dock.agent import Dock
from dock.config import DockConfig, S3SinkSettings
from dock.ledger import ClipState
from dock.s3_sink import RECEIPT_NAME
from tests.device.offload_rig import DockedCamera, build_docked_camera
from tests.dock.conftest import CHUNK, DEVICE_ID, RETRY, HookClock
from tests.dock.s3_rig import CorruptingSink, open_sink, settings_for
from tests.evidence.s3_server import SeaweedS3


@pytest.fixture
def settings(seaweedfs: SeaweedS3, s3_bucket: str) -> S3SinkSettings:
    return settings_for(seaweedfs, s3_bucket)


@pytest.fixture
def real_camera(
    tmp_path: Path,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    ingest_key: Ed25519PrivateKey,
) -> Iterator[DockedCamera]:
    docked = build_docked_camera(tmp_path / "camera", device_key, agency_key)
    # The armorer provisions the dock's ingest key as the camera's store key (S3 mode).
    answer = docked.request("PUT", "/keys/store", data=public_pem(ingest_key.public_key()))
    assert answer.status_code == 200, answer.text
    yield docked
    docked.server.close()
    docked.camera.firmware.close()
    docked.camera.io.close()


@pytest.fixture
def s3_dock_cfg(
    tmp_path: Path,
    settings: S3SinkSettings,
    device_key: Ed25519PrivateKey,
    ingest_key: Ed25519PrivateKey,
    real_camera: DockedCamera,
) -> DockConfig:
    cfg = DockConfig(
        data_dir=tmp_path / "dock", store="s3", s3=settings, retry=RETRY, chunk_bytes=CHUNK
    )
    (cfg.data_dir / "keys").mkdir(parents=True)
    cfg.devices_path.mkdir()
    write_atomic(cfg.dock_key_path, private_pem(real_camera.dock_key), mode=0o600)
    write_atomic(cfg.ingest_key_path, private_pem(ingest_key), mode=0o600)
    write_atomic(cfg.devices_path / f"{DEVICE_ID}.pub.pem", public_pem(device_key), mode=0o644)
    return cfg


def test_the_dock_stores_a_real_camera_s_clips_in_the_bucket_and_the_camera_erases_them(
    s3_dock_cfg: DockConfig,
    clock: HookClock,
    real_camera: DockedCamera,
    ingest_key: Ed25519PrivateKey,
    seaweedfs: SeaweedS3,
    s3_bucket: str,
) -> None:
    manifests = {c: real_camera.manifest(c) for c in real_camera.sealed}
    dock = Dock(s3_dock_cfg, clock, rng=random.Random(7))

    rows = dock.offloader.offload(dock.camera(real_camera.url))
    dock.close()

    assert sorted(r.clip_id for r in rows) == sorted(real_camera.sealed)
    assert {r.state for r in rows} == {ClipState.DONE}
    for row in rows:
        assert row.receipt is not None
        assert verify_receipt(row.receipt, ingest_key.public_key(), manifests[row.clip_id]).ok
        sha = hashlib.sha256(manifests[row.clip_id]).hexdigest()
        held = seaweedfs.client().get_object(Bucket=s3_bucket, Key=f"{sha}/{RECEIPT_NAME}")
        assert held["Body"].read() == row.receipt
        assert not real_camera.folder(row.clip_id).exists()
    assert real_camera.folder(real_camera.open_clip).exists()


def test_a_clip_whose_object_the_bucket_corrupted_gets_no_receipt_and_is_not_erased(
    s3_dock_cfg: DockConfig,
    settings: S3SinkSettings,
    ingest_key: Ed25519PrivateKey,
    clock: HookClock,
    real_camera: DockedCamera,
    seaweedfs: SeaweedS3,
    s3_bucket: str,
) -> None:
    s3 = open_sink(settings, ingest_key, clock, seaweedfs.session)
    dock = Dock(s3_dock_cfg, clock, sink=CorruptingSink(s3, seaweedfs.client(), s3_bucket))

    rows = dock.offloader.offload(dock.camera(real_camera.url))
    dock.close()
    s3.close()

    assert {r.state for r in rows} == {ClipState.UPLOADING}
    assert all(r.receipt is None and "no receipt" in (r.last_error or "") for r in rows)
    for clip_id in real_camera.sealed:
        assert real_camera.folder(clip_id).exists()
    listed = seaweedfs.client().list_objects_v2(Bucket=s3_bucket)
    assert not [o for o in listed.get("Contents", []) if o["Key"].endswith(RECEIPT_NAME)]
