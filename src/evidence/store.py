"""Opening the embedded store from its configuration: SQLite, a blob folder, keys and tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from custody.errors import KeyFileError
from custody.keys import Role as KeyRole
from custody.keys import load_signing_key, write_key_pair
from evidence.audit_log import StoreAudit
from evidence.config import EvidenceConfig
from evidence.enrolment import DeviceRegistry
from evidence.errors import StoreSetupError
from evidence.folder_blobs import FolderBlobStore
from evidence.ingest import IngestService
from evidence.sqlite_store import SqliteMetadataStore
from evidence.storage import BlobStore, MetadataStore
from evidence.tokens import TokenTable, write_dev_tokens


@dataclass(frozen=True)
class Bootstrap:
    """What a first run created, so the command can say where."""

    created: list[tuple[str, Path]] = field(default_factory=list)


def bootstrap(cfg: EvidenceConfig) -> Bootstrap:
    """Create what a fresh data folder lacks: the receipt key, a dev token file, devices/."""
    done = Bootstrap()
    try:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        key = cfg.receipt_key_path
        if not key.exists():
            stem = key.name.removesuffix(".key.pem")
            if key.name != f"{stem}.key.pem":
                raise StoreSetupError(f"receipt key {key} does not exist: create it first")
            files = write_key_pair(key.parent, KeyRole.STORE, stem)
            done.created.append(("receipt signing key", files.private))
            done.created.append(("receipt public key (provision it to cameras)", files.public))
        if not cfg.tokens_path.exists():
            write_dev_tokens(cfg.tokens_path)
            done.created.append(("development token file", cfg.tokens_path))
        if not cfg.devices_path.exists():
            cfg.devices_path.mkdir(parents=True)
            done.created.append(("enrolled device keys folder", cfg.devices_path))
    except OSError as exc:
        raise StoreSetupError(f"cannot set up the data folder {cfg.data_dir}: {exc}") from exc
    except KeyFileError as exc:
        raise StoreSetupError(str(exc)) from exc
    return done


def open_service(
    cfg: EvidenceConfig, *, wall_ns: Callable[[], int] = time.time_ns
) -> IngestService:
    """The ingest service over the embedded backends (SQLite in WAL mode and a folder).

    ``wall_ns`` is the one clock of the store: receipts, audit records, retention and purge.
    """
    try:
        key = load_signing_key(cfg.receipt_key_path)
    except KeyFileError as exc:
        raise StoreSetupError(f"receipt key: {exc}") from exc
    metadata = open_metadata(cfg)
    return IngestService(
        metadata,
        open_blobs(cfg),
        DeviceRegistry(cfg.devices_path),
        key,
        StoreAudit(metadata, key, wall_ns=wall_ns),
        wall_ns=wall_ns,
        policy=cfg.retention,
    )


def open_metadata(cfg: EvidenceConfig) -> MetadataStore:
    """The metadata backend the configuration names (default: SQLite in the data folder)."""
    if cfg.database_url is not None:
        from evidence.postgres_store import PostgresMetadataStore  # psycopg only when asked for

        return PostgresMetadataStore(cfg.database_url)
    return SqliteMetadataStore(cfg.database_path)


def open_blobs(cfg: EvidenceConfig) -> BlobStore:
    """The blob backend the configuration names (default: a folder in the data folder)."""
    if cfg.s3 is not None:
        from evidence.s3_blobs import open_s3_blobs  # boto3 only when asked for

        return open_s3_blobs(cfg.s3)
    return FolderBlobStore(cfg.blobs_path)


def load_tokens(cfg: EvidenceConfig) -> TokenTable:
    return TokenTable.load(cfg.tokens_path)
