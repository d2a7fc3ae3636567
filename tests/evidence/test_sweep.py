"""No blob outlives its evidence: the orphan sweep after a crashed or failed purge.

A purge commits the tombstone, then deletes the blobs. The states a crash or a refused delete
leave in between are built for real here (a tombstone committed with the blobs still stored, a
process killed with SIGKILL at that instant, a blob store that refuses one delete) and the
sweep must clear them, without touching the blobs of open uploads or of stored evidence.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bwc.cli import main
from custody.audit import verify_audit
from custody.keys import load_signing_key
from evidence.config import NS_PER_DAY, EvidenceConfig
from evidence.errors import BlobLocked
from evidence.ingest import IngestService, manifest_key
from evidence.retention import SCHEDULE_ACTOR, PurgeSchedule, RetentionService
from evidence.storage import BlobStore, Evidence, Tombstone
from evidence.store import open_service
from evidence.sweep import SWEEP_ACTOR, sweep_orphans
from tests.evidence.conftest import Live, seal
from tests.evidence.test_retention import (
    ADMIN,
    DOCK,
    START_NS,
    ManualClock,
    audit_records,
    store_clip,
)
from tests.evidence.test_serve_cli import free_port

EXPIRED_NS = START_NS + 15 * NS_PER_DAY  # routine clips are kept 14 days


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(cfg: EvidenceConfig, clock: ManualClock) -> Iterator[IngestService]:
    opened = open_service(cfg, wall_ns=clock)
    yield opened
    opened.metadata.close()


def stored(
    service: IngestService, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> Evidence:
    evidence = service.metadata.evidence(store_clip(service, device_key, agency_key))
    assert evidence is not None
    return evidence


def tombstone_only(service: IngestService, evidence: Evidence, now_ns: int) -> None:
    """What a purge that crashed right after its commit leaves: a tombstone, blobs intact."""
    retention = service.metadata.retention(evidence.id)
    assert retention is not None and retention.expires_at_ns is not None
    tombstone = Tombstone(
        evidence.id, evidence.manifest_sha256, evidence.clip_id, evidence.device_id,
        evidence.officer_id, evidence.stored_at_ns, retention.category, retention.expires_at_ns,
        "retention category routine: 14 days", ADMIN, now_ns,
    )  # fmt: skip
    committed = service.metadata.purge_evidence(tombstone)
    assert committed


def test_blobs_left_by_a_purge_that_crashed_after_its_commit_are_swept(
    service: IngestService,
    clock: ManualClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    evidence = stored(service, device_key, agency_key)
    clock.now_ns = EXPIRED_NS
    tombstone_only(service, evidence, clock.now_ns)
    left = service.blobs.keys(evidence.manifest_sha256)
    assert len(left) == evidence.segment_count + 1  # the segments and the manifest

    result = RetentionService.beside(service).sweep(ADMIN)

    assert (sorted(result.swept), result.failed) == (left, [])
    assert service.blobs.keys(evidence.manifest_sha256) == []
    [swept] = audit_records(service, "blobs.swept")
    assert swept["actor"] == ADMIN
    assert swept["data"] == {
        "evidence_id": evidence.id, "manifest_sha256": evidence.manifest_sha256,
        "deleted": len(left), "failed": 0, "failed_keys": [],
    }  # fmt: skip


def test_the_sweep_leaves_blobs_of_open_uploads_and_of_stored_evidence_alone(
    service: IngestService,
    clock: ManualClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    kept = stored(service, device_key, agency_key)
    crashed = stored(service, device_key, agency_key)
    open_clip = seal(device_key, agency_key)
    upload = service.create_upload(open_clip.manifest, DOCK).upload
    service.put_segment(upload.id, 0, open_clip.segments[0], DOCK)
    before = {
        sha: service.blobs.keys(sha) for sha in (kept.manifest_sha256, upload.manifest_sha256)
    }
    tombstone_only(service, crashed, EXPIRED_NS)

    sweep_orphans(service.metadata, service.blobs, service.audit)

    after = {sha: service.blobs.keys(sha) for sha in before}
    assert after == before and all(after.values())
    assert service.blobs.keys(crashed.manifest_sha256) == []


def test_a_clip_prefix_that_no_record_names_is_left_for_the_upload_creating_it(
    service: IngestService, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> None:
    # create_upload stores the manifest blob before its record: a sweep in between must wait.
    manifest = seal(device_key, agency_key).manifest
    sha = hashlib.sha256(manifest).hexdigest()
    service.blobs.put(manifest_key(sha), manifest, sha)
    result = sweep_orphans(service.metadata, service.blobs, service.audit)
    assert (result.swept, service.blobs.keys(sha)) == ([], [manifest_key(sha)])


def test_a_sweep_with_nothing_to_do_writes_no_audit_record(
    service: IngestService, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> None:
    stored(service, device_key, agency_key)
    result = RetentionService.beside(service).sweep(ADMIN)
    assert (result.swept, result.failed) == ([], [])
    assert audit_records(service, "blobs.swept") == []


# Every purge sweeps: the command, the API and the schedule all go through RetentionService.purge.


@pytest.fixture
def crashed(
    service: IngestService,
    clock: ManualClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> Evidence:
    """A clip whose purge crashed after its commit: tombstoned, its blobs still stored."""
    evidence = stored(service, device_key, agency_key)
    clock.now_ns = EXPIRED_NS
    tombstone_only(service, evidence, clock.now_ns)
    return evidence


def test_the_scheduled_purge_sweeps_what_a_crash_left(
    service: IngestService, crashed: Evidence
) -> None:
    schedule = PurgeSchedule(RetentionService.beside(service), interval_s=3600)
    schedule.start()
    schedule.stop()  # returns once the first run is done
    assert service.blobs.keys(crashed.manifest_sha256) == []
    [swept] = audit_records(service, "blobs.swept")
    assert swept["actor"] == SCHEDULE_ACTOR


def test_the_purge_command_sweeps_what_a_crash_left(
    cfg: EvidenceConfig, service: IngestService, crashed: Evidence
) -> None:
    assert main(["evidence", "purge", "--data-dir", str(cfg.data_dir)]) == 0
    assert service.blobs.keys(crashed.manifest_sha256) == []


def test_the_purge_endpoint_sweeps_what_a_crash_left(
    cfg: EvidenceConfig, live: Live, crashed: Evidence
) -> None:
    admin = {"Authorization": f"Bearer {token_of(cfg, 'admin')}"}
    response = requests.post(f"{live.url}/v1/purge", headers=admin, timeout=10)
    assert response.status_code == 200 and response.json() == []
    assert live.service.blobs.keys(crashed.manifest_sha256) == []


def test_serve_sweeps_what_a_crash_left_before_it_serves(
    cfg: EvidenceConfig, service: IngestService, crashed: Evidence
) -> None:
    command = [
        sys.executable, "-m", "bwc", "evidence", "serve", "--data-dir", str(cfg.data_dir),
        "--port", str(free_port()), "--purge-every", "0",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:  # the banner's last line comes after the sweep
                if line.startswith("serving on"):
                    break
            else:
                pytest.fail(f"bwc evidence serve exited: {proc.wait()}")
        finally:
            proc.terminate()
    assert service.blobs.keys(crashed.manifest_sha256) == []
    [swept] = audit_records(service, "blobs.swept")
    assert swept["actor"] == SWEEP_ACTOR


def token_of(cfg: EvidenceConfig, role: str) -> str:
    entries = json.loads(cfg.tokens_path.read_text())["tokens"]
    return str(next(e["token"] for e in entries if e["role"] == role))


class RefusingBlobs:
    """A blob store that refuses to delete the keys in ``refused``, as a locked object would."""

    def __init__(self, inner: BlobStore, error: Exception) -> None:
        self.inner, self.error = inner, error
        self.refused: set[str] = set()

    def put(self, key: str, data: bytes, sha256: str) -> None:
        self.inner.put(key, data, sha256)

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        if key in self.refused:
            raise self.error
        self.inner.delete(key)

    def manifests(self) -> list[str]:
        return self.inner.manifests()

    def keys(self, manifest_sha256: str) -> list[str]:
        return self.inner.keys(manifest_sha256)


@pytest.fixture(
    params=[
        PermissionError(13, "Permission denied"),
        BlobLocked("the object is under Object Lock retention until 2026-07-01"),
    ],
    ids=["os-error", "object-lock"],
)
def refusing(service: IngestService, request: pytest.FixtureRequest) -> RefusingBlobs:
    return RefusingBlobs(service.blobs, request.param)


@pytest.fixture
def retention(service: IngestService, refusing: RefusingBlobs) -> RetentionService:
    return RetentionService(
        service.metadata, refusing, service.audit, service.policy, wall_ns=service.wall_ns
    )


def test_a_blob_that_cannot_be_deleted_does_not_stop_the_purge_of_the_other_clips(
    service: IngestService,
    retention: RetentionService,
    refusing: RefusingBlobs,
    clock: ManualClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    first, second = stored(service, device_key, agency_key), stored(service, device_key, agency_key)
    stuck = service.blobs.keys(first.manifest_sha256)[0]
    refusing.refused.add(stuck)
    clock.now_ns = EXPIRED_NS

    purged = retention.purge(ADMIN)

    assert sorted(t.evidence_id for t in purged) == sorted([first.id, second.id])
    assert service.blobs.keys(first.manifest_sha256) == [stuck]
    assert service.blobs.keys(second.manifest_sha256) == []
    assert retention.last_sweep is not None
    [failure] = retention.last_sweep.failed
    assert failure.key == stuck and str(refusing.error) in failure.reason
    [run] = audit_records(service, "purge.run")
    assert (run["data"]["purged"], run["data"]["blobs_left"]) == (2, 1)


def test_a_blob_left_by_a_failed_delete_is_swept_by_the_next_purge(
    service: IngestService,
    retention: RetentionService,
    refusing: RefusingBlobs,
    clock: ManualClock,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    evidence = stored(service, device_key, agency_key)
    stuck = service.blobs.keys(evidence.manifest_sha256)[-1]
    refusing.refused.add(stuck)
    clock.now_ns = EXPIRED_NS
    retention.purge(ADMIN)
    refusing.refused.clear()  # the lock expired, the disk was fixed

    assert retention.purge(ADMIN) == []

    assert service.blobs.keys(evidence.manifest_sha256) == []
    assert retention.last_sweep is not None and retention.last_sweep.swept == [stuck]
    first_try, second_try = audit_records(service, "blobs.swept")
    assert (first_try["data"]["deleted"], first_try["data"]["failed_keys"]) == (0, [stuck])
    assert (second_try["data"]["deleted"], second_try["data"]["failed"]) == (1, 0)


# A real process killed between the tombstone commit and the deletes. The child purges through
# a blob store that announces the first delete and then waits for ever; the parent kills it
# with SIGKILL at that moment, so the kill lands exactly between the commit and the deletes.


class AnnouncingBlobs(RefusingBlobs):
    def __init__(self, inner: BlobStore, reached: Event) -> None:
        super().__init__(inner, OSError("unused"))
        self.reached = reached

    def delete(self, key: str) -> None:
        self.reached.set()
        threading.Event().wait()  # never set: only the parent's SIGKILL ends this


def purge_until_killed(data_dir: Path, now_ns: int, reached: Event) -> None:
    """The child: purge the store in ``data_dir`` as of ``now_ns``."""
    service = open_service(EvidenceConfig(data_dir=data_dir), wall_ns=lambda: now_ns)
    blobs = AnnouncingBlobs(service.blobs, reached)
    RetentionService(service.metadata, blobs, service.audit, service.policy).purge(ADMIN)


def test_a_purge_killed_between_its_commit_and_the_deletes_leaves_blobs_the_sweep_removes(
    cfg: EvidenceConfig,
    device_key: Ed25519PrivateKey,
    agency_key: X25519PrivateKey,
) -> None:
    service = open_service(cfg, wall_ns=ManualClock())
    evidence = stored(service, device_key, agency_key)
    service.metadata.close()
    spawn = multiprocessing.get_context("spawn")
    reached = spawn.Event()
    child = spawn.Process(target=purge_until_killed, args=(cfg.data_dir, EXPIRED_NS, reached))
    child.start()
    try:
        assert reached.wait(60), "the child never reached the first blob delete"
        os.kill(child.pid or 0, signal.SIGKILL)
    finally:
        child.join(30)
    assert child.exitcode == -signal.SIGKILL

    after = open_service(cfg, wall_ns=lambda: EXPIRED_NS)
    try:
        assert after.metadata.evidence(evidence.id) is None
        assert after.metadata.tombstone_for_manifest(evidence.manifest_sha256) is not None
        left = after.blobs.keys(evidence.manifest_sha256)
        assert len(left) == evidence.segment_count + 1
        [purged] = audit_records(after, "evidence.purged")  # recorded before the deletes
        assert purged["data"]["evidence_id"] == evidence.id

        result = RetentionService.beside(after).sweep(ADMIN)

        assert sorted(result.swept) == left
        assert after.blobs.keys(evidence.manifest_sha256) == []
        public = load_signing_key(cfg.receipt_key_path).public_key()
        assert verify_audit(after.metadata.audit_log(), [public], require_checkpoint=False).ok
    finally:
        after.metadata.close()
