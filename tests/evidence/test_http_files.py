"""Over real HTTP: a dock stores a foreign file and gets a file receipt over the bytes it sent."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.file_receipt import parse_file_receipt, verify_file_receipt
from evidence.storage import file_key
from tests.evidence.conftest import Live

TIMEOUT = 10
DATA = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4000  # ~1 MB: several body chunks
SHA = hashlib.sha256(DATA).hexdigest()


def _put(
    live: Live,
    data: bytes = DATA,
    *,
    sha256: str = SHA,
    name: str = "MOV_0001.MP4",
    headers: dict[str, str] | None = None,
) -> requests.Response:
    return requests.put(
        f"{live.url}/v1/files",
        data=data,
        headers={
            **(live.dock if headers is None else headers),
            "X-Content-SHA256": sha256,
            "X-File-Name": quote(name, safe=""),
        },
        timeout=TIMEOUT,
    )


def _audit_events(live: Live) -> list[str]:
    lines = live.service.metadata.audit_log().splitlines()
    return [json.loads(line).get("event", "") for line in lines]


def test_a_stored_file_gets_a_receipt_over_its_hash_size_and_name(
    live: Live, store_public: Ed25519PublicKey
) -> None:
    answer = _put(live, name="Été 01.mp4")
    assert answer.status_code == 201, answer.text
    report = verify_file_receipt(answer.content, store_public, sha256=SHA, size=len(DATA))
    assert report.ok, report.failures
    receipt = parse_file_receipt(answer.content)
    assert receipt.name == "Été 01.mp4" and receipt.submitted_by.startswith("dock:")
    assert live.service.blobs.get(file_key(SHA)) == DATA
    assert "file.stored" in _audit_events(live)


def test_the_same_bytes_sent_again_get_the_same_receipt(live: Live) -> None:
    first = _put(live)
    again = _put(live, name="copy of it.mp4")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len(live.service.metadata.list_files(limit=10, offset=0)) == 1


def test_bytes_that_do_not_match_the_declared_sha256_are_refused_and_not_stored(
    live: Live,
) -> None:
    answer = _put(live, DATA[:-1] + b"!")
    assert answer.status_code == 422, answer.text
    assert not live.service.blobs.exists(file_key(SHA))
    assert live.service.metadata.file_for_sha256(SHA) is None
    assert "file.refused" in _audit_events(live)


def test_a_wrong_sha256_for_a_stored_file_is_refused_too(live: Live) -> None:
    assert _put(live).status_code == 201
    assert _put(live, DATA[:-1] + b"!").status_code == 422


def test_only_a_dock_may_store_a_file(live: Live) -> None:
    answer = _put(live, headers=live.records)
    assert answer.status_code == 403, answer.text
    assert not live.service.blobs.exists(file_key(SHA))


@pytest.mark.parametrize("name", ["../../etc/passwd", "DCIM/MOV.MP4", "..", "a\nb.mp4"])
def test_a_name_that_is_not_a_plain_file_name_is_refused(live: Live, name: str) -> None:
    answer = _put(live, name=name)
    assert answer.status_code == 400, answer.text
    assert "error" in answer.json()
    assert not live.service.blobs.exists(file_key(SHA))


def test_a_malformed_sha256_header_is_refused(live: Live) -> None:
    assert _put(live, sha256="ABC").status_code == 400


def test_records_list_stored_files_oldest_first(live: Live) -> None:
    other = b"another export"
    _put(live, name="first.mp4")
    _put(live, other, sha256=hashlib.sha256(other).hexdigest(), name="second.mp4")
    listed = requests.get(f"{live.url}/v1/files", headers=live.records, timeout=TIMEOUT)
    assert listed.status_code == 200, listed.text
    assert [(f["name"], f["size"]) for f in listed.json()] == [
        ("first.mp4", len(DATA)),
        ("second.mp4", len(other)),
    ]


def test_a_dock_may_not_list_files(live: Live) -> None:
    listed = requests.get(f"{live.url}/v1/files", headers=live.dock, timeout=TIMEOUT)
    assert listed.status_code == 403
