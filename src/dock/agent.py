"""The dock's parts put together from its configuration: keys, ledger, spool, store client.

Built once at the entry point (``bwc dock run``, tests); every part gets what it needs passed in.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.errors import KeyFileError
from custody.keys import load_signing_key, load_verify_key
from dock.camera_client import CameraClient
from dock.config import DockConfig, read_token
from dock.enrolment import EnrolledDevices
from dock.errors import DockSetupError
from dock.ledger import ClipRow, Ledger
from dock.metrics import DockMetrics
from dock.pipeline import Offloader
from dock.progress import Transfer
from dock.retry import Retrier
from dock.spool import Spool
from dock.store_client import EvidenceSink, HttpEvidenceSink
from dock.throttle import Throttle
from hw.ports.clock import Clock

if TYPE_CHECKING:
    from dock.s3_sink import S3EvidenceSink


def load_dock_key(cfg: DockConfig) -> Ed25519PrivateKey:
    try:
        return load_signing_key(cfg.dock_key_path)
    except KeyFileError as exc:
        raise DockSetupError(
            f"dock key: {exc} (create it with 'bwc keys generate --role dock')"
        ) from exc


def load_ingest_key(cfg: DockConfig) -> Ed25519PrivateKey:
    """The key the dock signs receipts with when clips go to an S3 bucket (dock/s3_sink.py)."""
    try:
        return load_signing_key(cfg.ingest_key_path)
    except KeyFileError as exc:
        raise DockSetupError(
            f"ingest key: {exc} (create it with 'bwc keys generate --role store --id ingest' "
            "and provision the cameras with ingest.pub.pem as their store key)"
        ) from exc


def load_store_key(cfg: DockConfig) -> Ed25519PublicKey:
    """The key receipts must verify with: the store's, or in S3 mode the dock's ingest key's."""
    if cfg.store == "s3":
        return load_ingest_key(cfg).public_key()
    try:
        return load_verify_key(cfg.store_key_path)
    except KeyFileError as exc:
        raise DockSetupError(
            f"store receipt key: {exc} (copy the store's keys/store.pub.pem here)"
        ) from exc


def open_sink(cfg: DockConfig, clock: Clock) -> HttpEvidenceSink | S3EvidenceSink:
    """The evidence sink ``cfg.store`` names: the evidence store's HTTP API, or an S3 bucket."""
    throttle = Throttle(cfg.upload_bytes_per_s, clock)
    if cfg.s3 is None:
        token = read_token(cfg.store_token_path)
        return HttpEvidenceSink(cfg.store_url, token, timeout_s=cfg.timeout_s, throttle=throttle)
    from dock.s3_sink import open_s3_sink  # boto3 loads only when the S3 sink is chosen

    key = load_ingest_key(cfg)
    return open_s3_sink(
        cfg.s3, key, wall_ns=clock.wall_ns, timeout_s=cfg.timeout_s, throttle=throttle
    )


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
        metrics: DockMetrics | None = None,
    ) -> None:
        """``on_change`` sees every clip's ledger row after each state change.

        ``metrics`` (by default a registry of this dock's own) counts what every bay does.
        """
        self.cfg = cfg
        self.metrics = metrics or DockMetrics()
        self._rng, self._on_change = rng, _both(on_change, self.metrics.clip_changed)
        self._dock_key = load_dock_key(cfg)
        self.devices = EnrolledDevices(cfg.devices_path)
        self._own_sink: HttpEvidenceSink | S3EvidenceSink | None = None
        self._cameras: list[CameraClient] = []
        if sink is None:
            sink = self._own_sink = open_sink(cfg, clock)
        self.sink = sink
        self.store_key = load_store_key(cfg)
        self.ledger = Ledger(cfg.ledger_path, wall_ns=clock.wall_ns)
        self.spool = Spool(
            cfg.spool_path, cfg.quarantine_path, reserve_bytes=cfg.spool_reserve_bytes
        )
        self.metrics.watch(self.ledger)
        self._metered_sink = self.metrics.meter(sink)
        self.offloader = self.bay_offloader(clock)

    def bay_offloader(
        self,
        clock: Clock,
        *,
        on_change: Callable[[ClipRow], None] | None = None,
        on_progress: Callable[[Transfer], None] | None = None,
    ) -> Offloader:
        """An offloader sharing this dock's ledger, spool and store client, waiting on ``clock``.

        Each bay gets its own, so a bay's backoff can wait on a clock that wakes when its camera
        leaves (dock/runner.py) without stopping the other bays. ``on_change`` sees its clips'
        changes after the dock's own ``on_change``; ``on_progress`` its bytes in flight.
        """
        changed = self._on_change
        if on_change is not None:
            changed = _both(self._on_change, on_change)
        return Offloader(
            ledger=self.ledger,
            spool=self.spool,
            sink=self._metered_sink,
            devices=self.devices,
            store_key=self.store_key,
            retrier=Retrier(self.cfg.retry, clock, self._rng, on_retry=self.metrics.retried),
            clock=clock,
            on_change=changed,
            on_progress=on_progress,
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
        if self._own_sink is not None:
            self._own_sink.close()


def _both(
    first: Callable[[ClipRow], None] | None, second: Callable[[ClipRow], None]
) -> Callable[[ClipRow], None]:
    def changed(row: ClipRow) -> None:
        if first is not None:
            first(row)
        second(row)

    return changed
