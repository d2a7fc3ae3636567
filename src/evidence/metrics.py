"""The evidence store's Prometheus metrics: what it ingested, refused and purged.

:class:`StoreMetrics` owns its own ``CollectorRegistry`` (never prometheus_client's global one),
so several apps in one process, and tests, each count only their own requests. Two kinds:

- counted by the API process as requests happen: bytes of segments accepted, seconds per segment
  upload and per completed clip, requests refused by reason;
- read from the metadata store at scrape time: clips stored (evidence held plus tombstones, so
  every clip ever stored) and clips purged (tombstones). Those are right whichever process did
  the work: another API worker, the supervising process's scheduled purge, or a cron
  ``bwc evidence purge``, and they survive restarts.

With ``bwc evidence serve --workers N`` every worker counts its own requests. The supervising
process gives the workers :data:`MULTIPROC_ENV` (see :func:`multiprocess_environment`), so
prometheus_client writes each worker's values to files in that folder and a scrape, whichever
worker answers it, sums them all (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from evidence.errors import StoreSetupError
from evidence.storage import MetadataStore

#: prometheus_client's switch to multiprocess mode; read when prometheus_client is imported
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: the folder under the data folder where the workers' values live while the server runs
MULTIPROC_FOLDER = "metrics"

#: seconds per segment upload (body over the network, check, store)
SEGMENT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: seconds to complete a clip: verify it all again, sign the receipt, record it
INGEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

#: the reason label of a refused request, by HTTP status (evidence/errors.py)
REFUSAL_REASONS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    416: "range_not_satisfiable",
    422: "verification_failed",
}


class StoreMetrics:
    """One API app's metrics, in a registry of their own."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.bytes_ingested = Counter(
            "bwc_store_bytes_ingested", "Bytes of clip segments accepted (checked and stored)",
            registry=r,
        )  # fmt: skip
        self.refused = Counter(
            "bwc_store_requests_refused", "Requests answered with a 4xx status, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.segment_seconds = Histogram(
            "bwc_store_segment_upload_seconds",
            "Seconds to receive, check and store one segment upload",
            buckets=SEGMENT_BUCKETS, registry=r,
        )  # fmt: skip
        self.ingest_seconds = Histogram(
            "bwc_store_ingest_seconds",
            "Seconds to answer a successful complete: verify the clip whole, sign its receipt",
            buckets=INGEST_BUCKETS, registry=r,
        )  # fmt: skip
        self._stored = _StoredCollector(metadata)
        r.register(self._stored)

    def segment_accepted(self, size: int, seconds: float) -> None:
        self.bytes_ingested.inc(size)
        self.segment_seconds.observe(seconds)

    def clip_completed(self, seconds: float) -> None:
        self.ingest_seconds.observe(seconds)

    def answered(self, status: int) -> None:
        """Count a response by its status: 4xx are refusals."""
        if 400 <= status < 500:
            self.refused.labels(reason=REFUSAL_REASONS.get(status, f"http_{status}")).inc()

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The body and content type of ``GET /metrics`` for a request's ``Accept`` header.

        In multiprocess mode the counted metrics are every worker's, summed from their files.
        """
        registry = self.registry
        folder = os.environ.get(MULTIPROC_ENV)
        if folder:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, folder)  # type: ignore[no-untyped-call]  # untyped
            registry.register(self._stored)
        encode, content_type = choose_encoder(accept)
        return encode(registry), content_type


def multiprocess_environment(data_dir: Path) -> dict[str, str]:
    """The environment entry that makes API workers count into one folder, emptied first.

    Emptied at every start: files of workers of an earlier run would be added to this run's.
    """
    folder = data_dir / MULTIPROC_FOLDER
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for old in folder.glob("*.db"):
            old.unlink()
    except OSError as exc:
        raise StoreSetupError(
            f"cannot prepare the metrics folder {folder}: {exc}; check the data folder"
        ) from exc
    return {MULTIPROC_ENV: str(folder)}


class _StoredCollector(Collector):
    """Clips stored and purged, counted in the metadata store when Prometheus scrapes."""

    def __init__(self, metadata: MetadataStore) -> None:
        self._metadata = metadata

    def collect(self) -> Iterator[CounterMetricFamily]:
        held, purged = self._metadata.counts()
        yield CounterMetricFamily(
            "bwc_store_clips_stored",
            "Clips ever stored with a signed receipt (held now or purged since)",
            value=held + purged,
        )
        yield CounterMetricFamily(
            "bwc_store_purged", "Clips purged at the end of their retention", value=purged
        )
