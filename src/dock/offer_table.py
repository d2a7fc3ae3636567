"""What the dock offered each camera and what became of it, kept across restarts.

One row per (device id, kind, key) in its own table (``update_offers``) of the ledger file, with
the ledger's durability (WAL, ``synchronous=FULL``): ``kind`` is ``firmware`` or ``profile`` and
``key`` the bundle version or the profile id. Outcomes::

    offered     being sent, or sent and the camera asked to reboot into it (``reboot_ns`` set)
    confirmed   the camera runs it after its reboot
    failed      refused by the camera, rolled back, or never confirmed (``reason`` says which)
    withdrawn   it never reached the camera (it left mid-way, or had no room): may be offered again

A row offered without a reboot is one whose transfer a stopped dock cut short: it may be offered
again. One offered with a reboot is followed (dock/update_offer.py) rather than sent again.
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


class OfferOutcome(StrEnum):
    OFFERED = "offered"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


_SCHEMA = f"""CREATE TABLE IF NOT EXISTS update_offers (
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('firmware', 'profile')),
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    previous TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ({", ".join(f"'{o.value}'" for o in OfferOutcome)})),
    reason TEXT,
    reboot_ns INTEGER,
    at_ns INTEGER NOT NULL,
    PRIMARY KEY (device_id, kind, key)
)"""
_COLUMNS = "device_id, kind, key, version, previous, outcome, reason, reboot_ns, at_ns"


@dataclass(frozen=True)
class OfferRecord:
    device_id: str
    kind: str  #: ``firmware`` or ``profile``
    key: str  #: the bundle version or the profile id
    version: str  #: the firmware version, or the profile's ``profile_version`` as text
    previous: str  #: the firmware the camera ran when offered a bundle ('' for a profile)
    outcome: OfferOutcome
    reason: str | None
    reboot_ns: int | None  #: when (wall clock) the camera was asked to reboot into it
    at_ns: int  #: when (wall clock) the outcome was recorded

    @property
    def settled(self) -> bool:
        """Whether it must not be sent to the camera again: its fate is known, or followed."""
        followed = self.outcome is OfferOutcome.OFFERED and self.reboot_ns is not None
        return self.outcome in (OfferOutcome.CONFIRMED, OfferOutcome.FAILED) or followed


class OfferTable:
    """Thread-safe: the bays' workers write, each for its own camera."""

    def __init__(self, path: Path, *, wall_ns: Callable[[], int]) -> None:
        self.path = path
        self._wall_ns = wall_ns
        self._lock = threading.Lock()
        try:
            self._db = open_durable(path)
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the update offers in {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, device_id: str, kind: str, key: str) -> OfferRecord | None:
        found = self._select("WHERE device_id = ? AND kind = ? AND key = ?", (device_id, kind, key))
        return found[0] if found else None

    def rebooting(self, device_id: str) -> list[OfferRecord]:
        """The camera's offers it was asked to reboot into, whose outcome is not known yet."""
        return self._select(
            "WHERE device_id = ? AND outcome = 'offered' AND reboot_ns IS NOT NULL ORDER BY kind",
            (device_id,),
        )

    def offered(
        self, device_id: str, kind: str, key: str, *, version: str, previous: str = ""
    ) -> None:
        """It is being sent now (replacing whatever an earlier offer of it became)."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO update_offers ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, 'offered', NULL, NULL, ?)",
                (device_id, kind, key, version, previous, self._wall_ns()),
            )

    def reboot_asked(self, device_id: str, keys: list[tuple[str, str]]) -> None:
        """The camera took these (kind, key) offers and is being asked to reboot into them."""
        now = self._wall_ns()
        with self._write() as db:
            for kind, key in keys:
                db.execute(
                    "UPDATE update_offers SET reboot_ns = ?, at_ns = ? WHERE device_id = ? "
                    "AND kind = ? AND key = ? AND outcome = 'offered'",
                    (now, now, device_id, kind, key),
                )

    def conclude(
        self, device_id: str, kind: str, key: str, outcome: OfferOutcome, reason: str | None = None
    ) -> None:
        """What the offer became; no row (it was never offered) is left as it is."""
        with self._write() as db:
            db.execute(
                "UPDATE update_offers SET outcome = ?, reason = ?, at_ns = ? "
                "WHERE device_id = ? AND kind = ? AND key = ?",
                (outcome.value, reason[:_MAX_REASON] if reason else None, self._wall_ns(),
                 device_id, kind, key),
            )  # fmt: skip

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(
            self._db, self._lock, f"the update offers in {self.path} cannot be written"
        )

    def _select(self, where: str, args: tuple[object, ...]) -> list[OfferRecord]:
        with self._lock:
            try:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM update_offers {where}", args)
                found = rows.fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(
                    f"the update offers in {self.path} cannot be read: {exc}"
                ) from exc
        return [
            OfferRecord(d, k, key, v, p, OfferOutcome(o), r, b, at)
            for d, k, key, v, p, o, r, b, at in found
        ]
