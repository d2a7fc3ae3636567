"""The dock's local API (docs/dock-api.md) against a running dock and real sim cameras.

Real: the evidence store, each camera's firmware and offload server, the DockAgent, its audit
log and the API served by uvicorn on loopback; only the USB bus is simulated.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit import verify_audit
from custody.clip import segment_name
from device.firmware import CLIPS_ROOT
from dock.config import DockConfig, RetryPolicy
from tests.dock.conftest import DockCfgFactory, FleetFactory, Store, serving, store_app, url_of
from tests.dock.fleet import FleetCamera
from tests.dock.ui_rig import (
    RunningDock,
    bus_with,
    camera_status,
    running_dock,
    wait_done,
)

CLIPS = 2


@pytest.fixture
def fleet(make_fleet: FleetFactory) -> list[FleetCamera]:
    return make_fleet(1, clips=CLIPS)


@pytest.fixture
def camera(fleet: list[FleetCamera]) -> FleetCamera:
    return fleet[0]


@pytest.fixture
def dock(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, fleet: list[FleetCamera]
) -> Iterator[RunningDock]:
    with running_dock(cfg, dock_key, bus_with(fleet)) as running:
        yield running


def audit_records(cfg: DockConfig, event: str) -> list[dict[str, object]]:
    lines = cfg.audit_path.read_bytes().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


def corrupt(camera: FleetCamera, clip_id: str, index: int) -> bytes:
    """Flip the last byte of a segment on the camera's card; returns the original bytes."""
    path = camera.camera.storage.root / CLIPS_ROOT / clip_id / segment_name(index)
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    return original


def test_bays_show_the_docked_camera_with_officer_and_battery_until_it_is_done(
    dock: RunningDock, camera: FleetCamera
) -> None:
    bay = wait_done(dock, camera.serial)
    assert bay["bay"] == "1-1"  # bus 1, port 1
    assert bay["device_id"] == camera.device_id
    assert bay["officer_id"] == "officer-1"  # as the camera's own status reports it
    assert isinstance(bay["battery_percent"], float) and 0 <= bay["battery_percent"] <= 100
    assert (bay["clips_pending"], bay["clips_done"]) == (0, CLIPS)
    assert bay["transfer"] is None and bay["last_error"] is None
    whole = dock.get("/api/v1/bays").json()
    assert whole["dock"]["name"] == "dock-t"
    assert (whole["quarantined"], whole["unfinished_elsewhere"]) == (0, 0)


def test_an_action_without_a_token_is_401_with_a_json_error(dock: RunningDock) -> None:
    answer = dock.post("/api/v1/retry", {"serial": None}, token=None)
    assert answer.status_code == 401
    assert "armorer's token" in answer.json()["error"]
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_an_action_with_a_wrong_token_is_401(dock: RunningDock) -> None:
    answer = dock.post("/api/v1/retry", {"serial": None}, token="not-" + dock.token)
    assert answer.status_code == 401
    assert set(answer.json()) == {"error"}


def test_viewing_from_another_machine_needs_a_token(dock: RunningDock) -> None:
    # the loopback peer is a trusted proxy (dock/ui/server.py): the client is 10.0.0.5
    remote = {"X-Forwarded-For": "10.0.0.5"}
    signed = remote | {"Authorization": f"Bearer {dock.token}"}
    for path in ("/api/v1/bays", "/api/v1/quarantine", "/metrics"):
        assert dock.get(path).status_code == 200, path  # from loopback: no token needed
        refused = requests.get(dock.url + path, headers=remote, timeout=10)
        assert refused.status_code == 401, path
        assert "another machine" in refused.json()["error"]
        assert requests.get(dock.url + path, headers=signed, timeout=10).status_code == 200, path


