"""The ledger: the SQLite record of every clip on every camera and how far its offload got.

One row per (device_id, clip_id). States only move forward::

    listed -> manifest_verified -> spooled -> uploading -> stored -> erased -> done
       \\______________\\______________\\__________\\-> quarantined

The one way back is :meth:`Ledger.release`: an armorer releases a quarantined clip (audited by the
dock's local API, dock/ui/app.py) and it becomes ``listed`` again, so it is fetched afresh and goes
through every check again; it can never skip one, and it never held a receipt to be erased with.

``stored`` holds the store's receipt. The database runs in WAL mode with ``synchronous=FULL``,
so a transition is on disk when :meth:`Ledger.advance` returns: the commit that records a receipt
is durable before any erase is sent, and a dock killed at any instant resumes from its last state.
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

SCHEMA_VERSION = 1
_MAX_ERROR = 500  # characters of an error message kept in a row


class ClipState(StrEnum):
    LISTED = "listed"
    MANIFEST_VERIFIED = "manifest_verified"
    SPOOLED = "spooled"
    UPLOADING = "uploading"
    STORED = "stored"
    ERASED = "erased"
    DONE = "done"
    QUARANTINED = "quarantined"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    @property
    def terminal(self) -> bool:
        return self in (ClipState.DONE, ClipState.QUARANTINED)


_ORDER = list(ClipState)
#: a clip can be quarantined only while its footage has not reached the store
QUARANTINABLE = frozenset(s for s in ClipState if s.rank < ClipState.STORED.rank)


@dataclass(frozen=True)
class ClipRow:
    device_id: str
    clip_id: str
    state: ClipState
    attempts: int
    last_error: str | None
    manifest_bytes: int  # as the camera declared it when listing; checked on download
    manifest_sha256: str  # as the camera declared it; the download must match it
    upload_id: str | None
    receipt: bytes | None
    created_ns: int
    updated_ns: int


_COLUMNS = (
    "device_id, clip_id, state, attempts, last_error, manifest_bytes, manifest_sha256, "
    "upload_id, receipt, created_ns, updated_ns"
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS clips (
    device_id TEXT NOT NULL,
    clip_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ({", ".join(f"'{s.value}'" for s in ClipState)})),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    manifest_bytes INTEGER NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    upload_id TEXT,
    receipt BLOB,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    PRIMARY KEY (device_id, clip_id),
    CHECK (state NOT IN ('stored', 'erased', 'done') OR receipt IS NOT NULL)
)
"""


