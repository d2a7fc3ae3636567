"""The ingest folder's record: one row per item dropped in it, in its own table of the ledger file.

The ledger's ``clips`` table follows a camera clip through download and erase; a dropped item has
neither, so it gets this table (``ingest_items``) in the same SQLite file, with the same
durability: WAL and ``synchronous=FULL``, so a receipt is on disk before its item is moved.

States::

    waiting          a clip folder that is not complete yet (files still being copied)
    needs_endpoint   written only by docks from before foreign files were uploaded (a hashed
                     file left in place); such a row is taken up and uploaded at the next scan
    refused          a name or link the dock will not read (the reason says which)
    rejected         a clip folder that failed verification (never uploaded)
    uploading        a verified clip, or a hashed foreign file, handed to the store (the reason
                     says why a try failed)
    stored           the store's receipt verified and recorded; the item is being moved. A
                     clip's receipt is a clip receipt (docs/formats/receipt.md) matching its
                     manifest; a foreign file's is a file receipt (docs/formats/file-receipt.md)
                     naming the SHA-256 and size the dock computed
    done             moved to done/

Only ``stored`` and ``done`` rows hold a receipt, and every state but ``done`` can be reached
again when the item changes (a copy that was still going on, a clip that got its last segment).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from dock.errors import LedgerError
from dock.sqlite_file import open_durable, transaction

_MAX_REASON = 500  # characters of a reason kept in a row


class ItemKind(StrEnum):
    FOREIGN = "foreign"  #: any file from another maker's camera
    CLIP = "clip"  #: one of our sealed clip folders


class ItemState(StrEnum):
    WAITING = "waiting"
    NEEDS_ENDPOINT = "needs_endpoint"
    REFUSED = "refused"
    REJECTED = "rejected"
    UPLOADING = "uploading"
    STORED = "stored"
    DONE = "done"


@dataclass(frozen=True)
class IngestItem:
    id: int
    name: str  #: path relative to the ingest folder, '/'-separated
    kind: ItemKind
    state: ItemState
    size: int | None  #: foreign: the file's bytes; clip: the segments' bytes
    sha256: str | None  #: foreign: the file's SHA-256; clip: the manifest's
    reason: str | None
    receipt: bytes | None
    updated_ns: int


_COLUMNS = "id, name, kind, state, size, sha256, reason, receipt, updated_ns"
_SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS ingest_items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ({", ".join(f"'{k.value}'" for k in ItemKind)})),
    state TEXT NOT NULL CHECK (state IN ({", ".join(f"'{s.value}'" for s in ItemState)})),
    size INTEGER,
    sha256 TEXT,
    reason TEXT,
    receipt BLOB,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    CHECK (state NOT IN ('stored', 'done') OR receipt IS NOT NULL)
)""",
    # one open row per name; a name that comes back after it was done gets a new row
    "CREATE UNIQUE INDEX IF NOT EXISTS ingest_open ON ingest_items (name) WHERE state != 'done'",
]


class IngestTable:
    def __init__(self, path: Path, *, wall_ns: Callable[[], int]) -> None:
        self.path = path
        self._wall_ns = wall_ns
        self._lock = threading.Lock()
        try:
            self._db = open_durable(path)
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the ingest record in {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        failure = f"the ingest record in {self.path} cannot be written"
        return transaction(self._db, self._lock, failure)

    def open_item(self, name: str) -> IngestItem | None:
        """The row of ``name`` that is not done yet, if any."""
        with self._lock:
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM ingest_items WHERE name = ? AND state != 'done'", (name,)
            ).fetchone()
        return None if found is None else _row(found)

    def items(self) -> list[IngestItem]:
        with self._lock:
            found = self._db.execute(f"SELECT {_COLUMNS} FROM ingest_items ORDER BY id").fetchall()
        return [_row(r) for r in found]

    def record(
        self,
        name: str,
        kind: ItemKind,
        state: ItemState,
        *,
        size: int | None = None,
        sha256: str | None = None,
        reason: str | None = None,
        receipt: bytes | None = None,
    ) -> IngestItem:
        """Set the open row of ``name`` (creating it); durable when this returns."""
        if state in (ItemState.STORED, ItemState.DONE) and not receipt:
            raise LedgerError(f"ingest item {name}: {state} needs the store's receipt")
        now = self._wall_ns()
        reason = None if reason is None else reason[:_MAX_REASON]
        with self._transaction() as db:
            found = db.execute(
                "SELECT id, state FROM ingest_items WHERE name = ? AND state != 'done'", (name,)
            ).fetchone()
            if found is not None and found[1] == ItemState.STORED and state != ItemState.DONE:
                # the store holds it: only the move to done/ is left, whatever else happens
                raise LedgerError(f"ingest item {name} is stored: it can only become done")
            if found is None:
                cursor = db.execute(
                    "INSERT INTO ingest_items (name, kind, state, size, sha256, reason, receipt, "
                    "created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, kind.value, state.value, size, sha256, reason, receipt, now, now),
                )
                item_id = cursor.lastrowid
            else:
                item_id = found[0]
                db.execute(
                    "UPDATE ingest_items SET kind = ?, state = ?, size = COALESCE(?, size), "
                    "sha256 = COALESCE(?, sha256), reason = ?, receipt = COALESCE(?, receipt), "
                    "updated_ns = ? WHERE id = ?",
                    (kind.value, state.value, size, sha256, reason, receipt, now, item_id),
                )
            row = db.execute(
                f"SELECT {_COLUMNS} FROM ingest_items WHERE id = ?", (item_id,)
            ).fetchone()
        return _row(row)


def _row(found: tuple[object, ...]) -> IngestItem:
    item_id, name, kind, state, size, sha256, reason, receipt, updated_ns = found
    assert isinstance(item_id, int) and isinstance(name, str) and isinstance(updated_ns, int)
    assert isinstance(kind, str) and isinstance(state, str)
    assert size is None or isinstance(size, int)
    assert sha256 is None or isinstance(sha256, str)
    assert reason is None or isinstance(reason, str)
    assert receipt is None or isinstance(receipt, bytes)
    return IngestItem(
        item_id, name, ItemKind(kind), ItemState(state), size, sha256, reason, receipt, updated_ns
    )
