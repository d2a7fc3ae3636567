"""After a reboot the camera obeys its profile's trigger kinds, trigger registry and feedback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.canonical import canonical_bytes
from custody.keys import public_pem
from custody.trigger import EventType
from custody.trigger_registry import TriggerRegistry, TriggerSource
from device.events import State
from device.triggers import KIND_NOT_OBEYED
from tests.device.offload_rig import DockedCamera
from tests.device.profile_rig import Rebooted, audit_events, reboot, signed
from tests.device.trigger_helpers import AGENCY_SECRET, HOLSTER, THIS_CAMERA, heard, payload

SIREN = TriggerSource(0x0051BE11, "car-12-siren", "siren", bytes([7]) * 32, rssi_min_dbm=-80)
REGISTRY = TriggerRegistry(
    AGENCY_SECRET, [HOLSTER, SIREN, THIS_CAMERA], self_source_id=THIS_CAMERA.source_id
)
OTHER_REGISTRY_SHA256 = "ab" * 32
#: a recording cue unlike the default (one vibration, two beeps): three vibrations, four beeps
RECORDING_CUE = {"haptic_ms": [20] * 5, "buzzer_ms": [20] * 7}


@pytest.fixture
def release_key(docked: DockedCamera) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    assert docked.request("PUT", "/keys/release-agency", data=public_pem(key)).ok
    return key


@pytest.fixture
def registry_sha256(docked: DockedCamera) -> str:
    """A dock provisions the agency's registry: a holster and a siren."""
    body = canonical_bytes(REGISTRY.to_json()) + b"\n"
    assert docked.request("PUT", "/triggers", data=body).ok
    return REGISTRY.fleet_sha256()


@pytest.fixture
def holster_only(
    docked: DockedCamera, release_key: Ed25519PrivateKey, registry_sha256: str
) -> Iterator[Rebooted]:
    """Rebooted under a profile that obeys holsters only, from the registry it holds."""
    profile = signed(
        release_key, 1, trigger_kinds=["holster"], trigger_registry_sha256=registry_sha256
    )
    assert docked.request("PUT", "/profile", data=profile.to_bytes()).ok
    booted = reboot(docked)
    yield booted
    booted.close()


@pytest.fixture
def wrong_registry(
    docked: DockedCamera, release_key: Ed25519PrivateKey, registry_sha256: str
) -> Iterator[Rebooted]:
    """Rebooted under a profile naming another registry than the one the camera holds."""
    profile = signed(release_key, 1, trigger_registry_sha256=OTHER_REGISTRY_SHA256)
    assert docked.request("PUT", "/profile", data=profile.to_bytes()).ok
    booted = reboot(docked)
    yield booted
    booted.close()


def hear(booted: Rebooted, source: TriggerSource, event: EventType) -> str:
    ble = booted.camera.firmware.ble
    assert ble is not None, "the camera attached no trigger engine"
    h = heard(payload(source, counter=1, event_type=event))
    reason = ble.engine.handle(h.device, h.data).reason
    booted.camera.run(0.5)
    return reason


# -- trigger kinds ------------------------------------------------------------------------------


def test_a_holster_only_profile_ignores_a_siren(holster_only: Rebooted) -> None:
    assert hear(holster_only, SIREN, EventType.SIREN) == KIND_NOT_OBEYED
    assert holster_only.camera.firmware.controller.state is State.BUFFERING
    ble = holster_only.camera.firmware.ble
    assert ble is not None
    assert ble.engine.stats()["rejected"] == {KIND_NOT_OBEYED: 1}


def test_a_holster_only_profile_obeys_a_holster(holster_only: Rebooted) -> None:
    assert hear(holster_only, HOLSTER, EventType.HOLSTER) == "accepted"
    firmware = holster_only.camera.firmware
    assert firmware.controller.state is State.RECORDING
    assert firmware.recorder is not None
    assert firmware.recorder.writer.header.info.triggers[0]["kind"] == "holster"


