"""The MetadataStore contract: the same assertions against SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from evidence.errors import Conflict
from evidence.postgres_store import PostgresMetadataStore
from evidence.sqlite_store import SqliteMetadataStore
from evidence.storage import (
    AuditLine,
    AuditTail,
    Evidence,
    ExpectedSegment,
    Hold,
    MetadataStore,
    Retention,
    StoredFile,
    Tombstone,
    Upload,
)

SHA = "ab" * 32
OTHER = "cd" * 32
SEGMENTS = [ExpectedSegment(0, 10, "0a" * 32), ExpectedSegment(1, 20, "1b" * 32)]
DAY = 86_400 * 10**9

Opener = Callable[[], MetadataStore]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the same store again each time it is called (to prove what survives)."""
    if request.param == "sqlite":
        return lambda: SqliteMetadataStore(tmp_path / "m.sqlite3")
    url: str = request.getfixturevalue("pg_url")
    return lambda: PostgresMetadataStore(url)


@pytest.fixture
def store(opener: Opener) -> Iterator[MetadataStore]:
    opened = opener()
    yield opened
    opened.close()


def upload(upload_id: str = "u1", sha: str = SHA) -> Upload:
    return Upload(upload_id, sha, f"clip-{sha[:4]}", "cam-0042", 2, "dock:bay-1", 1)


def evidence(evidence_id: str = "e1", sha: str = SHA, stored_at_ns: int = 5) -> Evidence:
    return Evidence(
        evidence_id, sha, f"clip-{sha[:4]}", "cam-0042", "officer-1", 2, 100, stored_at_ns
    )


def retention(evidence_id: str = "e1", expires_at_ns: int | None = 10 * DAY) -> Retention:
    return Retention(evidence_id, "routine", expires_at_ns, "dock:bay-1", 5)


def hold(hold_id: str = "h1", evidence_id: str = "e1", at_ns: int = 7) -> Hold:
    return Hold(hold_id, evidence_id, "2026-CR-0113", "robbery", "supervisor:lee", at_ns)


def tombstone(e: Evidence, purged_at_ns: int = 11 * DAY) -> Tombstone:
    return Tombstone(
        e.id, e.manifest_sha256, e.clip_id, e.device_id, e.officer_id, e.stored_at_ns,
        "routine", 10 * DAY, "routine: 10 days", "retention", purged_at_ns,
    )  # fmt: skip


def stored(
    store: MetadataStore, evidence_id: str = "e1", sha: str = SHA, expires: int | None = 10 * DAY
) -> Evidence:
    """Evidence stored through its upload, with a retention expiring at ``expires``."""
    e = evidence(evidence_id, sha)
    store.add_upload(upload(f"u-{evidence_id}", sha), SEGMENTS)
    store.add_evidence(
        e, b"receipt " + evidence_id.encode(), f"u-{evidence_id}", retention(evidence_id, expires)
    )
    return e


def audit_lines(*lines: bytes, checkpoint_at: int | None = None) -> list[AuditLine]:
    return [AuditLine(line, n == checkpoint_at) for n, line in enumerate(lines)]


# Uploads and acknowledgements


def test_an_upload_is_read_back_by_id_and_by_manifest(store: MetadataStore) -> None:
    assert store.add_upload(upload(), SEGMENTS) == upload()
    assert store.upload("u1") == upload()
    assert store.upload_for_manifest(SHA) == upload()
    assert (store.upload("nope"), store.upload_for_manifest(OTHER)) == (None, None)


def test_an_upload_lists_the_segments_its_manifest_expects(store: MetadataStore) -> None:
    store.add_upload(upload(), list(reversed(SEGMENTS)))
    assert store.expected_segments("u1") == SEGMENTS
    assert store.expected_segment("u1", 1) == SEGMENTS[1]
    assert store.expected_segment("u1", 2) is None