class Ledger:
    def __init__(self, path: Path, *, wall_ns: Callable[[], int]) -> None:
        self.path = path
        self._wall_ns = wall_ns
        self._lock = threading.Lock()  # one connection, shared by the bays' threads
        try:
            self._db = open_durable(path)
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the ledger {path}: {exc}; check data_dir") from exc

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger {self.path} is schema {version}, newer than this dock "
                f"({SCHEMA_VERSION}): upgrade bwc"
            )
        self._db.execute(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def durability(self) -> tuple[str, int]:
        """(journal mode, synchronous level) as SQLite reports them: ('wal', 2) is FULL."""
        with self._lock:
            mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
            sync = self._db.execute("PRAGMA synchronous").fetchone()[0]
        return str(mode), int(sync)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self._lock, f"the ledger {self.path} cannot be written")

    def note_listed(
        self, device_id: str, clip_id: str, *, manifest_bytes: int, manifest_sha256: str
    ) -> ClipRow:
        """Add a clip the camera lists (once: a clip already known keeps its row)."""
        now = self._wall_ns()
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO clips (device_id, clip_id, state, manifest_bytes, "
                "manifest_sha256, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (device_id, clip_id, ClipState.LISTED.value, manifest_bytes, manifest_sha256,
                 now, now),
            )  # fmt: skip
        return self.get(device_id, clip_id)

    def get(self, device_id: str, clip_id: str) -> ClipRow:
        row = self.find(device_id, clip_id)
        if row is None:
            raise LedgerError(f"clip {clip_id} of camera {device_id} is not in the ledger")
        return row

    def find(self, device_id: str, clip_id: str) -> ClipRow | None:
        with self._lock:
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM clips WHERE device_id = ? AND clip_id = ?",
                (device_id, clip_id),
            ).fetchone()
        return None if found is None else _row(found)

    def rows(self, device_id: str | None = None) -> list[ClipRow]:
        """Every row (of one camera), in the order the clips were first listed."""
        where, args = ("WHERE device_id = ?", (device_id,)) if device_id else ("", ())
        with self._lock:
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM clips {where} ORDER BY rowid", args
            ).fetchall()
        return [_row(r) for r in found]

    def pending(self, device_id: str) -> list[ClipRow]:
        """Rows of one camera that are neither done nor quarantined, oldest first."""
        return [r for r in self.rows(device_id) if not r.state.terminal]

    def advance(
        self,
        device_id: str,
        clip_id: str,
        state: ClipState,
        *,
        upload_id: str | None = None,
        receipt: bytes | None = None,
        error: str | None = None,
    ) -> ClipRow:
        """Move a clip to the next ``state`` (durably); any other move raises LedgerError."""
        with self._transaction() as db:
            current = _current_state(db, device_id, clip_id)
            _check_move(clip_id, current, state)
            if state == ClipState.STORED and not receipt:
                raise LedgerError(f"clip {clip_id}: 'stored' needs the store's receipt")
            db.execute(
                "UPDATE clips SET state = ?, upload_id = COALESCE(?, upload_id), "
                "receipt = COALESCE(?, receipt), last_error = ?, updated_ns = ? "
                "WHERE device_id = ? AND clip_id = ?",
                (state.value, upload_id, receipt, _clip(error), self._wall_ns(),
                 device_id, clip_id),
            )  # fmt: skip
        return self.get(device_id, clip_id)

    def quarantined(self) -> list[tuple[int, ClipRow]]:
        """Every quarantined clip with its row id (the id the armorer releases it by)."""
        with self._lock:
            found = self._db.execute(
                f"SELECT rowid, {_COLUMNS} FROM clips WHERE state = ? ORDER BY rowid",
                (ClipState.QUARANTINED.value,),
            ).fetchall()
        return [(int(r[0]), _row(r[1:])) for r in found]

    def by_id(self, row_id: int) -> ClipRow | None:
        """The clip whose row id is ``row_id`` (as :meth:`quarantined` lists it), if any."""
        with self._lock:
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM clips WHERE rowid = ?", (row_id,)
            ).fetchone()
        return None if found is None else _row(found)

    def release(self, device_id: str, clip_id: str, *, reason: str) -> ClipRow:
        """A quarantined clip becomes ``listed`` again: fetched afresh, every check again.

        The only backward move; allowed only from ``quarantined`` (a clip the store never
        acknowledged, so it holds no receipt). The caller audits who released it and why.
        """
        with self._transaction() as db:
            current = _current_state(db, device_id, clip_id)
            if current != ClipState.QUARANTINED:
                raise LedgerError(
                    f"clip {clip_id} is {current.value}, not quarantined: there is nothing to "
                    "release"
                )
            db.execute(
                "UPDATE clips SET state = ?, attempts = 0, upload_id = NULL, last_error = ?, "
                "updated_ns = ? WHERE device_id = ? AND clip_id = ?",
                (ClipState.LISTED.value, _clip(f"released from quarantine: {reason}"),
                 self._wall_ns(), device_id, clip_id),
            )  # fmt: skip
        return self.get(device_id, clip_id)

    def record_failure(self, device_id: str, clip_id: str, error: str) -> ClipRow:
        """Count a failed attempt and keep its message; the state does not change."""
        with self._transaction() as db:
            _current_state(db, device_id, clip_id)
            db.execute(
                "UPDATE clips SET attempts = attempts + 1, last_error = ?, updated_ns = ? "
                "WHERE device_id = ? AND clip_id = ?",
                (_clip(error), self._wall_ns(), device_id, clip_id),
            )
        return self.get(device_id, clip_id)


def _current_state(db: sqlite3.Connection, device_id: str, clip_id: str) -> ClipState:
    found = db.execute(
        "SELECT state FROM clips WHERE device_id = ? AND clip_id = ?", (device_id, clip_id)
    ).fetchone()
    if found is None:
        raise LedgerError(f"clip {clip_id} of camera {device_id} is not in the ledger")
    return ClipState(found[0])


def _check_move(clip_id: str, current: ClipState, target: ClipState) -> None:
    if current.terminal:
        raise LedgerError(f"clip {clip_id} is already {current.value}: it cannot become {target}")
    if target == ClipState.QUARANTINED:
        if current not in QUARANTINABLE:
            raise LedgerError(
                f"clip {clip_id} is {current.value}: the store holds it, it cannot be quarantined"
            )
        return
    if target.rank != current.rank + 1:
        way = "back" if target.rank <= current.rank else "past the steps"
        raise LedgerError(
            f"clip {clip_id} cannot go from {current.value} {way} to {target.value}: "
            "ledger states move forward one step at a time"
        )


def _clip(error: str | None) -> str | None:
    return None if error is None else error[:_MAX_ERROR]


def _row(found: tuple[object, ...]) -> ClipRow:
    (device_id, clip_id, state, attempts, last_error, manifest_bytes, manifest_sha256,
     upload_id, receipt, created_ns, updated_ns) = found  # fmt: skip
    assert isinstance(device_id, str) and isinstance(clip_id, str) and isinstance(state, str)
    assert isinstance(attempts, int) and isinstance(manifest_bytes, int)
    assert isinstance(manifest_sha256, str)
    assert isinstance(created_ns, int) and isinstance(updated_ns, int)
    assert last_error is None or isinstance(last_error, str)
    assert upload_id is None or isinstance(upload_id, str)
    assert receipt is None or isinstance(receipt, bytes)
    return ClipRow(
        device_id, clip_id, ClipState(state), attempts, last_error, manifest_bytes,
        manifest_sha256, upload_id, receipt, created_ns, updated_ns,
    )  # fmt: skip
