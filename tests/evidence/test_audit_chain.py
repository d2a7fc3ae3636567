"""The store's audit log is tamper-evident: editing one stored record is caught."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.audit import verify_audit
from custody.canonical import canonical_bytes
from evidence.config import EvidenceConfig
from evidence.errors import StoreSetupError
from evidence.ingest import IngestService
from evidence.retention import RetentionService
from evidence.store import open_service
from tests.evidence.test_retention import SUPERVISOR, ManualClock, store_clip


@pytest.fixture
def service(cfg: EvidenceConfig) -> Iterator[IngestService]:
    opened = open_service(cfg, wall_ns=ManualClock())
    yield opened
    opened.metadata.close()


@pytest.fixture
def logged(
    service: IngestService, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> IngestService:
    """A store whose log holds an ingest, a legal hold and a signed checkpoint after it."""
    evidence_id = store_clip(service, device_key, agency_key)
    RetentionService.beside(service).place_hold(evidence_id, "2026-CR-0113", "robbery", SUPERVISOR)
    service.audit.checkpoint()
    return service


def edit_record(cfg: EvidenceConfig, event: str, field: str, value: str) -> int:
    """Rewrite one field of the data of the first ``event`` record in SQLite; return its seq."""
    with closing(sqlite3.connect(cfg.database_path)) as db, db:
        for row_id, line in db.execute("SELECT seq, line FROM audit ORDER BY seq").fetchall():
            record = json.loads(line)
            if record["event"] == event:
                record["data"][field] = value
                edited = canonical_bytes(record, what="edited record") + b"\n"
                db.execute("UPDATE audit SET line = ? WHERE seq = ?", (edited, row_id))
                return int(record["seq"])
    raise AssertionError(f"no {event} record in the audit log")


def test_the_untouched_log_verifies_with_the_store_key(
    logged: IngestService, store_public: Ed25519PublicKey
) -> None:
    report = verify_audit(logged.metadata.audit_log(), [store_public])
    assert report.ok, report.failures
    assert report.broken_seq is None


def test_an_edited_hold_reason_is_reported_at_the_first_broken_link(
    logged: IngestService, cfg: EvidenceConfig, store_public: Ed25519PublicKey
) -> None:
    seq = edit_record(cfg, "hold.placed", "reason", "routine review")
    report = verify_audit(logged.metadata.audit_log(), [store_public])
    assert not report.ok
    # The edited record still parses; the record after it no longer links to it.
    assert report.broken_seq == seq + 1
    assert report.records == seq + 1
    assert f"first broken link at seq {seq + 1}" in report.first_failure_text()
    assert "altered or removed" in report.first_failure_text()


def test_an_edited_signed_checkpoint_fails_its_signature(
    logged: IngestService, cfg: EvidenceConfig, store_public: Ed25519PublicKey
) -> None:
    edit_record(cfg, "audit.checkpoint", "key_id", "0" * 64)
    report = verify_audit(logged.metadata.audit_log(), [store_public])
    assert not report.ok
    assert "signed by an unknown key" in report.first_failure_text()


def test_a_store_whose_log_was_edited_refuses_to_open(
    logged: IngestService, cfg: EvidenceConfig
) -> None:
    edit_record(cfg, "evidence.stored", "byte_count", "0")
    with pytest.raises(StoreSetupError, match=r"does not verify with the store key.*seq"):
        open_service(cfg)
