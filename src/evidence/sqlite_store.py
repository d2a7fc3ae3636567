"""``SqliteMetadataStore``: the embedded metadata backend, one SQLite file in WAL mode.

One connection shared by the API's worker threads, serialised by a lock: SQLite writes one at a
time anyway, and every method is a short transaction. Several processes may share the file: every
write starts with BEGIN IMMEDIATE, which takes SQLite's write lock, so a check and the write it
guards (the audit tail and the next record, say) are never interleaved with another process, and
the locks a PostgreSQL store takes have nothing left to do here. The methods and their SQL are
``SqlMetadataStore``'s; this module keeps the schema, the connection and the transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evidence.errors import StoreSetupError
from evidence.sql_metadata import SqlMetadataStore
from evidence.sql_text import Transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, manifest_sha256 TEXT NOT NULL, clip_id TEXT NOT NULL,
    device_id TEXT NOT NULL, segment_count INTEGER NOT NULL, created_by TEXT NOT NULL,
    created_at_ns INTEGER NOT NULL, evidence_id TEXT
);
-- one upload per manifest, however many API processes race to create it
CREATE UNIQUE INDEX IF NOT EXISTS uploads_one_per_manifest ON uploads (manifest_sha256);
CREATE TABLE IF NOT EXISTS upload_segments (
    upload_id TEXT NOT NULL REFERENCES uploads (id), idx INTEGER NOT NULL,
    size INTEGER NOT NULL, cipher_sha256 TEXT NOT NULL, acknowledged INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (upload_id, idx)
);
CREATE TABLE IF NOT EXISTS evidence (
    id TEXT PRIMARY KEY, manifest_sha256 TEXT NOT NULL UNIQUE, clip_id TEXT NOT NULL,
    device_id TEXT NOT NULL, officer_id TEXT NOT NULL, segment_count INTEGER NOT NULL,
    byte_count INTEGER NOT NULL, stored_at_ns INTEGER NOT NULL, receipt BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, line BLOB NOT NULL, checkpoint INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS audit_checkpoints ON audit (seq) WHERE checkpoint = 1;
CREATE TABLE IF NOT EXISTS retention (
    evidence_id TEXT PRIMARY KEY REFERENCES evidence (id), category TEXT NOT NULL,
    expires_at_ns INTEGER, set_by TEXT NOT NULL, set_at_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS retention_by_expiry ON retention (expires_at_ns);
CREATE TABLE IF NOT EXISTS holds (
    id TEXT PRIMARY KEY, evidence_id TEXT NOT NULL, case_number TEXT NOT NULL,
    reason TEXT NOT NULL, placed_by TEXT NOT NULL, placed_at_ns INTEGER NOT NULL,
    released_by TEXT, released_at_ns INTEGER, release_reason TEXT
);
CREATE INDEX IF NOT EXISTS holds_by_evidence ON holds (evidence_id);
CREATE TABLE IF NOT EXISTS tombstones (
    evidence_id TEXT PRIMARY KEY, manifest_sha256 TEXT NOT NULL UNIQUE, clip_id TEXT NOT NULL,
    device_id TEXT NOT NULL, officer_id TEXT NOT NULL, stored_at_ns INTEGER NOT NULL,
    category TEXT NOT NULL, expires_at_ns INTEGER NOT NULL, rule TEXT NOT NULL,
    purged_by TEXT NOT NULL, purged_at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    evidence_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,
    name TEXT NOT NULL, submitted_by TEXT NOT NULL, stored_at_ns INTEGER NOT NULL,
    receipt BLOB NOT NULL
);
"""

# How long a write waits for another process's transaction before giving up.
_BUSY_TIMEOUT_S = 30.0


class SqliteMetadataStore(SqlMetadataStore):
    _integrity_error = sqlite3.IntegrityError
    # The condition of the partial index audit_checkpoints, word for word, so SQLite uses it.
    _last_checkpoint = "SELECT max(seq) FROM audit WHERE checkpoint = 1"

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=_BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a receipt promises the data is durable
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreSetupError(
                f"cannot open the metadata database {path}: {exc}; check the data folder"
            ) from exc
        self._lock = threading.Lock()

    @contextmanager
    def _tx(self) -> Iterator[Transaction]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Transaction]:
        with self._lock:
            yield self._db

    # BEGIN IMMEDIATE holds the database's one write lock for the whole transaction already.
    def _lock_manifest(self, tx: Transaction, manifest_sha256: str) -> None:
        pass

    def _lock_evidence(self, tx: Transaction, evidence_id: str, *, for_update: bool) -> bool:
        row = tx.execute("SELECT 1 FROM evidence WHERE id = ?", (evidence_id,)).fetchone()
        return row is not None

    def _lock_audit(self, tx: Transaction) -> None:
        pass

    def close(self) -> None:
        with self._lock:
            self._db.close()