def test_a_second_upload_for_a_manifest_returns_the_first(store: MetadataStore) -> None:
    store.add_upload(upload("u1"), SEGMENTS)
    assert store.add_upload(upload("u2"), SEGMENTS[:1]) == upload("u1")
    assert store.upload("u2") is None
    assert store.expected_segments("u1") == SEGMENTS


def test_acknowledged_segments_are_remembered_sorted(store: MetadataStore) -> None:
    store.add_upload(upload(), SEGMENTS)
    assert (store.is_acknowledged("u1", 1), store.acknowledged("u1")) == (False, [])
    store.acknowledge("u1", 1)
    store.acknowledge("u1", 0)
    store.acknowledge("u1", 1)  # a repeat is harmless
    assert (store.is_acknowledged("u1", 1), store.acknowledged("u1")) == (True, [0, 1])


# Evidence


def test_storing_evidence_records_its_receipt_and_retention_and_closes_its_upload(
    store: MetadataStore,
) -> None:
    store.add_upload(upload(), SEGMENTS)
    store.add_evidence(evidence(), b"receipt", "u1", retention())
    assert store.upload("u1") == replace(upload(), evidence_id="e1")
    assert (store.evidence("e1"), store.evidence_for_manifest(SHA)) == (evidence(), evidence())
    assert (store.receipt("e1"), store.retention("e1")) == (b"receipt", retention())
    assert (store.evidence("nope"), store.receipt("nope"), store.retention("nope")) == (None,) * 3


def test_a_second_evidence_record_for_one_manifest_is_a_conflict_and_changes_nothing(
    store: MetadataStore,
) -> None:
    store.add_upload(upload(), SEGMENTS)
    store.add_evidence(evidence("e1"), b"receipt", "u1", retention("e1"))
    with pytest.raises(Conflict, match="already stored"):
        store.add_evidence(evidence("e2"), b"other", "u1", retention("e2"))
    assert store.upload("u1") == replace(upload(), evidence_id="e1")
    assert (store.evidence("e2"), store.receipt("e2"), store.retention("e2")) == (None,) * 3
    assert [e.id for e in store.list_evidence(limit=10, offset=0)] == ["e1"]


def test_evidence_whose_retention_cannot_be_recorded_is_not_stored(store: MetadataStore) -> None:
    store.add_upload(upload(), SEGMENTS)
    with pytest.raises(Conflict):  # a retention for evidence that does not exist
        store.add_evidence(evidence("e1"), b"receipt", "u1", retention("ghost"))
    assert (store.evidence("e1"), store.upload("u1")) == (None, upload())


def test_evidence_is_listed_oldest_first_in_pages(store: MetadataStore) -> None:
    for n, sha in enumerate(["01" * 32, "02" * 32, "03" * 32]):
        store.add_upload(upload(f"u{n}", sha), [])
        store.add_evidence(evidence(f"e{n}", sha, stored_at_ns=30 - n), b"r", f"u{n}")
    assert [e.id for e in store.list_evidence(limit=2, offset=0)] == ["e2", "e1"]
    assert [e.id for e in store.list_evidence(limit=2, offset=2)] == ["e0"]


# Retention and holds


def test_setting_retention_replaces_the_previous_one(store: MetadataStore) -> None:
    stored(store)
    changed = Retention("e1", "homicide", None, "records:kim", 9)
    assert store.set_retention(changed)
    assert store.retention("e1") == changed


def test_retention_of_evidence_that_does_not_exist_is_not_recorded(store: MetadataStore) -> None:
    assert not store.set_retention(retention("ghost"))
    assert store.retention("ghost") is None


def test_holds_are_listed_oldest_first_and_released_once(store: MetadataStore) -> None:
    stored(store)
    assert store.add_hold(hold("h2", at_ns=8))
    assert store.add_hold(hold("h1", at_ns=7))
    assert [h.id for h in store.holds("e1")] == ["h1", "h2"]
    assert store.release_hold("h1", by="supervisor:lee", at_ns=9, reason="case closed")
    assert not store.release_hold("h1", by="supervisor:lee", at_ns=10, reason="again")
    assert not store.release_hold("ghost", by="supervisor:lee", at_ns=10, reason="none")
    released, active = store.holds("e1")
    assert released == replace(
        hold("h1"), released_by="supervisor:lee", released_at_ns=9, release_reason="case closed"
    )
    assert (released.active, active.active) == (False, True)


