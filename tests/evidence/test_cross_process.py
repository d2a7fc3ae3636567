"""Several API processes sharing one deployment (SQLite file or PostgreSQL) stay consistent.

Real processes ('spawn'), released together by a barrier: the database, not a thread lock,
keeps the audit chain unforked and each manifest to one upload and one evidence record.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from collections.abc import Callable
from multiprocessing.context import SpawnContext
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.audit import CHECKPOINT, verify_audit
from custody.clip import SealedClip
from evidence.config import EvidenceConfig
from evidence.store import open_metadata, open_service
from tests.evidence import cross_process_workers as workers

JOIN_TIMEOUT_S = 120


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(request: pytest.FixtureRequest, cfg: EvidenceConfig) -> EvidenceConfig:
    """The shared configuration every process opens: SQLite in the data folder, or PostgreSQL."""
    if request.param == "sqlite":
        return cfg
    url: str = request.getfixturevalue("pg_url")
    return cfg.model_copy(update={"database_url": url})


@pytest.fixture
def spawn() -> SpawnContext:
    return multiprocessing.get_context("spawn")


def run_together(
    ctx: SpawnContext, target: Callable[..., None], jobs: list[tuple[Any, ...]]
) -> list[bytes]:
    """Run ``target(*job, barrier, queue)`` in one process per job; their reports."""
    ready = ctx.Barrier(len(jobs))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*job, ready, results)) for job in jobs]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join(JOIN_TIMEOUT_S)
        assert [p.exitcode for p in procs] == [0] * len(procs), "a worker failed (see stderr)"
        return [results.get(timeout=JOIN_TIMEOUT_S) for _ in jobs]
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
        results.close()


def test_four_processes_appending_audit_records_make_one_unbroken_chain(
    deployment: EvidenceConfig, spawn: SpawnContext, store_public: Ed25519PublicKey
) -> None:
    count, every = 40, 7
    reports = run_together(
        spawn, workers.append_audit_records, [(deployment, w, count, every) for w in range(4)]
    )
    seqs = [seq for report in reports for seq in json.loads(report)]

    metadata = open_metadata(deployment)
    log = metadata.audit_log()
    metadata.close()
    report = verify_audit(log, [store_public])
    assert report.ok, report.failures
    records = [json.loads(line) for line in log.splitlines()]
    appended = Counter(
        (r["data"]["worker"], r["data"]["n"]) for r in records if r["event"] == workers.AUDIT_EVENT
    )
    assert appended == Counter({(w, n): 1 for w in range(4) for n in range(count)})
    assert [r["event"] for r in records].count("audit.start") == 1
    assert sorted(seqs) == [n for n, r in enumerate(records) if r["event"] == workers.AUDIT_EVENT]
    # One checkpoint after every 7 records, whichever process wrote them: the count is shared.
    assert report.checkpoints == list(range(every, len(records), every + 1))
    assert [n for n, r in enumerate(records) if r["event"] == CHECKPOINT] == report.checkpoints


def sent(cfg: EvidenceConfig, clip: SealedClip) -> str:
    """An upload of ``clip`` with every segment sent, not yet completed; its id."""
    service = open_service(cfg)
    try:
        upload_id = service.create_upload(clip.manifest, "dock:bay-1").upload.id
        for index, data in sorted(clip.segments.items()):
            service.put_segment(upload_id, index, data, "dock:bay-1")
        return upload_id
    finally:
        service.metadata.close()


def test_two_processes_completing_one_clip_store_it_once_with_one_receipt(
    deployment: EvidenceConfig,
    spawn: SpawnContext,
    clip: SealedClip,
    store_public: Ed25519PublicKey,
) -> None:
    upload_id = sent(deployment, clip)
    receipts = run_together(
        spawn, workers.complete_upload, [(deployment, upload_id, f"dock:bay-{n}") for n in (1, 2)]
    )
    assert receipts[0] == receipts[1]
    metadata = open_metadata(deployment)
    try:
        assert len(metadata.list_evidence(limit=10, offset=0)) == 1
        assert verify_audit(metadata.audit_log(), [store_public]).ok
    finally:
        metadata.close()


def test_two_processes_creating_an_upload_for_one_manifest_share_it(
    deployment: EvidenceConfig, spawn: SpawnContext, clip: SealedClip
) -> None:
    ids = run_together(
        spawn, workers.create_upload, [(deployment, clip.manifest, f"dock:bay-{n}") for n in (1, 2)]
    )
    assert ids[0] == ids[1]
    metadata = open_metadata(deployment)
    try:
        upload = metadata.upload(ids[0].decode())
        assert upload is not None and upload.segment_count == len(clip.segments)
    finally:
        metadata.close()