def test_another_machine_loads_the_page_itself_without_a_token_but_not_the_data(
    dock: RunningDock,
) -> None:
    remote = {"X-Forwarded-For": "10.0.0.5"}
    for path in ("/", "/static/app.js", "/static/style.css"):
        assert requests.get(dock.url + path, headers=remote, timeout=10).status_code == 200, path
    assert requests.get(dock.url + "/api/v1/bays", headers=remote, timeout=10).status_code == 401


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8450", "10.0.0.5"])
def test_a_loopback_request_for_another_sites_name_needs_a_token_against_dns_rebinding(
    dock: RunningDock, host: str
) -> None:
    rebound = requests.get(dock.url + "/api/v1/bays", headers={"Host": host}, timeout=10)
    assert rebound.status_code == 401
    signed = {"Host": host, "Authorization": f"Bearer {dock.token}"}
    assert requests.get(dock.url + "/api/v1/bays", headers=signed, timeout=10).status_code == 200


@pytest.mark.parametrize("host", ["localhost:8450", "127.0.0.1", "[::1]:8450", "LOCALHOST"])
def test_a_loopback_request_by_a_loopback_name_views_without_a_token(
    dock: RunningDock, host: str
) -> None:
    answer = requests.get(dock.url + "/api/v1/bays", headers={"Host": host}, timeout=10)
    assert answer.status_code == 200


