"""Faults on the wire (issue 7, item 6): a slow, failing or hanging-up store, a camera cut off.

Each peer is the real server on loopback (the evidence store, the test camera) behind a
:class:`FaultProxy` that misbehaves on the requests a test names; time for backoff is virtual.
Whatever happens, every clip ends up stored exactly once and is erased only after its receipt;
a clip whose bytes are not what its signed manifest says is quarantined and never erased.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import SealedClip, segment_name
from custody.receipt import verify_receipt
from dock.agent import Dock
from dock.errors import StoreUnavailable
from dock.ledger import ClipState
from dock.spool import WHY_NAME
from dock.store_client import HttpEvidenceSink
from tests.dock.camera_server import TestCamera
from tests.dock.conftest import (
    CHUNK,
    DEVICE_ID,
    RETRY,
    DockFactory,
    HookClock,
    Server,
    Store,
    seal,
)
from tests.dock.fault_proxy import Fault, FaultProxy

TIMEOUT_S = 0.2  # the dock's store timeout here: a stalled answer costs this much real time
CREATE = r"/v1/uploads"
SEGMENT_1 = r"/v1/uploads/[^/]+/segments/1"
COMPLETE = r"/v1/uploads/[^/]+/complete"
CAMERA_SEGMENT_1 = r"/offload/v1/clips/[^/]+/segments/1"


@pytest.fixture
def clip(
    camera: TestCamera, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> SealedClip:
    """A clip whose segments span several stream chunks, on the docked camera."""
    sealed = seal(device_key, agency_key, segments=3, segment_bytes=5 * CHUNK)
    camera.add(sealed)
    return sealed


@pytest.fixture
def store_proxy(live_store: Server) -> Iterator[FaultProxy]:
    with FaultProxy(live_store.url) as proxy:
        yield proxy


@pytest.fixture
def dock(store_proxy: FaultProxy, store: Store, make_dock: DockFactory) -> Iterator[Dock]:
    """A dock whose store client goes through the proxy, with a short timeout."""
    sink = HttpEvidenceSink(store_proxy.url, store.dock_token, timeout_s=TIMEOUT_S)
    yield make_dock(sink)
    sink.close()


def assert_stored_once_and_erased(store: Store, camera: TestCamera, clip: SealedClip) -> None:
    assert store.clip_ids() == [clip.clip_id]
    assert clip.clip_id in camera.erased and clip.clip_id not in camera.clips


def assert_backoff(sleeps: list[float]) -> None:
    """Each wait after a step's n-th failure in a row is jittered within its capped ceiling."""
    for attempt, waited in enumerate(sleeps):
        assert 0 <= waited <= min(RETRY.cap_s, RETRY.base_s * 2**attempt)


def test_a_store_answering_after_the_timeout_is_unavailable(
    store_proxy: FaultProxy, store: Store, clip: SealedClip
) -> None:
    sink = HttpEvidenceSink(store_proxy.url, store.dock_token, timeout_s=TIMEOUT_S)
    store_proxy.inject("GET", r"/v1/uploads/.+", Fault.STALL)

    with pytest.raises(StoreUnavailable, match="does not answer"):
        sink.status("00000000-0000-4000-8000-000000000000")
    sink.close()


def test_a_slow_store_is_retried_with_backoff_and_stores_the_clip_once(
    store_proxy: FaultProxy,
    dock: Dock,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
    clock: HookClock,
) -> None:
    store_proxy.inject("PUT", SEGMENT_1, Fault.STALL, times=2)

    (row,) = dock.offloader.offload(dock.camera(camera_url))

    assert row.state == ClipState.DONE and row.attempts == 2
    assert store_proxy.requests("PUT", SEGMENT_1) == [Fault.STALL, Fault.STALL, Fault.PASS]
    assert len(clock.sleeps) == 2
    assert_backoff(clock.sleeps)
    assert_stored_once_and_erased(store, camera, clip)


def test_a_receipt_answered_too_late_is_asked_again_and_is_the_same_evidence(
    store_proxy: FaultProxy,
    dock: Dock,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
) -> None:
    store_proxy.inject("POST", COMPLETE, Fault.STALL)  # the store completes; its answer is lost

    (row,) = dock.offloader.offload(dock.camera(camera_url))

    assert row.state == ClipState.DONE and row.receipt is not None
    assert verify_receipt(row.receipt, store.public, clip.manifest).ok
    assert store_proxy.requests("POST", COMPLETE) == [Fault.STALL, Fault.PASS]
    assert_stored_once_and_erased(store, camera, clip)