def test_a_profile_obeying_no_kind_starts_nothing_from_the_radio(
    docked: DockedCamera, release_key: Ed25519PrivateKey, registry_sha256: str
) -> None:
    assert docked.request("PUT", "/profile", data=signed(release_key, 1).to_bytes()).ok
    booted = reboot(docked)
    try:
        assert booted.config.device.trigger_kinds == ()
        assert hear(booted, HOLSTER, EventType.HOLSTER) == KIND_NOT_OBEYED
        assert booted.camera.firmware.controller.state is State.BUFFERING
    finally:
        booted.close()


# -- trigger registry ---------------------------------------------------------------------------


def test_a_registry_other_than_the_profiles_turns_ble_triggers_off(
    wrong_registry: Rebooted,
) -> None:
    assert wrong_registry.camera.firmware.ble is None
    assert wrong_registry.camera.firmware.status()["triggers"] is None


def test_the_registry_refusal_says_both_hashes_and_what_to_do(
    wrong_registry: Rebooted, registry_sha256: str
) -> None:
    printed = wrong_registry.printed.getvalue()
    assert (
        f"the profile names trigger registry {OTHER_REGISTRY_SHA256[:8]}, this camera holds "
        f"{registry_sha256[:8]}: dock it to receive the registry"
    ) in printed
    assert len([line for line in printed.splitlines() if "BLE triggers off" in line]) == 1


def test_the_registry_refusal_is_audited_at_boot_with_both_hashes(
    wrong_registry: Rebooted, registry_sha256: str
) -> None:
    refused = audit_events(wrong_registry.camera.storage.root, "triggers.refused")
    assert refused == [{"expected_sha256": OTHER_REGISTRY_SHA256, "held_sha256": registry_sha256}]


def test_with_ble_triggers_off_the_buttons_still_record(wrong_registry: Rebooted) -> None:
    camera = wrong_registry.camera
    camera.run(1)
    camera.tap(2)
    camera.run(2)
    assert camera.firmware.controller.state is State.RECORDING
    assert camera.firmware.recorder is not None
    assert camera.firmware.recorder.writer.header.info.triggers == ({"kind": "button"},)


def test_a_camera_without_the_named_registry_holds_none_and_says_so(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    profile = signed(release_key, 1, trigger_registry_sha256=OTHER_REGISTRY_SHA256)
    assert docked.request("PUT", "/profile", data=profile.to_bytes()).ok
    booted = reboot(docked)
    try:
        assert "this camera holds none: dock it to receive the registry" in (
            booted.printed.getvalue()
        )
        refused = audit_events(booted.camera.storage.root, "triggers.refused")
        assert refused == [{"expected_sha256": OTHER_REGISTRY_SHA256, "held_sha256": None}]
    finally:
        booted.close()


# -- feedback -----------------------------------------------------------------------------------


def test_the_profiles_recording_cue_is_what_the_officer_feels_and_hears(
    docked: DockedCamera, release_key: Ed25519PrivateKey
) -> None:
    profile = signed(release_key, 1, feedback={"recording": RECORDING_CUE})
    assert docked.request("PUT", "/profile", data=profile.to_bytes()).ok
    booted = reboot(docked)
    try:
        camera = booted.camera
        camera.run(1)
        io = camera.io
        io.wait_for_states(io.haptic, 3)  # the buffering cue at boot has played out
        io.wait_for_states(io.buzzer, 3)
        io.clear_states(io.haptic)
        io.clear_states(io.buzzer)
        camera.tap(2)
        camera.run(1)
        assert camera.firmware.controller.state is State.RECORDING
        # off, then on and off again per vibration or beep
        assert [s.state for s in io.wait_for_states(io.haptic, 7)].count(True) == 3
        assert [s.state for s in io.wait_for_states(io.buzzer, 9)].count(True) == 4
    finally:
        booted.close()