def test_assigning_a_docked_camera_reaches_it_at_once_and_is_audited(
    dock: RunningDock, camera: FleetCamera, dock_key: Ed25519PrivateKey
) -> None:
    wait_done(dock, camera.serial)
    answer = dock.post(f"/api/v1/cameras/{camera.serial}/officer", {"officer_id": "officer-77"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "sent"
    assert camera_status(camera, dock_key)["officer_id"] == "officer-77"
    assert dock.bay(camera.serial)["officer_id"] == "officer-77"  # type: ignore[index]
    (record,) = audit_records(dock.cfg, "officer.assign")
    assert record["actor"] == "armorer:dev-armorer"
    assert record["data"] == {
        "serial": camera.serial, "device_id": camera.device_id, "officer_id": "officer-77",
        "outcome": "sent",
    }  # fmt: skip


def test_assigning_a_camera_out_on_shift_is_sent_when_it_docks(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, camera: FleetCamera
) -> None:
    bus = bus_with([])
    with running_dock(cfg, dock_key, bus) as dock:
        answer = dock.post(f"/api/v1/cameras/{camera.serial}/officer", {"officer_id": "o-9"})
        assert answer.json()["outcome"] == "kept"
        assert camera_status(camera, dock_key)["officer_id"] == "officer-1"  # not yet
        bus.plug(camera.serial, port_path=(4,))
        bay = dock.wait_bay(camera.serial, lambda b: b["officer_id"] == "o-9", "officer sent")
        assert bay["bay"] == "1-4"
        assert camera_status(camera, dock_key)["officer_id"] == "o-9"
        wait_done(dock, camera.serial)
    (sent,) = audit_records(cfg, "officer.sent")
    assert sent["data"]["requested_by"] == "armorer:dev-armorer"  # type: ignore[index]


def test_assigning_an_unenrolled_serial_or_a_bad_officer_id_is_a_4xx_json_error(
    dock: RunningDock, camera: FleetCamera
) -> None:
    unknown = dock.post("/api/v1/cameras/BWC1-999999/officer", {"officer_id": "o-1"})
    assert unknown.status_code == 404 and "not enrolled" in unknown.json()["error"]
    bad = dock.post(f"/api/v1/cameras/{camera.serial}/officer", {"officer_id": "../x"})
    assert bad.status_code == 422 and "officer_id" in bad.json()["error"]
    assert audit_records(dock.cfg, "officer.assign") == []


def test_retry_ends_a_bays_backoff_wait_at_once(
    make_dock_cfg: DockCfgFactory,
    store: Store,
    store_sock: socket.socket,
    fleet: list[FleetCamera],
    camera: FleetCamera,
    dock_key: Ed25519PrivateKey,
) -> None:
    cfg = make_dock_cfg(url_of(store_sock), fleet)  # the store is not listening yet
    # one try per step, then backoff waits of up to minutes: only a retry ends them early
    cfg = cfg.model_copy(update={"retry": RetryPolicy(base_s=60, cap_s=3600, attempts=1)})
    with running_dock(cfg, dock_key, bus_with(fleet)) as dock:
        dock.wait_bay(
            camera.serial, lambda b: "does not answer" in (b["last_error"] or ""),
            "the bay waiting for the store",
        )  # fmt: skip
        with serving(store_app(store), store_sock):
            answer = dock.post("/api/v1/retry", {"serial": camera.serial})
            assert answer.json()["bays"] == ["1-1"]
            wait_done(dock, camera.serial)
    (record,) = audit_records(cfg, "retry")
    assert record["data"] == {"serial": camera.serial, "bays": ["1-1"]}


def test_a_quarantined_clip_is_listed_and_released_clips_are_fetched_again_to_done(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, camera: FleetCamera
) -> None:
    clip_id = sorted(camera.manifests)[0]
    original = corrupt(camera, clip_id, 1)
    with running_dock(cfg, dock_key, bus_with([camera])) as dock:
        bay = dock.wait_bay(
            camera.serial, lambda b: b["state"] == "needs_attention", "the bay needs attention"
        )
        assert "sha256" in bay["last_error"]
        (entry,) = dock.get("/api/v1/quarantine").json()
        assert (entry["device_id"], entry["clip_id"]) == (camera.device_id, clip_id)
        assert "does not match its sha256" in entry["why"]
        # the armorer has the camera's card checked and the segment put right
        segment = camera.camera.storage.root / CLIPS_ROOT / clip_id / segment_name(1)
        segment.write_bytes(original)
        answer = dock.post(f"/api/v1/quarantine/{entry['id']}/release", {"reason": "card fixed"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "listed"
        bay = wait_done(dock, camera.serial)
        assert bay["clips_done"] == CLIPS
        assert dock.get("/api/v1/quarantine").json() == []
    assert camera.clips_on_card() == []
    (record,) = audit_records(cfg, "quarantine.release")
    assert record["data"]["reason"] == "card fixed"  # type: ignore[index]
    assert record["data"]["clip_id"] == clip_id  # type: ignore[index]


def test_releasing_an_id_that_is_not_quarantined_is_404(dock: RunningDock) -> None:
    answer = dock.post("/api/v1/quarantine/12345/release", {"reason": "mistake"})
    assert answer.status_code == 404
    assert "GET /api/v1/quarantine" in answer.json()["error"]


def test_the_dock_audit_log_verifies_with_custody_and_the_dock_key(
    dock: RunningDock, camera: FleetCamera, dock_key: Ed25519PrivateKey
) -> None:
    wait_done(dock, camera.serial)
    dock.post("/api/v1/retry", {"serial": None})
    dock.post(f"/api/v1/cameras/{camera.serial}/officer", {"officer_id": "officer-5"})
    report = verify_audit(dock.cfg.audit_path.read_bytes(), [dock_key.public_key()])
    assert report.ok, report.first_failure
    assert report.records == 5  # start, two actions, each followed by its signed checkpoint
    assert len(report.checkpoints) == 2
    tampered = dock.cfg.audit_path.read_bytes().replace(b"officer-5", b"officer-6")
    assert not verify_audit(tampered, [dock_key.public_key()]).ok


def test_the_armorer_token_file_is_created_once_and_private(dock: RunningDock) -> None:
    path = dock.cfg.armorers_path
    assert path.stat().st_mode & 0o777 == 0o600
    (entry,) = json.loads(path.read_text())["tokens"]
    assert (entry["name"], entry["role"], entry["token"]) == (
        "dev-armorer", "armorer", dock.token,
    )  # fmt: skip
