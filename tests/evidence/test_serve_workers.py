"""``bwc evidence serve --workers 2``: two API processes share one embedded store correctly.

One real server (a subprocess, configured by ``--config`` with the port given as a flag) takes a
burst of clips from several threads at once, each request on a new connection so that both
workers accept some. Every test then checks one property of that same outcome, including the
store's audit log, written by both workers and the supervising process (the startup purge).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.audit import verify_audit
from custody.clip import SealedClip
from custody.keys import load_signing_key, public_pem, write_atomic
from custody.receipt import verify_receipt
from evidence.config import EvidenceConfig
from evidence.store import bootstrap, open_metadata
from tests.evidence.conftest import DEVICE_ID, MAX_BODY_BYTES, _token_headers, seal
from tests.evidence.test_serve_cli import free_port

WORKERS = 2
CLIPS = 16
THREADS = 8
SEGMENT_BYTES = 16 * 1024  # well above what a worker writes when idle (see served_both)
TIMEOUT_S = 30.0
START_TIMEOUT_S = 60.0  # a busy 2-core box starts 3 interpreters slowly
STOP_TIMEOUT_S = 15.0


@dataclass
class Outcome:
    """What the burst of uploads and the shutdown left behind."""

    clips: list[SealedClip]
    receipts: list[bytes]  #: one per clip, same order
    twin: SealedClip  #: uploaded twice at once
    twin_receipts: tuple[bytes, bytes]
    listed: list[dict[str, object]]  #: GET /v1/evidence after the burst
    written: dict[int, int]  #: bytes each worker wrote during the burst (/proc/PID/io wchar)
    exit_code: int | None  #: of the server after SIGTERM; None if it did not exit in time
    workers_left: list[int]  #: worker pids still alive after the server exited
    audit: bytes
    store_public: Ed25519PublicKey
    log: str


def _worker_pids(parent: int) -> list[int]:
    """uvicorn's worker processes: the parent's children started by multiprocessing's spawn."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == parent and b"multiprocessing.spawn" in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def _written_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/io has no wchar line")


def _upload(
    url: str, dock: dict[str, str], clip: SealedClip, barrier: threading.Barrier | None
) -> bytes:
    """One clip as a dock sends it, each request on a new connection; returns the receipt."""
    if barrier is not None:
        barrier.wait(TIMEOUT_S)  # the twin's two uploads create and complete at the same time
    created = requests.post(
        f"{url}/v1/uploads", data=clip.manifest, headers=dock, timeout=TIMEOUT_S
    )
    assert created.status_code in (200, 201), created.text
    upload = f"{url}/v1/uploads/{created.json()['upload_id']}"
    for index, blob in sorted(clip.segments.items()):
        put = requests.put(f"{upload}/segments/{index}", data=blob, headers=dock, timeout=TIMEOUT_S)
        assert put.status_code == 200, put.text
    if barrier is not None:
        barrier.wait(TIMEOUT_S)
    completed = requests.post(f"{upload}/complete", headers=dock, timeout=TIMEOUT_S)
    assert completed.status_code == 200, completed.text
    return completed.content


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers and every worker has built its app (one answering is not all)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"bwc evidence serve exited {process.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            answers = requests.get(f"{url}/openapi.json", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            # The port is bound before any worker accepts: the request may wait past its timeout.
            answers = False
        if answers and log.read_bytes().count(b"Application startup complete.") >= WORKERS:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"bwc evidence serve did not answer within {START_TIMEOUT_S} s")
        time.sleep(0.05)  # polling with a deadline: the server offers no readiness signal


def _stop(process: subprocess.Popen[bytes]) -> int | None:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def _burst(
    url: str, dock: dict[str, str], clips: list[SealedClip], twin: SealedClip
) -> tuple[list[bytes], tuple[bytes, bytes]]:
    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(THREADS) as pool:
        twins = [pool.submit(_upload, url, dock, twin, barrier) for _ in range(2)]
        receipts = list(pool.map(lambda c: _upload(url, dock, c, None), clips))
        return receipts, (twins[0].result(), twins[1].result())


