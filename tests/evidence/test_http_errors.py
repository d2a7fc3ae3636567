"""Bad requests over real HTTP: each is a 4xx with a JSON error, and nothing is stored."""

from __future__ import annotations

import hashlib

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from custody.clip import SealedClip
from tests.evidence.conftest import MAX_BODY_BYTES, Live, seal

TIMEOUT = 10
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def error_of(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert "Traceback" not in body["error"]
    return str(body["error"])


def nothing_stored(live: Live, clip: SealedClip) -> bool:
    sha = hashlib.sha256(clip.manifest).hexdigest()
    no_evidence = live.service.metadata.list_evidence(limit=10, offset=0) == []
    upload = live.service.metadata.upload_for_manifest(sha)
    no_segments = upload is None or live.service.metadata.acknowledged(upload.id) == []
    return no_evidence and no_segments


def create(live: Live, clip: SealedClip) -> str:
    response = requests.post(
        f"{live.url}/v1/uploads", data=clip.manifest, headers=live.dock, timeout=TIMEOUT
    )
    assert response.status_code == 201, response.text
    return str(response.json()["upload_id"])


def test_a_request_without_a_token_is_refused(live: Live, clip: SealedClip) -> None:
    response = requests.post(f"{live.url}/v1/uploads", data=clip.manifest, timeout=TIMEOUT)
    assert "Authorization: Bearer" in error_of(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert nothing_stored(live, clip)


def test_an_unknown_token_is_refused(live: Live, clip: SealedClip) -> None:
    headers = {"Authorization": "Bearer not-a-token-of-this-store"}
    response = requests.post(
        f"{live.url}/v1/uploads", data=clip.manifest, headers=headers, timeout=TIMEOUT
    )
    assert "not known" in error_of(response, 401)
    assert nothing_stored(live, clip)


def test_a_records_token_cannot_ingest(live: Live, clip: SealedClip) -> None:
    response = requests.post(
        f"{live.url}/v1/uploads", data=clip.manifest, headers=live.records, timeout=TIMEOUT
    )
    assert "needs dock" in error_of(response, 403)
    assert nothing_stored(live, clip)


def test_a_dock_token_cannot_list_evidence(live: Live) -> None:
    response = requests.get(f"{live.url}/v1/evidence", headers=live.dock, timeout=TIMEOUT)
    assert "needs records" in error_of(response, 403)


@pytest.mark.parametrize("body", [b"", b"{not json\n", b'{"type":"header"}\n', b"\xff\xfe\n"])
def test_a_malformed_manifest_is_refused(live: Live, body: bytes) -> None:
    response = requests.post(
        f"{live.url}/v1/uploads", data=body, headers=live.dock, timeout=TIMEOUT
    )
    assert "the manifest is malformed" in error_of(response, 400)
    assert live.service.metadata.list_evidence(limit=10, offset=0) == []


def test_a_clip_from_an_unenrolled_device_is_refused(
    live: Live, device_key: Ed25519PrivateKey, agency_key: X25519PrivateKey
) -> None:
    stranger = seal(device_key, agency_key, device_id="cam-9999")
    response = requests.post(
        f"{live.url}/v1/uploads", data=stranger.manifest, headers=live.dock, timeout=TIMEOUT
    )
    assert "not enrolled" in error_of(response, 403)
    assert nothing_stored(live, stranger)
    assert (
        live.service.metadata.upload_for_manifest(hashlib.sha256(stranger.manifest).hexdigest())
        is None
    )


def test_a_forged_segment_is_refused(live: Live, clip: SealedClip) -> None:
    upload_id = create(live, clip)
    forged = bytearray(clip.segments[0])
    forged[25] ^= 0x01
    response = requests.put(
        f"{live.url}/v1/uploads/{upload_id}/segments/0",
        data=bytes(forged), headers=live.dock, timeout=TIMEOUT,
    )  # fmt: skip
    assert "does not match the sha256" in error_of(response, 422)
    assert nothing_stored(live, clip)


def test_a_segment_for_an_unknown_upload_is_refused(live: Live, clip: SealedClip) -> None:
    response = requests.put(
        f"{live.url}/v1/uploads/{UNKNOWN_ID}/segments/0",
        data=clip.segments[0], headers=live.dock, timeout=TIMEOUT,
    )  # fmt: skip
    assert "does not exist" in error_of(response, 404)
    assert nothing_stored(live, clip)


@pytest.mark.parametrize("index", ["3", "-1", "4294967296", "x"])
def test_an_out_of_range_segment_index_is_refused(live: Live, clip: SealedClip, index: str) -> None:
    upload_id = create(live, clip)
    response = requests.put(
        f"{live.url}/v1/uploads/{upload_id}/segments/{index}",
        data=clip.segments[0], headers=live.dock, timeout=TIMEOUT,
    )  # fmt: skip
    error_of(response, 400)
    assert nothing_stored(live, clip)


def test_an_oversized_body_is_refused(live: Live, clip: SealedClip) -> None:
    upload_id = create(live, clip)
    response = requests.put(
        f"{live.url}/v1/uploads/{upload_id}/segments/0",
        data=b"\0" * (MAX_BODY_BYTES + 1), headers=live.dock, timeout=TIMEOUT,
    )  # fmt: skip
    assert "more than" in error_of(response, 413)
    assert nothing_stored(live, clip)


@pytest.mark.parametrize(
    "upload_id", ["..", "%2e%2e%2f%2e%2e%2fetc", "not-a-uuid", UNKNOWN_ID.upper(), "a" * 300]
)
def test_an_id_that_is_not_a_uuid_is_refused(live: Live, clip: SealedClip, upload_id: str) -> None:
    response = requests.put(
        f"{live.url}/v1/uploads/{upload_id}/segments/0",
        data=clip.segments[0], headers=live.dock, timeout=TIMEOUT,
    )  # fmt: skip
    assert 400 <= response.status_code < 500
    error_of(response, response.status_code)
    assert nothing_stored(live, clip)


@pytest.mark.parametrize("evidence_id", ["..%2f..%2ftokens.json", "%2e%2e", UNKNOWN_ID])
def test_reading_evidence_that_is_not_there_is_refused(live: Live, evidence_id: str) -> None:
    response = requests.get(
        f"{live.url}/v1/evidence/{evidence_id}/receipt", headers=live.records, timeout=TIMEOUT
    )
    assert 400 <= response.status_code < 500
    assert "token" not in error_of(response, response.status_code)


def test_completing_an_upload_with_missing_segments_is_refused(
    live: Live, clip: SealedClip
) -> None:
    upload_id = create(live, clip)
    response = requests.post(
        f"{live.url}/v1/uploads/{upload_id}/complete", headers=live.dock, timeout=TIMEOUT
    )
    assert "missing segments 0, 1, 2" in error_of(response, 409)
    assert live.service.metadata.list_evidence(limit=10, offset=0) == []


def test_an_unknown_route_is_a_json_404(live: Live) -> None:
    error_of(requests.get(f"{live.url}/v2/uploads", headers=live.dock, timeout=TIMEOUT), 404)


def test_the_openapi_spec_lists_the_v1_routes_their_bearer_auth_and_json_errors(live: Live) -> None:
    spec = requests.get(f"{live.url}/openapi.json", timeout=TIMEOUT).json()
    assert {
        "/v1/uploads", "/v1/uploads/{upload_id}/segments/{index}", "/v1/uploads/{upload_id}",
        "/v1/uploads/{upload_id}/complete", "/v1/evidence", "/v1/evidence/{evidence_id}/receipt",
    } <= set(spec["paths"])  # fmt: skip
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    put = spec["paths"]["/v1/uploads/{upload_id}/segments/{index}"]["put"]
    assert put["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
