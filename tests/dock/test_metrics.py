"""The dock's Prometheus metrics equal what its pipeline did, read back from the text format."""

from __future__ import annotations

import socket

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families

from custody.clip import SealedClip
from dock.agent import Dock
from dock.errors import StoreUnavailable
from dock.metrics import DockMetrics, metrics_response
from tests.dock.camera_server import TestCamera
from tests.dock.conftest import RETRY, DockFactory, HookClock, Server, Store, seal
from tests.dock.test_pipeline import StartLater


def scrape(dock: Dock) -> dict[str, float]:
    """Every sample of ``GET /metrics``, by name and labels: ``name{label=value,...}``."""
    body, content_type = metrics_response(dock.metrics)
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


@pytest.fixture
def clips(
    camera: TestCamera, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> list[SealedClip]:
    made = [seal(device_key, agency_key, segments=n) for n in (3, 2)]
    for clip in made:
        camera.add(clip)
    return made


def segment_bytes(clips: list[SealedClip]) -> int:
    return sum(len(blob) for clip in clips for blob in clip.segments.values())


def test_an_offload_counts_every_byte_and_clip_it_moved(
    live_store: Server,
    camera: TestCamera,
    camera_url: str,
    clips: list[SealedClip],
    make_dock: DockFactory,
) -> None:
    dock = make_dock()

    dock.offloader.offload(dock.camera(camera_url))

    seen = scrape(dock)
    assert seen["bwc_dock_bytes_offloaded_total"] == segment_bytes(clips)
    assert seen["bwc_dock_clips_verified_total"] == 2
    assert seen["bwc_dock_clips_stored_total"] == 2
    assert seen["bwc_dock_clips_erased_total"] == 2
    assert seen["bwc_dock_clips_quarantined_total"] == 0
    assert seen["bwc_dock_retries_total"] == 0
    assert seen["bwc_dock_upload_seconds_count"] == 5  # one per segment
    assert seen["bwc_dock_upload_seconds_sum"] > 0
    assert seen["bwc_dock_queue_depth"] == 0
    assert seen["bwc_dock_ledger_clips{state=done}"] == 2


def test_a_clip_that_fails_its_hash_check_is_counted_quarantined_not_verified(
    live_store: Server,
    camera: TestCamera,
    camera_url: str,
    clips: list[SealedClip],
    make_dock: DockFactory,
) -> None:
    bad, good = clips
    camera.corrupt_segment(bad.clip_id, 1)
    dock = make_dock()

    dock.offloader.offload(dock.camera(camera_url))

    seen = scrape(dock)
    assert seen["bwc_dock_clips_quarantined_total"] == 1
    assert seen["bwc_dock_clips_verified_total"] == 1
    assert seen["bwc_dock_clips_erased_total"] == 1
    assert seen["bwc_dock_bytes_offloaded_total"] == segment_bytes([good])
    assert seen["bwc_dock_ledger_clips{state=quarantined}"] == 1
    assert seen["bwc_dock_queue_depth"] == 0  # quarantined is settled: it waits for an armorer


def test_a_store_that_comes_up_late_counts_one_retry_and_one_store_error(
    store: Store,
    store_sock: socket.socket,
    camera: TestCamera,
    camera_url: str,
    clips: list[SealedClip],
    make_dock: DockFactory,
    clock: HookClock,
) -> None:
    dock = make_dock()
    with StartLater(store, store_sock) as later:
        clock.on_first_sleep = later.start
        dock.offloader.offload(dock.camera(camera_url))

    seen = scrape(dock)
    assert seen["bwc_dock_retries_total"] == len(clock.sleeps) == 1
    assert seen["bwc_dock_store_errors_total{kind=store_unavailable}"] == 1
    assert seen["bwc_dock_clips_stored_total"] == 2


def test_clips_a_store_outage_leaves_unfinished_are_the_queue_depth(
    camera: TestCamera,
    camera_url: str,
    clips: list[SealedClip],
    make_dock: DockFactory,
) -> None:
    dock = make_dock()
    with pytest.raises(StoreUnavailable):
        dock.offloader.offload(dock.camera(camera_url))

    seen = scrape(dock)
    assert seen["bwc_dock_queue_depth"] == 2
    assert seen["bwc_dock_ledger_clips{state=spooled}"] == 1  # the one that tried to upload
    assert seen["bwc_dock_ledger_clips{state=listed}"] == 1
    assert seen["bwc_dock_retries_total"] == RETRY.attempts - 1
    assert seen["bwc_dock_store_errors_total{kind=store_unavailable}"] == RETRY.attempts
    assert seen["bwc_dock_bytes_offloaded_total"] == 0


def test_two_docks_in_one_process_count_separately() -> None:
    first, second = DockMetrics(), DockMetrics()  # the global registry would refuse this

    first.retries.inc(3)

    assert first.registry.get_sample_value("bwc_dock_retries_total") == 3
    assert second.registry.get_sample_value("bwc_dock_retries_total") == 0
