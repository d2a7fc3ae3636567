"""What each API process does in the cross-process tests; run in fresh 'spawn' processes.

Each worker opens its own store from the shared configuration (its own SQLite connection or
PostgreSQL pool, its own StoreAudit and IngestService), waits at the barrier so that all of them
act at once, and reports through the queue; a failure is a non-zero exit code.
"""

from __future__ import annotations

import json
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from custody.keys import load_signing_key
from evidence.audit_log import StoreAudit
from evidence.config import EvidenceConfig
from evidence.store import open_metadata, open_service

BARRIER_TIMEOUT_S = 90  # under the 120 s test timeout; imports are slow on a loaded machine
AUDIT_EVENT = "test.appended"


def append_audit_records(
    cfg: EvidenceConfig,
    worker: int,
    count: int,
    checkpoint_every: int,
    ready: Barrier,
    results: Queue[bytes],
) -> None:
    """Start (or join) the store's audit log, append ``count`` records; report their seqs."""
    metadata = open_metadata(cfg)
    try:
        key = load_signing_key(cfg.receipt_key_path)
        ready.wait(BARRIER_TIMEOUT_S)
        audit = StoreAudit(metadata, key, checkpoint_every=checkpoint_every)
        seqs = [
            audit.record(f"worker:{worker}", AUDIT_EVENT, {"worker": worker, "n": n})
            for n in range(count)
        ]
        results.put(json.dumps(seqs).encode())
    finally:
        metadata.close()


def complete_upload(
    cfg: EvidenceConfig, upload_id: str, actor: str, ready: Barrier, results: Queue[bytes]
) -> None:
    """Complete an upload whose segments are all sent; report the receipt's bytes."""
    service = open_service(cfg)
    try:
        ready.wait(BARRIER_TIMEOUT_S)
        results.put(service.complete(upload_id, actor).to_bytes())
    finally:
        service.metadata.close()


def create_upload(
    cfg: EvidenceConfig, manifest: bytes, actor: str, ready: Barrier, results: Queue[bytes]
) -> None:
    """Open an upload for a sealed manifest; report the upload id."""
    service = open_service(cfg)
    try:
        ready.wait(BARRIER_TIMEOUT_S)
        results.put(service.create_upload(manifest, actor).upload.id.encode())
    finally:
        service.metadata.close()
