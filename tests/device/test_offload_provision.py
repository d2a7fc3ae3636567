"""Provisioning and time sync from the dock: checked in full, durable, audited, or nothing."""

from __future__ import annotations

import json
import stat
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bwc.commands.device_rig import development_registry
from custody.canonical import canonical_bytes
from custody.keys import key_id, private_pem, public_pem
from custody.trigger_registry import TriggerRegistry
from device.offload import load_officer
from tests.device.offload_rig import DockedCamera, open_session


def audit_events(docked: DockedCamera, event: str) -> list[dict[str, Any]]:
    records = map(json.loads, docked.audit_bytes().splitlines())
    return [r["data"] for r in records if r["event"] == event]


def record_a_clip(docked: DockedCamera) -> str:
    """Undock, record two seconds, dock again: the id of the new sealed clip."""
    docked.undock()
    docked.camera.tap(2)
    docked.camera.run(2)
    docked.dock()
    return docked.camera.firmware.sealed[-1]


# -- officer ------------------------------------------------------------------------------------


def test_an_assigned_officer_is_reported_kept_on_the_card_and_audited(
    docked: DockedCamera,
) -> None:
    answer = docked.request("PUT", "/officer", json={"officer_id": "o.2001@north"})
    assert answer.status_code == 200
    assert answer.json() == {"officer_id": "o.2001@north"}
    assert docked.get("/status").json()["officer_id"] == "o.2001@north"
    assert load_officer(docked.storage) == "o.2001@north"  # what the next boot reads
    assert audit_events(docked, "officer.assigned") == [
        {"officer_id": "o.2001@north", "previous": "officer-1187"}
    ]


def test_clips_recorded_after_an_assignment_carry_the_new_officer(docked: DockedCamera) -> None:
    assert docked.request("PUT", "/officer", json={"officer_id": "officer-2001"}).ok
    clip_id = record_a_clip(docked)
    assert docked.camera.manifest(clip_id).header.info.officer_id == "officer-2001"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"officer_id": "../etc"}, 422),
        ({"officer_id": ""}, 422),
        ({"officer_id": "x" * 65}, 422),
        ({"officer_id": 2001}, 400),
        ({"officer_id": "officer-2001", "rank": "sgt"}, 400),
        ({}, 400),
    ],
)
def test_a_bad_officer_assignment_changes_nothing(
    docked: DockedCamera, body: dict[str, object], status: int
) -> None:
    answer = docked.request("PUT", "/officer", json=body)
    assert answer.status_code == status
    assert "error" in answer.json()
    assert docked.get("/status").json()["officer_id"] == "officer-1187"
    assert load_officer(docked.storage) is None
    assert audit_events(docked, "officer.assigned") == []


# -- trigger registry ---------------------------------------------------------------------------


def registry_bytes(serial: str = "BWC1-000042") -> bytes:
    return canonical_bytes(development_registry(serial).to_json())


def test_a_trigger_registry_replaces_the_file_privately_and_is_audited(
    docked: DockedCamera,
) -> None:
    sent = registry_bytes()
    answer = docked.request("PUT", "/triggers", data=sent)
    assert answer.status_code == 200
    path = docked.keys_dir / "triggers.json"
    loaded = TriggerRegistry.load(path)  # refuses a file others can read
    assert canonical_bytes(loaded.to_json()) == sent
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [event] = audit_events(docked, "triggers.provisioned")
    assert event["sources"] == len(loaded) == answer.json()["sources"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"format": "bwc-trigger-registry"}',
        registry_bytes().replace(b'"holster"', b'"catapult"'),
        registry_bytes().replace(b'"version":1', b'"version":9'),
    ],
    ids=["not json", "missing fields", "unknown kind", "future version"],
)
def test_a_bad_trigger_registry_leaves_the_old_one(docked: DockedCamera, body: bytes) -> None:
    assert docked.request("PUT", "/triggers", data=registry_bytes()).ok
    path = docked.keys_dir / "triggers.json"
    before = path.read_bytes()
    answer = docked.request("PUT", "/triggers", data=body)
    assert answer.status_code == 422
    assert "nothing was changed" in answer.json()["error"]
    assert path.read_bytes() == before
    assert len(audit_events(docked, "triggers.provisioned")) == 1


# -- keys ---------------------------------------------------------------------------------------


