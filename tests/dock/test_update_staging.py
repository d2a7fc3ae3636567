"""Staging firmware bundles and profiles at a dock (docs/dock-api.md "Updates").

Real: the dock's local API served by uvicorn, its audit log, dock/updates.py on the data folder,
custody's verifiers and bundles built and signed by custody; only the (empty) USB bus is sim.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.profile import MAX_PROFILE_BYTES
from dock.config import DockConfig
from dock.updates import StagedUpdates
from tests.device.slot_helpers import make_bundle
from tests.dock.conftest import Store, url_of
from tests.dock.staging_rig import (
    audit_events,
    install_release_key,
    signed_profile,
    staging_config,
    staging_dock,
    update_files,
)
from tests.dock.ui_rig import WAIT_S, RunningDock

FIRMWARE = "/api/v1/updates/firmware"
PROFILE = "/api/v1/updates/profile"


@pytest.fixture
def release() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def cfg(tmp_path: Path, store_sock: socket.socket) -> DockConfig:
    return staging_config(tmp_path, url_of(store_sock), max_bundle_bytes=400_000)


@pytest.fixture
def dock(
    cfg: DockConfig, dock_key: Ed25519PrivateKey, store: Store, release: Ed25519PrivateKey
) -> Iterator[RunningDock]:
    with staging_dock(cfg, dock_key, store) as running:
        install_release_key(cfg, release)
        yield running


def put(dock: RunningDock, path: str, body: Any, *, token: str | None = "armorer") -> Any:
    token = dock.token if token == "armorer" else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.put(dock.url + path, data=body, headers=headers, timeout=WAIT_S)


def stage_file(dock: RunningDock, bundle: Path) -> requests.Response:
    with bundle.open("rb") as body:  # streamed from the file, with its Content-Length
        answer: requests.Response = put(dock, FIRMWARE, body)
    return answer


def in_chunks(data: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """A body without a declared length (chunked): the dock counts as it reads."""
    for at in range(0, len(data), size):
        yield data[at : at + size]


def test_a_signed_bundle_is_kept_for_its_target_and_listed(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    bundle = make_bundle(tmp_path, release, version="1.2.0")
    answer = stage_file(dock, bundle)
    assert answer.status_code == 200, answer.text
    staged = answer.json()
    assert staged == {
        "firmware_version": "1.2.0", "target": "sim", "min_version": "0.1.0",
        "size": bundle.stat().st_size, "staged_at_ns": staged["staged_at_ns"],
    }  # fmt: skip
    kept = dock.cfg.updates_dir / "firmware-sim.bundle"
    assert kept.read_bytes() == bundle.read_bytes()
    assert dock.get("/api/v1/updates").json() == {"firmware": [staged], "profile": None}


def test_staging_a_bundle_is_audited_with_who_version_and_target(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    assert stage_file(dock, make_bundle(tmp_path, release, version="1.2.0")).status_code == 200
    (record,) = audit_events(dock.cfg, "firmware.stage")
    assert record["actor"] == "armorer:dev-armorer"
    assert record["data"]["outcome"] == "staged"
    assert (record["data"]["firmware_version"], record["data"]["target"]) == ("1.2.0", "sim")


def test_a_bundle_sent_without_a_length_is_staged_too(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    data = make_bundle(tmp_path, release, version="1.2.0").read_bytes()
    answer = put(dock, FIRMWARE, in_chunks(data))
    assert answer.status_code == 200, answer.text
    assert (dock.cfg.updates_dir / "firmware-sim.bundle").read_bytes() == data


def test_a_newer_bundle_for_the_same_target_replaces_the_staged_one(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    assert stage_file(dock, make_bundle(tmp_path, release, version="1.2.0")).status_code == 200
    assert stage_file(dock, make_bundle(tmp_path, release, version="1.3.0")).status_code == 200
    listed = dock.get("/api/v1/updates").json()["firmware"]
    assert [(fw["target"], fw["firmware_version"]) for fw in listed] == [("sim", "1.3.0")]
    assert update_files(dock.cfg) == ["firmware-sim.bundle"]


def test_bundles_for_two_targets_are_both_kept(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    assert stage_file(dock, make_bundle(tmp_path, release, version="1.2.0")).status_code == 200
    other = make_bundle(tmp_path, release, version="2.0.0", target="pi5-bwc1")
    assert stage_file(dock, other).status_code == 200
    listed = dock.get("/api/v1/updates").json()["firmware"]
    assert sorted(fw["target"] for fw in listed) == ["pi5-bwc1", "sim"]


def _unsigned(folder: Path, release: Ed25519PrivateKey) -> bytes:
    return make_bundle(folder, None, version="1.3.0").read_bytes()


def _wrong_key(folder: Path, release: Ed25519PrivateKey) -> bytes:
    return make_bundle(folder, Ed25519PrivateKey.generate(), version="1.3.0").read_bytes()


def _tampered(folder: Path, release: Ed25519PrivateKey) -> bytes:
    data = bytearray(make_bundle(folder, release, version="1.3.0").read_bytes())
    data[-100] ^= 1  # a byte of the last payload file
    return bytes(data)


def _truncated(folder: Path, release: Ed25519PrivateKey) -> bytes:
    return make_bundle(folder, release, version="1.3.0").read_bytes()[:-1000]


def _not_a_bundle(folder: Path, release: Ed25519PrivateKey) -> bytes:
    return b"MZ\x90\x00 this is some other program\n"


REFUSED = [
    (_unsigned, "signer: the firmware bundle is unsigned"),
    (_wrong_key, "signer: signed by release key"),
    (_tampered, "payload hashes: "),
    (_truncated, "payload size: truncated"),
    (_not_a_bundle, "format: "),
]


@pytest.mark.parametrize(("make", "check"), REFUSED, ids=[m.__name__[1:] for m, _ in REFUSED])
def test_a_bundle_that_does_not_verify_is_422_naming_the_check_and_nothing_changes(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey, make: Any, check: str
) -> None:
    assert stage_file(dock, make_bundle(tmp_path, release, version="1.2.0")).status_code == 200
    before = dock.get("/api/v1/updates").json()
    answer = put(dock, FIRMWARE, make(tmp_path, release))
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(f"firmware bundle refused: {check}")
    assert dock.get("/api/v1/updates").json() == before
    assert update_files(dock.cfg) == ["firmware-sim.bundle"]  # no temporary file left behind


def test_a_refused_bundle_is_audited_with_the_reason(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    answer = put(dock, FIRMWARE, _unsigned(tmp_path, release))
    (record,) = audit_events(dock.cfg, "firmware.stage")
    assert record["data"] == {"outcome": "refused", "error": answer.json()["error"]}


def test_a_bundle_declared_over_the_limit_is_413_before_it_is_read(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    bundle = make_bundle(tmp_path, release, version="1.2.0", size=400_000)
    answer = stage_file(dock, bundle)
    assert answer.status_code == 413
    assert "max_bundle_bytes (400000)" in answer.json()["error"]
    assert update_files(dock.cfg) == []
    (record,) = audit_events(dock.cfg, "firmware.stage")
    assert record["data"]["outcome"] == "refused"


def test_a_bundle_that_runs_past_the_limit_unannounced_is_413_and_leaves_nothing(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    data = make_bundle(tmp_path, release, version="1.2.0", size=400_000).read_bytes()
    answer = put(dock, FIRMWARE, in_chunks(data))
    assert answer.status_code == 413
    assert "more than 400000 bytes" in answer.json()["error"]
    assert update_files(dock.cfg) == []


def test_an_upload_cut_short_stages_nothing_and_is_audited(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    data = make_bundle(tmp_path, release, version="1.2.0").read_bytes()
    head = (
        f"PUT {FIRMWARE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {dock.token}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    parts = urlsplit(dock.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=WAIT_S) as conn:
        conn.sendall(head.encode() + data[: len(data) // 2])  # then the sender is gone
    deadline = time.monotonic() + WAIT_S
    while not audit_events(dock.cfg, "firmware.stage"):  # polling with a deadline
        assert time.monotonic() < deadline, "the cut-short upload was audited"
        threading.Event().wait(0.02)
    (record,) = audit_events(dock.cfg, "firmware.stage")
    assert record["data"]["outcome"] == "refused"
    assert "cut short" in record["data"]["error"]
    assert update_files(dock.cfg) == []


def test_a_dock_without_a_release_key_refuses_saying_where_to_put_one(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    for key in dock.cfg.release_keys_dir.glob("release*.pub.pem"):
        key.unlink()
    answer = stage_file(dock, make_bundle(tmp_path, release, version="1.2.0"))
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error.startswith("no release key: put the agency's release public key in ")
    assert error.endswith(f"{dock.cfg.release_keys_dir}/release-<id>.pub.pem")
    assert update_files(dock.cfg) == []


def test_staging_needs_an_armorer_token(
    dock: RunningDock, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    data = make_bundle(tmp_path, release, version="1.2.0").read_bytes()
    for token in (None, "not-" + dock.token):
        answer = put(dock, FIRMWARE, data, token=token)
        assert answer.status_code == 401
        assert "armorer's token" in answer.json()["error"]
    assert put(dock, PROFILE, signed_profile(release), token=None).status_code == 401
    assert update_files(dock.cfg) == []


def test_a_signed_profile_is_kept_listed_and_audited(
    dock: RunningDock, release: Ed25519PrivateKey
) -> None:
    data = signed_profile(release, version=3)
    answer = put(dock, PROFILE, data)
    assert answer.status_code == 200, answer.text
    staged = answer.json()
    assert (staged["name"], staged["profile_version"]) == ("patrol", 3)
    assert len(staged["profile_id"]) == 64
    assert (dock.cfg.updates_dir / "profile.json").read_bytes() == data
    assert dock.get("/api/v1/updates").json() == {"firmware": [], "profile": staged}
    (record,) = audit_events(dock.cfg, "profile.stage")
    assert record["data"]["profile_id"] == staged["profile_id"]
    assert record["data"]["outcome"] == "staged"


BAD_PROFILES = [
    ("unknown key", {"wifi_ssid": "x"}, "settings: profile settings: unknown field"),
    ("out of range", {"video_fps": 1000}, "settings: profile settings: video_fps = 1000"),
]


@pytest.mark.parametrize(("settings", "check"), [(s, c) for _, s, c in BAD_PROFILES],
                         ids=[name for name, _, _ in BAD_PROFILES])  # fmt: skip
def test_a_profile_with_a_bad_setting_is_422_naming_it_and_nothing_changes(
    dock: RunningDock, release: Ed25519PrivateKey, settings: dict[str, Any], check: str
) -> None:
    assert put(dock, PROFILE, signed_profile(release, version=2)).status_code == 200
    before = dock.get("/api/v1/updates").json()
    answer = put(dock, PROFILE, signed_profile(release, version=3, **settings))
    assert answer.status_code == 422
    assert answer.json()["error"].startswith(f"profile refused: {check}")
    assert dock.get("/api/v1/updates").json() == before
    assert update_files(dock.cfg) == ["profile.json"]


def test_a_profile_signed_by_another_key_is_422_signer(dock: RunningDock) -> None:
    answer = put(dock, PROFILE, signed_profile(Ed25519PrivateKey.generate()))
    assert answer.status_code == 422
    assert answer.json()["error"].startswith("profile refused: signer: signed by release key")
    (record,) = audit_events(dock.cfg, "profile.stage")
    assert record["data"]["outcome"] == "refused"


def test_a_profile_over_64_kib_is_413(dock: RunningDock) -> None:
    answer = put(dock, PROFILE, in_chunks(b"{" * (MAX_PROFILE_BYTES + 1)))
    assert answer.status_code == 413
    assert update_files(dock.cfg) == []


def test_a_stage_is_seen_at_once_by_another_reader_of_the_folder(
    cfg: DockConfig, tmp_path: Path, release: Ed25519PrivateKey
) -> None:
    install_release_key(cfg, release)
    writer = StagedUpdates(cfg.updates_dir, cfg.release_keys_dir, lambda: 5)
    reader = StagedUpdates(cfg.updates_dir, cfg.release_keys_dir, lambda: 7)
    assert reader.firmware_for("sim") is None
    with make_bundle(tmp_path, release, version="1.2.0").open("rb") as body:
        staged = writer.stage_firmware(body, limit=10**6)
    seen = reader.firmware_for("sim")
    assert seen is not None and seen.header == staged.header and seen.staged_at_ns == 5
    assert reader.firmware_for("pi5-bwc1") is None


def test_a_target_that_is_not_a_hardware_name_finds_nothing(cfg: DockConfig) -> None:
    cfg.data_dir.mkdir(parents=True)
    (cfg.data_dir / "firmware-x.bundle").write_bytes(b"outside the updates folder")
    updates = StagedUpdates(cfg.updates_dir, cfg.release_keys_dir, lambda: 5)
    assert updates.firmware_for("../firmware-x") is None


def test_an_upload_cut_short_by_a_dock_that_stopped_is_removed_at_start(cfg: DockConfig) -> None:
    cfg.updates_dir.mkdir(parents=True)
    (cfg.updates_dir / ".staging-0123456789abcdef").write_bytes(b"half a bundle")
    StagedUpdates(cfg.updates_dir, cfg.release_keys_dir, lambda: 5)
    assert update_files(cfg) == []
