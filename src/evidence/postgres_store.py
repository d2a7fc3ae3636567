"""``PostgresMetadataStore``: the metadata backend of a scaled deployment, over psycopg 3.

Several API processes share one database. Every method is one short transaction on a connection
from a pool; where a check guards a write across processes the rows are locked first: audit
appends take the audit table's lock, a hold or a retention change locks its evidence row against
a purge, and creating an upload and purging its manifest take the manifest's advisory lock.
The methods and their SQL are ``SqlMetadataStore``'s; this module keeps the schema, the pool,
those locks, error translation and the URL's redaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from evidence.errors import StoreSetupError
from evidence.sql_metadata import SqlMetadataStore
from evidence.sql_text import Transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, manifest_sha256 TEXT NOT NULL UNIQUE, clip_id TEXT NOT NULL,
    device_id TEXT NOT NULL, segment_count INTEGER NOT NULL, created_by TEXT NOT NULL,
    created_at_ns BIGINT NOT NULL, evidence_id TEXT
);
CREATE TABLE IF NOT EXISTS upload_segments (
    upload_id TEXT NOT NULL REFERENCES uploads (id), idx INTEGER NOT NULL,
    size BIGINT NOT NULL, cipher_sha256 TEXT NOT NULL,
    acknowledged BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (upload_id, idx)
);
CREATE TABLE IF NOT EXISTS evidence (
    id TEXT PRIMARY KEY, manifest_sha256 TEXT NOT NULL UNIQUE, clip_id TEXT NOT NULL,
    device_id TEXT NOT NULL, officer_id TEXT NOT NULL, segment_count INTEGER NOT NULL,
    byte_count BIGINT NOT NULL, stored_at_ns BIGINT NOT NULL, receipt BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq BIGINT PRIMARY KEY, line BYTEA NOT NULL, checkpoint BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS audit_checkpoints ON audit (seq) WHERE checkpoint;
CREATE TABLE IF NOT EXISTS retention (
    evidence_id TEXT PRIMARY KEY REFERENCES evidence (id), category TEXT NOT NULL,
    expires_at_ns BIGINT, set_by TEXT NOT NULL, set_at_ns BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS retention_by_expiry ON retention (expires_at_ns);
CREATE TABLE IF NOT EXISTS holds (
    id TEXT PRIMARY KEY, evidence_id TEXT NOT NULL, case_number TEXT NOT NULL,
    reason TEXT NOT NULL, placed_by TEXT NOT NULL, placed_at_ns BIGINT NOT NULL,
    released_by TEXT, released_at_ns BIGINT, release_reason TEXT
);
CREATE INDEX IF NOT EXISTS holds_by_evidence ON holds (evidence_id);
CREATE TABLE IF NOT EXISTS tombstones (
    evidence_id TEXT PRIMARY KEY, manifest_sha256 TEXT NOT NULL UNIQUE, clip_id TEXT NOT NULL,
    device_id TEXT NOT NULL, officer_id TEXT NOT NULL, stored_at_ns BIGINT NOT NULL,
    category TEXT NOT NULL, expires_at_ns BIGINT NOT NULL, rule TEXT NOT NULL,
    purged_by TEXT NOT NULL, purged_at_ns BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    evidence_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, size BIGINT NOT NULL,
    name TEXT NOT NULL, submitted_by TEXT NOT NULL, stored_at_ns BIGINT NOT NULL,
    receipt BYTEA NOT NULL
);
"""
# Concurrent CREATE ... IF NOT EXISTS can still collide in PostgreSQL's catalogue: take a lock.
_SCHEMA_LOCK = 0x6277_6373_6368_656D  # "bwcschem"

_CONNECT_TIMEOUT_S = 10

Connection = psycopg.Connection[tuple[Any, ...]]


class PostgresMetadataStore(SqlMetadataStore):
    _integrity_error = psycopg.IntegrityError
    _last_checkpoint = "SELECT max(seq) FROM audit WHERE checkpoint"  # the partial index's own

    def __init__(self, url: str, *, max_connections: int = 10) -> None:
        self._shown = _redacted(url)
        params = _connect_kwargs(url)
        try:
            with psycopg.connect(url, **params) as db, db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                db.execute(_SCHEMA)
        except psycopg.Error as exc:
            raise _setup_error(url, exc) from exc
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url, kwargs=params, min_size=1, max_size=max_connections, open=True,
            name="bwc-evidence-metadata",
        )  # fmt: skip

    @contextmanager
    def _tx(self) -> Iterator[Transaction]:
        try:
            with self._pool.connection() as db, db.transaction():
                yield _QmarkConnection(db)
        except psycopg.OperationalError as exc:  # the server went away, or no free connection
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise StoreSetupError(
                f"the PostgreSQL metadata database {self._shown} is unreachable: {reason}; "
                "check that the server is running"
            ) from exc

    def _read(self) -> AbstractContextManager[Transaction]:
        return self._tx()

    def _lock_manifest(self, tx: Transaction, manifest_sha256: str) -> None:
        key = int(manifest_sha256[:16], 16) - (1 << 63)  # advisory locks take a signed bigint
        tx.execute("SELECT pg_advisory_xact_lock(?)", (key,))

    def _lock_evidence(self, tx: Transaction, evidence_id: str, *, for_update: bool) -> bool:
        mode = "UPDATE" if for_update else "SHARE"
        row = tx.execute(f"SELECT 1 FROM evidence WHERE id = ? FOR {mode}", (evidence_id,))
        return row.fetchone() is not None

    def _lock_audit(self, tx: Transaction) -> None:
        # EXCLUSIVE blocks other writers (and lockers) of the table, not plain readers.
        tx.execute("LOCK TABLE audit IN EXCLUSIVE MODE")

    def close(self) -> None:
        self._pool.close()


class _QmarkConnection:
    """A pooled connection inside its transaction, taking the shared SQL's qmark placeholders."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[tuple[Any, ...]]:
        return self._db.execute(_pyformat(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._db.cursor() as cur:
            cur.executemany(_pyformat(sql), rows)


def _pyformat(sql: str) -> str:
    # No statement of the store has a "?" or a "%" of its own: every "?" is a placeholder.
    return sql.replace("?", "%s")


def _connect_kwargs(url: str) -> dict[str, Any]:
    """A connect timeout unless the URL sets one; parsing also refuses a malformed URL early."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise _setup_error(url, exc) from exc
    return {} if "connect_timeout" in given else {"connect_timeout": _CONNECT_TIMEOUT_S}


def _setup_error(url: str, exc: psycopg.Error) -> StoreSetupError:
    """One line naming the server (never the password) and what to do."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    for secret in _secrets(url):
        reason = reason.replace(secret, "***")
    return StoreSetupError(
        f"cannot open the PostgreSQL metadata database {_redacted(url)}: {reason}; "
        "check database_url and that the server is running and reachable"
    )


_URL_PASSWORD = re.compile(r"^(\w+://[^:/@?#]*:)([^@]*)(@)")
_KEY_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def _secrets(url: str) -> list[str]:
    found = [m.group(2) for m in [_URL_PASSWORD.match(url)] if m and m.group(2)]
    found += [m.group(1).strip("'") for m in _KEY_PASSWORD.finditer(url)]
    return [s for s in found if s]


def _redacted(url: str) -> str:
    shown = _URL_PASSWORD.sub(r"\1***\3", url)
    return _KEY_PASSWORD.sub("password=***", shown)
