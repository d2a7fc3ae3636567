"""The store's ``GET /metrics``: counts equal what happened; only the right callers read it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
import requests
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message

from custody.clip import SealedClip
from evidence.api import create_app
from evidence.config import EvidenceConfig
from evidence.ingest import IngestService
from evidence.retention import RetentionService
from evidence.store import load_tokens
from tests.evidence.conftest import Live, _token_headers

TIMEOUT = 10
DAY_NS = 86_400 * 10**9
ELSEWHERE = ("192.0.2.7", 50123)  # a client address that is not loopback


def parse(text: str) -> dict[str, float]:
    """Every sample, by name and labels: ``name{label=value,...}``."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def scrape(live: Live) -> dict[str, float]:
    """``GET /metrics`` over HTTP from loopback, without a token."""
    answer = requests.get(f"{live.url}/metrics", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(answer.text)


def ingest(live: Live, clip: SealedClip) -> None:
    created = requests.post(
        f"{live.url}/v1/uploads", data=clip.manifest, headers=live.dock, timeout=TIMEOUT
    )
    assert created.status_code == 201, created.text
    upload = f"{live.url}/v1/uploads/{created.json()['upload_id']}"
    for index, blob in sorted(clip.segments.items()):
        put = requests.put(
            f"{upload}/segments/{index}", data=blob, headers=live.dock, timeout=TIMEOUT
        )
        assert put.status_code == 200, put.text
    done = requests.post(f"{upload}/complete", headers=live.dock, timeout=TIMEOUT)
    assert done.status_code == 200, done.text


def test_a_clip_ingested_over_http_is_counted_in_bytes_segments_and_clips(
    live: Live, clip: SealedClip
) -> None:
    ingest(live, clip)

    seen = scrape(live)
    assert seen["bwc_store_bytes_ingested_total"] == sum(map(len, clip.segments.values()))
    assert seen["bwc_store_segment_upload_seconds_count"] == len(clip.segments)
    assert seen["bwc_store_ingest_seconds_count"] == 1
    assert seen["bwc_store_ingest_seconds_sum"] > 0
    assert seen["bwc_store_clips_stored_total"] == 1
    assert seen["bwc_store_purged_total"] == 0
    assert not any(name.startswith("bwc_store_requests_refused") for name in seen)


def test_refused_requests_are_counted_by_reason(live: Live, clip: SealedClip) -> None:
    uploads = f"{live.url}/v1/uploads"
    assert requests.post(uploads, data=clip.manifest, timeout=TIMEOUT).status_code == 401
    refused = requests.post(uploads, data=clip.manifest, headers=live.records, timeout=TIMEOUT)
    assert refused.status_code == 403
    created = requests.post(uploads, data=clip.manifest, headers=live.dock, timeout=TIMEOUT)
    altered = b"x" + clip.segments[0][1:]
    put = f"{uploads}/{created.json()['upload_id']}/segments/0"
    assert requests.put(put, data=altered, headers=live.dock, timeout=TIMEOUT).status_code == 422

    seen = scrape(live)
    assert seen["bwc_store_requests_refused_total{reason=unauthenticated}"] == 1
    assert seen["bwc_store_requests_refused_total{reason=forbidden}"] == 1
    assert seen["bwc_store_requests_refused_total{reason=verification_failed}"] == 1
    assert seen["bwc_store_bytes_ingested_total"] == 0  # the altered segment was not accepted


def test_a_purged_clip_is_counted_purged_and_still_counted_stored(
    live: Live, clip: SealedClip, service: IngestService
) -> None:
    ingest(live, clip)

    # The purge runs outside the API (the scheduled purge, a cron 'bwc evidence purge').
    far_future = service.wall_ns() + 10_000 * DAY_NS
    assert len(RetentionService.beside(service).purge("admin:test", now_ns=far_future)) == 1

    seen = scrape(live)
    assert seen["bwc_store_purged_total"] == 1
    assert seen["bwc_store_clips_stored_total"] == 1


@pytest.fixture
def app(cfg: EvidenceConfig, service: IngestService) -> FastAPI:
    return create_app(service, load_tokens(cfg), max_body_bytes=cfg.max_body_bytes)


def asgi_get(
    app: FastAPI, path: str, client: tuple[str, int], headers: Mapping[str, str] = {}
) -> tuple[int, bytes]:
    """One GET straight into the ASGI app, as if from ``client`` (its address is the point)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": client, "server": ("192.0.2.1", 8443),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert isinstance(status, int)
    return status, body


def test_a_scrape_from_another_host_without_a_token_is_refused(app: FastAPI) -> None:
    status, body = asgi_get(app, "/metrics", ELSEWHERE)

    assert status == 401
    assert b"admin or auditor" in body


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_an_admin_or_auditor_token_may_scrape_from_another_host(
    app: FastAPI, cfg: EvidenceConfig, role: str
) -> None:
    status, body = asgi_get(app, "/metrics", ELSEWHERE, _token_headers(cfg, role))

    assert status == 200
    assert "bwc_store_clips_stored_total" in parse(body.decode())


@pytest.mark.parametrize("role", ["dock", "records", "officer"])
def test_other_roles_may_not_scrape_even_from_loopback(
    app: FastAPI, cfg: EvidenceConfig, role: str
) -> None:
    status, _ = asgi_get(app, "/metrics", ("127.0.0.1", 50123), _token_headers(cfg, role))

    assert status == 403


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_may_scrape_without_a_token(app: FastAPI, address: str) -> None:
    status, _ = asgi_get(app, "/metrics", (address, 50123))

    assert status == 200


def test_the_metrics_route_is_not_part_of_the_api_schema(app: FastAPI) -> None:
    assert "/metrics" not in app.openapi()["paths"]
