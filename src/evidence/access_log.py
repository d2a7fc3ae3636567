"""Refused access in the audit log: every 401 and 403, with a per-address limit. No HTTP here.

An access log must show who tried and was refused, not only who got in. Each refusal becomes an
``access.denied`` record: the actor (``anonymous`` for a 401, where no token is known; the
token's ``role:name`` for a 403), the client address, the method and path, the status and a
short reason. The presented token is never written: it is a secret whether or not it is valid.

A client that hammers the store with bad tokens must not be able to flood the log (it is one
hash chain that every legitimate record waits behind, and a report reads it all). So each client
address gets at most ``per_minute`` records per window of one minute, which starts at its first
refusal; the rest are counted, and one ``access.denied.suppressed`` record gives their number by
status when the window ends (the API checks every second) or, at the latest, before that
address's next recorded refusal or when the API shuts down.

The limit holds per API process: with ``--workers N`` an address can get N times as many records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from evidence.audit_log import STORE_ACTOR, StoreAudit
from evidence.config import DEFAULT_DENIED_PER_MINUTE

log = logging.getLogger(__name__)

DENIED = "access.denied"
SUPPRESSED = "access.denied.suppressed"
ANONYMOUS = "anonymous"
WINDOW_NS = 60 * 10**9
MAX_PATH = 256  # characters of a path kept in a record: enough to tell which endpoint


@dataclass(frozen=True)
class Denial:
    """One refused request, as the audit record names it."""

    status: int  # 401 or 403
    actor: str  # ANONYMOUS for a 401, the principal's actor for a 403
    client: str  # the client's address ("unknown" when the server gives none)
    method: str
    path: str
    reason: str

    def data(self) -> dict[str, object]:
        return {
            "status": self.status, "client": self.client, "method": self.method[:16],
            "path": _printable(self.path)[:MAX_PATH], "reason": self.reason,
        }  # fmt: skip


@dataclass
class _Window:
    start_ns: int
    recorded: int = 0
    suppressed: Counter[int] = field(default_factory=Counter)  # by status

    def over(self, now_ns: int) -> bool:
        # A wall clock stepped back ends the window too, rather than stretching it.
        return now_ns >= self.start_ns + WINDOW_NS or now_ns < self.start_ns


@dataclass(frozen=True)
class _Summary:
    client: str
    window: _Window


class DeniedAccessLog:
    """Writes refusals to the store's audit log, at most ``per_minute`` per client address."""

    def __init__(
        self,
        audit: StoreAudit,
        *,
        per_minute: int = DEFAULT_DENIED_PER_MINUTE,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._audit, self._limit, self._wall_ns = audit, per_minute, wall_ns
        self._lock = threading.Lock()
        # Insertion order is start order, so the windows that are over are at the front.
        self._windows: dict[str, _Window] = {}

    def record(self, denial: Denial) -> bool:
        """Record ``denial`` unless its address is over the limit; True if it was written."""
        with self._lock:
            now = self._wall_ns()
            due = self._take_over(now)
            window = self._windows.get(denial.client)
            if window is None or window.over(now):
                if window is not None:
                    due.append(_Summary(denial.client, self._windows.pop(denial.client)))
                window = self._windows[denial.client] = _Window(now)
            written = window.recorded < self._limit
            if written:
                window.recorded += 1
            else:
                window.suppressed[denial.status] += 1
        # Written outside the lock: a slow database must not hold up counting other refusals.
        self._summarise(due)
        if written:
            self._audit.record(denial.actor, DENIED, denial.data())
        return written

    def flush_due(self) -> int:
        """Summarise every window that is over; return how many summaries were written."""
        with self._lock:
            due = self._take_over(self._wall_ns())
        return self._summarise(due)

    def flush_all(self) -> int:
        """Summarise every window now, over or not (the API is shutting down)."""
        with self._lock:
            due = [_Summary(client, w) for client, w in self._windows.items()]
            self._windows.clear()
        return self._summarise(due)

    def _take_over(self, now_ns: int) -> list[_Summary]:
        due: list[_Summary] = []
        while self._windows:
            client = next(iter(self._windows))
            if not self._windows[client].over(now_ns):
                break
            due.append(_Summary(client, self._windows.pop(client)))
        return due

    def _summarise(self, due: list[_Summary]) -> int:
        written = 0
        for summary in due:
            w = summary.window
            if not w.suppressed:
                continue
            by_status = {str(status): n for status, n in sorted(w.suppressed.items())}
            data = {
                "client": summary.client, "suppressed": sum(w.suppressed.values()),
                "by_status": by_status, "recorded": w.recorded, "since_ns": w.start_ns,
            }  # fmt: skip
            try:
                self._audit.record(STORE_ACTOR, SUPPRESSED, data)
            except Exception:
                # The counts would be lost with the window: keep them in the process log at least.
                log.error("could not write %s to the audit log: %s", SUPPRESSED, data)
                raise
            written += 1
        return written


def _printable(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped, so any path can be kept."""
    clean = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in clean)
