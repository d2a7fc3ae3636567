"""``PostgresMetadataStore``: the metadata backend of a scaled deployment, over psycopg 3.

Several API processes share one database. Every method is one short transaction on a connection
from a pool; where a check guards a write across processes the rows are locked first: audit
appends take the audit table's lock, a hold or a retention change locks its evidence row against
a purge, and creating an upload and purging its manifest take the manifest's advisory lock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from evidence.errors import Conflict, StoreSetupError
from evidence.storage import (
    AuditBuild,
    AuditTail,
    Evidence,
    ExpectedSegment,
    Hold,
    Retention,
    Tombstone,
    Upload,
)

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
"""
# Concurrent CREATE ... IF NOT EXISTS can still collide in PostgreSQL's catalogue: take a lock.
_SCHEMA_LOCK = 0x6277_6373_6368_656D  # "bwcschem"

_UPLOAD_COLUMNS = (
    "id, manifest_sha256, clip_id, device_id, segment_count, created_by, created_at_ns, evidence_id"
)
_EVIDENCE_COLUMNS = (
    "id, manifest_sha256, clip_id, device_id, officer_id, segment_count, byte_count, stored_at_ns"
)
_RETENTION_COLUMNS = "evidence_id, category, expires_at_ns, set_by, set_at_ns"
_HOLD_COLUMNS = (
    "id, evidence_id, case_number, reason, placed_by, placed_at_ns, released_by, "
    "released_at_ns, release_reason"
)
_TOMBSTONE_COLUMNS = (
    "evidence_id, manifest_sha256, clip_id, device_id, officer_id, stored_at_ns, category, "
    "expires_at_ns, rule, purged_by, purged_at_ns"
)
_PURGEABLE = (
    "r.expires_at_ns IS NOT NULL AND r.expires_at_ns <= %s AND NOT EXISTS "
    "(SELECT 1 FROM holds h WHERE h.evidence_id = r.evidence_id AND h.released_at_ns IS NULL)"
)
_CONNECT_TIMEOUT_S = 10

Connection = psycopg.Connection[tuple[Any, ...]]


