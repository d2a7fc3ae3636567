"""The annual report counts what happened in one UTC year, from a verified audit log.

One store is built through the real ingest and retention services with a clock the test moves:
clips in 2025, 2026 and 2027 (two of them on the last and first nanosecond of a year), purges,
holds, a category change, accesses and refusals. Every count is then checked exactly.
"""

from __future__ import annotations

import calendar
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.keys import load_signing_key, public_pem, write_atomic
from evidence.access_log import ANONYMOUS, Denial, DeniedAccessLog
from evidence.audit_log import StoreAudit
from evidence.config import EvidenceConfig
from evidence.errors import BadRequest, VerificationFailed
from evidence.ingest import IngestService
from evidence.report import (
    Access,
    ActorAccess,
    AnnualReport,
    CategoryMove,
    Volume,
    publish,
    year_bounds_ns,
)
from evidence.retention import RetentionService
from evidence.store import bootstrap, open_metadata, open_service
from tests.evidence.conftest import DEVICE_ID, seal
from tests.evidence.test_audit_chain import edit_record
from tests.evidence.test_retention import (
    ADMIN,
    DOCK,
    RECORDS,
    SUPERVISOR,
    ManualClock,
    audit_records,
    store_clip,
)
from tests.evidence.test_sweep import tombstone_only

AUDITOR = "auditor:a.lee"
REPORTER = "admin:records-office"


def utc_ns(year: int, month: int, day: int, hour: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, 0, 0, 0, 0, 0)) * 10**9


@dataclass
class History:
    """The ids and sizes of what ``build_history`` stored, for the expected counts."""

    sizes: dict[str, int]  # evidence id -> bytes
    a: str  # 2025-03-10, purged 2025-06-01
    b: str  # 2025-11-20, held 2025-11-21 .. 2026-01-09, purged 2026-01-10
    g: str  # 2025-12-31T23:59:59.999999999Z: the last nanosecond of 2025
    c: str  # 2026-01-05, moved to "investigation"
    d: str  # 2026-01-05, held 2026-01-06 .. 2026-01-08
    e: str  # 2026-02-14, held since (active at year end); a segment refused on 2026-01-13
    f: str  # 2027-01-01T00:00:00Z: the first nanosecond of 2027