def test_a_new_store_key_decides_which_receipts_erase(docked: DockedCamera) -> None:
    new_store = Ed25519PrivateKey.generate()
    answer = docked.request("PUT", "/keys/store", data=public_pem(new_store))
    assert answer.json() == {"name": "store", "key_id": key_id(new_store)}
    clip_id = docked.sealed[0]
    old = docked.request("POST", f"/clips/{clip_id}/erase", data=docked.receipt(clip_id).to_bytes())
    assert old.status_code == 422
    receipt = docked.receipt(clip_id, key=new_store).to_bytes()
    assert docked.request("POST", f"/clips/{clip_id}/erase", data=receipt).status_code == 200
    [event] = audit_events(docked, "keys.provisioned")
    assert event == {
        "name": "store", "key_id": key_id(new_store),
        "previous_key_id": key_id(docked.store_key),
    }  # fmt: skip


def test_a_provisioned_dock_key_opens_sessions(docked: DockedCamera) -> None:
    bay2 = Ed25519PrivateKey.generate()
    assert docked.request("PUT", "/keys/dock-bay-2", data=public_pem(bay2)).ok
    assert (docked.keys_dir / "docks" / "bay-2.pub.pem").read_bytes() == public_pem(bay2)
    token, _ = open_session(docked.url, bay2)
    assert docked.get("/clips", headers={"Authorization": f"Bearer {token}"}).ok


def test_an_agency_key_is_an_x25519_key(docked: DockedCamera) -> None:
    agency = X25519PrivateKey.generate()
    assert docked.request("PUT", "/keys/agency", data=public_pem(agency)).ok
    assert (docked.keys_dir / "agency.pub.pem").read_bytes() == public_pem(agency)


@pytest.mark.parametrize(
    ("name", "pem", "status"),
    [
        ("store", public_pem(X25519PrivateKey.generate()), 422),
        ("agency", public_pem(Ed25519PrivateKey.generate()), 422),
        ("store", private_pem(Ed25519PrivateKey.generate()), 422),
        ("store", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 422),
        ("device", public_pem(Ed25519PrivateKey.generate()), 400),
        ("dock-", public_pem(Ed25519PrivateKey.generate()), 400),
        ("dock-..", public_pem(Ed25519PrivateKey.generate()), 400),
    ],
    ids=["x25519 store", "ed25519 agency", "private key", "garbage", "device", "no id", "dots"],
)
def test_a_bad_key_changes_no_key_file(
    docked: DockedCamera, name: str, pem: bytes, status: int
) -> None:
    before = {p: p.read_bytes() for p in docked.keys_dir.rglob("*") if p.is_file()}
    answer = docked.request("PUT", f"/keys/{name}", data=pem)
    assert answer.status_code == status
    assert "error" in answer.json()
    assert {p: p.read_bytes() for p in docked.keys_dir.rglob("*") if p.is_file()} == before
    assert audit_events(docked, "keys.provisioned") == []


# -- time sync ----------------------------------------------------------------------------------


def test_time_sync_reports_and_audits_the_offset_without_stepping_the_clock(
    docked: DockedCamera,
) -> None:
    device_wall = docked.camera.clock.wall_ns()  # virtual: it stands still between frames
    answer = docked.request("POST", "/time", json={"dock_wall_ns": device_wall + 5 * 10**9})
    assert answer.json() == {"device_wall_ns": device_wall, "offset_ns": 5 * 10**9}
    assert docked.camera.clock.wall_ns() == device_wall
    [event] = audit_events(docked, "time.synced")
    assert event == {
        "dock_wall_ns": device_wall + 5 * 10**9, "device_wall_ns": device_wall,
        "offset_ns": 5 * 10**9,
    }  # fmt: skip


def test_clips_after_a_time_sync_carry_the_offset_in_their_manifest(docked: DockedCamera) -> None:
    device_wall = docked.camera.clock.wall_ns()
    assert docked.request("POST", "/time", json={"dock_wall_ns": device_wall - 1234}).ok
    clip_id = record_a_clip(docked)
    # the manifest keeps the camera's clock minus the dock's
    assert docked.camera.manifest(clip_id).header.info.time_sync_offset_ns == 1234


@pytest.mark.parametrize(
    "body", [{}, {"dock_wall_ns": -1}, {"dock_wall_ns": "now"}, {"dock_wall_ns": 1.5}]
)
def test_a_bad_time_sync_is_refused(docked: DockedCamera, body: dict[str, object]) -> None:
    answer = docked.request("POST", "/time", json=body)
    assert answer.status_code == 400
    assert audit_events(docked, "time.synced") == []
