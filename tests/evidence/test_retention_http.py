"""Categories, legal holds and purge over real HTTP: who may do what, and clear JSON errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from evidence.config import EvidenceConfig
from evidence.ingest import IngestService
from evidence.store import open_service
from tests.evidence.conftest import Live
from tests.evidence.test_http_errors import error_of
from tests.evidence.test_retention import ManualClock, audit_records, store_clip

TIMEOUT = 10
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(cfg: EvidenceConfig, clock: ManualClock) -> Iterator[IngestService]:
    """The store behind ``live``, on a clock the test moves."""
    opened = open_service(cfg, wall_ns=clock)
    yield opened
    opened.metadata.close()


@pytest.fixture
def auth(cfg: EvidenceConfig) -> dict[str, dict[str, str]]:
    """Request headers by role, from the development token file (one token per role)."""
    entries = json.loads(cfg.tokens_path.read_text())["tokens"]
    return {e["role"]: {"Authorization": f"Bearer {e['token']}"} for e in entries}


@pytest.fixture
def stored(
    service: IngestService, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> str:
    return store_clip(service, device_key, agency_key)


def test_records_moves_a_clip_to_another_category_with_a_reason(
    live: Live, auth: dict[str, dict[str, str]], stored: str
) -> None:
    response = requests.put(
        f"{live.url}/v1/evidence/{stored}/category",
        json={"category": "homicide", "reason": "victim died"},
        headers=auth["records"],
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.json()["category"] == "homicide"
    assert response.json()["expires_at_ns"] is None
    [record] = audit_records(live.service, "retention.category_set")
    assert record["actor"] == "records:dev-records"


def test_a_supervisor_places_a_hold_that_blocks_the_purge_until_released(
    live: Live, auth: dict[str, dict[str, str]], clock: ManualClock, stored: str
) -> None:
    holds = f"{live.url}/v1/evidence/{stored}/holds"
    placed = requests.post(
        holds, json={"case_number": "2026-CR-0113", "reason": "robbery"},
        headers=auth["supervisor"], timeout=TIMEOUT,
    )  # fmt: skip
    assert placed.status_code == 201, placed.text
    assert placed.json()["active"] is True
    clock.advance_days(15)
    purge = requests.post(f"{live.url}/v1/purge", headers=auth["admin"], timeout=TIMEOUT)
    assert purge.status_code == 200 and purge.json() == []
    released = requests.delete(
        f"{holds}/{placed.json()['hold_id']}",
        json={"reason": "case closed"},
        headers=auth["supervisor"],
        timeout=TIMEOUT,
    )
    assert released.status_code == 200, released.text
    assert released.json()["released_by"] == "supervisor:dev-supervisor"
    purge = requests.post(f"{live.url}/v1/purge", headers=auth["admin"], timeout=TIMEOUT)
    [tombstone] = purge.json()
    assert (tombstone["evidence_id"], tombstone["category"]) == (stored, "routine")
    assert tombstone["purged_by"] == "admin:dev-admin"


def test_an_auditor_reads_the_retention_and_holds_of_a_clip(
    live: Live, auth: dict[str, dict[str, str]], stored: str
) -> None:
    response = requests.get(
        f"{live.url}/v1/evidence/{stored}/retention", headers=auth["auditor"], timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["retention"]["category"], body["held"], body["holds"]) == ("routine", False, [])


@pytest.mark.parametrize(
    ("method", "path", "body", "role"),
    [
        ("PUT", "category", {"category": "homicide", "reason": "r"}, "dock"),
        ("PUT", "category", {"category": "homicide", "reason": "r"}, "officer"),
        ("PUT", "category", {"category": "homicide", "reason": "r"}, "auditor"),
        ("POST", "holds", {"case_number": "C-1", "reason": "r"}, "dock"),
        ("POST", "holds", {"case_number": "C-1", "reason": "r"}, "auditor"),
        ("POST", "holds", {"case_number": "C-1", "reason": "r"}, "admin"),
        ("GET", "retention", None, "dock"),
        ("GET", "retention", None, "officer"),
    ],
)
def test_a_wrong_role_may_not_change_retention_or_holds(
    live: Live,
    auth: dict[str, dict[str, str]],
    stored: str,
    method: str,
    path: str,
    body: dict[str, str] | None,
    role: str,
) -> None:
    response = requests.request(
        method, f"{live.url}/v1/evidence/{stored}/{path}", json=body,
        headers=auth[role], timeout=TIMEOUT,
    )  # fmt: skip
    assert f"a {role} token may not do this" in error_of(response, 403)
    assert audit_records(live.service, "retention.category_set") == []
    assert audit_records(live.service, "hold.placed") == []


@pytest.mark.parametrize("role", ["dock", "officer", "supervisor", "records", "auditor"])
def test_only_an_admin_may_run_the_purge(
    live: Live, auth: dict[str, dict[str, str]], clock: ManualClock, stored: str, role: str
) -> None:
    clock.advance_days(15)
    response = requests.post(f"{live.url}/v1/purge", headers=auth[role], timeout=TIMEOUT)
    assert "it needs admin" in error_of(response, 403)
    assert live.service.metadata.evidence(stored) is not None


def test_a_purge_without_a_token_is_refused(live: Live) -> None:
    response = requests.post(f"{live.url}/v1/purge", timeout=TIMEOUT)
    assert "Authorization: Bearer" in error_of(response, 401)


@pytest.mark.parametrize(
    "body",
    [
        {"case_number": "2026-CR-1"},
        {"case_number": "2026-CR-1", "reason": ""},
        {"case_number": "2026-CR-1", "reason": "   "},
        {"case_number": "../../etc", "reason": "traversal"},
        {"case_number": "", "reason": "empty case"},
    ],
)
def test_a_hold_without_a_valid_case_number_and_reason_is_a_400(
    live: Live, auth: dict[str, dict[str, str]], stored: str, body: dict[str, str]
) -> None:
    response = requests.post(
        f"{live.url}/v1/evidence/{stored}/holds", json=body,
        headers=auth["records"], timeout=TIMEOUT,
    )  # fmt: skip
    error_of(response, 400)
    assert live.service.metadata.holds(stored) == []


def test_malformed_json_for_a_category_is_a_400(
    live: Live, auth: dict[str, dict[str, str]], stored: str
) -> None:
    response = requests.put(
        f"{live.url}/v1/evidence/{stored}/category", data=b"{not json",
        headers=auth["records"] | {"Content-Type": "application/json"}, timeout=TIMEOUT,
    )  # fmt: skip
    error_of(response, 400)


def test_an_unknown_category_is_a_400_naming_the_known_ones(
    live: Live, auth: dict[str, dict[str, str]], stored: str
) -> None:
    response = requests.put(
        f"{live.url}/v1/evidence/{stored}/category",
        json={"category": "forever", "reason": "r"},
        headers=auth["records"],
        timeout=TIMEOUT,
    )
    assert "investigation" in error_of(response, 400)


def test_releasing_an_unknown_hold_is_a_404(
    live: Live, auth: dict[str, dict[str, str]], stored: str
) -> None:
    response = requests.delete(
        f"{live.url}/v1/evidence/{stored}/holds/{UNKNOWN_ID}", json={"reason": "r"},
        headers=auth["records"], timeout=TIMEOUT,
    )  # fmt: skip
    assert "has no hold" in error_of(response, 404)


def test_a_hold_on_unknown_evidence_is_a_404(live: Live, auth: dict[str, dict[str, str]]) -> None:
    response = requests.post(
        f"{live.url}/v1/evidence/{UNKNOWN_ID}/holds",
        json={"case_number": "2026-CR-1", "reason": "r"},
        headers=auth["records"],
        timeout=TIMEOUT,
    )
    assert "does not exist" in error_of(response, 404)


def test_an_auditor_lists_the_tombstones_of_purged_clips(
    live: Live, auth: dict[str, dict[str, str]], clock: ManualClock, stored: str
) -> None:
    clock.advance_days(15)
    requests.post(f"{live.url}/v1/purge", headers=auth["admin"], timeout=TIMEOUT)
    response = requests.get(f"{live.url}/v1/tombstones", headers=auth["auditor"], timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert [t["evidence_id"] for t in response.json()] == [stored]
    [listed] = audit_records(live.service, "tombstones.listed")
    assert listed["actor"] == "auditor:dev-auditor"


def test_a_dock_may_not_list_tombstones(live: Live, auth: dict[str, dict[str, str]]) -> None:
    response = requests.get(f"{live.url}/v1/tombstones", headers=auth["dock"], timeout=TIMEOUT)
    error_of(response, 403)