def build_history(
    cfg: EvidenceConfig, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> History:
    clock = ManualClock(utc_ns(2025, 3, 10, 12))
    service = open_service(cfg, wall_ns=clock)
    retention = RetentionService.beside(service)
    sizes: dict[str, int] = {}

    def stored_at(at_ns: int) -> str:
        clock.now_ns = at_ns
        evidence_id = store_clip(service, device_key, agency_key)
        evidence = service.metadata.evidence(evidence_id)
        assert evidence is not None
        sizes[evidence_id] = evidence.byte_count
        return evidence_id

    def at(year: int, month: int, day: int) -> None:
        clock.now_ns = utc_ns(year, month, day, 12)

    try:
        a = stored_at(utc_ns(2025, 3, 10, 12))
        at(2025, 5, 1)
        service.list_evidence(RECORDS)
        at(2025, 6, 1)
        retention.purge(ADMIN)
        b = stored_at(utc_ns(2025, 11, 20, 12))
        at(2025, 11, 21)
        b_hold = retention.place_hold(b, "2025-CR-0001", "assault complaint", SUPERVISOR)
        g = stored_at(utc_ns(2026, 1, 1) - 1)
        c, d = stored_at(utc_ns(2026, 1, 5, 12)), stored_at(utc_ns(2026, 1, 5, 13))
        at(2026, 1, 6)
        d_hold = retention.place_hold(d, "2026-CR-0007", "complaint review", SUPERVISOR)
        retention.set_category(c, "investigation", "burglary follow-up", RECORDS)
        at(2026, 1, 8)
        retention.release_hold(d, d_hold.id, "complaint withdrawn", SUPERVISOR)
        at(2026, 1, 9)
        retention.release_hold(b, b_hold.id, "case closed", SUPERVISOR)
        at(2026, 1, 10)
        retention.purge(ADMIN)  # b only: g, c and d are younger than 14 days
        at(2026, 1, 12)
        service.list_evidence(RECORDS)
        service.receipt(c, RECORDS)
        service.manifest(c, RECORDS)
        service.segment(c, 0, RECORDS)
        retention.status(d, AUDITOR)
        service.receipt(d, AUDITOR)
        at(2026, 1, 13)
        with pytest.raises(BadRequest):
            service.create_upload(b"not a manifest", DOCK)
        e_clip = seal(device_key, agency_key)
        upload_id = service.create_upload(e_clip.manifest, DOCK).upload.id
        with pytest.raises(VerificationFailed):
            service.put_segment(upload_id, 0, e_clip.segments[1], DOCK)
        deny_access(service.audit, clock)
        at(2026, 2, 14)
        for index, data in sorted(e_clip.segments.items()):
            service.put_segment(upload_id, index, data, DOCK)
        e = service.complete(upload_id, DOCK).evidence_id
        e_evidence = service.metadata.evidence(e)
        assert e_evidence is not None
        sizes[e] = e_evidence.byte_count
        retention.place_hold(e, "2026-CR-0042", "pursuit review", SUPERVISOR)
        f = stored_at(utc_ns(2027, 1, 1))
    finally:
        service.metadata.close()
    return History(sizes, a, b, g, c, d, e, f)


def deny_access(audit: StoreAudit, clock: ManualClock) -> None:
    """Three bad tokens from one address (one recorded, two over the limit) and a wrong role."""
    denied = DeniedAccessLog(audit, per_minute=1, wall_ns=clock)
    for _ in range(3):
        denied.record(Denial(401, ANONYMOUS, "203.0.113.9", "GET", "/v1/evidence", "no token"))
    denied.record(Denial(403, DOCK, "198.51.100.4", "GET", "/v1/evidence", "needs records"))
    denied.flush_all()


def store_with_history(root: Path) -> tuple[EvidenceConfig, History]:
    """A bootstrapped store in ``root`` holding the history above (built once per module)."""
    cfg = EvidenceConfig(data_dir=root / "store")
    bootstrap(cfg)
    device_key = Ed25519PrivateKey.generate()
    write_atomic(cfg.devices_path / f"{DEVICE_ID}.pub.pem", public_pem(device_key), mode=0o644)
    return cfg, build_history(cfg, device_key, X25519PrivateKey.generate())


def copy_of(cfg: EvidenceConfig, root: Path) -> EvidenceConfig:
    """The store copied to ``root``, so a test may append to or alter its copy."""
    return EvidenceConfig(data_dir=shutil.copytree(cfg.data_dir, root / "store"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvidenceConfig, History]:
    return store_with_history(tmp_path_factory.mktemp("history"))


@pytest.fixture
def cfg(built: tuple[EvidenceConfig, History], tmp_path: Path) -> EvidenceConfig:
    return copy_of(built[0], tmp_path)


@pytest.fixture
def history(built: tuple[EvidenceConfig, History]) -> History:
    return built[1]


def report_for(cfg: EvidenceConfig, year: int, now_ns: int = utc_ns(2027, 2, 1)) -> AnnualReport:
    metadata = open_metadata(cfg)
    try:
        key = load_signing_key(cfg.receipt_key_path)
        return publish(metadata, key, year, REPORTER, wall_ns=lambda: now_ns)
    finally:
        metadata.close()


@pytest.fixture
def report_2026(cfg: EvidenceConfig, history: History) -> AnnualReport:
    return report_for(cfg, 2026)


def volume(history: History, *ids: str) -> Volume:
    return Volume(len(ids), sum(history.sizes[i] for i in ids))


def test_clips_stored_are_counted_by_utc_month_from_the_first_to_the_last_nanosecond(
    report_2026: AnnualReport, history: History
) -> None:
    h = history
    assert (report_2026.period_start, report_2026.period_end, report_2026.timezone) == (
        "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "UTC",
    )  # fmt: skip
    assert report_2026.stored == volume(h, h.c, h.d, h.e)  # not g (2025) nor f (2027)
    assert report_2026.stored_by_month["2026-01"] == volume(h, h.c, h.d)
    assert report_2026.stored_by_month["2026-02"] == volume(h, h.e)
    assert len(report_2026.stored_by_month) == 12
    assert sum(v.clips for v in report_2026.stored_by_month.values()) == 3


def test_clips_stored_are_counted_by_the_category_they_have_at_year_end(
    report_2026: AnnualReport, history: History
) -> None:
    h = history
    assert report_2026.stored_by_category == {
        "investigation": volume(h, h.c),
        "routine": volume(h, h.d, h.e),
    }


def test_purges_are_counted_by_category_and_rule_with_what_is_left_at_year_end(
    report_2026: AnnualReport, history: History
) -> None:
    h = history
    assert report_2026.purged == volume(h, h.b)  # a went in 2025
    [rule] = report_2026.purged_by_rule
    assert (rule.category, rule.rule, rule.clips, rule.bytes) == (
        "routine", "14 days after storing", 1, h.sizes[h.b],
    )  # fmt: skip
    assert report_2026.in_store_at_year_end == volume(h, h.g, h.c, h.d, h.e)
    assert report_2026.notes == []


def test_holds_placed_and_released_in_the_year_and_active_at_its_end_are_counted(
    report_2026: AnnualReport,
) -> None:
    counts = (
        report_2026.holds_placed,
        report_2026.holds_released,
        report_2026.holds_active_at_year_end,
    )
    assert counts == (2, 2, 1)  # placed: d, e; released: d and b (placed in 2025); active: e


def test_category_changes_are_counted_from_and_to(report_2026: AnnualReport) -> None:
    assert report_2026.category_changes == [CategoryMove("routine", "investigation", 1)]


def test_every_access_is_counted_by_kind_and_by_user_and_role(
    report_2026: AnnualReport,
) -> None:
    assert report_2026.accesses == [
        Access("listed", 1, 0),
        Access("receipt viewed", 2, 2),
        Access("downloaded", 2, 1),  # the manifest and one segment of one clip
        Access("retention viewed", 1, 1),
    ]
    assert report_2026.accesses_by_actor == [
        ActorAccess(AUDITOR, "auditor", {"receipt viewed": 1, "retention viewed": 1}, 2),
        ActorAccess(RECORDS, "records", {"downloaded": 2, "listed": 1, "receipt viewed": 1}, 4),
    ]
    assert report_2026.accesses_by_role == {"auditor": 2, "records": 4}


def test_refused_requests_are_counted_by_action_and_user(report_2026: AnnualReport) -> None:
    assert report_2026.refused == 2
    assert report_2026.refused_by_action == {"create upload": 1, "put segment": 1}
    assert report_2026.refused_by_actor == {DOCK: 2}


def test_denied_access_is_counted_by_status_with_the_suppressed_ones(
    report_2026: AnnualReport,
) -> None:
    assert report_2026.access_denied == {"401": 3, "403": 1}


def test_the_year_before_counts_only_its_own_events(cfg: EvidenceConfig, history: History) -> None:
    h = history
    report = report_for(cfg, 2025)
    assert report.stored == volume(h, h.a, h.b, h.g)
    assert report.stored_by_month["2025-12"] == volume(h, h.g)
    assert report.purged == volume(h, h.a)
    counts = (report.holds_placed, report.holds_released, report.holds_active_at_year_end)
    assert counts == (1, 0, 1)
    assert report.in_store_at_year_end == volume(h, h.b, h.g)
    assert report.accesses == [Access("listed", 1, 0)]
    assert report.refused == 0
    assert report.access_denied == {}


def test_the_report_states_how_far_the_audit_chain_verified(
    cfg: EvidenceConfig, history: History
) -> None:
    metadata = open_metadata(cfg)
    try:
        lines = metadata.audit_log().splitlines()
    finally:
        metadata.close()
    report = report_for(cfg, 2026)
    assert report.audit.records == len(lines)
    assert report.audit.last_checkpoint_seq is not None
    assert report.audit.last_checkpoint_seq + report.audit.unsigned_after_checkpoint == (
        len(lines) - 1
    )


def test_generating_the_report_is_an_audit_record_naming_who(
    cfg: EvidenceConfig, report_2026: AnnualReport
) -> None:
    service = open_service(cfg)
    try:
        [generated] = audit_records(service, "report.generated")
    finally:
        service.metadata.close()
    assert generated["actor"] == REPORTER
    assert generated["data"] == {
        "year": 2026, "audit_records": report_2026.audit.records, "complete": True,
    }  # fmt: skip


def test_a_year_still_running_is_marked_as_counts_so_far(
    cfg: EvidenceConfig, history: History
) -> None:
    assert not report_for(cfg, 2026, now_ns=utc_ns(2026, 7, 1)).complete
    assert report_for(cfg, 2026, now_ns=utc_ns(2027, 1, 1)).complete


def test_an_altered_audit_record_stops_the_report_naming_the_first_broken_link(
    cfg: EvidenceConfig, history: History
) -> None:
    seq = edit_record(cfg, "hold.placed", "reason", "routine review")
    with pytest.raises(VerificationFailed, match=rf"first broken link at seq {seq + 1}\b"):
        report_for(cfg, 2026)
    service_log = open_metadata(cfg)
    try:  # nothing was appended to a log that does not verify
        assert b"report.generated" not in service_log.audit_log()
    finally:
        service_log.close()


@pytest.mark.parametrize("year", [1969, 9999])
def test_a_year_outside_the_supported_range_is_refused(year: int) -> None:
    with pytest.raises(BadRequest, match="out of range"):
        year_bounds_ns(year)


@pytest.fixture
def played(cfg: EvidenceConfig, history: History) -> Iterator[None]:
    """A playback recorded the way the playback service names it (``evidence.played``)."""
    service: IngestService = open_service(cfg, wall_ns=lambda: utc_ns(2026, 3, 1))
    try:
        service.audit.record(RECORDS, "evidence.played", {"evidence_id": history.c})
    finally:
        service.metadata.close()
    yield


def test_playback_counts_as_a_played_access(
    cfg: EvidenceConfig, history: History, played: None
) -> None:
    report = report_for(cfg, 2026)
    assert Access("played", 1, 1) in report.accesses
    [records] = [a for a in report.accesses_by_actor if a.actor == RECORDS]
    assert records.by_kind["played"] == 1 and records.total == 5


def test_a_purge_interrupted_before_its_audit_record_is_noted_not_hidden(
    cfg: EvidenceConfig, history: History
) -> None:
    service = open_service(cfg, wall_ns=lambda: utc_ns(2026, 3, 1))
    try:
        evidence = service.metadata.evidence(history.d)
        assert evidence is not None
        tombstone_only(service, evidence, utc_ns(2026, 3, 1))  # committed, never logged
    finally:
        service.metadata.close()
    report = report_for(cfg, 2026)
    assert report.purged == volume(history, history.b, history.d)  # tombstones are the truth
    assert report.notes == [
        "2 tombstones but 1 evidence.purged audit records in the year: a purge was "
        "interrupted between its commit and its audit record"
    ]