def test_a_hold_on_evidence_that_does_not_exist_is_not_recorded(store: MetadataStore) -> None:
    assert not store.add_hold(hold(evidence_id="ghost"))
    assert store.holds("ghost") == []


def test_expired_lists_only_expired_unheld_evidence_soonest_first(store: MetadataStore) -> None:
    late = stored(store, "e-late", "01" * 32, expires=9 * DAY)
    soon = stored(store, "e-soon", "02" * 32, expires=8 * DAY)
    stored(store, "e-held", "03" * 32, expires=8 * DAY)
    stored(store, "e-forever", "04" * 32, expires=None)
    stored(store, "e-future", "05" * 32, expires=12 * DAY)
    store.add_hold(hold("h1", "e-held"))
    assert store.expired(10 * DAY, limit=10) == [soon, late]
    assert store.expired(10 * DAY, limit=1) == [soon]
    store.release_hold("h1", by="supervisor:lee", at_ns=9, reason="case closed")
    assert [e.id for e in store.expired(10 * DAY, limit=10)] == ["e-held", "e-soon", "e-late"]


# Purge and tombstones


def test_purging_replaces_the_evidence_and_its_upload_by_a_tombstone(store: MetadataStore) -> None:
    e = stored(store)
    assert store.purge_evidence(tombstone(e))
    assert (store.evidence("e1"), store.receipt("e1"), store.retention("e1")) == (None,) * 3
    assert (store.upload("u-e1"), store.upload_for_manifest(SHA)) == (None, None)
    assert store.expected_segments("u-e1") == []
    assert store.tombstone_for_manifest(SHA) == tombstone(e)
    assert store.tombstones(limit=10, offset=0) == [tombstone(e)]


def test_counts_are_the_evidence_held_and_the_tombstones(store: MetadataStore) -> None:
    assert store.counts() == (0, 0)
    first = stored(store)
    stored(store, "e2", OTHER)
    assert store.counts() == (2, 0)

    assert store.purge_evidence(tombstone(first))

    assert store.counts() == (1, 1)


def test_a_purge_after_a_hold_arrived_returns_false_and_changes_nothing(
    store: MetadataStore,
) -> None:
    e = stored(store)
    store.add_hold(hold())
    assert not store.purge_evidence(tombstone(e))
    assert (store.evidence("e1"), store.tombstone_for_manifest(SHA)) == (e, None)


def test_a_purge_before_expiry_returns_false(store: MetadataStore) -> None:
    e = stored(store)
    assert not store.purge_evidence(tombstone(e, purged_at_ns=10 * DAY - 1))
    assert store.evidence("e1") == e


def test_a_purged_manifest_cannot_be_uploaded_again(store: MetadataStore) -> None:
    store.purge_evidence(tombstone(stored(store)))
    with pytest.raises(Conflict, match="purged"):
        store.add_upload(upload("u9"), SEGMENTS)
    assert store.upload("u9") is None


def test_tombstones_are_listed_in_purge_order_in_pages(store: MetadataStore) -> None:
    first = stored(store, "e1", "01" * 32)
    second = stored(store, "e2", "02" * 32)
    store.purge_evidence(tombstone(second, purged_at_ns=11 * DAY))
    store.purge_evidence(tombstone(first, purged_at_ns=12 * DAY))
    assert [t.evidence_id for t in store.tombstones(limit=10, offset=0)] == ["e2", "e1"]
    assert [t.evidence_id for t in store.tombstones(limit=10, offset=1)] == ["e1"]
    assert store.tombstone_for_manifest(OTHER) is None


# Audit


