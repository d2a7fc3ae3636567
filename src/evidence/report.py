"""The annual report: what the store kept, purged, held and showed, and to whom, in one year.

The seed policy asks that every access be logged and that a yearly report publish counts. The
counts come from the audit log, whose hash chain is verified first (a report over an altered log
would be worthless), and from the tombstones in the metadata store, which keep what each purge
deleted and under which rule even when the clip is gone. Year boundaries are UTC. Generating the
report is itself an audit record (``report.generated``).
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.audit import verify_audit
from evidence.audit_log import StoreAudit
from evidence.config import NS_PER_DAY
from evidence.errors import BadRequest, VerificationFailed
from evidence.storage import MetadataStore, Tombstone

FIRST_YEAR, LAST_YEAR = 1970, 9998
NS_PER_S = 10**9

#: audit events that are an access to evidence or its records, and the kind the report names
ACCESS_KINDS: dict[str, str] = {
    "evidence.listed": "listed",
    "receipt.viewed": "receipt viewed",
    "evidence.downloaded": "downloaded",
    "evidence.played": "played",
    "evidence.exported": "exported",
    "retention.viewed": "retention viewed",
    "tombstones.listed": "tombstones listed",
}
_TRAILING_NUMBER_RE = re.compile(r"\s+\d+$")  # "put segment 7" -> "put segment"
_TOMBSTONE_PAGE = 1000


@dataclass
class Volume:
    clips: int = 0
    bytes: int = 0

    def add(self, byte_count: int) -> None:
        self.clips += 1
        self.bytes += byte_count


@dataclass(frozen=True)
class ChainStatus:
    """How much of the audit log verified: all of it, or the report is not made."""

    records: int  # seq 0 .. records - 1 are linked
    last_checkpoint_seq: int | None  # the newest signed checkpoint, None when none yet
    unsigned_after_checkpoint: int  # records chained after it, signed at the next checkpoint


@dataclass(frozen=True)
class PurgeCount:
    category: str
    rule: str
    clips: int
    bytes: int


@dataclass(frozen=True)
class CategoryMove:
    previous: str | None
    category: str
    changes: int


@dataclass(frozen=True)
class Access:
    """One kind of access in the year: requests made and distinct clips they touched."""

    kind: str
    requests: int
    clips: int


@dataclass(frozen=True)
class ActorAccess:
    actor: str  # "role:name", as the audit log names the caller
    role: str
    by_kind: dict[str, int]
    total: int


@dataclass
class AnnualReport:
    year: int
    period_start: str  # ISO 8601, UTC, inclusive
    period_end: str  # ISO 8601, UTC, exclusive
    complete: bool  # False while the year is still running: counts so far
    generated_at: str
    generated_by: str
    audit: ChainStatus
    stored: Volume
    stored_by_month: dict[str, Volume]  # "YYYY-MM" -> clips stored that month
    stored_by_category: dict[str, Volume]  # by the category at year end (or when purged)
    in_store_at_year_end: Volume
    purged: Volume
    purged_by_rule: list[PurgeCount]
    holds_placed: int
    holds_released: int
    holds_active_at_year_end: int
    category_changes: list[CategoryMove]
    accesses: list[Access]
    accesses_by_actor: list[ActorAccess]
    accesses_by_role: dict[str, int]
    refused: int
    refused_by_action: dict[str, int]
    refused_by_actor: dict[str, int]
    #: requests refused for their credentials (401) or role (403), by status; suppressed ones
    #: (over the per-address limit) counted from their summaries
    access_denied: dict[str, int] = field(default_factory=dict)
    timezone: str = "UTC"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)


def year_bounds_ns(year: int) -> tuple[int, int]:
    """[start, end) of the UTC calendar year in ns since the epoch."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise BadRequest(
            f"year {year} is out of range: give a year from {FIRST_YEAR} to {LAST_YEAR}"
        )
    start = calendar.timegm((year, 1, 1, 0, 0, 0, 0, 0, 0)) * NS_PER_S
    return start, calendar.timegm((year + 1, 1, 1, 0, 0, 0, 0, 0, 0)) * NS_PER_S


