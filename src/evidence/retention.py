"""Retention, legal holds and the purge job. No HTTP here.

Every clip has a retention category (assigned at ingest, changeable by records or a supervisor)
whose period fixes when it expires. The purge job deletes expired evidence that no active legal
hold protects, leaving a tombstone, and every category change, hold, release and purge is an
audit record naming who, when, what and why. Time comes from the injected ``wall_ns`` clock so
tests can move it forward.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from evidence.audit_log import StoreAudit
from evidence.blob_locks import hold_clip, retain_clip
from evidence.config import NS_PER_DAY, RetentionPolicy
from evidence.errors import BadRequest, Conflict, EvidenceError, NotFound
from evidence.ingest import IngestService, manifest_key, segment_key
from evidence.storage import BlobStore, Evidence, Hold, MetadataStore, Retention, Tombstone
from evidence.sweep import SweepResult, sweep_orphans

log = logging.getLogger(__name__)

MAX_REASON = 500
SCHEDULE_ACTOR = "store:retention-schedule"
_CASE_NUMBER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
_PURGE_BATCH = 500  # evidence selected per round, so a large backlog never loads at once


@dataclass(frozen=True)
class RetentionStatus:
    evidence_id: str
    retention: Retention | None  # None only for evidence stored before retention existed
    holds: list[Hold]

    @property
    def held(self) -> bool:
        return any(h.active for h in self.holds)


def check_reason(reason: str) -> str:
    """A reason is required for every change: one to 500 characters, not only blanks."""
    text = reason.strip()
    if not text or len(text) > MAX_REASON:
        raise BadRequest(f"give a reason of 1 to {MAX_REASON} characters")
    return text


class RetentionService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        audit: StoreAudit,
        policy: RetentionPolicy,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.metadata, self.blobs, self.policy = metadata, blobs, policy
        self._audit, self._wall_ns, self._new_id = audit, wall_ns, new_id
        self.last_sweep: SweepResult | None = None  # what the latest purge's sweep found

    @classmethod
    def beside(cls, service: IngestService) -> RetentionService:
        """The retention service over the ingest service's stores, audit log, policy and clock."""
        return cls(
            service.metadata, service.blobs, service.audit, service.policy, wall_ns=service.wall_ns
        )

    def _evidence(self, evidence_id: str) -> Evidence:
        evidence = self.metadata.evidence(evidence_id)
        if evidence is None:
            raise NotFound(f"evidence {evidence_id} does not exist: list it with GET /v1/evidence")
        return evidence

    def status(self, evidence_id: str, actor: str) -> RetentionStatus:
        self._evidence(evidence_id)
        self._audit.record(actor, "retention.viewed", {"evidence_id": evidence_id})
        return RetentionStatus(
            evidence_id, self.metadata.retention(evidence_id), self.metadata.holds(evidence_id)
        )

    def tombstones(self, actor: str, *, limit: int = 100, offset: int = 0) -> list[Tombstone]:
        found = self.metadata.tombstones(limit=limit, offset=offset)
        self._audit.record(actor, "tombstones.listed", {"count": len(found), "offset": offset})
        return found

    def set_category(self, evidence_id: str, category: str, reason: str, actor: str) -> Retention:
        """Move evidence to another category; its expiry is recomputed from when it was stored."""
        why = check_reason(reason)
        if category not in self.policy.days:
            known = ", ".join(sorted(self.policy.days))
            raise BadRequest(f"unknown retention category {category!r}: use one of {known}")
        evidence = self._evidence(evidence_id)
        previous = self.metadata.retention(evidence_id)
        retention = Retention(
            evidence_id, category, self.policy.expires_at_ns(category, evidence.stored_at_ns),
            actor, self._wall_ns(),
        )  # fmt: skip
        # The object lock first: one the object store refuses (COMPLIANCE) changes nothing.
        retain_clip(self.blobs, evidence.manifest_sha256, retention.expires_at_ns)
        if not self.metadata.set_retention(retention):
            raise NotFound(f"evidence {evidence_id} was purged meanwhile")
        self._audit.record(
            actor, "retention.category_set",
            {"evidence_id": evidence_id, "category": category,
             "previous": previous.category if previous else None,
             "expires_at_ns": retention.expires_at_ns, "reason": why},
        )  # fmt: skip
        return retention

    def place_hold(self, evidence_id: str, case_number: str, reason: str, actor: str) -> Hold:
        why = check_reason(reason)
        if not _CASE_NUMBER_RE.fullmatch(case_number):
            raise BadRequest(
                f"case number {case_number[:70]!r} is not valid: use 1 to 64 letters, digits, "
                "'.', '_', '/' or '-'"
            )
        evidence = self._evidence(evidence_id)
        hold = Hold(self._new_id(), evidence_id, case_number, why, actor, self._wall_ns())
        hold_clip(self.blobs, evidence.manifest_sha256, True)  # before the record it mirrors
        if not self.metadata.add_hold(hold):
            raise NotFound(f"evidence {evidence_id} was purged meanwhile")
        self._audit.record(
            actor, "hold.placed",
            {"evidence_id": evidence_id, "hold_id": hold.id, "case_number": case_number,
             "reason": why},
        )  # fmt: skip
        return hold

    def release_hold(self, evidence_id: str, hold_id: str, reason: str, actor: str) -> Hold:
        why = check_reason(reason)
        evidence = self._evidence(evidence_id)
        holds = self.metadata.holds(evidence_id)
        hold = next((h for h in holds if h.id == hold_id), None)
        if hold is None:
            raise NotFound(f"evidence {evidence_id} has no hold {hold_id}: list its holds first")
        if hold.active and not any(h.active for h in holds if h.id != hold_id):
            # The last active hold: lift the object locks first, so a failure changes nothing.
            hold_clip(self.blobs, evidence.manifest_sha256, False)
        at_ns = self._wall_ns()
        if not self.metadata.release_hold(hold_id, by=actor, at_ns=at_ns, reason=why):
            raise Conflict(f"hold {hold_id} is already released")
        self._audit.record(
            actor, "hold.released",
            {"evidence_id": evidence_id, "hold_id": hold_id, "case_number": hold.case_number,
             "reason": why},
        )  # fmt: skip
        return next(h for h in self.metadata.holds(evidence_id) if h.id == hold_id)

    def purge(self, actor: str, now_ns: int | None = None) -> list[Tombstone]:
        """Delete every expired, unheld piece of evidence as of ``now_ns`` (default: the clock)."""
        now = self._wall_ns() if now_ns is None else now_ns
        purged: list[Tombstone] = []
        skipped: set[str] = set()  # held or re-categorised between selecting and deleting
        while batch := [
            e for e in self.metadata.expired(now, limit=_PURGE_BATCH) if e.id not in skipped
        ]:
            for evidence in batch:
                tombstone = self._purge_one(evidence, actor, now)
                if tombstone is None:
                    skipped.add(evidence.id)
                else:
                    purged.append(tombstone)
            if len(batch) < _PURGE_BATCH:
                break
        # Blobs a failed delete (or an earlier crash) left behind go now, or at the next purge.
        sweep = self.last_sweep = self.sweep(actor)
        self._audit.record(
            actor, "purge.run",
            {"now_ns": now, "purged": len(purged), "blobs_swept": len(sweep.swept),
             "blobs_left": len(sweep.failed)},
        )  # fmt: skip
        self._audit.checkpoint()  # deletions are final: sign the log that accounts for them
        return purged

    def sweep(self, actor: str) -> SweepResult:
        """Delete the blobs of purged evidence that are still stored (see :mod:`evidence.sweep`)."""
        return sweep_orphans(self.metadata, self.blobs, self._audit, actor)

    def _purge_one(self, evidence: Evidence, actor: str, now: int) -> Tombstone | None:
        retention = self.metadata.retention(evidence.id)
        if retention is None or retention.expires_at_ns is None:
            return None
        tombstone = Tombstone(
            evidence.id, evidence.manifest_sha256, evidence.clip_id, evidence.device_id,
            evidence.officer_id, evidence.stored_at_ns, retention.category,
            retention.expires_at_ns, _rule(retention, evidence), actor, now,
        )  # fmt: skip
        # The metadata goes first, in one transaction that re-checks holds; a crash before the
        # blobs are deleted leaves only unreachable bytes, never a record pointing at nothing,
        # and the orphan sweep deletes them. The audit record follows the commit at once, so
        # the log accounts for the purge whatever happens to the deletes.
        if not self.metadata.purge_evidence(tombstone):
            return None
        self._audit.record(
            actor, "evidence.purged",
            {"evidence_id": evidence.id, "clip_id": evidence.clip_id,
             "manifest_sha256": evidence.manifest_sha256, "category": retention.category,
             "expires_at_ns": retention.expires_at_ns, "rule": tombstone.rule},
        )  # fmt: skip
        keys = [segment_key(evidence.manifest_sha256, i) for i in range(evidence.segment_count)]
        for key in [*keys, manifest_key(evidence.manifest_sha256)]:
            try:
                self.blobs.delete(key)
            except (OSError, EvidenceError) as exc:  # e.g. BlobLocked: Object Lock not yet over
                log.warning("purge of %s: cannot delete %s yet (%s)", evidence.id, key, exc)
        return tombstone


def _rule(retention: Retention, evidence: Evidence) -> str:
    days = (retention.expires_at_ns or 0) - evidence.stored_at_ns
    return (
        f"retention category {retention.category}: {days // NS_PER_DAY} days after "
        f"storing, expired at {retention.expires_at_ns} ns, no active legal hold"
    )


class PurgeSchedule:
    """Runs the purge now and then every ``interval_s`` seconds, in a thread, until stopped.

    This is what makes purge automatic for ``bwc evidence serve``; a failed run is logged and
    the next one tries again, so one bad moment never stops retention for good.
    """

    def __init__(self, retention: RetentionService, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("the purge interval must be positive")
        self._retention, self._interval = retention, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="purge-schedule", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        # The first run always happens, even if stop() comes first: starting means "purge now".
        while True:
            try:
                purged = self._retention.purge(SCHEDULE_ACTOR)
            except Exception:  # logged, not swallowed: the schedule must outlive one failure
                log.exception("scheduled purge failed; retrying in %.0f s", self._interval)
            else:
                if purged:
                    log.info("scheduled purge deleted %d expired clip(s)", len(purged))
            if self._stop.wait(self._interval):
                return
