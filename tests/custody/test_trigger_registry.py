"""The trigger registry file the dock provisions: secret, strict, and refused when exposed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from custody.canonical import b64e
from custody.trigger_registry import TriggerRegistry, TriggerRegistryError, TriggerSource
from tests.device.trigger_helpers import AGENCY_SECRET, HOLSTER, THIS_CAMERA, agency_registry


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "triggers.json"
    agency_registry().save(path)
    return path


def rewrite(path: Path, change: dict[str, Any]) -> None:
    doc = json.loads(path.read_text()) | change
    path.write_text(json.dumps(doc))


def test_a_saved_registry_loads_back_with_every_source(registry_file: Path) -> None:
    loaded = TriggerRegistry.load(registry_file)
    by_id = {s.source_id: s for s in loaded}
    assert by_id == {s.source_id: s for s in agency_registry()}  # secrets included
    assert loaded.agency_secret == AGENCY_SECRET
    assert loaded.self_source_id == THIS_CAMERA.source_id
    assert loaded.by_name("holster-1187") == HOLSTER


def test_the_registry_is_written_readable_by_its_owner_only(registry_file: Path) -> None:
    assert registry_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_registry_readable_by_group_or_others_is_refused(registry_file: Path, mode: int) -> None:
    registry_file.chmod(mode)
    with pytest.raises(TriggerRegistryError, match="chmod 600"):
        TriggerRegistry.load(registry_file)


def test_a_missing_registry_says_to_provision_at_a_dock(tmp_path: Path) -> None:
    with pytest.raises(TriggerRegistryError, match="provision the camera at a dock"):
        TriggerRegistry.load(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "version 2 is not supported"),
        ({"format": "something-else"}, "format"),
        ({"extra": 1}, "unknown fields"),
        ({"agency_secret": b64e(bytes(16))}, "expected 32 bytes"),
        ({"self_source_id": 12345}, "not among the registered sources"),
        ({"sources": {}}, "sources must be a list"),
    ],
)
def test_a_registry_with_a_bad_field_is_refused(
    registry_file: Path, change: dict[str, Any], message: str
) -> None:
    rewrite(registry_file, change)
    with pytest.raises(TriggerRegistryError, match=message):
        TriggerRegistry.load(registry_file)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "toaster"}, "kind 'toaster'"),
        ({"secret": b64e(bytes(31))}, "expected 32 bytes"),
        ({"rssi_min_dbm": -75.5}, "float"),
        ({"rssi_min_dbm": -200}, "outside"),
        ({"id": 2**32}, "not a u32"),
        ({"enabled": 1}, "true or false"),
        ({"name": ""}, "has no name"),
    ],
)
def test_a_source_with_a_bad_field_is_refused(
    registry_file: Path, change: dict[str, Any], message: str
) -> None:
    doc = json.loads(registry_file.read_text())
    doc["sources"][0] |= change
    registry_file.write_text(json.dumps(doc))
    with pytest.raises(TriggerRegistryError, match=message):
        TriggerRegistry.load(registry_file)


def test_two_sources_with_one_id_are_refused() -> None:
    twin = TriggerSource(HOLSTER.source_id, "twin", "door", bytes(32))
    with pytest.raises(TriggerRegistryError, match="twice"):
        TriggerRegistry(AGENCY_SECRET, [HOLSTER, twin])


def test_a_source_never_shows_its_secret_in_its_repr() -> None:
    assert HOLSTER.secret.hex() not in repr(HOLSTER)
    assert "secret" not in repr(HOLSTER)


def test_the_fleet_hash_is_the_same_for_every_camera_of_one_registry() -> None:
    sources = list(agency_registry())
    one = TriggerRegistry(AGENCY_SECRET, sources, self_source_id=THIS_CAMERA.source_id)
    other = TriggerRegistry(AGENCY_SECRET, sources, self_source_id=HOLSTER.source_id)
    unset = TriggerRegistry(AGENCY_SECRET, sources)
    assert one.fleet_sha256() == other.fleet_sha256() == unset.fleet_sha256()


def test_the_fleet_hash_changes_with_any_source_or_secret() -> None:
    sources = list(agency_registry())
    base = TriggerRegistry(AGENCY_SECRET, sources).fleet_sha256()
    fewer = TriggerRegistry(AGENCY_SECRET, sources[:-1]).fleet_sha256()
    rekeyed = TriggerRegistry(bytes(32), sources).fleet_sha256()
    assert len({base, fewer, rekeyed}) == 3
