"""``SqlMetadataStore``: the MetadataStore methods the SQLite and PostgreSQL backends share.

The SQL is written here once (its column lists and shared fragments in :mod:`evidence.sql_text`),
with qmark placeholders (``?``): sqlite3 takes them as they are and the PostgreSQL backend turns
them into psycopg's ``%s``. A backend subclass keeps what truly differs: its schema, how it
connects and runs a transaction, how it orders a check with the write it guards (SQLite's BEGIN
IMMEDIATE already holds the database's one write lock; PostgreSQL locks a manifest, an evidence
row or the audit table), and which library error means a broken UNIQUE constraint.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from evidence.errors import Conflict
from evidence.sql_text import (
    EVIDENCE_COLUMNS,
    EVIDENCE_COLUMNS_OF_E,
    FILE_COLUMNS,
    HOLD_COLUMNS,
    PURGEABLE,
    RETENTION_COLUMNS,
    SEGMENT_ROW,
    TOMBSTONE_COLUMNS,
    UPLOAD_COLUMNS,
    Transaction,
    present,
    upsert_retention,
)
from evidence.storage import (
    AuditBuild,
    AuditTail,
    Evidence,
    ExpectedSegment,
    Hold,
    Retention,
    StoredFile,
    Tombstone,
    Upload,
)


class SqlMetadataStore(ABC):
    """Every MetadataStore method, over the transactions and locks a backend provides."""

    #: the library's exception for a broken UNIQUE or foreign-key constraint
    _integrity_error: ClassVar[type[Exception]]
    #: the newest checkpoint's seq, worded as the backend's partial index on checkpoints is
    _last_checkpoint: ClassVar[str]

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Transaction]:
        """One write transaction, committed when the block ends and rolled back if it raises."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Transaction]:
        """A connection for one read."""

    @abstractmethod
    def _lock_manifest(self, tx: Transaction, manifest_sha256: str) -> None:
        """Serialise creating an upload and purging for one manifest, until ``tx`` ends."""

    @abstractmethod
    def _lock_evidence(self, tx: Transaction, evidence_id: str, *, for_update: bool) -> bool:
        """Keep the evidence row as it is until ``tx`` ends; False when it no longer exists.

        ``for_update`` (purge) also waits for, and then blocks, holds and retention changes.
        """

    @abstractmethod
    def _lock_audit(self, tx: Transaction) -> None:
        """Keep every other writer from appending to the audit log until ``tx`` ends."""

    @abstractmethod
    def close(self) -> None: ...

    def _one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        with self._read() as tx:
            return tx.execute(sql, params).fetchone()

    def _all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self._read() as tx:
            return tx.execute(sql, params).fetchall()

    def add_upload(self, upload: Upload, segments: Sequence[ExpectedSegment]) -> Upload:
        u = upload
        with self._tx() as tx:
            self._lock_manifest(tx, u.manifest_sha256)
            if tx.execute(
                "SELECT 1 FROM tombstones WHERE manifest_sha256 = ?", (u.manifest_sha256,)
            ).fetchone():
                raise Conflict(
                    f"the evidence of manifest {u.manifest_sha256} was purged at the end of "
                    "its retention: delete the clip from the dock"
                )
            inserted = tx.execute(
                f"INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (manifest_sha256) DO NOTHING",
                (
                    u.id, u.manifest_sha256, u.clip_id, u.device_id, u.segment_count,
                    u.created_by, u.created_at_ns, u.evidence_id,
                ),
            ).rowcount  # fmt: skip
            if not inserted:  # another request opened the manifest's upload first
                row = tx.execute(
                    f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE manifest_sha256 = ?",
                    (u.manifest_sha256,),
                ).fetchone()
                return Upload(*present(row))
            tx.executemany(
                "INSERT INTO upload_segments (upload_id, idx, size, cipher_sha256) "
                "VALUES (?, ?, ?, ?)",
                [(u.id, s.index, s.size, s.cipher_sha256) for s in segments],
            )
        return upload

    def upload(self, upload_id: str) -> Upload | None:
        row = self._one(f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?", upload_id)
        return None if row is None else Upload(*row)

    def upload_for_manifest(self, manifest_sha256: str) -> Upload | None:
        row = self._one(
            f"SELECT {UPLOAD_COLUMNS} FROM uploads WHERE manifest_sha256 = ?", manifest_sha256
        )
        return None if row is None else Upload(*row)

    def expected_segments(self, upload_id: str) -> list[ExpectedSegment]:
        rows = self._all(
            "SELECT idx, size, cipher_sha256 FROM upload_segments WHERE upload_id = ? ORDER BY idx",
            upload_id,
        )
        return [ExpectedSegment(*row) for row in rows]

    def expected_segment(self, upload_id: str, index: int) -> ExpectedSegment | None:
        row = self._one(f"SELECT idx, size, cipher_sha256 {SEGMENT_ROW}", upload_id, index)
        return None if row is None else ExpectedSegment(*row)

    def is_acknowledged(self, upload_id: str, index: int) -> bool:
        row = self._one(f"SELECT acknowledged {SEGMENT_ROW}", upload_id, index)
        return row is not None and bool(row[0])

    # TRUE is 1 to SQLite (an INTEGER flag) and true to PostgreSQL (a BOOLEAN).
    def acknowledge(self, upload_id: str, index: int) -> None:
        with self._tx() as tx:
            tx.execute(
                "UPDATE upload_segments SET acknowledged = TRUE WHERE upload_id = ? AND idx = ?",
                (upload_id, index),
            )

    def acknowledged(self, upload_id: str) -> list[int]:
        rows = self._all(
            "SELECT idx FROM upload_segments WHERE upload_id = ? AND acknowledged = TRUE "
            "ORDER BY idx",
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
            with self._tx() as tx:
                tx.execute(
                    f"INSERT INTO evidence ({EVIDENCE_COLUMNS}, receipt) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        e.id, e.manifest_sha256, e.clip_id, e.device_id, e.officer_id,
                        e.segment_count, e.byte_count, e.stored_at_ns, receipt,
                    ),
                )  # fmt: skip
                tx.execute("UPDATE uploads SET evidence_id = ? WHERE id = ?", (e.id, upload_id))
                if retention is not None:
                    upsert_retention(tx, retention)
        except self._integrity_error as exc:  # a duplicate, or a dangling row
            raise Conflict(
                f"evidence for manifest {e.manifest_sha256} is already stored: "
                "fetch its receipt instead of storing it again"
            ) from exc

    def finish_upload(self, upload_id: str, evidence_id: str) -> None:
        with self._tx() as tx:
            tx.execute("UPDATE uploads SET evidence_id = ? WHERE id = ?", (evidence_id, upload_id))

    def evidence(self, evidence_id: str) -> Evidence | None:
        row = self._one(f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id = ?", evidence_id)
        return None if row is None else Evidence(*row)

    def evidence_for_manifest(self, manifest_sha256: str) -> Evidence | None:
        row = self._one(
            f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE manifest_sha256 = ?", manifest_sha256
        )
        return None if row is None else Evidence(*row)

    def list_evidence(self, *, limit: int, offset: int) -> list[Evidence]:
        rows = self._all(
            f"SELECT {EVIDENCE_COLUMNS} FROM evidence ORDER BY stored_at_ns, id LIMIT ? OFFSET ?",
            limit,
            offset,
        )
        return [Evidence(*row) for row in rows]

    def receipt(self, evidence_id: str) -> bytes | None:
        row = self._one("SELECT receipt FROM evidence WHERE id = ?", evidence_id)
        return None if row is None else bytes(row[0])

    def retention(self, evidence_id: str) -> Retention | None:
        row = self._one(
            f"SELECT {RETENTION_COLUMNS} FROM retention WHERE evidence_id = ?", evidence_id
        )
        return None if row is None else Retention(*row)

    # Both check inside the transaction that the evidence still exists: a purge may have run
    # between the caller's look-up and this write.
    def set_retention(self, retention: Retention) -> bool:
        with self._tx() as tx:
            if not self._lock_evidence(tx, retention.evidence_id, for_update=False):
                return False
            upsert_retention(tx, retention)
        return True

    def add_hold(self, hold: Hold) -> bool:
        h = hold
        with self._tx() as tx:
            if not self._lock_evidence(tx, h.evidence_id, for_update=False):
                return False
            tx.execute(
                f"INSERT INTO holds ({HOLD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    h.id, h.evidence_id, h.case_number, h.reason, h.placed_by, h.placed_at_ns,
                    h.released_by, h.released_at_ns, h.release_reason,
                ),
            )  # fmt: skip
        return True

    def holds(self, evidence_id: str) -> list[Hold]:
        rows = self._all(
            f"SELECT {HOLD_COLUMNS} FROM holds WHERE evidence_id = ? ORDER BY placed_at_ns, id",
            evidence_id,
        )
        return [Hold(*row) for row in rows]

    def release_hold(self, hold_id: str, *, by: str, at_ns: int, reason: str) -> bool:
        with self._tx() as tx:
            changed = tx.execute(
                "UPDATE holds SET released_by = ?, released_at_ns = ?, release_reason = ? "
                "WHERE id = ? AND released_at_ns IS NULL",
                (by, at_ns, reason, hold_id),
            ).rowcount
        return changed == 1

    def expired(self, now_ns: int, *, limit: int) -> list[Evidence]:
        rows = self._all(
            f"SELECT {EVIDENCE_COLUMNS_OF_E} FROM evidence e "
            f"JOIN retention r ON r.evidence_id = e.id "
            f"WHERE {PURGEABLE} ORDER BY r.expires_at_ns, e.id LIMIT ?",
            now_ns,
            limit,
        )
        return [Evidence(*row) for row in rows]

    def purge_evidence(self, tombstone: Tombstone) -> bool:
        t = tombstone
        with self._tx() as tx:
            self._lock_manifest(tx, t.manifest_sha256)
            # The evidence row's lock orders this against a hold or retention change.
            if not self._lock_evidence(tx, t.evidence_id, for_update=True):
                return False
            still = tx.execute(
                f"SELECT 1 FROM retention r WHERE r.evidence_id = ? AND {PURGEABLE}",
                (t.evidence_id, t.purged_at_ns),
            ).fetchone()
            if still is None:
                return False
            tx.execute(
                f"INSERT INTO tombstones ({TOMBSTONE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    t.evidence_id, t.manifest_sha256, t.clip_id, t.device_id, t.officer_id,
                    t.stored_at_ns, t.category, t.expires_at_ns, t.rule, t.purged_by,
                    t.purged_at_ns,
                ),
            )  # fmt: skip
            uploads = "SELECT id FROM uploads WHERE manifest_sha256 = ?"
            tx.execute(
                f"DELETE FROM upload_segments WHERE upload_id IN ({uploads})", (t.manifest_sha256,)
            )
            tx.execute("DELETE FROM uploads WHERE manifest_sha256 = ?", (t.manifest_sha256,))
            tx.execute("DELETE FROM retention WHERE evidence_id = ?", (t.evidence_id,))
            tx.execute("DELETE FROM evidence WHERE id = ?", (t.evidence_id,))
        return True

    def tombstones(self, *, limit: int, offset: int) -> list[Tombstone]:
        rows = self._all(
            f"SELECT {TOMBSTONE_COLUMNS} FROM tombstones "
            "ORDER BY purged_at_ns, evidence_id LIMIT ? OFFSET ?",
            limit,
            offset,
        )
        return [Tombstone(*row) for row in rows]

    def counts(self) -> tuple[int, int]:
        held, purged = present(
            self._one("SELECT (SELECT COUNT(*) FROM evidence), (SELECT COUNT(*) FROM tombstones)")
        )
        return int(held), int(purged)

    def tombstone_for_manifest(self, manifest_sha256: str) -> Tombstone | None:
        row = self._one(
            f"SELECT {TOMBSTONE_COLUMNS} FROM tombstones WHERE manifest_sha256 = ?",
            manifest_sha256,
        )
        return None if row is None else Tombstone(*row)

    def append_audit(self, build: AuditBuild) -> None:
        with self._tx() as tx:
            self._lock_audit(tx)
            last = tx.execute("SELECT seq, line FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            tail = None
            if last is not None:
                (signed,) = present(tx.execute(self._last_checkpoint).fetchone())
                since = last[0] - (-1 if signed is None else signed)
                tail = AuditTail(last[0], bytes(last[1]), since)
            first = 0 if tail is None else tail.seq + 1
            # A bool flag binds as 1 or 0 in SQLite and as a boolean in PostgreSQL.
            lines = [(first + n, a.line, a.checkpoint) for n, a in enumerate(build(tail))]
            if lines:
                tx.executemany("INSERT INTO audit (seq, line, checkpoint) VALUES (?, ?, ?)", lines)

    def audit_log(self) -> bytes:
        return b"".join(bytes(row[0]) for row in self._all("SELECT line FROM audit ORDER BY seq"))

    def add_file(self, stored: StoredFile, receipt: bytes) -> StoredFile:
        f = stored
        with self._tx() as tx:
            inserted = tx.execute(
                f"INSERT INTO files ({FILE_COLUMNS}, receipt) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (sha256) DO NOTHING",
                (f.evidence_id, f.sha256, f.size, f.name, f.submitted_by, f.stored_at_ns, receipt),
            ).rowcount
            if inserted:
                return stored
            # another request stored the same bytes first: theirs is the record
            row = tx.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE sha256 = ?", (f.sha256,)
            ).fetchone()
        return StoredFile(*present(row))

    def file_for_sha256(self, sha256: str) -> StoredFile | None:
        row = self._one(f"SELECT {FILE_COLUMNS} FROM files WHERE sha256 = ?", sha256)
        return None if row is None else StoredFile(*row)

    def file_receipt(self, evidence_id: str) -> bytes | None:
        row = self._one("SELECT receipt FROM files WHERE evidence_id = ?", evidence_id)
        return None if row is None else bytes(row[0])

    def list_files(self, *, limit: int, offset: int) -> list[StoredFile]:
        rows = self._all(
            f"SELECT {FILE_COLUMNS} FROM files ORDER BY stored_at_ns, evidence_id LIMIT ? OFFSET ?",
            limit,
            offset,
        )
        return [StoredFile(*row) for row in rows]
