"""The SQL the SQLite and PostgreSQL metadata backends share, and the connection it runs on.

Column lists (in the order the :mod:`evidence.storage` records take them, so a row maps with
``Upload(*row)``), the conditions more than one statement uses, the one shared upsert, and the
shape of a connection inside a transaction (``Transaction``) that sqlite3's and psycopg's both
fit. Written with qmark placeholders (``?``): the PostgreSQL backend turns them into ``%s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from evidence.errors import StoreSetupError
from evidence.storage import Retention

UPLOAD_COLUMNS = (
    "id, manifest_sha256, clip_id, device_id, segment_count, created_by, created_at_ns, evidence_id"
)
EVIDENCE_COLUMNS = (
    "id, manifest_sha256, clip_id, device_id, officer_id, segment_count, byte_count, stored_at_ns"
)
RETENTION_COLUMNS = "evidence_id, category, expires_at_ns, set_by, set_at_ns"
HOLD_COLUMNS = (
    "id, evidence_id, case_number, reason, placed_by, placed_at_ns, released_by, "
    "released_at_ns, release_reason"
)
TOMBSTONE_COLUMNS = (
    "evidence_id, manifest_sha256, clip_id, device_id, officer_id, stored_at_ns, category, "
    "expires_at_ns, rule, purged_by, purged_at_ns"
)
FILE_COLUMNS = "evidence_id, sha256, size, name, submitted_by, stored_at_ns"
EVIDENCE_COLUMNS_OF_E = ", ".join(f"e.{c.strip()}" for c in EVIDENCE_COLUMNS.split(","))
# Expired and not held: the one condition purge selects by and re-checks before deleting.
PURGEABLE = (
    "r.expires_at_ns IS NOT NULL AND r.expires_at_ns <= ? AND NOT EXISTS "
    "(SELECT 1 FROM holds h WHERE h.evidence_id = r.evidence_id AND h.released_at_ns IS NULL)"
)
SEGMENT_ROW = "FROM upload_segments WHERE upload_id = ? AND idx = ?"


class Rows(Protocol):
    """What a statement returns: sqlite3's and psycopg's cursors both fit."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...


class Transaction(Protocol):
    """A connection inside one transaction, taking qmark placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Rows: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object: ...


def upsert_retention(tx: Transaction, r: Retention) -> None:
    tx.execute(
        f"INSERT INTO retention ({RETENTION_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (evidence_id) DO UPDATE SET category = excluded.category, "
        "expires_at_ns = excluded.expires_at_ns, set_by = excluded.set_by, "
        "set_at_ns = excluded.set_at_ns",
        (r.evidence_id, r.category, r.expires_at_ns, r.set_by, r.set_at_ns),
    )


def present(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if row is None:  # only after a row was seen inside the same locked transaction
        raise StoreSetupError("the metadata database lost a row inside a transaction")
    return row