def _store_with_config(root: Path, device_key: Ed25519PrivateKey) -> tuple[EvidenceConfig, Path]:
    """A bootstrapped store with ``DEVICE_ID`` enrolled, and a config file naming it."""
    cfg = EvidenceConfig(data_dir=root / "store", max_body_bytes=MAX_BODY_BYTES)
    bootstrap(cfg)
    write_atomic(cfg.devices_path / f"{DEVICE_ID}.pub.pem", public_pem(device_key), mode=0o644)
    config = root / "bwc.toml"
    # The port in the file is overridden by the flag: proves flags win over --config.
    config.write_text(
        f'[evidence]\ndata_dir = "{cfg.data_dir}"\nport = 1\nmax_body_bytes = {MAX_BODY_BYTES}\n'
    )
    return cfg, config


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    root = tmp_path_factory.mktemp("workers")
    device_key, agency_key = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    cfg, config = _store_with_config(root, device_key)
    clips = [
        seal(device_key, agency_key, [os.urandom(SEGMENT_BYTES) for _ in range(3)])
        for _ in range(CLIPS)
    ]
    twin = seal(device_key, agency_key, [os.urandom(SEGMENT_BYTES) for _ in range(3)])
    port, log = free_port(), root / "serve.log"
    command = [sys.executable, "-m", "bwc", "evidence", "serve", "--config", str(config),
               "--workers", str(WORKERS), "--port", str(port)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(url, process, log)
        workers = _worker_pids(process.pid)
        before = {pid: _written_bytes(pid) for pid in workers}
        dock = _token_headers(cfg, "dock")
        receipts, twin_receipts = _burst(url, dock, clips, twin)
        written = {pid: _written_bytes(pid) - before[pid] for pid in workers}
        listed = requests.get(
            f"{url}/v1/evidence", params={"limit": 1000}, headers=_token_headers(cfg, "records"),
            timeout=TIMEOUT_S,
        ).json()  # fmt: skip
    finally:
        exit_code = _stop(process) if process.poll() is None else process.returncode
    metadata = open_metadata(cfg)
    try:
        audit = metadata.audit_log()
    finally:
        metadata.close()
    return Outcome(
        clips, receipts, twin, twin_receipts, listed, written, exit_code,
        [pid for pid in workers if Path(f"/proc/{pid}").exists()], audit,
        load_signing_key(cfg.receipt_key_path).public_key(), log.read_text(),
    )  # fmt: skip


def test_the_server_runs_the_requested_number_of_api_processes(outcome: Outcome) -> None:
    assert len(outcome.written) == WORKERS, outcome.log
    assert outcome.log.count("Started server process") == WORKERS


def test_both_api_processes_took_part_in_the_burst(outcome: Outcome) -> None:
    # An idle worker writes only its health-check answers (a few bytes a second); one that
    # stored a segment wrote at least its bytes. Without this the other tests prove nothing.
    assert all(n >= SEGMENT_BYTES for n in outcome.written.values()), outcome.written


def test_every_clip_ingested_at_once_gets_a_receipt_that_verifies(outcome: Outcome) -> None:
    for clip, receipt in zip(outcome.clips, outcome.receipts, strict=True):
        report = verify_receipt(receipt, outcome.store_public, clip.manifest)
        assert report.ok, report.failures


def test_every_clip_is_listed_exactly_once(outcome: Outcome) -> None:
    counts = Counter(str(e["clip_id"]) for e in outcome.listed)
    expected = [c.clip_id for c in outcome.clips] + [outcome.twin.clip_id]
    assert counts == Counter(expected)


def test_the_same_clip_uploaded_twice_at_once_gets_equal_receipts(outcome: Outcome) -> None:
    first, second = outcome.twin_receipts
    assert first == second
    assert verify_receipt(first, outcome.store_public, outcome.twin.manifest).ok


def test_the_audit_log_written_by_every_process_is_one_verified_chain(outcome: Outcome) -> None:
    report = verify_audit(outcome.audit, [outcome.store_public])
    assert report.ok, report.first_failure_text()
    stored = outcome.audit.count(b'"evidence.stored"')
    assert stored == CLIPS + 1, f"{stored} evidence.stored records for {CLIPS + 1} clips"
    assert b'"purge.run"' in outcome.audit  # the supervising process appended to it too


def test_sigterm_stops_the_server_and_its_workers(outcome: Outcome) -> None:
    assert outcome.exit_code == 0, outcome.log[-2000:]
    assert outcome.workers_left == []