def publish(
    metadata: MetadataStore,
    key: Ed25519PrivateKey,
    year: int,
    actor: str,
    *,
    wall_ns: Callable[[], int] = time.time_ns,
) -> AnnualReport:
    """Verify the log, count the year, and record that the report was generated."""
    report = compile_report(
        metadata.audit_log(), all_tombstones(metadata), year, [key.public_key()],
        now_ns=wall_ns(), generated_by=actor,
    )  # fmt: skip
    StoreAudit(metadata, key, wall_ns=wall_ns).record(
        actor, "report.generated",
        {"year": year, "audit_records": report.audit.records, "complete": report.complete},
    )  # fmt: skip
    return report


def all_tombstones(metadata: MetadataStore) -> list[Tombstone]:
    found: list[Tombstone] = []
    while page := metadata.tombstones(limit=_TOMBSTONE_PAGE, offset=len(found)):
        found.extend(page)
    return found


def compile_report(
    log: bytes,
    tombstones: Sequence[Tombstone],
    year: int,
    trusted: Sequence[Ed25519PublicKey],
    *,
    now_ns: int,
    generated_by: str,
) -> AnnualReport:
    """Count ``year`` from a verified audit log and the tombstones; raises if the log is altered."""
    start, end = year_bounds_ns(year)
    chain = verify_audit(log, trusted, require_checkpoint=False)
    if not chain.ok:
        raise VerificationFailed(
            f"the audit log does not verify, so no report was made: {chain.first_failure_text()}"
        )
    records = [json.loads(line) for line in log.splitlines()]
    last_checkpoint = chain.checkpoints[-1] if chain.checkpoints else None
    unsigned = chain.records if last_checkpoint is None else chain.records - 1 - last_checkpoint
    status = ChainStatus(chain.records, last_checkpoint, unsigned)
    in_year = [r for r in records if start <= r["wall_ns"] < end]
    stored_bytes = {
        r["data"]["evidence_id"]: int(r["data"]["byte_count"])
        for r in records
        if r["event"] == "evidence.stored"
    }
    report = AnnualReport(
        year=year, period_start=_iso(start), period_end=_iso(end), complete=now_ns >= end,
        generated_at=_iso(now_ns), generated_by=generated_by, audit=status,
        stored=Volume(), stored_by_month={}, stored_by_category={},
        in_store_at_year_end=_in_store(records, tombstones, stored_bytes, end),
        purged=Volume(), purged_by_rule=_purges(tombstones, stored_bytes, start, end),
        holds_placed=_count(in_year, "hold.placed"),
        holds_released=_count(in_year, "hold.released"),
        holds_active_at_year_end=_active_holds(records, end),
        category_changes=_category_moves(in_year), accesses=_accesses(in_year),
        accesses_by_actor=_accesses_by_actor(in_year), accesses_by_role={},
        refused=_count(in_year, "ingest.refused"),
        refused_by_action=_refusals(in_year, lambda r: _action(r["data"].get("action", ""))),
        refused_by_actor=_refusals(in_year, lambda r: str(r["actor"])),
        access_denied=_denials(in_year),
    )  # fmt: skip
    _count_stored(report, records, in_year, end)
    for purge in report.purged_by_rule:
        report.purged.clips += purge.clips
        report.purged.bytes += purge.bytes
    roles: Counter[str] = Counter()
    for actor in report.accesses_by_actor:
        roles[actor.role] += actor.total
    report.accesses_by_role = dict(sorted(roles.items()))
    logged = _count(in_year, "evidence.purged")
    if logged != report.purged.clips:
        report.notes.append(
            f"{report.purged.clips} tombstones but {logged} evidence.purged audit records in "
            "the year: a purge was interrupted between its commit and its audit record"
        )
    return report


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS_PER_S, tz=UTC).isoformat().replace("+00:00", "Z")


def _count(records: Iterable[dict[str, Any]], event: str) -> int:
    return sum(1 for r in records if r["event"] == event)


