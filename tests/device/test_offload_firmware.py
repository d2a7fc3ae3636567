"""A dock sends a firmware bundle over the offload API: installed, or refused with a reason."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.events import DockInput
from device.slots import SlotManager
from device.updates import INCOMING
from tests.device.docked_update_rig import (
    Rebooted,
    close,
    put_headers_only,
    put_truncated,
    reboot_in_dock,
    release_key_provisioned,
)
from tests.device.offload_rig import WAIT_S, DockedCamera
from tests.device.slot_helpers import TARGET, make_bundle, slot_files
from tests.device.test_offload_profile import signed


class NoAudit:
    """Reading slots never audits; the camera's own log is open in the firmware."""

    def append(self, event: str, data: dict[str, Any]) -> int:
        raise AssertionError(f"a read-only slot check audited {event}")


@pytest.fixture
def release_key(docked: DockedCamera) -> Ed25519PrivateKey:
    return release_key_provisioned(docked)


@pytest.fixture
def bundles(tmp_path: Path) -> Path:
    folder = tmp_path / "bundles"
    folder.mkdir()
    return folder


def audit_records(docked: DockedCamera) -> list[dict[str, Any]]:
    return [json.loads(line) for line in docked.audit_bytes().splitlines()]


def firmware_records(docked: DockedCamera) -> list[dict[str, Any]]:
    return [r for r in audit_records(docked) if r["event"].startswith("firmware.")]


def firmware_area(docked: DockedCamera) -> dict[str, bytes]:
    """Every file under firmware/ on the card: slots, state and any incoming bundle."""
    root = docked.storage.root / "firmware"
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def put(docked: DockedCamera, bundle: Path) -> requests.Response:
    return docked.request("PUT", "/firmware", data=bundle.read_bytes())


def still_records(docked: DockedCamera) -> None:
    """Out of the dock the camera records a clip and seals it when docked again."""
    cam = docked.camera
    sealed = len(cam.firmware.sealed)
    cam.submit(DockInput(docked=False, at_ns=cam.now()))
    cam.run(1)
    cam.tap(2)
    cam.run(2)
    assert cam.firmware.status()["state"] == "recording"
    cam.submit(DockInput(docked=True, at_ns=cam.now()))
    cam.firmware.step()
    assert len(cam.firmware.sealed) == sealed + 1
    assert cam.verify(cam.firmware.sealed[-1]).ok


def test_a_signed_bundle_is_installed_into_the_inactive_slot(
    docked: DockedCamera, release_key: Ed25519PrivateKey, bundles: Path
) -> None:
    answer = put(docked, make_bundle(bundles, release_key, version="1.2.0"))
    assert (answer.status_code, answer.json()) == (
        200, {"slot": "a", "firmware_version": "1.2.0", "applies": "reboot"},
    )  # fmt: skip
    slots = SlotManager(docked.storage, [release_key.public_key()], target=TARGET, audit=NoAudit())
    assert slots.verify_slot("a").ok
    assert slot_files(docked.storage, "a")["files/VERSION"] == b"1.2.0"
    assert firmware_records(docked)[-1]["event"] == "firmware.installed"
    assert not docked.storage.exists(INCOMING)


def refused_bundle(bundles: Path, release_key: Ed25519PrivateKey, kind: str) -> tuple[Path, str]:
    """A bad bundle of each kind the issue names, and the check its refusal must name."""
    if kind == "unsigned":
        return make_bundle(bundles, None, version="2.0.0"), "signer"
    if kind == "wrong key":
        return make_bundle(bundles, Ed25519PrivateKey.generate(), version="2.0.0"), "signer"
    if kind == "wrong target":
        return make_bundle(bundles, release_key, version="2.0.0", target="pi5-bwc1"), "target"
    if kind == "downgrade":  # the factory image runs 0.1.0
        return make_bundle(bundles, release_key, version="0.0.9", min_version="0.0.1"), "downgrade"
    assert kind == "tampered"
    good = make_bundle(bundles, release_key, version="2.0.0")
    data = bytearray(good.read_bytes())
    data[-1000] ^= 0x01
    good.write_bytes(bytes(data))
    return good, "payload hashes"


@pytest.mark.parametrize("kind", ["unsigned", "wrong key", "tampered", "wrong target", "downgrade"])
def test_a_bundle_that_does_not_verify_is_refused_with_its_check_and_audited(
    docked: DockedCamera, release_key: Ed25519PrivateKey, bundles: Path, kind: str
) -> None:
    bundle, check = refused_bundle(bundles, release_key, kind)
    before, seen = firmware_area(docked), len(firmware_records(docked))
    answer = put(docked, bundle)
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(f"firmware bundle incoming.bundle refused: {check}: ")
    refusals = firmware_records(docked)[seen:]
    assert [r["event"] for r in refusals] == ["firmware.refused"]  # once, not twice
    assert refusals[0]["data"]["reason"].startswith(f"{check}: ")
    assert firmware_area(docked) == before  # slots untouched, incoming file gone
    still_records(docked)


def test_a_bundle_without_content_length_is_refused_before_it_is_read(
    docked: DockedCamera, release_key: Ed25519PrivateKey, bundles: Path
) -> None:
    data = make_bundle(bundles, release_key, version="1.2.0").read_bytes()
    answer = docked.request("PUT", "/firmware", data=iter([data]))  # chunked: no length
    assert answer.status_code == 411
    assert firmware_records(docked)[-1]["data"]["reason"].startswith("length required: ")
    assert firmware_area(docked) == {}


