"""``SqliteMetadataStore``: the embedded metadata backend, one SQLite file in WAL mode.

One connection shared by the API's worker threads, serialised by a lock: SQLite writes one at a
time anyway, and every method is a short transaction. Several processes may share the file: every
write starts with BEGIN IMMEDIATE, which takes SQLite's write lock, so a check and the write it
guards (the audit tail and the next record, say) are never interleaved with another process.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
"""

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
# Expired and not held: the one condition purge selects by and re-checks before deleting.
_PURGEABLE = (
    "r.expires_at_ns IS NOT NULL AND r.expires_at_ns <= ? AND NOT EXISTS "
    "(SELECT 1 FROM holds h WHERE h.evidence_id = r.evidence_id AND h.released_at_ns IS NULL)"
)


# How long a write waits for another process's transaction before giving up.
_BUSY_TIMEOUT_S = 30.0


class SqliteMetadataStore:
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
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
            return row

    def _all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def add_upload(self, upload: Upload, segments: Sequence[ExpectedSegment]) -> Upload:
        with self._tx() as db:
            if db.execute(
                "SELECT 1 FROM tombstones WHERE manifest_sha256 = ?", (upload.manifest_sha256,)
            ).fetchone():
                raise Conflict(
                    f"the evidence of manifest {upload.manifest_sha256} was purged at the end of "
                    "its retention: delete the clip from the dock"
                )
            inserted = db.execute(
                f"INSERT INTO uploads ({_UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (manifest_sha256) DO NOTHING",
                (
                    upload.id, upload.manifest_sha256, upload.clip_id, upload.device_id,
                    upload.segment_count, upload.created_by, upload.created_at_ns,
                    upload.evidence_id,
                ),
            ).rowcount  # fmt: skip
            if not inserted:
                row = db.execute(
                    f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE manifest_sha256 = ?",
                    (upload.manifest_sha256,),
                ).fetchone()
                return Upload(*row)
            db.executemany(
                "INSERT INTO upload_segments (upload_id, idx, size, cipher_sha256) "
                "VALUES (?, ?, ?, ?)",
                [(upload.id, s.index, s.size, s.cipher_sha256) for s in segments],
            )
        return upload

    def upload(self, upload_id: str) -> Upload | None:
        row = self._one(f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE id = ?", upload_id)
        return None if row is None else Upload(*row)

    def upload_for_manifest(self, manifest_sha256: str) -> Upload | None:
        row = self._one(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE manifest_sha256 = ?",
            manifest_sha256,
        )
        return None if row is None else Upload(*row)

    def expected_segments(self, upload_id: str) -> list[ExpectedSegment]:
        rows = self._all(
            "SELECT idx, size, cipher_sha256 FROM upload_segments WHERE upload_id = ? ORDER BY idx",
            upload_id,
        )
        return [ExpectedSegment(*row) for row in rows]

    def expected_segment(self, upload_id: str, index: int) -> ExpectedSegment | None:
        row = self._one(
            "SELECT idx, size, cipher_sha256 FROM upload_segments WHERE upload_id = ? AND idx = ?",
            upload_id,
            index,
        )
        return None if row is None else ExpectedSegment(*row)

    def is_acknowledged(self, upload_id: str, index: int) -> bool:
        row = self._one(
            "SELECT acknowledged FROM upload_segments WHERE upload_id = ? AND idx = ?",
            upload_id,
            index,
        )
        return row is not None and bool(row[0])

    def acknowledge(self, upload_id: str, index: int) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE upload_segments SET acknowledged = 1 WHERE upload_id = ? AND idx = ?",
                (upload_id, index),
            )

    def acknowledged(self, upload_id: str) -> list[int]:
        rows = self._all(
            "SELECT idx FROM upload_segments WHERE upload_id = ? AND acknowledged = 1 ORDER BY idx",
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
            self._insert_evidence(e, receipt, upload_id, retention)
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"evidence for manifest {e.manifest_sha256} is already stored: "
                "fetch its receipt instead of storing it again"
            ) from exc

    def _insert_evidence(
        self, e: Evidence, receipt: bytes, upload_id: str, retention: Retention | None
    ) -> None:
        with self._tx() as db:
            db.execute(
                f"INSERT INTO evidence ({_EVIDENCE_COLUMNS}, receipt) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    e.id, e.manifest_sha256, e.clip_id, e.device_id, e.officer_id,
                    e.segment_count, e.byte_count, e.stored_at_ns, receipt,
                ),
            )  # fmt: skip
            db.execute("UPDATE uploads SET evidence_id = ? WHERE id = ?", (e.id, upload_id))
            if retention is not None:
                _upsert_retention(db, retention)

    def finish_upload(self, upload_id: str, evidence_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE uploads SET evidence_id = ? WHERE id = ?", (evidence_id, upload_id))

    def evidence(self, evidence_id: str) -> Evidence | None:
        row = self._one(f"SELECT {_EVIDENCE_COLUMNS} FROM evidence WHERE id = ?", evidence_id)
        return None if row is None else Evidence(*row)

    def evidence_for_manifest(self, manifest_sha256: str) -> Evidence | None:
        row = self._one(
            f"SELECT {_EVIDENCE_COLUMNS} FROM evidence WHERE manifest_sha256 = ?", manifest_sha256
        )
        return None if row is None else Evidence(*row)

    def list_evidence(self, *, limit: int, offset: int) -> list[Evidence]:
        rows = self._all(
            f"SELECT {_EVIDENCE_COLUMNS} FROM evidence ORDER BY stored_at_ns, id LIMIT ? OFFSET ?",
            limit,
            offset,
        )
        return [Evidence(*row) for row in rows]

    def receipt(self, evidence_id: str) -> bytes | None:
        row = self._one("SELECT receipt FROM evidence WHERE id = ?", evidence_id)
        return None if row is None else bytes(row[0])

    def retention(self, evidence_id: str) -> Retention | None:
        row = self._one(
            f"SELECT {_RETENTION_COLUMNS} FROM retention WHERE evidence_id = ?", evidence_id
        )
        return None if row is None else Retention(*row)

    # Both check inside the transaction that the evidence still exists: a purge may have run
    # between the caller's look-up and this write.
    def set_retention(self, retention: Retention) -> bool:
        with self._tx() as db:
            if not _exists(db, retention.evidence_id):
                return False
            _upsert_retention(db, retention)
        return True

    def add_hold(self, hold: Hold) -> bool:
        with self._tx() as db:
            if not _exists(db, hold.evidence_id):
                return False
            db.execute(
                f"INSERT INTO holds ({_HOLD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    hold.id, hold.evidence_id, hold.case_number, hold.reason, hold.placed_by,
                    hold.placed_at_ns, hold.released_by, hold.released_at_ns, hold.release_reason,
                ),
            )  # fmt: skip
        return True

    def holds(self, evidence_id: str) -> list[Hold]:
        rows = self._all(
            f"SELECT {_HOLD_COLUMNS} FROM holds WHERE evidence_id = ? ORDER BY placed_at_ns, id",
            evidence_id,
        )
        return [Hold(*row) for row in rows]

    def release_hold(self, hold_id: str, *, by: str, at_ns: int, reason: str) -> bool:
        with self._tx() as db:
            changed = db.execute(
                "UPDATE holds SET released_by = ?, released_at_ns = ?, release_reason = ? "
                "WHERE id = ? AND released_at_ns IS NULL",
                (by, at_ns, reason, hold_id),
            ).rowcount
        return changed == 1

    def expired(self, now_ns: int, *, limit: int) -> list[Evidence]:
        columns = ", ".join(f"e.{c.strip()}" for c in _EVIDENCE_COLUMNS.split(","))
        rows = self._all(
            f"SELECT {columns} FROM evidence e JOIN retention r ON r.evidence_id = e.id "
            f"WHERE {_PURGEABLE} ORDER BY r.expires_at_ns, e.id LIMIT ?",
            now_ns,
            limit,
        )
        return [Evidence(*row) for row in rows]

    def purge_evidence(self, tombstone: Tombstone) -> bool:
        t = tombstone
        with self._tx() as db:
            still = db.execute(
                f"SELECT 1 FROM retention r WHERE r.evidence_id = ? AND {_PURGEABLE}",
                (t.evidence_id, t.purged_at_ns),
            ).fetchone()
            if still is None:
                return False
            db.execute(
                f"INSERT INTO tombstones ({_TOMBSTONE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    t.evidence_id, t.manifest_sha256, t.clip_id, t.device_id, t.officer_id,
                    t.stored_at_ns, t.category, t.expires_at_ns, t.rule, t.purged_by,
                    t.purged_at_ns,
                ),
            )  # fmt: skip
            uploads = "SELECT id FROM uploads WHERE manifest_sha256 = ?"
            db.execute(
                f"DELETE FROM upload_segments WHERE upload_id IN ({uploads})", (t.manifest_sha256,)
            )
            db.execute("DELETE FROM uploads WHERE manifest_sha256 = ?", (t.manifest_sha256,))
            db.execute("DELETE FROM retention WHERE evidence_id = ?", (t.evidence_id,))
            db.execute("DELETE FROM evidence WHERE id = ?", (t.evidence_id,))
        return True

    def tombstones(self, *, limit: int, offset: int) -> list[Tombstone]:
        rows = self._all(
            f"SELECT {_TOMBSTONE_COLUMNS} FROM tombstones "
            "ORDER BY purged_at_ns, evidence_id LIMIT ? OFFSET ?",
            limit,
            offset,
        )
        return [Tombstone(*row) for row in rows]

    def tombstone_for_manifest(self, manifest_sha256: str) -> Tombstone | None:
        row = self._one(
            f"SELECT {_TOMBSTONE_COLUMNS} FROM tombstones WHERE manifest_sha256 = ?",
            manifest_sha256,
        )
        return None if row is None else Tombstone(*row)

    def append_audit(self, build: AuditBuild) -> None:
        with self._tx() as db:
            last = db.execute("SELECT seq, line FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            tail = None
            if last is not None:
                (signed,) = db.execute("SELECT max(seq) FROM audit WHERE checkpoint = 1").fetchone()
                since = last[0] - (-1 if signed is None else signed)
                tail = AuditTail(last[0], bytes(last[1]), since)
            first = 0 if tail is None else tail.seq + 1
            db.executemany(
                "INSERT INTO audit (seq, line, checkpoint) VALUES (?, ?, ?)",
                [(first + n, a.line, int(a.checkpoint)) for n, a in enumerate(build(tail))],
            )

    def audit_log(self) -> bytes:
        return b"".join(bytes(row[0]) for row in self._all("SELECT line FROM audit ORDER BY seq"))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _upsert_retention(db: sqlite3.Connection, r: Retention) -> None:
    db.execute(
        f"INSERT INTO retention ({_RETENTION_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (evidence_id) DO UPDATE SET category = excluded.category, "
        "expires_at_ns = excluded.expires_at_ns, set_by = excluded.set_by, "
        "set_at_ns = excluded.set_at_ns",
        (r.evidence_id, r.category, r.expires_at_ns, r.set_by, r.set_at_ns),
    )


def _exists(db: sqlite3.Connection, evidence_id: str) -> bool:
    return db.execute("SELECT 1 FROM evidence WHERE id = ?", (evidence_id,)).fetchone() is not None
