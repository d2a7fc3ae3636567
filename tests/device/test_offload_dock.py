"""The offload API follows the dock: served while docked, sessions end when the camera leaves."""

from __future__ import annotations

import socket

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.offload import OffloadServer
from device.offload.session import Identity, SessionGate
from tests.device.offload_rig import PREFIX, WAIT_S, DockedCamera, open_session, wait


def test_status_describes_the_docked_camera(docked: DockedCamera) -> None:
    status = docked.get("/status").json()
    battery = docked.camera.firmware.battery_reading
    assert battery is not None
    assert status["device_id"] == "cam-0042"
    assert status["officer_id"] == "officer-1187"
    assert status["battery_percent"] == round(battery.percent, 1)
    assert status["charging"] is battery.charging
    assert status["clips_pending"] == len(docked.sealed)
    assert status["wall_ns"] == docked.camera.clock.wall_ns()
    assert 0 < status["free_bytes"] == docked.storage.free_bytes()


def test_the_firmware_status_names_the_offload_url(docked: DockedCamera) -> None:
    offload = docked.camera.firmware.status()["offload"]
    assert offload == {"serving": True, "url": docked.url, "error": None}


def test_undocking_stops_the_api(docked: DockedCamera) -> None:
    url = docked.url
    docked.undock()
    assert docked.server.url is None
    assert docked.camera.firmware.status()["offload"]["serving"] is False
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}{PREFIX}/hello", timeout=WAIT_S)


def test_undocking_ends_the_session(docked: DockedCamera) -> None:
    old = docked.token
    docked.undock()
    docked.dock()
    answer = docked.get("/clips", headers={"Authorization": f"Bearer {old}"})
    assert answer.status_code == 401
    token, _ = open_session(docked.url, docked.dock_key)
    assert docked.get("/clips", headers={"Authorization": f"Bearer {token}"}).ok


def test_a_camera_docked_again_serves_on_the_same_port(docked: DockedCamera) -> None:
    url = docked.url
    docked.undock()
    docked.dock()
    assert docked.url == url


def test_an_undocked_camera_answers_every_request_with_not_docked(
    docked: DockedCamera, device_key: Ed25519PrivateKey
) -> None:
    docked.undock()
    # The same app, reached while the camera is out of the dock: the moment between undock and
    # the server stopping, held open by a second server whose own gate says docked.
    other_gate = SessionGate(Identity("x", "x", "x"), device_key, docked.keys_dir)
    app = docked.server.app
    other = OffloadServer(lambda: app, other_gate, "127.0.0.1", 0)
    other.set_docked(True)
    try:
        wait(other.serving, "the second server serves")
        for method, path in (("GET", "/hello"), ("GET", "/clips"), ("POST", "/session")):
            answer = requests.request(method, f"{other.url}{PREFIX}{path}", timeout=WAIT_S)
            assert answer.status_code == 409
            assert "not docked" in answer.json()["error"]
    finally:
        other.close()


def test_a_port_already_taken_is_reported_not_fatal(docked: DockedCamera) -> None:
    port = int(docked.url.rsplit(":", 1)[1])
    gate = SessionGate(Identity("x", "x", "x"), Ed25519PrivateKey.generate(), docked.keys_dir)
    app = docked.server.app
    clash = OffloadServer(lambda: app, gate, "127.0.0.1", port)
    clash.set_docked(True)
    try:
        wait(clash.failed, "the clashing server gives up")
        assert clash.url is None
        assert clash.error is not None
        assert f"127.0.0.1:{port}" in clash.error
        assert docked.get("/status").ok  # the camera's own server is unharmed
    finally:
        clash.close()


def test_the_api_serves_on_an_ipv6_address_like_the_usb_link(docked: DockedCamera) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine: the USB link's fe80::1 cannot be modelled")
    gate = SessionGate(Identity("x", "x", "x"), Ed25519PrivateKey.generate(), docked.keys_dir)
    app = docked.server.app
    v6 = OffloadServer(lambda: app, gate, "::1", 0)
    v6.set_docked(True)
    try:
        wait(v6.serving, "the IPv6 server serves")
        assert v6.url is not None
        assert v6.url.startswith("http://[::1]:")
        assert requests.get(f"{v6.url}{PREFIX}/hello", timeout=WAIT_S).json()["device_id"]
    finally:
        v6.close()
