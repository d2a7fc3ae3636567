"""Docking sessions: only a provisioned dock gets a token, and only once per hello nonce."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.canonical import b64d, b64e
from custody.keys import key_id
from device.offload import device_message, session_message
from tests.device.offload_rig import PREFIX, WAIT_S, DockedCamera, open_session


def hello(docked: DockedCamera) -> dict[str, Any]:
    answer = requests.get(f"{docked.url}{PREFIX}/hello", timeout=WAIT_S)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def session_body(key: Ed25519PrivateKey, nonce_b64: str, device_id: str) -> dict[str, str]:
    nonce = b64d(nonce_b64, what="nonce", size=32)
    return {
        "dock_key_id": key_id(key),
        "dock_nonce": b64e(os.urandom(32)),
        "signature": b64e(key.sign(session_message(nonce, device_id))),
    }


def post_session(docked: DockedCamera, body: dict[str, str]) -> requests.Response:
    return requests.post(f"{docked.url}{PREFIX}/session", json=body, timeout=WAIT_S)


def test_hello_names_the_camera_and_a_fresh_nonce(docked: DockedCamera) -> None:
    first, second = hello(docked), hello(docked)
    assert first["device_id"] == "cam-0042"
    assert first["serial"] == "BWC1-000042"
    assert first["firmware"] == "0.1.0"
    assert len(b64d(first["nonce"], what="nonce", size=32)) == 32
    assert first["nonce"] != second["nonce"]


def test_a_provisioned_dock_gets_a_token_and_the_device_proves_its_key(
    docked: DockedCamera, device_key: Ed25519PrivateKey
) -> None:
    nonce = hello(docked)["nonce"]
    body = session_body(docked.dock_key, nonce, "cam-0042")
    answer = post_session(docked, body)
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    proof = device_message(b64d(body["dock_nonce"], what="dock nonce"), "cam-0042")
    device_key.public_key().verify(b64d(reply["device_signature"], what="sig"), proof)
    status = docked.get("/status", headers={"Authorization": f"Bearer {reply['token']}"})
    assert status.status_code == 200


def test_a_dock_key_the_camera_does_not_hold_is_refused(docked: DockedCamera) -> None:
    stranger = Ed25519PrivateKey.generate()
    answer = post_session(docked, session_body(stranger, hello(docked)["nonce"], "cam-0042"))
    assert answer.status_code == 403
    assert "not provisioned" in answer.json()["error"]


def test_a_known_key_id_with_a_signature_by_another_key_is_refused(docked: DockedCamera) -> None:
    body = session_body(Ed25519PrivateKey.generate(), hello(docked)["nonce"], "cam-0042")
    body["dock_key_id"] = key_id(docked.dock_key)
    answer = post_session(docked, body)
    assert answer.status_code == 403
    assert "error" in answer.json()


def test_a_replayed_nonce_opens_no_second_session(docked: DockedCamera) -> None:
    body = session_body(docked.dock_key, hello(docked)["nonce"], "cam-0042")
    assert post_session(docked, body).status_code == 200
    replay = post_session(docked, body)
    assert replay.status_code == 403
    assert "already used" in replay.json()["error"]


def test_a_signature_for_another_device_is_refused(docked: DockedCamera) -> None:
    body = session_body(docked.dock_key, hello(docked)["nonce"], "cam-9999")
    assert post_session(docked, body).status_code == 403


def test_a_malformed_session_request_is_a_bad_request(docked: DockedCamera) -> None:
    answer = post_session(docked, {"dock_key_id": "zz"})
    assert answer.status_code == 400
    assert "missing field" in answer.json()["error"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}],
    ids=["no token", "unknown token", "another scheme"],
)
def test_without_a_valid_token_nothing_is_answered(
    docked: DockedCamera, headers: dict[str, str]
) -> None:
    for path in ("/status", "/clips", f"/clips/{docked.sealed[0]}/manifest"):
        answer = requests.get(f"{docked.url}{PREFIX}{path}", headers=headers, timeout=WAIT_S)
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/json"
        assert "session" in answer.json()["error"]


def test_erase_without_a_token_is_refused_before_anything_is_read(docked: DockedCamera) -> None:
    clip_id = docked.sealed[0]
    answer = requests.post(
        f"{docked.url}{PREFIX}/clips/{clip_id}/erase",
        data=docked.receipt(clip_id).to_bytes(),
        timeout=WAIT_S,
    )
    assert answer.status_code == 401
    assert docked.folder(clip_id).is_dir()


def test_a_second_session_leaves_the_first_valid(docked: DockedCamera) -> None:
    first = docked.token
    open_session(docked.url, docked.dock_key)
    assert docked.get("/status", headers={"Authorization": f"Bearer {first}"}).ok
