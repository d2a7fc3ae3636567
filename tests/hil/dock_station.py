"""The dock on the bench: the real DockAgent over the rig's USB bus, and a live evidence store.

The store is the reference one (FastAPI + uvicorn on loopback, SQLite and a folder) on both rigs:
it is not hardware. The bus is the rig's: pyusb over the virtual backend in sim, libusb on the
bench, where the camera's USB cable sits in the dock bay the rig file names.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.keys import load_signing_key, private_pem, public_pem, write_atomic
from dock.agent import Dock
from dock.bay_worker import BayReport
from dock.config import DockConfig, RetryPolicy
from dock.links import StaticLinkResolver
from dock.runner import DockAgent
from evidence.config import EvidenceConfig
from evidence.store import bootstrap, open_service
from hw.ports.clock import Clock
from hw.ports.usb import UsbBus
from tests.dock.conftest import Store, serving, store_app

WAIT_S = 60.0
RETRY = RetryPolicy(base_s=0.05, cap_s=0.5, attempts=5)


@dataclass(frozen=True)
class DockedCamera:
    """What the dock must know of the camera in its bay."""

    serial: str
    device_id: str
    device_public: Ed25519PublicKey
    url: str


@dataclass
class DockStation:
    store: Store
    store_url: str
    dock_key: Ed25519PrivateKey
    cfg: DockConfig
    clock: Clock

    def offload(self, camera: DockedCamera, bus: UsbBus) -> BayReport:
        """Run the dock agent until it is done with the camera's bay; the report of that bay."""
        self._enrol(camera)
        cfg = self.cfg.model_copy(
            update={
                "cameras": {camera.serial: camera.device_id},
                "links": {camera.serial: camera.url},
            }
        )
        dock = Dock(cfg, self.clock)
        inbox: queue.Queue[BayReport] = queue.Queue()
        agent = DockAgent(
            dock, bus, StaticLinkResolver(cfg.links), self.clock, on_bay_done=inbox.put
        )
        agent.start()
        try:
            return inbox.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"the dock finished the camera's bay within {WAIT_S} s") from None
        finally:
            agent.stop()
            dock.close()

    def stored_clip_ids(self) -> list[str]:
        return self.store.clip_ids()

    def _enrol(self, camera: DockedCamera) -> None:
        key = public_pem(camera.device_public)
        write_atomic(self.cfg.devices_path / f"{camera.device_id}.pub.pem", key, mode=0o644)
        write_atomic(self.store.cfg.devices_path / f"{camera.device_id}.pub.pem", key, mode=0o644)


@contextmanager
def dock_station(workdir: Path, clock: Clock) -> Iterator[DockStation]:
    """A bootstrapped store served on loopback, and a dock configured for it."""
    store_cfg = EvidenceConfig(data_dir=workdir / "store")
    bootstrap(store_cfg)
    service = open_service(store_cfg)
    tokens = json.loads(store_cfg.tokens_path.read_text())["tokens"]
    token = next(e["token"] for e in tokens if e["role"] == "dock")
    store = Store(
        store_cfg, service, load_signing_key(store_cfg.receipt_key_path).public_key(), token
    )
    dock_key = Ed25519PrivateKey.generate()
    try:
        with serving(store_app(store)) as server:
            cfg = DockConfig(
                data_dir=workdir / "dock", store_url=server.url, retry=RETRY, poll_s=0.05,
                chunk_bytes=64 * 1024, spool_reserve_bytes=0,
            )  # fmt: skip
            (cfg.data_dir / "keys").mkdir(parents=True)
            cfg.devices_path.mkdir()
            write_atomic(cfg.dock_key_path, private_pem(dock_key), mode=0o600)
            write_atomic(cfg.store_key_path, public_pem(store.public), mode=0o644)
            write_atomic(cfg.store_token_path, token.encode() + b"\n", mode=0o600)
            yield DockStation(store, server.url, dock_key, cfg, clock)
    finally:
        service.metadata.close()