def test_audit_lines_are_appended_in_order_after_the_tail_they_were_built_on(
    store: MetadataStore,
) -> None:
    tails: list[AuditTail | None] = []

    def build(*lines: bytes, checkpoint_at: int | None = None) -> Callable[..., list[AuditLine]]:
        def append(tail: AuditTail | None) -> list[AuditLine]:
            tails.append(tail)
            return audit_lines(*lines, checkpoint_at=checkpoint_at)

        return append

    store.append_audit(build(b"start\n", b"one\n"))
    store.append_audit(build(b"two\n", b"check\n", checkpoint_at=1))
    store.append_audit(build())  # nothing to add
    store.append_audit(build(b"three\n"))
    assert tails == [
        None,
        AuditTail(1, b"one\n", 2),  # no checkpoint yet: every record is unsigned
        AuditTail(3, b"check\n", 0),
        AuditTail(3, b"check\n", 0),
    ]
    assert store.audit_log() == b"start\none\ntwo\ncheck\nthree\n"


def test_an_audit_build_that_fails_appends_nothing(store: MetadataStore) -> None:
    store.append_audit(lambda tail: audit_lines(b"start\n"))

    def broken(tail: AuditTail | None) -> list[AuditLine]:
        raise RuntimeError("signing failed")

    with pytest.raises(RuntimeError, match="signing failed"):
        store.append_audit(broken)
    assert store.audit_log() == b"start\n"


def test_everything_survives_reopening(opener: Opener) -> None:
    first = opener()
    first.add_upload(upload("u1", SHA), SEGMENTS)
    first.acknowledge("u1", 1)
    gone = stored(first, "e2", OTHER)
    first.purge_evidence(tombstone(gone))
    first.append_audit(lambda tail: audit_lines(b"start\n", b"check\n", checkpoint_at=1))
    first.close()
    reopened = opener()
    try:
        assert reopened.upload_for_manifest(SHA) == upload("u1", SHA)
        assert reopened.acknowledged("u1") == [1]
        assert reopened.tombstone_for_manifest(OTHER) == tombstone(gone)
        assert reopened.audit_log() == b"start\ncheck\n"
        tails: list[AuditTail | None] = []

        def nothing(tail: AuditTail | None) -> list[AuditLine]:
            tails.append(tail)
            return []

        reopened.append_audit(nothing)
        assert tails == [AuditTail(1, b"check\n", 0)]
    finally:
        reopened.close()


# Foreign files


def stored_file(evidence_id: str = "f1", sha: str = SHA, at_ns: int = 5) -> StoredFile:
    return StoredFile(evidence_id, sha, 1234, "MOV_0001.MP4", "dock:bay-1", at_ns)


def test_a_file_is_read_back_with_its_receipt(store: MetadataStore) -> None:
    assert store.add_file(stored_file(), b"file receipt") == stored_file()
    assert store.file_for_sha256(SHA) == stored_file()
    assert store.file_receipt("f1") == b"file receipt"
    assert (store.file_for_sha256(OTHER), store.file_receipt("f2")) == (None, None)


def test_a_second_file_with_the_same_bytes_returns_the_first(store: MetadataStore) -> None:
    store.add_file(stored_file("f1"), b"first")
    assert store.add_file(stored_file("f2", at_ns=9), b"second") == stored_file("f1")
    assert store.file_receipt("f1") == b"first" and store.file_receipt("f2") is None


def test_files_are_listed_oldest_first_in_pages_and_survive_a_reopen(opener: Opener) -> None:
    first = opener()
    first.add_file(stored_file("f2", OTHER, at_ns=9), b"r2")
    first.add_file(stored_file("f1", SHA, at_ns=5), b"r1")
    first.close()
    again = opener()
    try:
        assert [f.evidence_id for f in again.list_files(limit=10, offset=0)] == ["f1", "f2"]
        assert [f.evidence_id for f in again.list_files(limit=1, offset=1)] == ["f2"]
    finally:
        again.close()


def test_files_are_not_clip_evidence(store: MetadataStore) -> None:
    store.add_file(stored_file(), b"r")
    assert store.list_evidence(limit=10, offset=0) == [] and store.counts() == (0, 0)
