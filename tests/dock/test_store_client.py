"""The evidence-store client against the real store on loopback, and against a failing peer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from custody.clip import SealedClip, segment_name
from custody.receipt import verify_receipt
from dock.errors import StoreRefused, StoreUnavailable
from dock.store_client import HttpEvidenceSink
from dock.throttle import Throttle
from tests.dock.conftest import HookClock, Server, Store, reserve_port, seal, serving, url_of


@pytest.fixture
def clip_folder(
    tmp_path: Path, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> tuple[SealedClip, Path]:
    clip = seal(device_key, agency_key, segments=3)
    folder = tmp_path / "clip"
    clip.write_to(folder)
    return clip, folder


@pytest.fixture
def sink(live_store: Server, store: Store) -> Iterator[HttpEvidenceSink]:
    opened = HttpEvidenceSink(live_store.url, store.dock_token, timeout_s=10)
    yield opened
    opened.close()


def test_a_clip_streamed_from_its_folder_comes_back_with_a_valid_receipt(
    sink: HttpEvidenceSink, store: Store, clip_folder: tuple[SealedClip, Path]
) -> None:
    clip, folder = clip_folder
    upload = sink.create_upload(folder / "manifest.jsonl")
    assert upload.missing == [0, 1, 2] and not upload.stored
    for index in upload.missing:
        sink.put_segment(upload.upload_id, index, folder / segment_name(index))

    assert sink.status(upload.upload_id).missing == []
    receipt = sink.complete(upload.upload_id)

    assert verify_receipt(receipt, store.public, clip.manifest).ok
    assert sink.status(upload.upload_id).stored


def test_status_lists_what_the_store_acknowledged_so_a_restart_sends_only_the_rest(
    sink: HttpEvidenceSink, clip_folder: tuple[SealedClip, Path]
) -> None:
    _, folder = clip_folder
    upload = sink.create_upload(folder / "manifest.jsonl")
    sink.put_segment(upload.upload_id, 1, folder / segment_name(1))

    again = sink.create_upload(folder / "manifest.jsonl")

    assert again.upload_id == upload.upload_id
    assert sorted(again.acknowledged) == [1] and again.missing == [0, 2]


def test_an_altered_segment_is_refused_with_the_stores_reason(
    sink: HttpEvidenceSink, clip_folder: tuple[SealedClip, Path]
) -> None:
    _, folder = clip_folder
    upload = sink.create_upload(folder / "manifest.jsonl")
    segment = folder / segment_name(0)
    segment.write_bytes(segment.read_bytes()[:-1] + b"\0")

    with pytest.raises(StoreRefused, match="does not match the sha256") as refused:
        sink.put_segment(upload.upload_id, 0, segment)
    assert refused.value.status == 422


def test_an_unknown_upload_is_a_404_refusal(sink: HttpEvidenceSink) -> None:
    with pytest.raises(StoreRefused, match="does not exist") as refused:
        sink.status("00000000-0000-4000-8000-000000000000")
    assert refused.value.status == 404


def test_a_token_the_store_does_not_know_is_refused(
    live_store: Server, clip_folder: tuple[SealedClip, Path]
) -> None:
    stranger = HttpEvidenceSink(live_store.url, "not-a-token-of-this-store")
    with pytest.raises(StoreRefused, match="not known to this store") as refused:
        stranger.create_upload(clip_folder[1] / "manifest.jsonl")
    stranger.close()
    assert refused.value.status == 401


def test_a_store_failing_with_5xx_is_unavailable_not_refused(
    clip_folder: tuple[SealedClip, Path],
) -> None:
    failing = FastAPI()

    @failing.post("/v1/uploads")
    def down() -> JSONResponse:
        return JSONResponse({"error": "database is being migrated"}, status_code=503)

    with serving(failing) as server:
        client = HttpEvidenceSink(server.url, "token")
        with pytest.raises(StoreUnavailable, match="being migrated"):
            client.create_upload(clip_folder[1] / "manifest.jsonl")
        client.close()


def test_a_store_that_cannot_be_reached_is_unavailable(
    clip_folder: tuple[SealedClip, Path],
) -> None:
    sock = reserve_port()
    client = HttpEvidenceSink(url_of(sock), "token")
    with pytest.raises(StoreUnavailable, match="does not answer"):
        client.create_upload(clip_folder[1] / "manifest.jsonl")
    client.close()
    sock.close()


def test_uploads_are_paced_by_the_shared_rate_cap(
    live_store: Server, store: Store, clip_folder: tuple[SealedClip, Path]
) -> None:
    clip, folder = clip_folder
    clock = HookClock()
    rate = 100  # bytes per second, on the virtual clock
    paced = HttpEvidenceSink(
        live_store.url, store.dock_token, throttle=Throttle(rate, clock, burst_s=0)
    )
    upload = paced.create_upload(folder / "manifest.jsonl")
    for index in upload.missing:
        paced.put_segment(upload.upload_id, index, folder / segment_name(index))
    paced.close()

    sent = len(clip.manifest) + sum(len(b) for b in clip.segments.values())
    assert sum(clock.sleeps) == pytest.approx(sent / rate, rel=0.01)