def _count_stored(
    report: AnnualReport, records: list[dict[str, Any]], in_year: list[dict[str, Any]], end: int
) -> None:
    """Clips stored in the year, by month and by the category they had at year end."""
    for number in range(1, 13):
        report.stored_by_month[f"{report.year:04d}-{number:02d}"] = Volume()
    category: dict[str, str] = {}
    for r in records:  # replay every assignment up to the year end
        if r["wall_ns"] >= end:
            continue  # the log's order is the truth; a clock stepped back must not end the replay
        if r["event"] in ("evidence.stored", "retention.category_set"):
            category[r["data"]["evidence_id"]] = r["data"]["category"]
    for r in in_year:
        if r["event"] != "evidence.stored":
            continue
        size = int(r["data"]["byte_count"])
        month = datetime.fromtimestamp(r["wall_ns"] // NS_PER_S, tz=UTC).strftime("%Y-%m")
        report.stored.add(size)
        report.stored_by_month[month].add(size)
        name = category[r["data"]["evidence_id"]]
        report.stored_by_category.setdefault(name, Volume()).add(size)
    report.stored_by_category = dict(sorted(report.stored_by_category.items()))


def _in_store(
    records: list[dict[str, Any]], tombstones: Sequence[Tombstone], sizes: dict[str, int], end: int
) -> Volume:
    gone = {t.evidence_id for t in tombstones if t.purged_at_ns < end}
    kept = Volume()
    for r in records:
        stored = r["event"] == "evidence.stored" and r["wall_ns"] < end
        if stored and r["data"]["evidence_id"] not in gone:
            kept.add(sizes[r["data"]["evidence_id"]])
    return kept


def _purges(
    tombstones: Sequence[Tombstone], sizes: dict[str, int], start: int, end: int
) -> list[PurgeCount]:
    counts: dict[tuple[str, str], Volume] = defaultdict(Volume)
    for t in tombstones:
        if start <= t.purged_at_ns < end:
            days = (t.expires_at_ns - t.stored_at_ns) // NS_PER_DAY
            counts[(t.category, f"{days} days after storing")].add(sizes.get(t.evidence_id, 0))
    return [PurgeCount(c, rule, v.clips, v.bytes) for (c, rule), v in sorted(counts.items())]


def _active_holds(records: list[dict[str, Any]], end: int) -> int:
    active: set[str] = set()
    for r in records:
        if r["wall_ns"] >= end:
            continue
        if r["event"] == "hold.placed":
            active.add(r["data"]["hold_id"])
        elif r["event"] == "hold.released":
            active.discard(r["data"]["hold_id"])
    return len(active)


def _category_moves(in_year: list[dict[str, Any]]) -> list[CategoryMove]:
    moves: Counter[tuple[str, str]] = Counter()
    for r in in_year:
        if r["event"] == "retention.category_set":
            moves[(r["data"].get("previous") or "", r["data"]["category"])] += 1
    return [CategoryMove(p or None, c, n) for (p, c), n in sorted(moves.items())]


def _accesses(in_year: list[dict[str, Any]]) -> list[Access]:
    requests: Counter[str] = Counter()
    clips: dict[str, set[str]] = defaultdict(set)
    for r in in_year:
        kind = ACCESS_KINDS.get(r["event"])
        if kind is not None:
            requests[kind] += 1
            if "evidence_id" in r["data"]:
                clips[kind].add(r["data"]["evidence_id"])
    return [Access(k, requests[k], len(clips[k])) for k in ACCESS_KINDS.values() if requests[k]]


def _accesses_by_actor(in_year: list[dict[str, Any]]) -> list[ActorAccess]:
    by_actor: dict[str, Counter[str]] = defaultdict(Counter)
    for r in in_year:
        kind = ACCESS_KINDS.get(r["event"])
        if kind is not None:
            by_actor[r["actor"]][kind] += 1
    return [
        ActorAccess(actor, actor.split(":", 1)[0], dict(sorted(kinds.items())), kinds.total())
        for actor, kinds in sorted(by_actor.items())
    ]


def _refusals(
    in_year: list[dict[str, Any]], key: Callable[[dict[str, Any]], str]
) -> dict[str, int]:
    counts = Counter(key(r) for r in in_year if r["event"] == "ingest.refused")
    return dict(sorted(counts.items()))


def _denials(in_year: list[dict[str, Any]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in in_year:
        if r["event"] == "access.denied":
            counts[str(r["data"].get("status", "unknown"))] += 1
        elif r["event"] == "access.denied.suppressed":
            for status, n in dict(r["data"].get("by_status", {})).items():
                counts[str(status)] += int(n)
    return dict(sorted(counts.items()))


def _action(action: Any) -> str:
    return _TRAILING_NUMBER_RE.sub("", str(action)) or "unknown"
