"""The dock's Prometheus metrics: what an armorer graphs about offloads, in the text format.

:class:`DockMetrics` owns its own ``CollectorRegistry`` (never prometheus_client's global one),
so several docks in one process, and tests, each count only their own work. The pipeline feeds
it through hooks where things happen (docs/dock-api.md names the metrics):

- ``clip_changed`` is the offloader's ``on_change``: a clip that reaches ``spooled`` passed every
  signature and hash check (verified), ``stored`` has a checked receipt, ``erased`` is gone from
  its camera, ``quarantined`` failed a check;
- ``retried`` is the retrier's ``on_retry``: one more attempt after a retryable failure;
- :meth:`DockMetrics.meter` wraps the evidence sink: bytes of each segment the sink
  acknowledged, the seconds each segment upload took, and sink errors by kind.

The queue depth and the clips per ledger state are read from the ledger at scrape time, so they
are right after a restart too (counters start at zero with the process, as Prometheus expects).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from dock.errors import DockError
from dock.ledger import ClipRow, ClipState, Ledger
from dock.store_client import EvidenceSink, UploadState

T = TypeVar("T")

#: seconds per segment upload: a ~1 s segment of a few MB over a LAN up to a slow uplink
UPLOAD_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_COUNTED_STATES = {
    ClipState.SPOOLED: "verified",
    ClipState.STORED: "stored",
    ClipState.ERASED: "erased",
    ClipState.QUARANTINED: "quarantined",
}


class DockMetrics:
    """One dock's counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.bytes_offloaded = Counter(
            "bwc_dock_bytes_offloaded", "Bytes of clip segments the evidence sink acknowledged",
            registry=r,
        )  # fmt: skip
        self.clips = {
            what: Counter(f"bwc_dock_clips_{what}", help_text, registry=r)
            for what, help_text in (
                ("verified", "Clips whose every signature and hash the dock verified"),
                ("stored", "Clips the evidence sink stored, with a receipt that verified"),
                ("erased", "Clips erased from their camera after their receipt"),
                ("quarantined", "Clips quarantined because a check failed (never erased)"),
            )
        }
        self.retries = Counter(
            "bwc_dock_retries", "Attempts repeated after a retryable failure", registry=r
        )
        self.store_errors = Counter(
            "bwc_dock_store_errors", "Failed requests to the evidence sink, by kind",
            ["kind"], registry=r,
        )  # fmt: skip
        self.upload_seconds = Histogram(
            "bwc_dock_upload_seconds", "Seconds to upload one segment to the evidence sink",
            buckets=UPLOAD_BUCKETS, registry=r,
        )  # fmt: skip

    def clip_changed(self, row: ClipRow) -> None:
        """The offloader's ``on_change``: count the states an armorer graphs."""
        what = _COUNTED_STATES.get(row.state)
        if what is not None:
            self.clips[what].inc()

    def retried(self, _exc: DockError) -> None:
        """The retrier's ``on_retry``."""
        self.retries.inc()

    def watch(self, ledger: Ledger) -> None:
        """Report the ledger's queue depth and clips per state at every scrape."""
        self.registry.register(_LedgerCollector(ledger))

    def meter(self, sink: EvidenceSink) -> EvidenceSink:
        """``sink``, counting what it acknowledges and timing each segment upload."""
        return _MeteredSink(sink, self)

    def store_failed(self, exc: DockError) -> None:
        self.store_errors.labels(kind=_kind(exc)).inc()


def metrics_response(metrics: DockMetrics, accept: str = "") -> tuple[bytes, str]:
    """The body and content type of ``GET /metrics`` for a request's ``Accept`` header.

    The Prometheus text format (0.0.4) unless the scraper asks for OpenMetrics.
    """
    encode, content_type = choose_encoder(accept)
    return encode(metrics.registry), content_type


class _LedgerCollector(Collector):
    """Gauges computed from the ledger when Prometheus scrapes (no state of their own)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def collect(self) -> Iterator[GaugeMetricFamily]:
        states = [row.state for row in self._ledger.rows()]
        yield GaugeMetricFamily(
            "bwc_dock_queue_depth",
            "Clips in the ledger not yet done or quarantined",
            value=sum(not s.terminal for s in states),
        )
        per_state = GaugeMetricFamily(
            "bwc_dock_ledger_clips", "Clips in the ledger by state", labels=["state"]
        )
        for state in ClipState:
            per_state.add_metric([state.value], states.count(state))
        yield per_state


class _MeteredSink:
    """An evidence sink that reports its uploads and failures to :class:`DockMetrics`."""

    def __init__(self, sink: EvidenceSink, metrics: DockMetrics) -> None:
        self._sink, self._metrics = sink, metrics

    def create_upload(self, manifest: Path) -> UploadState:
        return self._counted(lambda: self._sink.create_upload(manifest))

    def put_segment(self, upload_id: str, index: int, segment: Path) -> None:
        started = time.monotonic()
        self._counted(lambda: self._sink.put_segment(upload_id, index, segment))
        self._metrics.upload_seconds.observe(time.monotonic() - started)
        # The file was sent from the spool and acknowledged: its size is what was offloaded.
        self._metrics.bytes_offloaded.inc(segment.stat().st_size)

    def status(self, upload_id: str) -> UploadState:
        return self._counted(lambda: self._sink.status(upload_id))

    def complete(self, upload_id: str) -> bytes:
        return self._counted(lambda: self._sink.complete(upload_id))

    def put_file(self, path: Path, sha256: str, name: str) -> bytes:
        return self._counted(lambda: self._sink.put_file(path, sha256, name))

    def _counted(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except DockError as exc:
            self._metrics.store_failed(exc)
            raise


def _kind(exc: DockError) -> str:
    """``StoreUnavailable`` -> ``store_unavailable``: one label value per error class."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