def test_a_store_failing_with_5xx_at_first_is_retried_with_backoff_until_it_stores_the_clip(
    store_proxy: FaultProxy,
    dock: Dock,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
    clock: HookClock,
) -> None:
    failures = RETRY.attempts - 1  # one short of giving up
    store_proxy.inject("POST", CREATE, Fault.FAIL_503, times=failures)

    (row,) = dock.offloader.offload(dock.camera(camera_url))

    assert row.state == ClipState.DONE and row.attempts == failures
    assert store_proxy.requests("POST", CREATE) == [Fault.FAIL_503] * failures + [Fault.PASS]
    assert len(clock.sleeps) == failures
    assert_backoff(clock.sleeps)
    assert_stored_once_and_erased(store, camera, clip)


def test_a_store_that_hangs_up_mid_upload_gets_the_segment_again_and_stores_it_once(
    store_proxy: FaultProxy,
    dock: Dock,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
) -> None:
    # the store reads the head and one chunk of segment 1's body, then the socket is gone
    store_proxy.inject("PUT", SEGMENT_1, Fault.CUT_REQUEST, after=CHUNK)

    (row,) = dock.offloader.offload(dock.camera(camera_url))

    assert row.state == ClipState.DONE and row.attempts == 1
    assert store_proxy.requests("PUT", SEGMENT_1) == [Fault.CUT_REQUEST, Fault.PASS]
    assert row.receipt is not None
    assert verify_receipt(row.receipt, store.public, clip.manifest).ok  # every segment's hash
    assert_stored_once_and_erased(store, camera, clip)


def test_a_receipt_cut_off_mid_answer_is_asked_again_and_the_clip_is_stored_once(
    store_proxy: FaultProxy,
    dock: Dock,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
) -> None:
    store_proxy.inject("POST", COMPLETE, Fault.CUT_ANSWER, after=40)

    (row,) = dock.offloader.offload(dock.camera(camera_url))

    assert row.state == ClipState.DONE and row.attempts == 1
    assert store_proxy.requests("POST", COMPLETE) == [Fault.CUT_ANSWER, Fault.PASS]
    assert_stored_once_and_erased(store, camera, clip)


def test_a_camera_unplugged_mid_download_is_resumed_with_a_range_and_stored_once(
    live_store: Server,
    make_dock: DockFactory,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
) -> None:
    cut = 3 * CHUNK + 100
    dock = make_dock()
    with FaultProxy(camera_url) as camera_proxy:
        camera_proxy.inject("GET", CAMERA_SEGMENT_1, Fault.CUT_ANSWER, after=cut)
        (row,) = dock.offloader.offload(dock.camera(camera_proxy.url))

    assert row.state == ClipState.DONE and row.attempts == 1
    assert camera_proxy.requests("GET", CAMERA_SEGMENT_1) == [Fault.CUT_ANSWER, Fault.PASS]
    (resumed,) = camera.range_requests  # only the rest of segment 1 was asked for again
    start = int(resumed.removeprefix("bytes=").removesuffix("-"))
    assert 0 < start <= cut
    assert_stored_once_and_erased(store, camera, clip)


def test_a_segment_longer_than_its_signed_size_quarantines_the_clip_and_nothing_is_erased(
    live_store: Server,
    make_dock: DockFactory,
    store: Store,
    camera: TestCamera,
    camera_url: str,
    clip: SealedClip,
) -> None:
    camera.pad_segment(clip.clip_id, 1, b"x" * CHUNK)  # declared and sent: more than signed
    dock = make_dock()

    (row,) = dock.offloader.offload(dock.camera(camera_url))

    assert row.state == ClipState.QUARANTINED
    assert "segment 1" in (row.last_error or "")
    assert camera.erase_requests == [] and clip.clip_id in camera.clips
    assert store.clip_ids() == []
    (folder,) = (dock.cfg.quarantine_path / DEVICE_ID).iterdir()
    assert json.loads((folder / WHY_NAME).read_text())["why"] == row.last_error
    assert not (folder / segment_name(1)).exists()  # the oversized bytes were never kept
    assert not (folder / f"{segment_name(1)}.part").exists()
