"""Refused access is in the audit log: who tried, from where, and what; never the token."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from evidence.api import create_app
from evidence.app_factory import build_app
from evidence.config import EvidenceConfig
from evidence.ingest import IngestService
from evidence.store import load_tokens, open_service
from tests.evidence.conftest import _token_headers, serving
from tests.evidence.test_retention import ManualClock

TIMEOUT = 10
LIMIT = 3  # refusals recorded per client address a minute in these tests
UNKNOWN_TOKEN = "not-a-token-of-this-store-0123456789"
Record = dict[str, Any]


@dataclass
class Store:
    url: str
    service: IngestService
    clock: ManualClock
    headers: Callable[[str], dict[str, str]]  # role -> headers with that role's bearer token

    def records(self, event: str | None = None) -> list[Record]:
        lines = self.service.metadata.audit_log().splitlines()
        found = [json.loads(line) for line in lines]
        return [r for r in found if event is None or r["event"] == event]

    def refuse(self, method: str, path: str, headers: dict[str, str], status: int) -> None:
        answer = requests.request(method, f"{self.url}{path}", headers=headers, timeout=TIMEOUT)
        assert answer.status_code == status, answer.text


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(cfg: EvidenceConfig, clock: ManualClock) -> Iterator[IngestService]:
    opened = open_service(cfg, wall_ns=clock)
    yield opened
    opened.metadata.close()


@pytest.fixture
def serve(
    cfg: EvidenceConfig, service: IngestService
) -> Callable[..., AbstractContextManager[str]]:
    """Serves the API (at most ``LIMIT`` refusals audited a minute); ``lifespan`` as in serve."""

    def start(*, lifespan: bool = False) -> AbstractContextManager[str]:
        app = create_app(
            service, load_tokens(cfg), max_body_bytes=cfg.max_body_bytes, denied_per_minute=LIMIT
        )
        return serving(app, lifespan=lifespan)

    return start


@pytest.fixture
def store(
    cfg: EvidenceConfig,
    service: IngestService,
    clock: ManualClock,
    serve: Callable[..., AbstractContextManager[str]],
) -> Iterator[Store]:
    with serve() as url:
        yield Store(url, service, clock, lambda role: _token_headers(cfg, role))


def test_a_request_without_a_token_is_one_anonymous_record_with_address_method_and_path(
    store: Store,
) -> None:
    store.refuse("POST", "/v1/uploads", {}, 401)

    [record] = store.records("access.denied")
    assert record["actor"] == "anonymous"
    assert record["data"] == {
        "status": 401, "client": "127.0.0.1", "method": "POST", "path": "/v1/uploads",
        "reason": "no bearer token",
    }  # fmt: skip


def test_an_unknown_token_is_recorded_as_anonymous_and_its_text_is_nowhere_in_the_log(
    store: Store,
) -> None:
    store.refuse("GET", "/v1/evidence", {"Authorization": f"Bearer {UNKNOWN_TOKEN}"}, 401)

    [record] = store.records("access.denied")
    assert record["actor"] == "anonymous"
    assert record["data"]["status"] == 401
    assert record["data"]["reason"] == "unknown bearer token"
    assert (record["data"]["method"], record["data"]["path"]) == ("GET", "/v1/evidence")
    assert UNKNOWN_TOKEN.encode() not in store.service.metadata.audit_log()


def test_a_token_of_the_wrong_role_is_recorded_by_its_holder_without_the_token(
    store: Store,
) -> None:
    records_token = store.headers("records")
    store.refuse("POST", "/v1/purge", records_token, 403)

    [record] = store.records("access.denied")
    assert record["actor"] == "records:dev-records"
    assert record["data"] == {
        "status": 403, "client": "127.0.0.1", "method": "POST", "path": "/v1/purge",
        "reason": "needs admin",
    }  # fmt: skip
    token = records_token["Authorization"].removeprefix("Bearer ")
    assert token.encode() not in store.service.metadata.audit_log()


def test_a_refused_metrics_scrape_is_recorded_like_any_refusal(store: Store) -> None:
    store.refuse("GET", "/metrics", store.headers("dock"), 403)

    [record] = store.records("access.denied")
    assert record["actor"] == "dock:dev-dock"
    assert record["data"]["path"] == "/metrics"
    assert record["data"]["reason"] == "needs admin or auditor"


def test_an_allowed_request_leaves_no_denied_record(store: Store) -> None:
    answer = requests.get(f"{store.url}/v1/evidence", headers=store.headers("records"), timeout=10)
    assert answer.status_code == 200, answer.text
    assert store.records("access.denied") == []


def test_refusals_past_the_limit_are_counted_not_recorded(store: Store) -> None:
    for _ in range(LIMIT + 2):
        store.refuse("GET", "/v1/evidence", {}, 401)

    assert len(store.records("access.denied")) == LIMIT
    assert store.records("access.denied.suppressed") == []  # the minute is not over yet


def test_the_next_refusal_after_the_minute_first_summarises_what_was_suppressed(
    store: Store,
) -> None:
    started = store.clock()
    for _ in range(LIMIT + 1):
        store.refuse("GET", "/v1/evidence", {}, 401)
    store.refuse("POST", "/v1/purge", store.headers("dock"), 403)

    store.clock.now_ns += 61 * 10**9
    store.refuse("GET", "/v1/tombstones", {}, 401)

    [summary] = store.records("access.denied.suppressed")
    assert summary["actor"] == "store"
    assert summary["data"] == {
        "client": "127.0.0.1", "suppressed": 2, "by_status": {"401": 1, "403": 1},
        "recorded": LIMIT, "since_ns": started,
    }  # fmt: skip
    denied = store.records("access.denied")
    assert len(denied) == LIMIT + 1  # the new minute records again
    assert denied[-1]["data"]["path"] == "/v1/tombstones"
    assert summary["seq"] < denied[-1]["seq"]


def test_a_minute_without_suppression_leaves_no_summary(store: Store) -> None:
    store.refuse("GET", "/v1/evidence", {}, 401)
    store.clock.now_ns += 61 * 10**9
    store.refuse("GET", "/v1/evidence", {}, 401)

    assert len(store.records("access.denied")) == 2
    assert store.records("access.denied.suppressed") == []


def test_the_summary_is_written_when_the_minute_ends_without_another_refusal(
    cfg: EvidenceConfig,
    service: IngestService,
    clock: ManualClock,
    serve: Callable[..., AbstractContextManager[str]],
) -> None:
    with serve(lifespan=True) as url:
        store = Store(url, service, clock, lambda role: _token_headers(cfg, role))
        for _ in range(LIMIT + 4):
            store.refuse("GET", "/v1/evidence", {}, 401)
        clock.now_ns += 61 * 10**9

        deadline = time.monotonic() + 10
        while not store.records("access.denied.suppressed"):
            assert time.monotonic() < deadline, "no summary within 10 s of the minute's end"
            time.sleep(0.05)  # polling with a deadline: the API checks once a second
        [summary] = store.records("access.denied.suppressed")
        assert summary["data"]["suppressed"] == 4


def test_shutting_down_writes_the_summary_of_a_minute_still_running(
    cfg: EvidenceConfig,
    service: IngestService,
    clock: ManualClock,
    serve: Callable[..., AbstractContextManager[str]],
) -> None:
    with serve(lifespan=True) as url:
        store = Store(url, service, clock, lambda role: _token_headers(cfg, role))
        for _ in range(LIMIT + 1):
            store.refuse("GET", "/v1/evidence", {}, 401)
        assert store.records("access.denied.suppressed") == []

    [summary] = store.records("access.denied.suppressed")
    assert summary["data"]["suppressed"] == 1


def test_the_audit_chain_still_verifies_with_refusals_and_summaries_in_it(
    store: Store, cfg: EvidenceConfig
) -> None:
    for _ in range(LIMIT + 2):
        store.refuse("GET", "/v1/evidence", {}, 401)
    store.refuse("DELETE", "/v1/evidence/x/holds/y", store.headers("dock"), 403)
    store.clock.now_ns += 61 * 10**9
    store.refuse("GET", "/v1/evidence", {}, 401)
    assert store.records("access.denied.suppressed")

    run = subprocess.run(
        [sys.executable, "-m", "bwc", "evidence", "report", "--year", "2025", "--json",
         "--data-dir", str(cfg.data_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["audit"]["records"] == len(store.records()) - 1  # less its report.generated


def test_the_limit_is_the_one_the_store_configuration_sets(cfg: EvidenceConfig) -> None:
    app, opened = build_app(cfg.model_copy(update={"denied_per_minute": 1}))
    try:
        with serving(app) as url:
            for _ in range(3):
                answer = requests.get(f"{url}/v1/evidence", timeout=TIMEOUT)
                assert answer.status_code == 401, answer.text
        lines = opened.metadata.audit_log().splitlines()
        events = [json.loads(line)["event"] for line in lines]
    finally:
        opened.metadata.close()
    assert events.count("access.denied") == 1
