"""The dock's SQLite file (``ledger.sqlite3``): durable connections and write transactions.

The ledger, the ingest record and the officer table share one file and open it the same way, so
every commit is durable (WAL, synchronous FULL) before anything acts on it, such as an erase.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dock.errors import LedgerError


def open_durable(path: Path) -> sqlite3.Connection:
    """One connection shared by the dock's threads (callers serialise it with a lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # the tables share the file: wait for another connection's write rather than fail
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


@contextmanager
def transaction(
    db: sqlite3.Connection, lock: threading.Lock, failure: str
) -> Iterator[sqlite3.Connection]:
    """A write transaction under ``lock``; a SQLite error becomes LedgerError("failure: ...")."""
    with lock:
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LedgerError(f"{failure}: {exc}") from exc