class PostgresMetadataStore:
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
    def _tx(self) -> Iterator[Connection]:
        try:
            with self._pool.connection() as db, db.transaction():
                yield db
        except psycopg.OperationalError as exc:  # the server went away, or no free connection
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise StoreSetupError(
                f"the PostgreSQL metadata database {self._shown} is unreachable: {reason}; "
                "check that the server is running"
            ) from exc

    def _one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        with self._tx() as db:
            return db.execute(sql, params).fetchone()

    def _all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self._tx() as db:
            return db.execute(sql, params).fetchall()

    def add_upload(self, upload: Upload, segments: Sequence[ExpectedSegment]) -> Upload:
        with self._tx() as db:
            _lock_manifest(db, upload.manifest_sha256)
            if db.execute(
                "SELECT 1 FROM tombstones WHERE manifest_sha256 = %s", (upload.manifest_sha256,)
            ).fetchone():
                raise Conflict(
                    f"the evidence of manifest {upload.manifest_sha256} was purged at the end of "
                    "its retention: delete the clip from the dock"
                )
            inserted = db.execute(
                f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (manifest_sha256) DO NOTHING RETURNING id",
                (
                    upload.id, upload.manifest_sha256, upload.clip_id, upload.device_id,
                    upload.segment_count, upload.created_by, upload.created_at_ns,
                    upload.evidence_id,
                ),
            ).fetchone()  # fmt: skip
            if inserted is None:
                row = db.execute(
                    f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE manifest_sha256 = %s",
                    (upload.manifest_sha256,),
                ).fetchone()
                return Upload(*_present(row))
            with db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO upload_segments (upload_id, idx, size, cipher_sha256) "
                    "VALUES (%s, %s, %s, %s)",
                    [(upload.id, s.index, s.size, s.cipher_sha256) for s in segments],
                )
        return upload

    def upload(self, upload_id: str) -> Upload | None:
        row = self._one(f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE id = %s", upload_id)
        return None if row is None else Upload(*row)

    def upload_for_manifest(self, manifest_sha256: str) -> Upload | None:
        row = self._one(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE manifest_sha256 = %s", manifest_sha256
        )
        return None if row is None else Upload(*row)

    def expected_segments(self, upload_id: str) -> list[ExpectedSegment]:
        rows = self._all(
            "SELECT idx, size, cipher_sha256 FROM upload_segments WHERE upload_id = %s "
            "ORDER BY idx",
            upload_id,
        )
        return [ExpectedSegment(*row) for row in rows]

    def expected_segment(self, upload_id: str, index: int) -> ExpectedSegment | None:
        row = self._one(
            "SELECT idx, size, cipher_sha256 FROM upload_segments "
            "WHERE upload_id = %s AND idx = %s",
            upload_id,
            index,
        )
        return None if row is None else ExpectedSegment(*row)

    def is_acknowledged(self, upload_id: str, index: int) -> bool:
        row = self._one(
            "SELECT acknowledged FROM upload_segments WHERE upload_id = %s AND idx = %s",
            upload_id,
            index,
        )
        return row is not None and bool(row[0])

    def acknowledge(self, upload_id: str, index: int) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE upload_segments SET acknowledged = TRUE WHERE upload_id = %s AND idx = %s",
                (upload_id, index),
            )

    def acknowledged(self, upload_id: str) -> list[int]:
        rows = self._all(
            "SELECT idx FROM upload_segments WHERE upload_id = %s AND acknowledged ORDER BY idx",
            upload_id,
        )
        return [row[0] for row in rows]

    def add_evidence(
        self,
        evidence: Evidence,
        receipt: bytes,
        upload_id: str,
        retention: Retention | None = None,
    ) -> None:
        e = evidence
        try:
            with self._tx() as db:
                db.execute(
                    f"INSERT INTO evidence ({_EVIDENCE_COLUMNS}, receipt) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        e.id, e.manifest_sha256, e.clip_id, e.device_id, e.officer_id,
                        e.segment_count, e.byte_count, e.stored_at_ns, receipt,
                    ),
                )  # fmt: skip
                db.execute("UPDATE uploads SET evidence_id = %s WHERE id = %s", (e.id, upload_id))
                if retention is not None:
                    _upsert_retention(db, retention)
        except psycopg.IntegrityError as exc:  # as SQLite: a duplicate, or a dangling row
            raise Conflict(
                f"evidence for manifest {e.manifest_sha256} is already stored: "
                "fetch its receipt instead of storing it again"
            ) from exc

    def finish_upload(self, upload_id: str, evidence_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE uploads SET evidence_id = %s WHERE id = %s", (evidence_id, upload_id)
            )

    def evidence(self, evidence_id: str) -> Evidence | None:
        row = self._one(f"SELECT {_EVIDENCE_COLUMNS} FROM evidence WHERE id = %s", evidence_id)
        return None if row is None else Evidence(*row)

    def evidence_for_manifest(self, manifest_sha256: str) -> Evidence | None:
        row = self._one(
            f"SELECT {_EVIDENCE_COLUMNS} FROM evidence WHERE manifest_sha256 = %s", manifest_sha256
        )
        return None if row is None else Evidence(*row)

    def list_evidence(self, *, limit: int, offset: int) -> list[Evidence]:
        rows = self._all(
            f"SELECT {_EVIDENCE_COLUMNS} FROM evidence ORDER BY stored_at_ns, id "
            "LIMIT %s OFFSET %s",
            limit,
            offset,
        )
        return [Evidence(*row) for row in rows]

    def receipt(self, evidence_id: str) -> bytes | None:
        row = self._one("SELECT receipt FROM evidence WHERE id = %s", evidence_id)
        return None if row is None else bytes(row[0])

    def retention(self, evidence_id: str) -> Retention | None:
        row = self._one(
            f"SELECT {_RETENTION_COLUMNS} FROM retention WHERE evidence_id = %s", evidence_id
        )
        return None if row is None else Retention(*row)

    def set_retention(self, retention: Retention) -> bool:
        with self._tx() as db:
            if not _lock_evidence(db, retention.evidence_id):
                return False
            _upsert_retention(db, retention)
        return True

    def add_hold(self, hold: Hold) -> bool:
        with self._tx() as db:
            if not _lock_evidence(db, hold.evidence_id):
                return False
            db.execute(
                f"INSERT INTO holds ({_HOLD_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    hold.id, hold.evidence_id, hold.case_number, hold.reason, hold.placed_by,
                    hold.placed_at_ns, hold.released_by, hold.released_at_ns, hold.release_reason,
                ),
            )  # fmt: skip
        return True

    def holds(self, evidence_id: str) -> list[Hold]:
        rows = self._all(
            f"SELECT {_HOLD_COLUMNS} FROM holds WHERE evidence_id = %s ORDER BY placed_at_ns, id",
            evidence_id,
        )
        return [Hold(*row) for row in rows]

    def release_hold(self, hold_id: str, *, by: str, at_ns: int, reason: str) -> bool:
        with self._tx() as db:
            changed = db.execute(
                "UPDATE holds SET released_by = %s, released_at_ns = %s, release_reason = %s "
                "WHERE id = %s AND released_at_ns IS NULL",
                (by, at_ns, reason, hold_id),
            ).rowcount
        return changed == 1

    def expired(self, now_ns: int, *, limit: int) -> list[Evidence]:
        columns = ", ".join(f"e.{c.strip()}" for c in _EVIDENCE_COLUMNS.split(","))
        rows = self._all(
            f"SELECT {columns} FROM evidence e JOIN retention r ON r.evidence_id = e.id "
            f"WHERE {_PURGEABLE} ORDER BY r.expires_at_ns, e.id LIMIT %s",
            now_ns,
            limit,
        )
        return [Evidence(*row) for row in rows]

    def purge_evidence(self, tombstone: Tombstone) -> bool:
        t = tombstone
        with self._tx() as db:
            _lock_manifest(db, t.manifest_sha256)
            # The evidence row's lock orders this against a hold or retention change.
            if not _lock_evidence(db, t.evidence_id, for_update=True):
                return False
            still = db.execute(
                f"SELECT 1 FROM retention r WHERE r.evidence_id = %s AND {_PURGEABLE}",
                (t.evidence_id, t.purged_at_ns),
            ).fetchone()
            if still is None:
                return False
            db.execute(
                f"INSERT INTO tombstones ({_TOMBSTONE_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    t.evidence_id, t.manifest_sha256, t.clip_id, t.device_id, t.officer_id,
                    t.stored_at_ns, t.category, t.expires_at_ns, t.rule, t.purged_by,
                    t.purged_at_ns,
                ),
            )  # fmt: skip
            uploads = "SELECT id FROM uploads WHERE manifest_sha256 = %s"
            db.execute(
                f"DELETE FROM upload_segments WHERE upload_id IN ({uploads})", (t.manifest_sha256,)
            )
            db.execute("DELETE FROM uploads WHERE manifest_sha256 = %s", (t.manifest_sha256,))
            db.execute("DELETE FROM retention WHERE evidence_id = %s", (t.evidence_id,))
            db.execute("DELETE FROM evidence WHERE id = %s", (t.evidence_id,))
        return True

    def tombstones(self, *, limit: int, offset: int) -> list[Tombstone]:
        rows = self._all(
            f"SELECT {_TOMBSTONE_COLUMNS} FROM tombstones "
            "ORDER BY purged_at_ns, evidence_id LIMIT %s OFFSET %s",
            limit,
            offset,
        )
        return [Tombstone(*row) for row in rows]

    def tombstone_for_manifest(self, manifest_sha256: str) -> Tombstone | None:
        row = self._one(
            f"SELECT {_TOMBSTONE_COLUMNS} FROM tombstones WHERE manifest_sha256 = %s",
            manifest_sha256,
        )
        return None if row is None else Tombstone(*row)

    def append_audit(self, build: AuditBuild) -> None:
        with self._tx() as db:
            # EXCLUSIVE blocks other writers (and lockers) of the table, not plain readers.
            db.execute("LOCK TABLE audit IN EXCLUSIVE MODE")
            last = db.execute("SELECT seq, line FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            tail = None
            if last is not None:
                signed = _present(
                    db.execute("SELECT max(seq) FROM audit WHERE checkpoint").fetchone()
                )[0]
                since = last[0] - (-1 if signed is None else signed)
                tail = AuditTail(last[0], bytes(last[1]), since)
            first = 0 if tail is None else tail.seq + 1
            lines = [(first + n, a.line, a.checkpoint) for n, a in enumerate(build(tail))]
            if lines:
                with db.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO audit (seq, line, checkpoint) VALUES (%s, %s, %s)", lines
                    )

    def audit_log(self) -> bytes:
        return b"".join(bytes(row[0]) for row in self._all("SELECT line FROM audit ORDER BY seq"))

    def close(self) -> None:
        self._pool.close()


def _present(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if row is None:  # only after a row was seen inside the same locked transaction
        raise StoreSetupError("the metadata database lost a row inside a transaction")
    return row


def _lock_manifest(db: Connection, manifest_sha256: str) -> None:
    """Serialise creating an upload and purging for one manifest (64 bits of its hash)."""
    key = int(manifest_sha256[:16], 16) - (1 << 63)  # advisory locks take a signed bigint
    db.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


def _lock_evidence(db: Connection, evidence_id: str, *, for_update: bool = False) -> bool:
    """Lock the evidence row for this transaction; False when it no longer exists."""
    mode = "UPDATE" if for_update else "SHARE"
    row = db.execute(f"SELECT 1 FROM evidence WHERE id = %s FOR {mode}", (evidence_id,))
    return row.fetchone() is not None


def _upsert_retention(db: Connection, r: Retention) -> None:
    db.execute(
        f"INSERT INTO retention ({_RETENTION_COLUMNS}) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (evidence_id) DO UPDATE SET category = excluded.category, "
        "expires_at_ns = excluded.expires_at_ns, set_by = excluded.set_by, "
        "set_at_ns = excluded.set_at_ns",
        (r.evidence_id, r.category, r.expires_at_ns, r.set_by, r.set_at_ns),
    )


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
