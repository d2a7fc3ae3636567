"""The dock's parts put together from its configuration: keys, ledger, spool, store client.

Built once at the entry point (``bwc dock run``, tests); every part gets what it needs passed in.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.errors import KeyFileError
from custody.keys import load_signing_key, load_verify_key
from dock.camera_client import CameraClient
from dock.config import DockConfig, read_token
from dock.enrolment import EnrolledDevices
from dock.errors import DockSetupError
from dock.ledger import ClipRow, Ledger
from dock.pipeline import Offloader
from dock.retry import Retrier
from dock.spool import Spool
from dock.store_client import EvidenceSink, HttpEvidenceSink
from dock.throttle import Throttle
from hw.ports.clock import Clock


def load_dock_key(cfg: DockConfig) -> Ed25519PrivateKey:
    try:
        return load_signing_key(cfg.dock_key_path)
    except KeyFileError as exc:
        raise DockSetupError(
            f"dock key: {exc} (create it with 'bwc keys generate --role dock')"
        ) from exc


def load_store_key(cfg: DockConfig) -> Ed25519PublicKey:
    try:
        return load_verify_key(cfg.store_key_path)
    except KeyFileError as exc:
        raise DockSetupError(
            f"store receipt key: {exc} (copy the store's keys/store.pub.pem here)"
        ) from exc


class Dock:
    """One dock: its offloader, and a camera client for each docked camera's URL."""

    def __init__(
        self,
        cfg: DockConfig,
        clock: Clock,
        *,
        sink: EvidenceSink | None = None,
        rng: random.Random | None = None,
        on_change: Callable[[ClipRow], None] | None = None,
    ) -> None:
        """``on_change`` sees every clip's ledger row after each state change."""
        self.cfg = cfg
        self._rng, self._on_change = rng, on_change
        self._dock_key = load_dock_key(cfg)
        self.devices = EnrolledDevices(cfg.devices_path)
        self._http_sink: HttpEvidenceSink | None = None
        self._cameras: list[CameraClient] = []
        if sink is None:
            throttle = Throttle(cfg.upload_bytes_per_s, clock)
            token = read_token(cfg.store_token_path)
            sink = self._http_sink = HttpEvidenceSink(
                cfg.store_url, token, timeout_s=cfg.timeout_s, throttle=throttle
            )
        self.sink = sink
        self.store_key = load_store_key(cfg)
        self.ledger = Ledger(cfg.ledger_path, wall_ns=clock.wall_ns)
        self.spool = Spool(cfg.spool_path, cfg.quarantine_path)
        self.offloader = self.bay_offloader(clock)

    def bay_offloader(self, clock: Clock) -> Offloader:
        """An offloader sharing this dock's ledger, spool and store client, waiting on ``clock``.

        Each bay gets its own, so a bay's backoff can wait on a clock that wakes when its camera
        leaves (dock/runner.py) without stopping the other bays.
        """
        return Offloader(
            ledger=self.ledger,
            spool=self.spool,
            sink=self.sink,
            devices=self.devices,
            store_key=self.store_key,
            retrier=Retrier(self.cfg.retry, clock, self._rng),
            clock=clock,
            on_change=self._on_change,
        )

    def camera(self, base_url: str) -> CameraClient:
        """A client for the camera at ``base_url``; closed with the dock."""
        client = CameraClient(
            base_url,
            self._dock_key,
            self.devices,
            timeout_s=self.cfg.timeout_s,
            chunk_bytes=self.cfg.chunk_bytes,
        )
        self._cameras.append(client)
        return client

    def release(self, client: CameraClient) -> None:
        """Close a camera's client once its docking session is over."""
        client.close()
        if client in self._cameras:
            self._cameras.remove(client)

    def close(self) -> None:
        for client in self._cameras:
            client.close()
        self.ledger.close()
        if self._http_sink is not None:
            self._http_sink.close()
