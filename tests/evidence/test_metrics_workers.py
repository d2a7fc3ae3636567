"""``bwc evidence serve --workers 2``: whichever worker answers ``/metrics``, it counts them all.

A real server (a subprocess) takes a burst of clips on new connections from several threads, so
both workers ingest some; each worker's own counts are read from its file in the metrics folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from prometheus_client.multiprocess import MultiProcessCollector

from evidence.metrics import MULTIPROC_FOLDER
from tests.evidence.conftest import _token_headers, seal
from tests.evidence.test_metrics import parse
from tests.evidence.test_serve_cli import free_port
from tests.evidence.test_serve_workers import (
    TIMEOUT_S,
    WORKERS,
    _stop,
    _store_with_config,
    _upload,
    _wait_until_serving,
)

CLIPS = 12
THREADS = 6
SCRAPES = 6
SEGMENT_BYTES = 4096


@dataclass
class Served:
    scrapes: list[dict[str, float]]  #: each on a new connection, so either worker answers
    per_worker_bytes: dict[str, float]  #: bytes ingested, from each worker's own file
    total_bytes: int  #: of every segment sent
    stale_file_gone: bool  #: a file left by an earlier run was cleaned at start


def _bytes_by_worker(folder: Path) -> dict[str, float]:
    found = {}
    for path in folder.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == "bwc_store_bytes_ingested_total":
                    found[path.stem.removeprefix("counter_")] = sample.value
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    root = tmp_path_factory.mktemp("metrics-workers")
    device_key, agency_key = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    cfg, config = _store_with_config(root, device_key)
    stale = cfg.data_dir / MULTIPROC_FOLDER / "counter_999999.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a run that was killed")
    clips = [
        seal(device_key, agency_key, [os.urandom(SEGMENT_BYTES) for _ in range(2)])
        for _ in range(CLIPS)
    ]
    port, log = free_port(), root / "serve.log"
    command = [sys.executable, "-m", "bwc", "evidence", "serve", "--config", str(config),
               "--workers", str(WORKERS), "--port", str(port), "--purge-every", "0"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(url, process, log)
        stale_file_gone = not stale.exists()
        dock = _token_headers(cfg, "dock")
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda c: _upload(url, dock, c, None), clips))
        scrapes = []
        for _ in range(SCRAPES):
            answer = requests.get(f"{url}/metrics", timeout=TIMEOUT_S)
            assert answer.status_code == 200, answer.text
            scrapes.append(parse(answer.text))
        per_worker = _bytes_by_worker(cfg.data_dir / MULTIPROC_FOLDER)
    finally:
        if process.poll() is None:
            _stop(process)
    total = sum(len(blob) for clip in clips for blob in clip.segments.values())
    return Served(scrapes, per_worker, total, stale_file_gone)


def test_both_workers_ingested_part_of_the_burst(served: Served) -> None:
    # Without this the summing test below could pass with one worker doing everything.
    assert len(served.per_worker_bytes) == WORKERS, served.per_worker_bytes
    assert all(n > 0 for n in served.per_worker_bytes.values()), served.per_worker_bytes


def test_every_scrape_reports_the_bytes_of_all_workers_together(served: Served) -> None:
    assert sum(served.per_worker_bytes.values()) == served.total_bytes
    for seen in served.scrapes:
        assert seen["bwc_store_bytes_ingested_total"] == served.total_bytes
        assert seen["bwc_store_segment_upload_seconds_count"] == CLIPS * 2
        assert seen["bwc_store_ingest_seconds_count"] == CLIPS
        assert seen["bwc_store_clips_stored_total"] == CLIPS


def test_counts_left_by_an_earlier_run_are_cleaned_at_start(served: Served) -> None:
    assert served.stale_file_gone
