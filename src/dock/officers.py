"""Officer assignments waiting for their camera: kept until it docks, then sent and forgotten.

An armorer may assign a camera that is out on shift. The assignment waits here, in its own table
(``officer_assignments``) of the ledger file, with the ledger's durability (WAL,
``synchronous=FULL``), so a dock restarted meanwhile still sends it: the next docking's worker
sends it over the camera's session (offload API ``PUT /officer``) and then removes it. A newer
assignment of the same camera replaces an older one that was never sent.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from dock.errors import LedgerError
from dock.sqlite_file import open_durable

#: docs/formats/offload.md: the officer id pattern the camera checks too
OFFICER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

_SCHEMA = """CREATE TABLE IF NOT EXISTS officer_assignments (
    serial TEXT PRIMARY KEY,
    officer_id TEXT NOT NULL,
    armorer TEXT NOT NULL,
    requested_ns INTEGER NOT NULL
)"""


@dataclass(frozen=True)
class PendingAssignment:
    serial: str
    officer_id: str
    armorer: str  #: who asked, as the audit log names them
    requested_ns: int


class OfficerTable:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = open_durable(path)
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the officer assignments in {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def keep(self, serial: str, officer_id: str, *, armorer: str, at_ns: int) -> None:
        """Keep an assignment for the camera's next docking (replacing one not yet sent)."""
        self._write(
            "INSERT INTO officer_assignments (serial, officer_id, armorer, requested_ns) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET officer_id = excluded."
            "officer_id, armorer = excluded.armorer, requested_ns = excluded.requested_ns",
            (serial, officer_id, armorer, at_ns),
        )

    def pending(self, serial: str) -> PendingAssignment | None:
        with self._lock:
            found = self._db.execute(
                "SELECT serial, officer_id, armorer, requested_ns FROM officer_assignments "
                "WHERE serial = ?",
                (serial,),
            ).fetchone()
        return None if found is None else PendingAssignment(*found)

    def sent(self, assignment: PendingAssignment) -> None:
        """The camera has it: forget it (unless a newer one arrived meanwhile)."""
        self._write(
            "DELETE FROM officer_assignments WHERE serial = ? AND officer_id = ? "
            "AND requested_ns = ?",
            (assignment.serial, assignment.officer_id, assignment.requested_ns),
        )

    def forget(self, serial: str) -> None:
        """An assignment sent at once replaces any older one still waiting."""
        self._write("DELETE FROM officer_assignments WHERE serial = ?", (serial,))

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        with self._lock:
            try:
                self._db.execute(sql, args)
            except sqlite3.Error as exc:
                raise LedgerError(
                    f"the officer assignments in {self.path} cannot be written: {exc}"
                ) from exc