def test_a_bundle_larger_than_the_free_space_is_refused_before_it_is_read(
    docked: DockedCamera, release_key: Ed25519PrivateKey, bundles: Path
) -> None:
    size = make_bundle(bundles, release_key, version="1.2.0").stat().st_size
    card = docked.storage
    reserve = docked.camera.firmware.config.storage_reserve_bytes
    with card.open_write("filler.bin") as f:  # leave one byte less than the bundle needs
        f.write(bytes(card.free_bytes() - reserve - size + 1))
    status, body = put_headers_only(docked, size)
    assert status == 507
    assert body["error"].startswith("free space: the bundle is ")
    assert firmware_records(docked)[-1]["data"]["reason"] == body["error"]
    assert firmware_area(docked) == {}


def wait_for_refusal(docked: DockedCamera, seen: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while len(records := firmware_records(docked)) == seen:
        assert time.monotonic() < deadline, "no firmware.refused after the dock hung up"
    return records[-1]


def test_a_bundle_cut_short_by_the_dock_is_refused_and_removed(
    docked: DockedCamera, release_key: Ed25519PrivateKey, bundles: Path
) -> None:
    bundle = make_bundle(bundles, release_key, version="1.2.0")
    seen = len(firmware_records(docked))
    put_truncated(docked, bundle, sent=bundle.stat().st_size // 2)
    refusal = wait_for_refusal(docked, seen)
    assert refusal["event"] == "firmware.refused"
    assert refusal["data"]["reason"].startswith("truncated: the body ended after ")
    deadline = time.monotonic() + WAIT_S
    while firmware_area(docked):  # the incoming file goes once the refusal is answered
        assert time.monotonic() < deadline, f"left on the card: {list(firmware_area(docked))}"
    still_records(docked)


@pytest.fixture
def on_trial(
    docked: DockedCamera, release_key: Ed25519PrivateKey, bundles: Path
) -> Iterator[Rebooted]:
    """The camera rebooted in the dock into slot a, on its trial boot."""
    assert put(docked, make_bundle(bundles, release_key, version="1.2.0")).status_code == 200
    rebooted = reboot_in_dock(docked)
    yield rebooted
    close(rebooted.docked)


def test_no_bundle_is_taken_while_the_running_slot_is_on_trial(
    on_trial: Rebooted, release_key: Ed25519PrivateKey, bundles: Path
) -> None:
    docked = on_trial.docked
    before = firmware_area(docked)
    answer = put(docked, make_bundle(bundles, release_key, version="1.3.0"))
    assert answer.status_code == 409
    assert answer.json()["error"].startswith("on trial: ")
    assert firmware_records(docked)[-1]["event"] == "firmware.refused"
    assert firmware_area(docked) == before


def test_status_reports_the_slot_on_trial_and_its_version(on_trial: Rebooted) -> None:
    status = on_trial.docked.get("/status").json()
    assert {k: status[k] for k in ("firmware", "target", "firmware_slot", "firmware_state")} == {
        "firmware": "1.2.0", "target": "sim", "firmware_slot": "a", "firmware_state": "trial",
    }  # fmt: skip
    assert on_trial.docked.get("/hello").json()["firmware"] == "1.2.0"


def test_status_of_the_factory_image(docked: DockedCamera) -> None:
    status = docked.get("/status").json()
    assert {k: status[k] for k in ("firmware", "target", "firmware_slot", "firmware_state")} == {
        "firmware": "0.1.0", "target": "sim", "firmware_slot": None, "firmware_state": "healthy",
    }  # fmt: skip
    assert (status["profile_id"], status["profile_version"], status["profile_pending"]) == (
        "", 0, None,
    )  # fmt: skip


def test_a_reboot_request_is_answered_then_handed_to_the_camera(on_trial: Rebooted) -> None:
    answer = on_trial.docked.request("POST", "/reboot", json={})
    assert (answer.status_code, answer.json()) == (202, {"rebooting": True})
    assert on_trial.reboot_asked.wait(WAIT_S)
    assert audit_records(on_trial.docked)[-1]["event"] == "reboot.requested"


def test_a_camera_without_a_reboot_handler_refuses_to_reboot(docked: DockedCamera) -> None:
    answer = docked.request("POST", "/reboot", json={})
    assert answer.status_code == 409
    assert "cannot reboot on request" in answer.json()["error"]


def test_a_profile_accepted_in_the_dock_is_pending_until_the_next_boot(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    profile = signed(release_key, 3)
    assert docked.request("PUT", "/profile", data=profile.to_bytes()).status_code == 200
    status = docked.get("/status").json()
    assert (status["profile_id"], status["profile_version"]) == ("", 0)
    assert status["profile_pending"] == {"profile_id": profile.profile_id, "profile_version": 3}
    rebooted = reboot_in_dock(docked)
    try:
        status = rebooted.docked.get("/status").json()
    finally:
        close(rebooted.docked)
    assert (status["profile_id"], status["profile_version"]) == (profile.profile_id, 3)
    assert status["profile_pending"] is None
