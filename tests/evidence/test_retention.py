"""Retention, legal holds and purge, with a clock the tests move forward by days."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.config import NS_PER_DAY, EvidenceConfig
from evidence.errors import BadRequest, Conflict, NotFound
from evidence.ingest import IngestService, manifest_key, segment_key
from evidence.retention import SCHEDULE_ACTOR, PurgeSchedule, RetentionService
from evidence.storage import Hold, Retention
from evidence.store import open_service
from tests.evidence.conftest import seal

START_NS = 1_750_000_000 * 10**9
DOCK = "dock:bay-1"
RECORDS = "records:j.smith"
SUPERVISOR = "supervisor:s.jones"
ADMIN = "admin:ops"


class ManualClock:
    """Wall time that moves only when the test says so."""

    def __init__(self, now_ns: int = START_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance_days(self, days: float) -> None:
        self.now_ns += int(days * NS_PER_DAY)


def store_clip(
    service: IngestService, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> str:
    """Ingest a freshly sealed clip and return its evidence id."""
    clip = seal(device_key, agency_key)
    upload_id = service.create_upload(clip.manifest, DOCK).upload.id
    for index, data in sorted(clip.segments.items()):
        service.put_segment(upload_id, index, data, DOCK)
    return service.complete(upload_id, DOCK).evidence_id


def audit_records(service: IngestService, event: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in service.metadata.audit_log().splitlines()]
    return [r for r in records if r["event"] == event]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(cfg: EvidenceConfig, clock: ManualClock) -> Iterator[IngestService]:
    opened = open_service(cfg, wall_ns=clock)
    yield opened
    opened.metadata.close()


@pytest.fixture
def retention(service: IngestService) -> RetentionService:
    return RetentionService.beside(service)


@pytest.fixture
def stored(
    service: IngestService, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> str:
    """One clip stored at START_NS in the default category (routine: 14 days)."""
    return store_clip(service, device_key, agency_key)


def purged_ids(retention: RetentionService) -> list[str]:
    return [t.evidence_id for t in retention.purge(ADMIN)]


def test_a_new_clip_gets_the_default_category_expiring_14_days_after_it_was_stored(
    retention: RetentionService, stored: str
) -> None:
    status = retention.status(stored, RECORDS)
    assert status.retention is not None
    assert status.retention.category == "routine"
    assert status.retention.expires_at_ns == START_NS + 14 * NS_PER_DAY
    assert status.holds == []


def test_a_14_day_clip_survives_the_purge_on_day_13_and_is_purged_on_day_15(
    retention: RetentionService, service: IngestService, clock: ManualClock, stored: str
) -> None:
    clock.advance_days(13)
    assert purged_ids(retention) == []
    assert service.metadata.evidence(stored) is not None
    clock.advance_days(2)
    assert purged_ids(retention) == [stored]
    assert service.metadata.evidence(stored) is None


def test_a_purge_deletes_the_segments_and_manifest_and_keeps_a_tombstone(
    retention: RetentionService, service: IngestService, clock: ManualClock, stored: str
) -> None:
    evidence = service.metadata.evidence(stored)
    assert evidence is not None
    clock.advance_days(15)
    retention.purge(ADMIN)
    sha = evidence.manifest_sha256
    keys = [manifest_key(sha)] + [segment_key(sha, i) for i in range(evidence.segment_count)]
    assert [k for k in keys if service.blobs.exists(k)] == []
    assert service.metadata.upload_for_manifest(sha) is None
    [tombstone] = service.metadata.tombstones(limit=10, offset=0)
    assert (tombstone.evidence_id, tombstone.clip_id) == (stored, evidence.clip_id)
    assert (tombstone.category, tombstone.purged_by, tombstone.purged_at_ns) == (
        "routine", ADMIN, clock.now_ns,
    )  # fmt: skip
    assert "retention category routine: 14 days" in tombstone.rule


def test_a_held_clip_survives_the_purge_after_it_expires(
    retention: RetentionService, service: IngestService, clock: ManualClock, stored: str
) -> None:
    retention.place_hold(stored, "2026-CR-0113", "suspect identified in footage", SUPERVISOR)
    clock.advance_days(400)
    assert purged_ids(retention) == []
    assert service.metadata.evidence(stored) is not None


def test_a_clip_whose_hold_is_released_is_purged_on_the_next_run(
    retention: RetentionService, clock: ManualClock, stored: str
) -> None:
    hold = retention.place_hold(stored, "2026-CR-0113", "suspect identified", SUPERVISOR)
    clock.advance_days(30)
    assert purged_ids(retention) == []
    released = retention.release_hold(stored, hold.id, "case closed, no charges", RECORDS)
    assert not released.active and released.released_by == RECORDS
    assert purged_ids(retention) == [stored]


def test_one_released_hold_does_not_free_a_clip_another_hold_still_protects(
    retention: RetentionService, clock: ManualClock, stored: str
) -> None:
    first = retention.place_hold(stored, "2026-CR-0113", "robbery", SUPERVISOR)
    retention.place_hold(stored, "2026-CR-0200", "related assault", SUPERVISOR)
    retention.release_hold(stored, first.id, "robbery case closed", SUPERVISOR)
    clock.advance_days(30)
    assert purged_ids(retention) == []
    assert retention.status(stored, RECORDS).held


def test_an_indefinite_clip_is_never_purged(
    retention: RetentionService, clock: ManualClock, stored: str
) -> None:
    retention.set_category(stored, "homicide", "victim died of injuries", RECORDS)
    clock.advance_days(365 * 100)
    assert purged_ids(retention) == []
    status = retention.status(stored, RECORDS).retention
    assert status is not None and status.expires_at_ns is None


def test_a_longer_category_recomputes_expiry_from_when_the_clip_was_stored(
    retention: RetentionService, clock: ManualClock, stored: str
) -> None:
    clock.advance_days(10)
    changed = retention.set_category(stored, "investigation", "linked to a burglary", RECORDS)
    assert changed.expires_at_ns == START_NS + 548 * NS_PER_DAY
    clock.advance_days(500)
    assert purged_ids(retention) == []
    clock.advance_days(40)
    assert purged_ids(retention) == [stored]


def test_a_shorter_category_makes_an_old_clip_purgeable_at_once(
    retention: RetentionService, clock: ManualClock, stored: str
) -> None:
    retention.set_category(stored, "investigation", "linked to a burglary", RECORDS)
    clock.advance_days(100)
    assert purged_ids(retention) == []
    retention.set_category(stored, "traffic-stop", "burglary link ruled out", SUPERVISOR)
    assert purged_ids(retention) == [stored]


def test_every_change_and_purge_is_an_audit_record_saying_who_when_what_and_why(
    retention: RetentionService, service: IngestService, clock: ManualClock, stored: str
) -> None:
    clock.advance_days(1)
    retention.set_category(stored, "traffic-stop", "speeding stop", RECORDS)
    clock.advance_days(1)
    hold = retention.place_hold(stored, "2026-TR-7", "driver contests the ticket", SUPERVISOR)
    clock.advance_days(1)
    retention.release_hold(stored, hold.id, "ticket paid", SUPERVISOR)
    clock.advance_days(20)
    retention.purge(ADMIN)
    day = START_NS + NS_PER_DAY
    expected = [
        ("retention.category_set", RECORDS, day, "speeding stop"),
        ("hold.placed", SUPERVISOR, day + NS_PER_DAY, "driver contests the ticket"),
        ("hold.released", SUPERVISOR, day + 2 * NS_PER_DAY, "ticket paid"),
    ]
    for event, actor, wall_ns, reason in expected:
        [record] = audit_records(service, event)
        assert (record["actor"], record["wall_ns"], record["data"]["reason"]) == (
            actor, wall_ns, reason,
        )  # fmt: skip
        assert record["data"]["evidence_id"] == stored
    [purge] = audit_records(service, "evidence.purged")
    assert (purge["actor"], purge["wall_ns"]) == (ADMIN, START_NS + 23 * NS_PER_DAY)
    assert purge["data"]["evidence_id"] == stored
    assert purge["data"]["category"] == "traffic-stop"
    assert "no active legal hold" in purge["data"]["rule"]


def test_holds_and_categories_survive_a_restart_of_the_store(
    cfg: EvidenceConfig, clock: ManualClock, stored: str, retention: RetentionService
) -> None:
    retention.place_hold(stored, "2026-CR-0113", "robbery", SUPERVISOR)
    clock.advance_days(30)
    reopened = open_service(cfg, wall_ns=clock)
    try:
        assert RetentionService.beside(reopened).purge(ADMIN) == []
    finally:
        reopened.metadata.close()


def test_an_unknown_category_is_refused_naming_the_known_ones(
    retention: RetentionService, stored: str
) -> None:
    with pytest.raises(BadRequest, match=r"unknown retention category 'forever'.*homicide"):
        retention.set_category(stored, "forever", "because", RECORDS)


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_a_hold_without_a_usable_reason_is_refused(
    retention: RetentionService, stored: str, reason: str
) -> None:
    with pytest.raises(BadRequest, match="give a reason"):
        retention.place_hold(stored, "2026-CR-0113", reason, SUPERVISOR)
    assert retention.status(stored, RECORDS).holds == []


def test_releasing_a_hold_twice_is_a_conflict(retention: RetentionService, stored: str) -> None:
    hold = retention.place_hold(stored, "2026-CR-0113", "robbery", SUPERVISOR)
    retention.release_hold(stored, hold.id, "closed", SUPERVISOR)
    with pytest.raises(Conflict, match="already released"):
        retention.release_hold(stored, hold.id, "closed again", SUPERVISOR)


def test_a_hold_on_purged_evidence_is_not_found(
    retention: RetentionService, clock: ManualClock, stored: str
) -> None:
    clock.advance_days(15)
    retention.purge(ADMIN)
    with pytest.raises(NotFound, match="does not exist"):
        retention.place_hold(stored, "2026-CR-0113", "too late", SUPERVISOR)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(days=st.integers(1, 3650), elapsed_ns=st.integers(0, 4000 * NS_PER_DAY), held=st.booleans())
def test_a_clip_is_purged_exactly_when_its_period_has_passed_and_no_hold_protects_it(
    cfg: EvidenceConfig,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
    days: int,
    elapsed_ns: int,
    held: bool,
) -> None:
    policy = cfg.retention.model_copy(update={"days": {"routine": days}})
    clock = ManualClock()
    service = open_service(cfg.model_copy(update={"retention": policy}), wall_ns=clock)
    try:
        retention = RetentionService.beside(service)
        evidence_id = store_clip(service, device_key, agency_key)
        if held:
            retention.place_hold(evidence_id, "2026-CR-1", "property test", SUPERVISOR)
        clock.now_ns += elapsed_ns
        purged = evidence_id in purged_ids(retention)
        assert purged == (elapsed_ns >= days * NS_PER_DAY and not held)
    finally:
        service.metadata.close()


def test_a_purged_clip_sent_again_is_refused_instead_of_stored_again(
    service: IngestService,
    retention: RetentionService,
    clock: ManualClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    clip = seal(device_key, agency_key)
    upload_id = service.create_upload(clip.manifest, DOCK).upload.id
    for index, data in sorted(clip.segments.items()):
        service.put_segment(upload_id, index, data, DOCK)
    service.complete(upload_id, DOCK)
    clock.advance_days(15)
    retention.purge(ADMIN)
    with pytest.raises(Conflict, match="purged at the end of its retention"):
        service.create_upload(clip.manifest, DOCK)
    assert service.metadata.list_evidence(limit=10, offset=0) == []


def test_the_purge_schedule_purges_expired_clips_as_soon_as_it_starts(
    retention: RetentionService, service: IngestService, clock: ManualClock, stored: str
) -> None:
    clock.advance_days(15)
    schedule = PurgeSchedule(retention, interval_s=3600)
    schedule.start()
    schedule.stop()  # returns once the first run is done
    assert service.metadata.evidence(stored) is None
    [record] = audit_records(service, "evidence.purged")
    assert record["actor"] == SCHEDULE_ACTOR


def test_a_hold_or_category_racing_a_purge_is_not_recorded_for_the_purged_clip(
    retention: RetentionService, service: IngestService, clock: ManualClock, stored: str
) -> None:
    clock.advance_days(15)
    retention.purge(ADMIN)
    late_hold = Hold("h-1", stored, "2026-CR-1", "looked up before the purge", SUPERVISOR, 0)
    assert service.metadata.add_hold(late_hold) is False
    assert service.metadata.set_retention(Retention(stored, "homicide", None, RECORDS, 0)) is False
    assert service.metadata.holds(stored) == []
    assert service.metadata.retention(stored) is None
